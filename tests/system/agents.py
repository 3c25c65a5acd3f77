#!/usr/bin/env python3
"""Eight `scuttlebutt agent` processes on loopback.

All see each other; a key set on one reaches all; `kill -9` of one is
reported as a leave (down) by all others; restarted on the same port with
new keys it is reported as a join and its new keys reach all, its old
ones are gone; `leave` on one is reported (left) by all others, and so is
SIGHUP to another, which exits 0, but for one started under nohup, which
stays; SIGTERM makes every agent exit 0. The test reads the agents' JSON
lines and asserts events; the deadlines only keep a broken build from
hanging.

usage: agents.py PATH/TO/scuttlebutt
"""
import atexit
import json
import os
import queue
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

from check import check

DEADLINE = 60.0  # seconds, only against hangs
INTERVAL = "100"
RUNNING = []     # every agent started, killed at exit if still running


@atexit.register
def _kill_all():
    for proc in RUNNING:
        if proc.poll() is None:
            proc.kill()


class Agent:
    def __init__(self, exe, bind, seeds=(), sets=(), extra=(), wrap=()):
        args = list(wrap) + [exe, "agent", "--bind", bind,
                             "--interval", INTERVAL]
        args += list(extra)
        for s in seeds:
            args += ["--seed", s]
        for s in sets:
            args += ["--set", s]
        self._start(args)

    def _start(self, args):
        """Runs `args`, reads its JSON lines, waits for its ready event."""
        # surrogateescape: commands may carry bytes that are not UTF-8
        self.proc = subprocess.Popen(args, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE,
                                     encoding="utf-8",
                                     errors="surrogateescape", bufsize=1)
        RUNNING.append(self.proc)
        self.events = []       # every JSON object read, in order
        self.replies = queue.Queue()
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        ready = self.wait(lambda e: e.get("event") == "ready")
        self.addr = ready["addr"]

    def _read(self):
        for line in self.proc.stdout:
            # every line must be one JSON object, in valid UTF-8 (the
            # strict encode fails on any byte that was not)
            line.encode("utf-8")
            obj = json.loads(line)
            if "ok" in obj:
                self.replies.put(obj)
            else:
                with self.lock:
                    self.events.append(obj)

    def wait(self, pred):
        end = time.monotonic() + DEADLINE
        while time.monotonic() < end:
            with self.lock:
                for e in self.events:
                    if pred(e):
                        return e
            time.sleep(0.01)
        raise AssertionError("no matching event within the deadline")

    def count(self, pred):
        with self.lock:
            return sum(1 for e in self.events if pred(e))

    def command(self, line):
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.replies.get(timeout=DEADLINE)


def free_udp_ports(n):
    """n UDP ports on 127.0.0.1 that were free a moment ago: for nodes
    that must know each other's addresses before any of them starts."""
    socks = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def is_event(kind, peer, **fields):
    def pred(e):
        return (e.get("event") == kind and e.get("peer") == peer and
                all(e.get(k) == v for k, v in fields.items()))
    return pred


