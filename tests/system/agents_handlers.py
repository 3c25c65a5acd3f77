#!/usr/bin/env python3
"""Event handlers (--event-handler) of a running agent.

A handler gets the event in its environment and the value, byte for
byte, on stdin (a value full of shell syntax is never interpreted, a key
that is not text comes as SB_KEY_B64); an EVENTS list filters; a handler
that fails has its exit status and stderr logged and counted; one that
hangs is killed after --handler-timeout and counted; a flood of events
on a slow handler fills its queue, the rest are dropped, counted and
logged, while the agent keeps gossiping: it reports every update and
answers its control socket. A bad EVENTS list is refused at start.
Behaviour is asserted; deadlines only keep a broken build from hanging.

usage: agents_handlers.py PATH/TO/scuttlebutt
"""
import base64
import json
import os
import signal
import subprocess
import sys
import tempfile

from agents import Agent, is_event
from check import check
from operate import Control, cli, private_rundir, ready, wait_until

FLOOD = 1000


def start(exe, seeds, extra):
    """An agent logging at info level into a file of its own."""
    errpath = tempfile.NamedTemporaryFile(delete=False).name
    a = Agent(exe, "127.0.0.1:0", seeds, extra=["--log-level", "info"] + extra,
              wrap=["sh", "-c", 'exec "$@" 2>"$0"', errpath])
    a.errpath = errpath
    return a


def log_of(a):
    with open(a.errpath, errors="replace") as f:
        return f.read()


def info(exe, a):
    return json.loads(cli(exe, "info", "--control", ready(a)["control"],
                          "--json").stdout)


def main():
    exe = sys.argv[1]
    private_rundir()
    tmp = tempfile.mkdtemp()
    out = os.path.join(tmp, "runs")
    os.mkdir(out)

    # a bad EVENTS list or an empty COMMAND: refused at start
    for spec in ["jion=true", "join,=true", "=true", "update="]:
        r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0",
                            "--event-handler", spec], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 2 and "--event-handler" in r.stderr, (spec, r))
    print("bad --event-handler refused, exit 2")

    # the .env file appears whole (renamed into place), or not at all
    record = ('f=$(mktemp -p %s run.XXXXXX); cat > "$f.value"; '
              'env | grep ^SB_ | sort > "$f.part"; mv "$f.part" "$f.env"'
              % out)
    a = start(exe, [], [
        "--handler-timeout", "500",
        "--event-handler", "update,delete=" + record,
        "--event-handler", "join=echo handler-says-no >&2; exit 3",
        "--event-handler", "leave=sleep 1000",
        "--event-handler", "update=sleep 0.2",
        "--event-handler", "update=sleep 377.5 & echo started",
    ])
    b = Agent(exe, "127.0.0.1:0", [a.addr])
    # both ways: a write of b's before b knows a live is not pushed, and
    # the next exchange may carry it together with the writes after it
    a.wait(is_event("join", b.addr))
    b.wait(is_event("join", a.addr))
    bc = Control(ready(b)["control"])

    # the value on stdin byte for byte, the fields in the environment
    nasty = "$(touch %s/pwned) `id` ; rm -rf / * 'q' \"d\" \\ $HOME\nline2" % tmp
    check(bc.ask({"cmd": "set", "key": "k1", "value": nasty}) == {"ok": True})
    rawkey = base64.b64encode(b"\xff\xfekey").decode()
    check(bc.ask({"cmd": "set", "key_b64": rawkey, "value": "v"})
          == {"ok": True})
    check(bc.ask({"cmd": "del", "key": "k1"}) == {"ok": True})

    def runs():
        found = {}
        for name in os.listdir(out):
            if name.endswith(".env"):
                with open(os.path.join(out, name)) as f:
                    env = dict(l.rstrip("\n").split("=", 1) for l in f)
                stem = os.path.join(out, name[:-4])
                with open(stem + ".value", "rb") as f:
                    found[(env["SB_EVENT"], env.get("SB_KEY",
                           env.get("SB_KEY_B64")))] = (env, f.read())
        return found
    got = wait_until(lambda: (lambda r: r if len(r) >= 3 else None)(runs()),
                     "three handler runs")
    env, value = got[("update", "k1")]
    check(value == nasty.encode(), value)
    check(env["SB_PEER"] == b.addr and env["SB_STATUS"] == "live" and
          env["SB_SELF"] == a.addr and int(env["SB_TIME_MS"]) >= 0, env)
    env, value = got[("update", rawkey)]
    check("SB_KEY" not in env and env["SB_KEY_B64"] == rawkey and
          value == b"v", env)
    env, value = got[("delete", "k1")]
    check(value == b"", value)
    check(not os.path.exists(os.path.join(tmp, "pwned")))
    check(not any(e == "join" for e, _ in got), got)  # EVENTS filtered
    print("value on stdin, fields in the environment, no shell on values")

    # what a handler leaves running in its group ends with it
    def left_behind():
        for pid in filter(str.isdigit, os.listdir("/proc")):
            try:
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    if f.read() == b"sleep\x00377.5\x00":
                        return True
            except OSError:
                pass
        return False
    wait_until(lambda: info(exe, a)["event_handlers"][4]["runs"] >= 2,
               "the backgrounding handler ran")
    wait_until(lambda: not left_behind(), "its background process gone")
    print("a handler's background process ends with it")

    # a handler that fails: exit status and stderr logged, counted
    wait_until(lambda: "exit 3" in log_of(a), "failure logged")
    check("handler-says-no" in log_of(a), log_of(a))
    check(info(exe, a)["event_handlers"][1]["failures"] >= 1)
    print("a failing handler: exit status and stderr logged, counted")

    # a handler that hangs: killed after the timeout, counted
    c = Agent(exe, "127.0.0.1:0", [a.addr])
    a.wait(is_event("join", c.addr))
    c.proc.kill()
    c.proc.wait()
    a.wait(is_event("leave", c.addr, status="down"))
    wait_until(lambda: "killed after 500 ms" in log_of(a), "hung one killed")
    h = info(exe, a)["event_handlers"][2]
    check(h["timeouts"] == 1 and h["failures"] == 1 and h["runs"] == 1, h)
    print("a hung handler: killed after the timeout, counted")

    # a flood on a slow handler: dropped, counted, logged; gossip goes on
    for i in range(FLOOD):
        bc.send_raw(b'{"cmd":"set","key":"f%d","value":"%d"}\n' % (i, i))
    for i in range(FLOOD):
        check(bc.line() == {"ok": True})
    a.wait(is_event("update", b.addr, key="f%d" % (FLOOD - 1)))
    check(a.count(lambda e: e.get("event") == "update" and
                  e.get("key", "").startswith("f")) == FLOOD)
    slow = info(exe, a)["event_handlers"][3]
    check(slow["dropped"] > 0 and slow["queued"] <= 256 + 1, slow)  # + the running one
    check("queue full" in log_of(a), log_of(a))
    r = cli(exe, "get", "--control", ready(a)["control"], b.addr, "f0")
    check(r.returncode == 0 and r.stdout == "0\n", r)
    check(a.command("peers")["ok"])
    print("a flood: %d of %d dropped on the slow handler, counted and logged;"
          " every update reported" % (slow["dropped"], FLOOD))

    bc.close()
    for x in (a, b):
        x.proc.send_signal(signal.SIGTERM)
    for x in (a, b):
        check(x.proc.wait(timeout=60) == 0)
    print("SIGTERM: exit 0 with handlers running")


if __name__ == "__main__":
    main()
