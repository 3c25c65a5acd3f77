#!/usr/bin/env python3
"""Agents with `--wire reference` among real nodes of the reference Go
library (github.com/andydunstall/scuttlebutt).

Needs Go (Debian: golang-go golang-go.uber-zap-dev) and the library's
source in the directory SB_GO_SCUTTLEBUTT names (a checkout or snapshot of
the repository; the project holds none of its code). Builds
tests/interop/gonode/main.go against it in GOPATH mode, with no download,
then runs three Go nodes and three agents at a 100 ms interval and checks:
discovery both ways; updates both ways (a 200-byte value too); an agent
killed is reported down by every Go node, and a Go node killed by every
agent (the times are printed); an agent restarted on the same address
with a new value reaches every Go node with it (a Go node never takes up
again a peer it holds down, so no join is reported: docs/compat.md).
Then six fresh nodes, Go and agents in turn, started at once and all
seeded by the first, the starting order docs/compat.md gives: all see
each other. Then six started at once in a chain, each seeded by the one
before (Go first, then an agent first): all see each other.
Then two clusters, two Go nodes and two agents, merged by one agent's
`join` of a Go node: all see each other.
Without Go or the source, exits 77 (skipped) saying which is missing.

usage: go_interop.py PATH/TO/scuttlebutt
"""
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "system"))

from agents import Agent, DEADLINE, free_udp_ports, is_event  # noqa: E402
from check import check  # noqa: E402

INTERVAL = "100"
REF = ["--wire", "reference", "--interval", INTERVAL, "--log-level", "error"]


def skip(why):
    print("skipped:", why)
    sys.exit(77)


def build_gonode():
    src = os.environ.get("SB_GO_SCUTTLEBUTT")
    if not src:
        skip("SB_GO_SCUTTLEBUTT does not name the reference Go library's "
             "source (github.com/andydunstall/scuttlebutt)")
    if not os.path.isfile(os.path.join(src, "scuttlebutt.go")):
        skip("%s holds no scuttlebutt.go" % src)
    go = shutil.which("go")
    if not go:
        skip("no Go toolchain (Debian: golang-go golang-go.uber-zap-dev)")
    gopath = tempfile.mkdtemp(prefix="sb-gopath-")
    lib = os.path.join(gopath, "src", "github.com", "andydunstall")
    os.makedirs(lib)
    os.symlink(os.path.abspath(src), os.path.join(lib, "scuttlebutt"))
    prog = os.path.join(gopath, "src", "sbinterop")
    os.makedirs(prog)
    shutil.copy(os.path.join(HERE, "gonode", "main.go"), prog)
    exe = os.path.join(gopath, "gonode")
    env = dict(os.environ, GO111MODULE="off",
               GOPATH=gopath + ":/usr/share/gocode",
               GOCACHE=os.path.join(gopath, "cache"))
    r = subprocess.run([go, "build", "-o", exe, "."], cwd=prog, env=env,
                       capture_output=True, text=True)
    if r.returncode != 0:
        skip("the Go node does not build here: " + r.stderr.strip()[-400:])
    return exe


class GoNode(Agent):
    """A Go node, driven like an agent (tests/interop/gonode)."""

    def __init__(self, exe, bind, seeds=(), sets=()):
        args = [exe, "-bind", bind, "-interval", INTERVAL]
        for s in seeds:
            args += ["-seed", s]
        for s in sets:
            args += ["-set", s]
        self._start(args)


