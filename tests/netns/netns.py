#!/usr/bin/env python3
"""Hosts on one machine: Linux network namespaces joined by a bridge, one
`scuttlebutt agent` per host, faults made with nftables in each host.

Host i (1-based) is namespace sbt-hI with address 10.77.0.I/24 on its end
of a veth pair; the other ends hang on bridge br0 in namespace sbt-sw.
Every namespace this module makes starts with "sbt-": cleanup() deletes
them all (and with them every link and rule), at exit and before a run, so
a failed run leaves nothing behind.

Needs root and network namespaces; skip() says why when they are missing.
"""
import atexit
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "system"))
from agents import Agent  # noqa: E402

PREFIX = "sbt-"
SWITCH = PREFIX + "sw"
SUBNET = "10.77.0."
PORT = 7946


def sh(*args, input=None, check=True):
    return subprocess.run(args, input=input, capture_output=True, text=True,
                          check=check)


def namespaces():
    out = sh("ip", "netns", "list", check=False).stdout
    return [line.split()[0] for line in out.splitlines()
            if line.startswith(PREFIX)]


def cleanup():
    for ns in namespaces():
        sh("ip", "netns", "del", ns, check=False)


def why_not():
    """None if this machine can run the hosts, else the reason."""
    if os.geteuid() != 0:
        return "needs root (network namespaces, nftables)"
    for tool in ("ip", "nft"):
        if not shutil.which(tool):
            return "needs %s (Debian packages iproute2, nftables)" % tool
    probe = PREFIX + "probe"
    r = sh("ip", "netns", "add", probe, check=False)
    sh("ip", "netns", "del", probe, check=False)
    if r.returncode != 0:
        return "cannot create a network namespace: " + r.stderr.strip()
    return None


def skip():
    """Exits with ctest's skip code (77) and the reason, if needed."""
    reason = why_not()
    if reason:
        print("SKIPPED: " + reason)
        sys.exit(77)


class Net:
    """n hosts on one bridge."""

    def __init__(self, n):
        cleanup()
        atexit.register(cleanup)
        self.n = n
        self.created = time.monotonic()
        sh("ip", "netns", "add", SWITCH)
        self.sw("ip", "link", "add", "br0", "type", "bridge")
        self.sw("ip", "link", "set", "br0", "up")
        for i in range(1, n + 1):
            ns = self.ns(i)
            sh("ip", "netns", "add", ns)
            sh("ip", "link", "add", "h%d" % i, "netns", ns, "type", "veth",
               "peer", "name", "p%d" % i, "netns", SWITCH)
            self.sw("ip", "link", "set", "p%d" % i, "master", "br0")
            self.sw("ip", "link", "set", "p%d" % i, "up")
            self.run(i, "ip", "link", "set", "lo", "up")
            self.run(i, "ip", "addr", "add", self.ip(i) + "/24", "dev",
                     "h%d" % i)
            self.run(i, "ip", "link", "set", "h%d" % i, "up")

    @staticmethod
    def ns(i):
        return "%sh%d" % (PREFIX, i)

    @staticmethod
    def ip(i):
        return SUBNET + str(i)

    def addr(self, i):
        return "%s:%d" % (self.ip(i), PORT)

    def sw(self, *args):
        return sh("ip", "netns", "exec", SWITCH, *args)

    def run(self, i, *args, input=None, check=True):
        return sh("ip", "netns", "exec", self.ns(i), *args, input=input,
                  check=check)

    def agent(self, exe, i, seeds=(), sets=(), extra=()):
        """`scuttlebutt agent` on host i, port 7946."""
        return Agent(exe, self.addr(i), seeds, sets,
                     extra=list(extra) + ["--threshold", "8"],
                     wrap=["ip", "netns", "exec", self.ns(i)])

    # ---- faults: one nftables table per host, "sbfault" ----

    def rules(self, i, lines):
        """Replaces host i's fault rules with `lines` (nft statements of
        an input chain and an output chain)."""
        self.clear(i)
        inp = "\n".join(l for k, l in lines if k == "in")
        out = "\n".join(l for k, l in lines if k == "out")
        spec = ("table inet sbfault {\n"
                " chain input { type filter hook input priority 0;\n%s\n }\n"
                " chain output { type filter hook output priority 0;\n%s\n }\n"
                "}\n" % (inp, out))
        self.run(i, "nft", "-f", "-", input=spec)

    def clear(self, i=None):
        hosts = [i] if i else range(1, self.n + 1)
        for h in hosts:
            self.run(h, "nft", "delete", "table", "inet", "sbfault",
                     check=False)

    def partition(self, groups):
        """Drops, at every host, what comes from hosts of other groups."""
        for g in groups:
            others = [self.ip(h) for o in groups if o is not g for h in o]
            for h in g:
                self.rules(h, [("in", "ip saddr { %s } drop" %
                                ", ".join(others))])

    def loss(self, percent, hosts=None):
        """Each host drops `percent` of what arrives, at random."""
        for h in hosts or range(1, self.n + 1):
            self.rules(h, [("in", "udp dport %d numgen random mod 100 < %d "
                            "drop" % (PORT, percent))])

    def deaf(self, i):
        """Host i sends but receives nothing."""
        self.rules(i, [("in", "udp dport %d drop" % PORT)])


def status_kb(agent, field):
    """A memory figure of an agent process from /proc (VmRSS, VmHWM; the
    pid `ip netns exec` ran is the agent's: it execs it); 0 once gone."""
    try:
        with open("/proc/%d/status" % agent.proc.pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def rss_kb(agent):
    return status_kb(agent, "VmRSS")


def wait_for(pred, deadline=60.0, step=0.05):
    """Polls pred until it holds; False at the deadline (only against
    hangs: the scenarios assert outcomes, not durations)."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return pred()
