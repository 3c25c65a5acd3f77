#!/usr/bin/env python3
"""`scuttlebutt agent --wire reference` in a cluster of reference nodes.

Four model reference nodes (refnode.py, whose rules follow the real
library's, which tests/interop/go_interop.py runs where it is present)
and three agents on loopback, 100 ms interval:

- discovery both ways: agents join through a reference node, and a
  reference node joins through an agent; every agent reports every other
  member's join, every reference node holds every member up;
- updates both ways, including a reference node's oversized delta (it
  sends more than 512 bytes; the agents take it whole), while no agent
  ever sends a reference node more than 512 bytes;
- failure detection both ways: a reference node that stops is reported
  down by every agent, an agent killed with -9 is reported down by every
  reference node;
- an agent restarted on its port: its new value of an old key reaches
  every node, although they hold the old value at a higher version and,
  having convicted it, leave it out of their digests for good;
- malformed datagrams (a truncated string crashes the reference) do not
  stop the agent (that they are dropped and counted, test_reference
  checks);
- what the format cannot carry is refused: --cluster, --key-file, `del`,
  `leave`, a value over 255 bytes;
- six nodes started at once in a chain, each seeded by the one before,
  reference nodes and agents in turn: all see each other (an agent is
  shy of a seed that knows no one, docs/compat.md).

The test asserts events; the deadlines only keep a broken build from
hanging.

usage: agents_reference.py PATH/TO/scuttlebutt
"""
import base64
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from agents import DEADLINE, Agent, free_udp_ports, is_event  # noqa: E402
from check import check  # noqa: E402
from refnode import RefNode  # noqa: E402

WIRE = ["--wire", "reference"]


def until(cond, what):
    end = time.monotonic() + DEADLINE
    while not cond():
        check(time.monotonic() < end, "not within the deadline: " + what)
        time.sleep(0.02)


# The model nodes convict at phi 24, not the library's 8: like the
# library, a model node never takes up again a peer it convicted, and
# this machine's load (the sanitizer builds run this test too) stalls the
# model's Python threads enough for a false conviction at 8, which would
# last for the rest of the test.
THRESHOLD = 24.0