def main():
    exe = sys.argv[1]
    agents = [Agent(exe, "127.0.0.1:0")]
    seed = agents[0].addr
    for i in range(1, 8):
        sets = ["old=%d" % i] if i == 5 else []
        agents.append(Agent(exe, "127.0.0.1:0", [seed], sets))
    print("8 agents:", " ".join(a.addr for a in agents))

    # all see each other
    for a in agents:
        for b in agents:
            if a is not b:
                a.wait(is_event("join", b.addr))
    peers = agents[0].command("peers")
    check(peers["ok"] and len(peers["peers"]) == 7, peers)
    print("all 8 see each other")

    # a key set on one reaches all
    check(agents[3].command("set color red") == {"ok": True})
    for a in agents:
        if a is not agents[3]:
            a.wait(is_event("update", agents[3].addr, key="color",
                            value="red"))
            r = a.command("get %s color" % agents[3].addr)
            check(r == {"ok": True, "value": "red"}, r)
    print("a key set on one reached all")

    # a value that is not UTF-8 travels as base64; text is JSON-escaped
    check(agents[4].command("set raw \udcff\udcfeok") == {"ok": True})
    check(agents[4].command('set quote say "hi"\t\\') == {"ok": True})
    agents[0].wait(is_event("update", agents[4].addr, key="raw",
                            value_b64="//5vaw=="))
    agents[0].wait(is_event("update", agents[4].addr, key="quote",
                            value='say "hi"\t\\'))
    print("binary values as base64, text escaped")

    # a value only the node can judge is a bad setting too: exit 2, with
    # the library's line naming it
    for extra in (["--bind", "nohost"],
                  ["--bind", "127.0.0.1:0", "--max-message-size", "64"]):
        p = subprocess.run([exe, "agent", "--no-control"] + extra,
                           capture_output=True,
                           text=True, stdin=subprocess.DEVNULL, timeout=60)
        check(p.returncode == 2 and "refused" in p.stderr, (extra, p))
    # values `info` could not show: refused, naming the flag
    newdir = os.path.join(tempfile.mkdtemp(), "newdir")
    for flag, value in (("--threshold", b"inf"), ("--cluster", b"\xff"),
                        ("--event-handler", b"true #\xfe"),
                        ("--control", newdir.encode() + b"/")):
        p = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0", flag,
                            value], capture_output=True,
                           stdin=subprocess.DEVNULL, timeout=60)
        check(p.returncode == 2 and flag.encode() in p.stderr, (flag, p))
    check(not os.path.exists(newdir))  # a directory is no socket path
    print("settings the node refuses, or no one could read: exit 2")

    # bad commands get error replies, and the agent goes on
    for bad in ["frobnicate", "get", "set", "del a b", "get x y z",
                "set " + "k" * 300 + " v", "del missing"]:
        r = agents[1].command(bad)
        check(r["ok"] is False and r["error"], (bad, r))
    check(agents[1].command("set still alive") == {"ok": True})
    # what was wrong is said: the key's length, the most that fits
    r = agents[1].command("set " + "k" * 300 + " v")
    check(r["error"].startswith("einval: a key is 1 to 255 bytes, not 300"),
          r)
    r = agents[1].command("set big " + "x" * 2000)
    check(r["error"].startswith("etoobig: a value of 2000 bytes") and
          "at most" in r["error"], r)
    # a peer by host name is refused, not resolved inside the agent's loop
    # (a slow name server would hold its gossip up); by number it is read
    r = agents[1].command("get localhost:%s still" % agents[1].addr.split(":")[1])
    check(r["ok"] is False and "host name" in r["error"], r)
    for bad in ["127.0.0.1:99999", "127.0.0.1:0", "::1:7946", "[::1]"]:
        r = agents[1].command("get %s still" % bad)
        check(r["ok"] is False and "host name" in r["error"], (bad, r))
    r = agents[1].command("get %s still" % agents[1].addr)
    check(r == {"ok": True, "value": "alive"}, r)

    # kill -9: reported as a leave (down) by all others
    victim = agents[5]
    port_addr = victim.addr
    victim.proc.kill()
    victim.proc.wait()
    for a in agents:
        if a is not victim:
            a.wait(is_event("leave", port_addr, status="down"))
    print("kill -9 reported as down by all")

    # restarted on the same port with new keys: join, new keys, old gone
    marks = {id(a): a.count(is_event("join", port_addr))
             for a in agents if a is not victim}
    agents[5] = Agent(exe, port_addr, [seed], ["fresh=yes"])
    check(agents[5].addr == port_addr)
    for a in agents:
        if a is agents[5]:
            continue
        end = time.monotonic() + DEADLINE
        while a.count(is_event("join", port_addr)) <= marks[id(a)]:
            check(time.monotonic() < end, "restart not reported as join")
            time.sleep(0.01)
        a.wait(is_event("update", port_addr, key="fresh", value="yes"))
        r = a.command("get %s old" % port_addr)
        check(r["ok"] is False, r)
    print("restart on the same port: join, new keys, old keys gone")

    # leave: every other agent ends with the leaver "left" and has
    # reported its leave (as "left"; or, if it had convicted the leaver
    # as down just before, under a loaded machine, that leave stands)
    leaver = agents[2]
    check(leaver.command("leave") == {"ok": True})
    check(leaver.command("leave")["ok"] is False)  # already left

    def status_of(a, addr):
        peers = a.command("peers")["peers"]
        return next((p["status"] for p in peers if p["addr"] == addr), None)

    def all_see_left(gone, others):
        for a in others:
            end = time.monotonic() + DEADLINE
            while status_of(a, gone.addr) != "left":
                check(time.monotonic() < end, ("leave not seen", gone.addr))
                time.sleep(0.05)
            a.wait(lambda e: e.get("event") == "leave" and
                   e.get("peer") == gone.addr)
    all_see_left(leaver, [a for a in agents if a is not leaver])
    print("leave reported by all, all see it left")

    # SIGHUP (the terminal went away): a graceful leave, as SIGTERM,
    # reported left by all others; exit 0
    hung = agents[3]
    hung.proc.send_signal(signal.SIGHUP)
    rc = hung.proc.wait(timeout=DEADLINE)
    check(rc == 0, ("SIGHUP", rc))
    all_see_left(hung, [a for a in agents if a not in (hung, leaver)])
    agents.remove(hung)
    print("SIGHUP: exit 0, reported left by all")

    # under nohup (SIGHUP ignored at start) the agent outlives its
    # terminal: SIGHUP leaves it running and in the cluster
    kept = Agent(exe, "127.0.0.1:0", seeds=[agents[0].addr],
                 wrap=["nohup"])
    agents[0].wait(is_event("join", kept.addr))
    kept.proc.send_signal(signal.SIGHUP)
    time.sleep(1.0)  # a leave exits after 5 rounds (LEAVE_ROUNDS), 0.5 s
    check(kept.proc.poll() is None, ("SIGHUP under nohup", kept.proc.poll()))
    check(kept.command("info")["ok"], "SIGHUP under nohup: no answer")
    agents.append(kept)
    print("SIGHUP under nohup: still running")

    # SIGTERM: graceful exit 0, with stdin still open
    for a in agents:
        a.proc.send_signal(signal.SIGTERM)
    for a in agents:
        rc = a.proc.wait(timeout=DEADLINE)
        check(rc == 0, (a.addr, rc))
    print("SIGTERM: all exited 0")

    # a bad flag is a usage error, exit 2
    rc = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0", "--nope"],
                        capture_output=True).returncode
    check(rc == 2, rc)
    rc = subprocess.run([exe, "agent", "--interval", "x"],
                        capture_output=True).returncode
    check(rc == 2, rc)
    print("ok")


if __name__ == "__main__":
    main()
