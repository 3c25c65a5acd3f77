#!/usr/bin/env python3
"""The agent's HTTP server (--http) on a running cluster.

/metrics is read by Prometheus's own text-format parser
(python3-prometheus-client) and agrees with `info`: build info, packets
and bytes, drops by reason, members by status, events by kind, phi of
every live peer, handler counters; /v1/members, /v1/kv/PEER and
/v1/kv/PEER/KEY answer JSON (404 for what is not there, 400 for a key
no node can hold), KEY decoded
byte for byte (a %00 is in the key, not its end); /v1/events streams a
`set` made on another agent, and a client that leaves a silent stream
is dropped without waiting for a write to fail, and at most 32 streams
at once (a HEAD of /v1/events is no stream: answered when they are 32); a
HEAD is answered with no body on every path, /v1/events too; anything
but GET and HEAD is 405; HTTP/1.1 connections are kept for the next
request, pipelined ones too;
no answer ever carries a cluster key; `--http PORT` listens on loopback
only; a bad --http is exit 2, a port in use exit 1. Behaviour is
asserted; deadlines only keep a broken build from hanging.

usage: agents_http.py PATH/TO/scuttlebutt
"""
import base64
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile

from agents import Agent, is_event
from check import check
from operate import (Control, cli, debian_module, private_rundir, ready,
                     wait_until)


