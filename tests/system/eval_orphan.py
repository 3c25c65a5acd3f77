#!/usr/bin/env python3
"""`scuttlebutt eval` killed while it measures leaves nothing running: each
cluster size runs in a child process of its own (eval.c), and that child,
with its nodes and their sockets, must end with the eval that started it
rather than go on measuring for nobody.

usage: eval_orphan.py PATH/TO/scuttlebutt
"""
import os
import signal
import subprocess
import sys
import time

from check import check


def children(pid):
    """The pids whose parent is `pid`."""
    out = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name) as f:
                stat = f.read()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces
        fields = stat[stat.rindex(")") + 2:].split()
        if int(fields[1]) == pid:
            out.append(int(name))
    return out


def running(pid):
    """True while `pid` exists and is not a zombie."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


def main():
    exe = sys.argv[1]
    # many trials: the child would measure for minutes on its own
    p = subprocess.Popen([exe, "eval", "--nodes", "3", "--trials", "1000",
                          "--window", "1"], stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    kids = []
    deadline = time.monotonic() + 10
    while not kids and time.monotonic() < deadline:
        kids = children(p.pid)
        time.sleep(0.05)
    check(kids, "no child process of the eval appeared")
    p.send_signal(signal.SIGKILL)
    p.wait()
    deadline = time.monotonic() + 5
    while any(running(k) for k in kids) and time.monotonic() < deadline:
        time.sleep(0.05)
    left = [k for k in kids if running(k)]
    for k in left:  # do not leave it behind, whatever the verdict
        os.kill(k, signal.SIGKILL)
    check(not left, "the measuring child outlived the eval", left)
    print("ok")


if __name__ == "__main__":
    main()