def at_once(start, n):
    """Runs start(0) .. start(n - 1) at once, each in a thread."""
    threads = [threading.Thread(target=start, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def all_see_each_other(nodes):
    """Seconds until every node reported every other one's join."""
    t0 = time.monotonic()
    for a in nodes:
        for b in nodes:
            if a is not b:
                a.wait(is_event("join", b.addr))
    return time.monotonic() - t0


def seconds_until(nodes, pred):
    """Seconds until every node in `nodes` has an event matching pred."""
    t0 = time.monotonic()
    for n in nodes:
        n.wait(pred)
    return time.monotonic() - t0


def main():
    gonode = build_gonode()
    exe = sys.argv[1]
    t_start = time.monotonic()
    gos = [GoNode(gonode, "127.0.0.1:0", sets=["lang=go"])]
    seed = gos[0].addr
    gos += [GoNode(gonode, "127.0.0.1:0", [seed], ["lang=go"])
            for _ in range(2)]
    agents = [Agent(exe, "127.0.0.1:0", [seed], ["lang=c"], REF)
              for _ in range(3)]
    everyone = gos + agents
    for a in everyone:
        for b in everyone:
            if a is not b:
                a.wait(is_event("join", b.addr))
    print("discovery: 3 Go nodes and 3 agents see each other")

    long = "v" * 200
    check(agents[1].command("set color " + long) == {"ok": True})
    check(gos[1].command("set shape round") == {"ok": True})
    for n in everyone:
        if n is not agents[1]:
            n.wait(is_event("update", agents[1].addr, key="color",
                            value=long))
        if n is not gos[1]:
            n.wait(is_event("update", gos[1].addr, key="shape",
                            value="round"))
    print("updates both ways, a 200-byte value too")
    time.sleep(5)  # 50 intervals in which no agent may report a down
    role = {n.addr: ("go " if n in gos else "agent ") + n.addr
            for n in everyone}

    def false_downs(nodes):
        return [(role[n.addr], "reported down",
                 role.get(e["peer"], e["peer"]))
                for n in nodes for e in n.events
                if e.get("event") == "leave"]
    check(not false_downs(agents), ("false downs", false_downs(agents)))
    # Go nodes have their own (their detector learns its mean from the
    # short gaps of a cluster forming, and a peer once down stays down):
    # counted, not ours to assert
    print("no agent reported a false down in the first %.0f s; Go nodes "
          "reported %d" % (time.monotonic() - t_start,
                           len(false_downs(gos))))

    # an agent killed: every Go node reports it
    victim = agents[2]
    victim.proc.kill()
    victim.proc.wait()
    t = seconds_until(gos, is_event("leave", victim.addr))
    print("a killed agent reported by every Go node in %.2f s" % t)

    # a Go node killed: every agent reports it
    gone = gos[2]
    gone.proc.kill()
    gone.proc.wait()
    t = seconds_until(agents[:2], is_event("leave", gone.addr))
    print("a killed Go node reported by every agent in %.2f s" % t)

    # the agent restarted on its address with a new value: every Go node
    # that holds it down takes the value
    joins = sum(g.count(is_event("join", victim.addr)) for g in gos[:2])
    back = Agent(exe, victim.addr, [seed], ["lang=c-again"], REF)
    end = time.monotonic() + DEADLINE
    t0 = time.monotonic()
    for g in gos[:2]:
        while True:
            r = g.command("get %s lang" % back.addr)
            if r.get("value") == "c-again":
                break
            check(time.monotonic() < end, ("old value at", g.addr, r))
            time.sleep(0.05)
    print("a restarted agent's new value reached every Go node in %.2f s "
          "(joins the Go nodes reported since: %d)" % (
              time.monotonic() - t0,
              sum(g.count(is_event("join", back.addr)) for g in gos[:2]) -
              joins))

    for a in agents[:2] + [back]:
        a.proc.terminate()
    for g in gos[:2]:
        g.proc.kill()
    for a in agents[:2] + [back]:
        check(a.proc.wait(timeout=30) == 0)

    # two clusters, two Go nodes and two agents, that no seed joins: the
    # agents' cluster meets the Go one through one agent's `join`
    g = [GoNode(gonode, "127.0.0.1:0")]
    g.append(GoNode(gonode, "127.0.0.1:0", [g[0].addr]))
    c = [Agent(exe, "127.0.0.1:0", (), (), REF)]
    c.append(Agent(exe, "127.0.0.1:0", [c[0].addr], (), REF))
    g[0].wait(is_event("join", g[1].addr))
    c[0].wait(is_event("join", c[1].addr))
    check(c[1].command("join " + g[1].addr) == {"ok": True})
    print("two clusters, Go and agents, merged by an agent's join after "
          "%.2f s" % all_see_each_other(g + c))
    for n in g + c:
        n.proc.kill()
        n.proc.wait()

    # six nodes at once, each seeded by the first
    first = GoNode(gonode, "127.0.0.1:0")
    rest = [None] * 5

    def start(i):
        if i % 2:
            rest[i] = GoNode(gonode, "127.0.0.1:0", [first.addr])
        else:
            rest[i] = Agent(exe, "127.0.0.1:0", [first.addr], (), REF)

    at_once(start, 5)
    six = [first] + rest
    print("six nodes started at once, seeded by the first: all see each "
          "other after %.2f s" % all_see_each_other(six))
    for n in six:
        n.proc.kill()

    # six nodes at once in a chain, each seeded by the one before, Go
    # first, then agent first: a Go node asks its seeds only while it
    # knows no node, so an agent that named itself to its Go seed before
    # that seed's first round would cut the chain (docs/compat.md)
    for go_first in (True, False):
        ports = free_udp_ports(6)
        addrs = ["127.0.0.1:%d" % p for p in ports]
        chain = [None] * 6

        def start_link(i):
            seeds = [addrs[i - 1]] if i else []
            if (i % 2 == 0) == go_first:
                chain[i] = GoNode(gonode, addrs[i], seeds)
            else:
                chain[i] = Agent(exe, addrs[i], seeds, (), REF)

        at_once(start_link, 6)
        print("six nodes started at once in a chain, %s first: all see each "
              "other after %.2f s" % ("Go" if go_first else "an agent",
                                      all_see_each_other(chain)))
        for n in chain:
            n.proc.kill()
            n.proc.wait()


if __name__ == "__main__":
    main()