def main():
    exe = sys.argv[1]
    r1 = RefNode(threshold=THRESHOLD)
    refs = [r1] + [RefNode(seeds=[r1.addr], threshold=THRESHOLD)
                   for _ in range(2)]
    # the reference cluster forms first (a reference node asks its seeds
    # only while it knows no peer)
    for r in refs:
        until(lambda: len(r.up_addrs()) == 3, "the reference nodes meet")
    a1 = Agent(exe, "127.0.0.1:0", [r1.addr], ["role=old1"], WIRE)
    agents = [a1, Agent(exe, "127.0.0.1:0", [a1.addr], [], WIRE),
              Agent(exe, "127.0.0.1:0", [refs[1].addr], [], WIRE)]
    # a reference node that knows only an agent
    refs.append(RefNode(seeds=[agents[1].addr], threshold=THRESHOLD))
    everyone = [r.addr for r in refs] + [a.addr for a in agents]
    print("reference nodes:", " ".join(r.addr for r in refs))
    print("agents:", " ".join(a.addr for a in agents))

    # discovery both ways
    for a in agents:
        for addr in everyone:
            if addr != a.addr:
                a.wait(is_event("join", addr))
    for r in refs:
        until(lambda: set(r.up_addrs()) == set(everyone),
              "%s sees everyone up" % r.addr)
    print("all 7 see each other")

    # updates both ways
    check(agents[0].command("set role primary") == {"ok": True})
    for r in refs:
        until(lambda: r.lookup(agents[0].addr, "role") == "primary",
              "the agent's update at " + r.addr)
    refs[0].update_local("zone", "eu-west")
    for a in agents:
        a.wait(is_event("update", refs[0].addr, key="zone", value="eu-west"))
        r = a.command("get %s zone" % refs[0].addr)
        check(r == {"ok": True, "value": "eu-west"}, r)
    print("updates both ways")

    # any bytes a peer sends keep the agent's output valid JSON: a key and
    # a value of control characters, quotes, a NUL, invalid UTF-8
    raw_key = b'k\x00\n"\\\xff\x1b[2J'
    raw_value = bytes(range(256))[::7] + b'\xc3\x28'
    refs[0].update_local(raw_key, raw_value)
    for a in agents:
        a.wait(is_event("update", refs[0].addr,
                        key_b64=base64.b64encode(raw_key).decode(),
                        value_b64=base64.b64encode(raw_value).decode()))
    print("any bytes from a peer: the agents' output stays valid JSON")

    # a reference node's oversized delta: 12 keys of 200 bytes
    big = {"k%02d" % i: chr(ord("a") + i) * 200 for i in range(12)}
    for k, v in big.items():
        refs[2].update_local(k, v)
    for a in agents:
        for k, v in big.items():
            a.wait(is_event("update", refs[2].addr, key=k, value=v))
    until(lambda: refs[2].largest_out > 512, "an oversized delta")
    print("oversized deltas taken whole (largest sent by the reference "
          "node: %d bytes)" % refs[2].largest_out)
    for r in refs:
        for a in agents:
            got = r.largest_in.get(a.addr, 0)
            check(0 < got <= 512, (r.addr, a.addr, got))
    print("no agent sent more than 512 bytes")

    # malformed datagrams do not stop the agent
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    host, port = agents[0].addr.rsplit(":", 1)
    for junk in [b"\x01\x05ab", b"\x03\x0d10.0.0.1:7946\x01k", b"\x09",
                 b"", b"\x01\x00" + bytes(8)]:
        s.sendto(junk, (host, int(port)))
    s.close()
    check(agents[0].command("set after junk") == {"ok": True})
    for r in refs:
        until(lambda: r.lookup(agents[0].addr, "after") == "junk",
              "an update after junk at " + r.addr)
    print("malformed datagrams: the agent goes on")

    # what the format cannot carry
    for cmd, code in [("del role", "estate"), ("leave", "estate"),
                      ("set v " + "x" * 256, "etoobig")]:
        r = agents[1].command(cmd)
        check(r["ok"] is False and r["error"].startswith(code), (cmd, r))
    with tempfile.NamedTemporaryFile("w", suffix=".key") as kf:
        # a random key: one of 32 zero bytes would be refused first
        kf.write(os.urandom(32).hex() + "\n")
        kf.flush()
        for extra in (["--cluster", "other"], ["--key-file", kf.name]):
            p = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0"] +
                               WIRE + extra, capture_output=True, text=True,
                               stdin=subprocess.DEVNULL, timeout=DEADLINE)
            check(p.returncode == 2, (extra, p.returncode))  # a setting
            check("reference wire format" in p.stderr, p.stderr)
    print("refused: del, leave, a value over 255 bytes, --cluster, "
          "--key-file")

    # a reference node stops: every agent reports it down
    gone = refs.pop()
    gone.stop()
    for a in agents:
        a.wait(is_event("leave", gone.addr, status="down"))
    print("a stopped reference node is reported down by every agent")

    # an agent killed with -9: every reference node reports it down
    victim = agents[2]
    check(victim.command("set role one") == {"ok": True})
    check(victim.command("set role two") == {"ok": True})
    check(victim.command("set role three") == {"ok": True})
    for r in refs:
        until(lambda: r.lookup(victim.addr, "role") == "three",
              "the victim's role at " + r.addr)
    victim.proc.kill()
    victim.proc.wait()
    for r in refs:
        until(lambda: ("leave", victim.addr, None, None) in r.events,
              "the killed agent reported down by " + r.addr)
    print("a killed agent is reported down by every reference node")

    # restarted on its port: its versions start again, yet its new value
    # of an old key reaches everyone
    agents[2] = Agent(exe, victim.addr, [refs[0].addr], ["role=reborn"],
                      WIRE)
    for r in refs:
        until(lambda: r.lookup(victim.addr, "role") == "reborn",
              "the restarted agent's value at " + r.addr)
    for a in agents[:2]:
        a.wait(is_event("update", victim.addr, key="role", value="reborn"))
    print("a restarted agent's new value of an old key reached everyone")

    for a in agents:
        check(a.command("quit") == {"ok": True})
        check(a.proc.wait(timeout=DEADLINE) == 0)
    for r in refs:
        r.stop()

    chain_start(exe)
    print("ok")


def chain_start(exe):
    """Six nodes started at once in a chain, each seeded by the one before
    (reference node first): a reference node asks its seeds only while it
    knows no node, so an agent that named itself to its seed before the
    seed's first round would cut the chain into pairs (docs/compat.md)."""
    addrs = ["127.0.0.1:%d" % p for p in free_udp_ports(6)]
    chain = [None] * 6

    def start(i):
        seeds = [addrs[i - 1]] if i else []
        if i % 2 == 0:
            chain[i] = RefNode(addrs[i], seeds, threshold=THRESHOLD)
        else:
            chain[i] = Agent(exe, addrs[i], seeds, (), WIRE)

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    t0 = time.monotonic()
    for i in range(1, 6, 2):
        for n in chain:
            if n is not chain[i]:
                chain[i].wait(is_event("join", n.addr))
    for i in range(0, 6, 2):
        until(lambda: set(chain[i].up_addrs()) >= set(addrs) - {addrs[i]},
              "the whole chain up at " + addrs[i])
    print("six nodes started at once in a chain: all see each other after "
          "%.2f s" % (time.monotonic() - t0))
    for i in range(1, 6, 2):
        chain[i].proc.kill()
        chain[i].proc.wait()
    for i in range(0, 6, 2):
        chain[i].stop()


if __name__ == "__main__":
    main()