def get(addr, path, method="GET"):
    """(status, headers, body) of one request."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.request(method, path)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, dict(r.getheaders()), body


def head_raw(addr, path, version):
    """A HEAD on a raw socket: (status, headers in lower case, what came
    after the blank line within a short wait: b"" when nothing)."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=60)
    s.sendall(("HEAD %s HTTP/%s\r\nHost: %s\r\n\r\n" % (path, version, addr))
              .encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        got = s.recv(4096)
        check(got, ("closed before the headers ended", path, buf))
        buf += got
    head, rest = buf.split(b"\r\n\r\n", 1)
    s.settimeout(0.3)  # a body would be sent at once, with the headers
    try:
        while True:
            got = s.recv(4096)
            if not got:
                break
            rest += got
    except socket.timeout:
        pass
    s.close()
    lines = head.decode().split("\r\n")
    headers = dict((k.strip().lower(), v.strip()) for k, v in
                   (x.split(":", 1) for x in lines[1:]))
    return int(lines[0].split()[1]), headers, rest


def host_answer(addr, path, name, secret):
    """The status of a GET of path at addr with `Host: name`; a refusal
    must say why and hold nothing of the answer (`secret`)."""
    host, port = addr.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    conn.putrequest("GET", path, skip_host=True)
    conn.putheader("Host", name)
    conn.endheaders()
    r = conn.getresponse()
    body = r.read()
    conn.close()
    if r.status == 403:
        check(b"loopback" in body and (not secret or secret not in body),
              body)
    return r.status


def raw_answers(addr, requests):
    """requests sent at once on a raw socket; all that comes back until
    the server closes the connection."""
    host, port = addr.rsplit(":", 1)
    s = socket.create_connection((host, int(port)), timeout=60)
    s.sendall(requests)
    buf = b""
    while True:
        got = s.recv(65536)
        if not got:
            break
        buf += got
    s.close()
    return buf


def metrics(addr):
    """/metrics as {(name, labels as a sorted tuple): value}, parsed by
    prometheus_client."""
    parser = debian_module("prometheus_client.parser")
    status, headers, body = get(addr, "/metrics")
    check(status == 200 and headers["Content-Type"].startswith(
        "text/plain; version=0.0.4"), headers)
    out = {}
    for fam in parser.text_string_to_metric_families(body.decode()):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def main():
    exe = sys.argv[1]
    private_rundir()
    tmp = tempfile.mkdtemp()
    key = os.urandom(32).hex()
    kf = os.path.join(tmp, "key")
    with open(kf, "w") as f:
        f.write(key)

    # bad --http: exit 2; a port in use: exit 1
    for spec in ["nope", "1.2.3.4:99999", "[::1:80", "host:", ":80",
                 "::1:80", "[::1]:-1", "70000"]:
        r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0", "--http",
                            spec], capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and "--http" in r.stderr, (spec, r))
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen()
    r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0", "--http",
                        "127.0.0.1:%d" % busy.getsockname()[1]],
                       capture_output=True, text=True, timeout=60)
    check(r.returncode == 1 and "--http" in r.stderr, r)
    busy.close()
    print("bad --http: exit 2; a port in use: exit 1")

    a = Agent(exe, "127.0.0.1:0", extra=[
        "--key-file", kf, "--http", "0", "--event-handler", "update=true"])
    web = ready(a)["http"]
    check(web.startswith("127.0.0.1:"), web)  # a bare port: loopback
    others = [Agent(exe, "127.0.0.1:0", [a.addr], extra=["--key-file", kf])
              for _ in range(2)]
    for o in others:
        a.wait(is_event("join", o.addr))
        o.wait(is_event("join", a.addr))
    check(others[0].command("set color red") == {"ok": True})
    a.wait(is_event("update", others[0].addr, key="color", value="red"))
    print("three agents, HTTP on", web)

    # /metrics, by a real parser, against `info`
    ctl = ready(a)["control"]
    before = json.loads(cli(exe, "info", "--control", ctl, "--json").stdout)
    m = metrics(web)
    after = json.loads(cli(exe, "info", "--control", ctl, "--json").stdout)
    version, protocol = before["version"], str(before["protocol"])
    check(m[("scuttlebutt_build_info", (("protocol", protocol),
                                        ("version", version),
                                        ("wire", "scuttlebutt")))] == 1, m)
    for d in ("in", "out"):
        for fam in ("packets", "bytes"):
            v = m[("scuttlebutt_%s_total" % fam, (("direction", d),))]
            check(before["stats"]["%s_%s" % (fam, d)] <= v <=
                  after["stats"]["%s_%s" % (fam, d)], (fam, d, v))
    for name in ("verdicts", "verdicts_withheld", "refuted", "sweeps",
                 "diffs", "ranges"):
        v = m[("scuttlebutt_%s_total" % name, ())]
        check(before["stats"][name] <= v <= after["stats"][name], (name, v))
    for reason, n in before["stats"]["drops"].items():
        v = m[("scuttlebutt_drops_total", (("reason", reason),))]
        check(n <= v <= after["stats"]["drops"][reason], (reason, v))
    for status, n in after["stats"]["members"].items():
        check(m[("scuttlebutt_members", (("status", status),))] == n,
              (status, n))
    check(m[("scuttlebutt_members", (("status", "live"),))] == 3)
    for kind, n in after["events"].items():
        check(m[("scuttlebutt_events_total", (("kind", kind),))] == n,
              (kind, n, m))
    for o in others:
        phi = m[("scuttlebutt_peer_phi", (("peer", o.addr),))]
        check(phi >= 0, phi)
    hc = after["event_handlers"][0]
    labels = (("command", "true"), ("handler", "0"))
    check(m[("scuttlebutt_handler_runs_total", labels)] == hc["runs"] >= 1)
    check(m[("scuttlebutt_handler_failures_total", labels)] == 0)
    check(m[("scuttlebutt_control_clients", ())] >= 0)
    print("/metrics parsed by prometheus_client, agreeing with info")

    # /v1/members, /v1/kv
    status, headers, body = get(web, "/v1/members")
    check(status == 200 and headers["Content-Type"] == "application/json")
    members = json.loads(body)
    check(sorted(x["addr"] for x in members) ==
          sorted([a.addr] + [o.addr for o in others]), members)
    check(all(x["status"] == "live" for x in members), members)
    p = others[0].addr
    status, _, body = get(web, "/v1/kv/" + p)
    check(status == 200 and json.loads(body) ==
          {"peer": p, "keys": [{"key": "color", "value": "red"}]}, body)
    status, _, body = get(web, "/v1/kv/%s/color" % p)
    check(status == 200 and json.loads(body) ==
          {"peer": p, "key": "color", "value": "red"}, body)
    for path in ["/v1/kv/%s/nope" % p, "/v1/kv/127.0.0.1:1",
                 "/v1/kv/localhost:1/x", "/v1/kv/", "/nothing", "/v1"]:
        status, _, body = get(web, path)
        check(status == 404 and "error" in json.loads(body), (path, status))
    for method in ["POST", "PUT", "DELETE"]:
        status, headers, _ = get(web, "/v1/members", method)
        check(status == 405 and headers["Allow"] == "GET, HEAD", method)
    # a key no node can hold is a bad request, not a missing key
    for key in ["", "k" * 256]:
        status, _, body = get(web, "/v1/kv/%s/%s" % (p, key))
        check(status == 400 and "error" in json.loads(body), (key, status))
    status, headers, body = get(web, "/")
    check(status == 200 and headers["Content-Type"].startswith("text/html"))
    check(headers["Cache-Control"] == "no-cache", headers)
    check(b"<html" in body and b"http://" not in body.replace(
        b"http://www.w3.org/2000/svg", b""), "a page with nothing from "
        "elsewhere")
    print("/v1/members, /v1/kv/PEER[/KEY]; 404s; 400s; 405s; the page")

    # HTTP/1.1 keeps the connection: requests one after the other go on
    # one connection, and two sent at once are both answered (the second
    # asks to close, so the answers end)
    host, port = web.rsplit(":", 1)
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    socks = []
    for path in ["/v1/members", "/metrics", "/", "/nothing", "/v1/kv/" + p]:
        conn.request("GET", path)
        r = conn.getresponse()
        r.read()
        check(r.getheader("Connection") != "close" and conn.sock,
              ("closed after", path, r.getheaders()))
        socks.append(conn.sock)
    check(all(x is socks[0] for x in socks), "one connection")
    conn.close()
    both = raw_answers(web, b"GET /v1/members HTTP/1.1\r\nHost: localhost\r\n\r\n"
                       b"GET /v1/kv/%s HTTP/1.1\r\nHost: localhost\r\n"
                       b"Connection: close\r\n\r\n" % p.encode())
    check(both.count(b"HTTP/1.1 200 OK\r\n") == 2 and
          both.endswith(b'"value":"red"}]}\n'), both)
    print("keep-alive: one connection for many requests, pipelined too")

    # on loopback, a request must name the host by number or as
    # localhost: one for another name came through a browser a page
    # rebound there (DNS rebinding), and is refused
    host_cases = [("attacker.example:%s" % port, 403),
                  ("localhost.attacker.example", 403), ("", 403),
                  ("[::1]evil", 403), ("localhost:abc", 403),
                  ("127.0.0.1:", 403), ("localhost:%s" % port, 200),
                  ("LOCALHOST", 200), ("localhost.", 200), (web, 200),
                  ("[::1]:%s" % port, 200), ("[::1]", 200)]
    for name, status in host_cases:
        check(host_answer(web, "/v1/kv/" + p, name, b"red") == status,
              (name, status))
    no_host = raw_answers(web, b"GET /v1/members HTTP/1.0\r\n\r\n")
    check(no_host.startswith(b"HTTP/1.1 200") or
          no_host.startswith(b"HTTP/1.0 200"), no_host[:40])
    print("loopback: a Host named otherwise than by number or localhost "
          "refused (403)")

    # a key is bytes (NUL included): a %00 in the path is in the key, not
    # its end, so k%00zz is not k
    check(a.command("set k v") == {"ok": True})
    kv = "/v1/kv/%s/" % a.addr
    status, _, body = get(web, kv + "k%00zz")
    check(status == 404 and "error" in json.loads(body), (status, body))
    c = Control(ctl)
    check(c.ask({"cmd": "set", "key_b64": base64.b64encode(b"k\0zz")
                 .decode(), "value": "nul"}) == {"ok": True})
    c.close()
    status, _, body = get(web, kv + "k%00zz")
    check(status == 200 and json.loads(body) == {
        "peer": a.addr, "key_b64": base64.b64encode(b"k\0zz").decode(),
        "value": "nul"}, (status, body))
    status, _, body = get(web, kv + "%6B")  # escapes still decoded
    check(status == 200 and json.loads(body)["value"] == "v", body)
    for path in ["/metrics%00", "/v1/members%00x",
                 "/v1/kv/%s%%00/k" % a.addr]:
        status, _, body = get(web, path)
        check(status == 404 and "error" in json.loads(body), (path, status))
    print("a %00 in the path is a NUL in the key, not its end")

    # HEAD: GET's status and headers, nothing after them, on every path
    for version in ["1.1", "1.0"]:
        for path, want in [("/", 200), ("/metrics", 200),
                           ("/v1/members", 200), (kv[:-1], 200),
                           (kv + "k", 200), (kv + "nope", 404),
                           ("/nothing", 404), ("/v1/events", 200)]:
            status, headers, rest = head_raw(web, path, version)
            check(status == want and rest == b"", (version, path, status,
                                                   rest))
            if path == "/v1/events":
                # an endless body has no length to announce: none, not 0
                check(headers["content-type"] == "text/event-stream" and
                      "content-length" not in headers, headers)
                continue
            _, got, body = get(web, path)
            check(got["Content-Type"] == headers["content-type"], path)
            if path in ("/", kv + "k", "/nothing"):  # the same bytes
                check(int(headers["content-length"]) == len(body), path)
    check(metrics(web)[("scuttlebutt_http_event_streams", ())] == 0,
          "a HEAD of /v1/events is no stream")
    print("HEAD: no body on any path, /v1/events included")

    # /v1/events: a set on another agent arrives on the stream
    host, port = web.rsplit(":", 1)
    sse = socket.create_connection((host, int(port)), timeout=60)
    sse.sendall(b"GET /v1/events HTTP/1.0\r\n\r\n")  # not chunked
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sse.recv(4096)
    check(b"text/event-stream" in buf.split(b"\r\n\r\n")[0], buf)
    check(others[1].command("set streamed yes") == {"ok": True})
    while b'"key":"streamed"' not in buf:
        got = sse.recv(4096)
        check(got, "stream ended")
        buf += got
    check(b'event: update\ndata: {"event":"update"' in buf, buf)
    sse.close()  # a client that goes away
    check(others[1].command("set after sse") == {"ok": True})
    a.wait(is_event("update", others[1].addr, key="after"))
    wait_until(lambda: metrics(web)[("scuttlebutt_http_event_streams", ())]
               == 0 or None, "the stream's end noticed")
    print("/v1/events streams events; a closed stream is dropped")

    # a client that goes away while nothing is written to it is noticed
    # before two keep-alives have gone (a failed write would need them)
    def stream():
        s = socket.create_connection((host, int(port)), timeout=60)
        s.sendall(b"GET /v1/events HTTP/1.0\r\n\r\n")
        got = b""
        while b"retry: 1000" not in got:
            got += s.recv(4096)
        return s
    live = stream()
    gone = stream()
    wait_until(lambda: metrics(web)[("scuttlebutt_http_event_streams", ())]
               == 2 or None, "two streams")
    gone.close()
    wait_until(lambda: metrics(web)[("scuttlebutt_http_event_streams", ())]
               == 1 or None, "the silent stream's end noticed")
    live.setblocking(False)
    try:
        pings = live.recv(65536).count(b": keep-alive")
    except BlockingIOError:
        pings = 0
    check(pings < 2, "noticed only after %d keep-alives" % pings)
    live.close()
    print("a client gone from a silent stream is dropped without a write")

    # at most 32 streams: the next GET is refused (503); a HEAD, no
    # stream, is still answered
    wait_until(lambda: metrics(web)[("scuttlebutt_http_event_streams", ())]
               == 0 or None, "no streams")
    full = [stream() for _ in range(32)]
    status, _, body = get(web, "/v1/events")
    check(status == 503 and "error" in json.loads(body), (status, body))
    for version in ["1.1", "1.0"]:
        status, headers, rest = head_raw(web, "/v1/events", version)
        check(status == 200 and rest == b"" and
              headers["content-type"] == "text/event-stream",
              (version, status, headers, rest))
    for s in full:
        s.close()
    wait_until(lambda: metrics(web)[("scuttlebutt_http_event_streams", ())]
               == 0 or None, "the 32 streams' ends noticed")
    print("32 streams at most; a HEAD of /v1/events answered all the same")

    # never a cluster key, on any path
    for path in ["/", "/metrics", "/v1/members", "/v1/kv/" + a.addr,
                 "/v1/kv/" + p]:
        _, _, body = get(web, path)
        check(key.encode() not in body.lower(), path)
    print("no cluster key served")

    # explicitly given addresses are used as given
    explicit = Agent(exe, "127.0.0.1:0", extra=["--http", "127.0.0.1:0"])
    check(ready(explicit)["http"].startswith("127.0.0.1:"))
    status, _, _ = get(ready(explicit)["http"], "/metrics")
    check(status == 200)
    explicit.proc.terminate()
    explicit.proc.wait(timeout=60)
    # a wildcard bind reached through loopback is checked the same way
    wild = Agent(exe, "127.0.0.1:0", extra=["--http", "0.0.0.0:0"])
    through = "127.0.0.1:" + ready(wild)["http"].rsplit(":", 1)[1]
    check(host_answer(through, "/v1/members", "attacker.example",
                      b"127.0.0.1") == 403)
    check(host_answer(through, "/v1/members", through, b"") == 200)
    wild.proc.terminate()
    wild.proc.wait(timeout=60)
    print("a wildcard bind reached through loopback: the Host checked")

    for x in [a] + others:
        x.proc.send_signal(signal.SIGTERM)
    for x in [a] + others:
        check(x.proc.wait(timeout=60) == 0)
    print("SIGTERM: exit 0")


if __name__ == "__main__":
    main()
