#!/usr/bin/env python3
"""The systemd unit of contrib/ (scuttlebutt.service) holds what it
promises and what the agent needs.

- `systemd-analyze verify` takes the unit (its ExecStart pointed at the
  agent under test), and `systemd-analyze security --offline=yes` rates
  its exposure at most 2.0 ("OK"), so that its hardening does not wear
  away unnoticed.
- Every system call an agent makes under load, its event handler's
  included (traced with strace: start, a peer joining, keys set and
  deleted, the control socket's commands, HTTP's members, metrics and
  events, a leave, SIGTERM), is one the unit's SystemCallFilter lines
  allow: a call outside them kills the agent (SIGSYS) on a machine that
  runs the unit, where no test here could notice.

Skipped (77), with the reason, without systemd-analyze or strace (or
where strace may not trace), and in the sanitizers' builds (their
runtimes make calls the agent does not).

usage: agents_service.py PATH/TO/scuttlebutt
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import urllib.request

from agents import Agent
from check import check
from operate import cli, private_rundir, ready, wait_until

UNIT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..",
                    "contrib", "scuttlebutt.service")


def skip(why):
    print("skipped:", why)
    sys.exit(77)


def analyze(*args):
    return subprocess.run(["systemd-analyze"] + list(args),
                          capture_output=True, text=True, timeout=120)


GROUPS = {}  # a @group's system calls, as resolved once


def filter_set(groups):
    """The system calls a list of names and @groups stands for: a group's
    members are the indented lines of `systemd-analyze syscall-filter`,
    names or groups (comments start with #)."""
    out = set()
    for g in groups:
        if not g.startswith("@"):
            out.add(g)
            continue
        if g not in GROUPS:
            members = [line.strip() for line in
                       analyze("syscall-filter", g).stdout.splitlines()
                       if line[:1].isspace() and
                       not line.strip().startswith("#") and line.strip()]
            GROUPS[g] = filter_set(members)
        out |= GROUPS[g]
    return out


def unit_filters(text):
    """(allowed, denied) of the unit's SystemCallFilter lines, in order:
    a first allow list, then `~` deny lists."""
    allowed, denied = None, set()
    for m in re.finditer(r"^SystemCallFilter=(.*)$", text, re.M):
        value = m.group(1).strip()
        if value.startswith("~"):
            denied |= filter_set(value[1:].split())
        else:
            allowed = (allowed or set()) | filter_set(value.split())
    return allowed, denied


def traced_calls(path):
    calls = set()
    for line in open(path, errors="replace"):
        line = re.sub(r"^\d+\s+", "", line)
        m = re.match(r"([a-z_0-9]+)\(", line)
        if m:
            calls.add(m.group(1))
    return calls


def main():
    exe = os.path.abspath(sys.argv[1])
    if not shutil.which("systemd-analyze"):
        skip("no systemd-analyze here")
    if not shutil.which("strace"):
        skip("no strace here")
    if subprocess.run(["strace", "-f", "-qq", "-o", os.devnull, "true"],
                      capture_output=True).returncode != 0:
        skip("strace cannot trace here (ptrace refused)")
    if os.environ.get("SB_SANITIZED"):
        skip("a sanitizer's runtime makes system calls the agent does not")
    text = open(UNIT).read()

    # the unit as systemd reads it, its ExecStart at this build's agent
    tmp = tempfile.mkdtemp(prefix="sb-unit-")
    unit = os.path.join(tmp, "scuttlebutt.service")
    with open(unit, "w") as f:
        f.write(re.sub(r"^ExecStart=\S+", "ExecStart=" + exe, text,
                       flags=re.M))
    r = analyze("verify", unit)
    check(r.returncode == 0, r.stdout, r.stderr)
    r = analyze("security", "--offline=yes", unit)
    m = re.search(r"Overall exposure level for \S+: ([\d.]+)", r.stdout)
    check(m and float(m.group(1)) <= 2.0, r.stdout[-2000:], r.stderr)
    print("unit verified, exposure", m.group(1))

    allowed, denied = unit_filters(text)
    check(allowed and "sendto" in allowed and "execve" in allowed,
          "the unit's allow list did not resolve", sorted(allowed or ()))

    # an agent at work under strace, with a handler, HTTP and a peer
    private_rundir()
    trace = os.path.join(tmp, "trace")
    handler = "join,update,delete=logger -t sb-test \"$SB_EVENT\"; cat >/dev/null"
    a = Agent(exe, "127.0.0.1:0",
              extra=["--http", "127.0.0.1:0", "--event-handler", handler,
                     "--set", "role=traced"],
              wrap=["strace", "-f", "-qq", "-o", trace])
    r0 = ready(a)
    b = Agent(exe, "127.0.0.1:0", [a.addr])
    a.wait(lambda e: e.get("event") == "join" and e.get("peer") == b.addr)
    control = r0["control"]
    check(cli(exe, "set", "--control", control, "k", "v").returncode == 0)
    check(cli(exe, "members", "--control", control).returncode == 0)
    check(cli(exe, "info", "--control", control).returncode == 0)
    check(cli(exe, "del", "--control", control, "k").returncode == 0)
    check(b.command("set color blue") == {"ok": True})
    a.wait(lambda e: e.get("event") == "update" and e.get("key") == "color")
    base = "http://" + r0["http"]
    for path in ("/metrics", "/v1/members", "/"):
        with urllib.request.urlopen(base + path, timeout=30) as resp:
            check(resp.status == 200, path)
    try:
        urllib.request.urlopen(base + "/v1/events", timeout=1).read(1)
    except OSError:
        pass  # a stream: its first bytes are enough
    check(b.command("leave") == {"ok": True})
    a.wait(lambda e: e.get("event") == "leave" and e.get("peer") == b.addr)
    b.proc.send_signal(signal.SIGTERM)
    b.proc.wait(timeout=60)
    # the agent, not strace (which would detach and leave it running):
    # it leaves and exits 0, and strace with it
    pids = subprocess.run(["pgrep", "-P", str(a.proc.pid)],
                          capture_output=True, text=True).stdout.split()
    check(len(pids) == 1, pids)
    os.kill(int(pids[0]), signal.SIGTERM)
    check(a.proc.wait(timeout=60) == 0)

    used = traced_calls(trace)
    check(len(used) > 20 and "sendto" in used, sorted(used))
    outside = sorted(used - allowed)
    check(not outside, "calls the unit's allow list lacks", outside)
    refused = sorted(used & denied)
    check(not refused, "calls the unit denies", refused)
    print("%d system calls, all allowed by the unit" % len(used))
    shutil.rmtree(tmp, ignore_errors=True)
    print("ok")


if __name__ == "__main__":
    main()
