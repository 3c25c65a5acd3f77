#!/usr/bin/env python3
"""The control socket and the client subcommands against running agents.

Three agents with their default control sockets (mode 0600 in a 0700
directory, named after the bound address): `members` (table, --json,
--status), `set`, `get`, `del`, `info`, `join` (a name resolved by the
client), `leave`, `monitor` (events
streamed; a monitor that disconnects leaves the agent serving), `keys`
on an agent with a key (install, use, remove, list; HEX from stdin);
bad requests on the raw socket answered with errors, the connection
kept; a last request without its newline answered; out of descriptors
(RLIMIT_NOFILE 16, more clients than it allows): no busy loop, gossip
and the clients already in served, new clients served once the others
go; a stdout no one reads (lines dropped and logged, the agent serves
and gossips on), or one that fails (said once); two clients at once;
several agents and no choice, or no agent at the path: exit 1 and one
line (for --agent, naming the agents that answer); a socket path taken
by a regular file or by a live agent: exit 2; a stale socket replaced;
--no-control, not with --control; the config file (every flag, flags
win, unknown keys and wrong types refused by name; one file); --help of
every subcommand; an agent that left says so. Behaviour is asserted;
deadlines only keep a broken build from hanging.

usage: agents_control.py PATH/TO/scuttlebutt
"""
import json
import os
import queue
import select
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

from agents import Agent, is_event
from check import check
from operate import Control, cli, private_rundir, ready, wait_until

# Execs its arguments with at most 16 descriptors (Agent's wrap).
NOFILE_16 = [sys.executable, "-c",
             "import os, resource, sys\n"
             "resource.setrlimit(resource.RLIMIT_NOFILE, (16, 16))\n"
             "os.execv(sys.argv[1], sys.argv[1:])"]


def cpu_seconds(pid):
    """utime + stime of a process, from /proc/PID/stat."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def idle_clients(exe, a, writer, path):
    """A full table of clients (two of them monitors) refuses a new one
    with an error reply; once the others have been idle for 10 s, a new
    one takes the place of one of them, and the monitors stay."""
    mons = [Control(path) for _ in range(2)]
    for m in mons:
        check(m.ask({"cmd": "monitor"}) == {"ok": True})
    idle = []
    for _ in range(62):  # one at a time: the listen backlog is short
        idle.append(Control(path))
        check(idle[-1].ask({"cmd": "peers"})["ok"] is True)
    for cl in idle:  # none idle for long, however slow the setup was
        check(cl.ask({"cmd": "peers"})["ok"] is True)
    full = Control(path)
    check(full.line() == {"ok": False, "error": "too many control clients"})
    full.close()
    for _ in range(2):  # the reply is read though the request was not
        r = cli(exe, "members", "--agent", a.addr)
        check(r.returncode == 3 and "too many" in r.stderr, r)
    time.sleep(10.5)  # the control socket's idle limit (control.h)
    # one idle client makes room for this one, whose room the next take
    for _ in range(3):
        r = cli(exe, "members", "--agent", a.addr, "--json")
        check(r.returncode == 0 and json.loads(r.stdout)["ok"] is True, r)
    check(cli(exe, "set", "--agent", writer.addr, "idlemon", "1")
          .returncode == 0)
    for m in mons:
        while True:
            e = m.line()
            check(e is not None, "a monitor was dropped")
            if e.get("key") == "idlemon":
                break
        m.close()
    # the dropped ones read as closed; the others have nothing to read
    ready_, _, _ = select.select([cl.sock for cl in idle], [], [], 1.0)
    check(len(ready_) == 1 and all(r.recv(1) == b"" for r in ready_),
          len(ready_))
    for cl in idle:
        cl.close()
    print("a full table of clients: one more refused; idle ones make room, "
          "monitors stay")


def out_of_descriptors(exe, seed):
    """An agent at its descriptor limit with clients queued: it does not
    spin, gossips, answers the clients it has, and takes new ones once
    descriptors free up."""
    f = Agent(exe, "127.0.0.1:0", [seed.addr], wrap=NOFILE_16)
    fpath = ready(f)["control"]
    seed.wait(is_event("join", f.addr))
    conns = []
    for _ in range(12):  # more than 16 descriptors leave room for
        conns.append(Control(fpath))
        conns[-1].send_raw(b'{"cmd":"peers"}\n')
    # those it took are answered; the rest wait in the listen queue
    answered = []
    for i, conn in enumerate(conns):
        # the first connected is the first taken: its reply is awaited
        conn.sock.settimeout(60 if i == 0 else 0.5)
        try:
            r = conn.line()
        except socket.timeout:
            continue
        check(r is not None and r["ok"] is True, r)
        answered.append(conn)
    check(0 < len(answered) < len(conns), len(answered))
    for conn in answered:
        conn.sock.settimeout(60)
    before = cpu_seconds(f.proc.pid)
    time.sleep(3)
    spent = cpu_seconds(f.proc.pid) - before
    check(spent < 0.5, "%.2f CPU seconds in 3 s at the descriptor limit"
          % spent)
    # meanwhile: a client already in is served, gossip goes on
    check(answered[0].ask({"cmd": "peers"})["ok"] is True)
    check(f.command("set starved yes") == {"ok": True})
    seed.wait(is_event("update", f.addr, key="starved", value="yes"))
    for conn in conns:
        conn.close()
    late = Control(fpath)
    r = late.ask({"cmd": "peers"})
    check(r is not None and r["ok"] is True, r)
    late.close()
    f.proc.terminate()
    check(f.proc.wait(timeout=60) == 0)
    print("out of descriptors: %d of %d clients taken, %.2f CPU s in 3 s; "
          "served again after" % (len(answered), len(conns), spent))


def stdout_unread(exe, seed):
    """An agent whose stdout no one reads: its lines (here, its answers to
    `info` on stdin, 2 KB each) wait, then are dropped and counted
    (logged once), and it gossips and answers its control socket
    meanwhile; its peers never hold it down."""
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "unread.sock")
    err = open(os.path.join(tmp, "stderr"), "w+")
    p = subprocess.Popen([exe, "agent", "--bind", "127.0.0.1:0",
                          "--interval", "100", "--seed", seed.addr,
                          "--control", path],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=err)
    addr = json.loads(p.stdout.readline())["addr"]
    seed.wait(is_event("join", addr))
    # from a thread: an agent that stopped reading its stdin would block
    # this write
    threading.Thread(target=lambda: (p.stdin.write(b"info\n" * 3000),
                                     p.stdin.flush()), daemon=True).start()

    def logged():
        err.seek(0)
        return "stdout: its reader does not keep up" in err.read()
    wait_until(logged, "lines dropped and logged")
    c = Control(path)
    c.sock.settimeout(10)  # answered at once, not when stdout is read
    check(c.ask({"cmd": "peers"})["ok"] is True)
    time.sleep(2)  # the agent must go on beating its monitors
    check(c.ask({"cmd": "set", "key": "still", "value": "here"})["ok"])
    seed.wait(is_event("update", addr, key="still", value="here"))
    check(seed.count(is_event("leave", addr)) == 0)
    c.close()
    p.terminate()
    p.stdout.close()  # what waits is dropped at exit: stdout is gone
    check(p.wait(timeout=60) == 0)
    print("stdout unread: lines dropped and logged; the agent answers and "
          "gossips")


def stdout_full(exe):
    """An agent whose stdout fails (a full device): said once on stderr,
    and the agent answers its control socket on."""
    tmp = tempfile.mkdtemp()
    path = os.path.join(tmp, "full.sock")
    with open("/dev/full", "w") as full:
        p = subprocess.Popen([exe, "agent", "--bind", "127.0.0.1:0",
                              "--control", path], stdin=subprocess.PIPE,
                             stdout=full, stderr=subprocess.PIPE, text=True)
    wait_until(lambda: os.path.exists(path), "the control socket")
    c = Control(path)
    c.sock.settimeout(10)
    check(c.ask({"cmd": "set", "key": "k", "value": "v"})["ok"] is True)
    c.close()
    p.terminate()
    err = p.communicate(timeout=60)[1]
    check(p.returncode == 0, err)
    check(err.count("stdout: No space left on device") == 1, err)
    print("stdout failing: said once, the agent answers on")


SUBCOMMANDS = ["members", "get", "set", "del", "keys", "join", "leave",
               "info", "monitor"]


def main():
    exe = sys.argv[1]
    rundir = private_rundir()
    tmp = tempfile.mkdtemp()

    # no agent at all: exit 1 and one line
    for args in (["members"], ["info", "--control", tmp + "/none.sock"],
                 ["get", "--agent", "127.0.0.1:1", "p", "k"]):
        r = cli(exe, *args)
        check(r.returncode == 1, (args, r))
        check(len(r.stderr.strip().splitlines()) == 1, (args, r.stderr))
    print("no agent: exit 1, one line")

    # --help of every subcommand; usage errors exit 2
    for sub in SUBCOMMANDS:
        r = cli(exe, sub, "--help")
        check(r.returncode == 0 and ("usage: scuttlebutt " + sub) in r.stdout,
              (sub, r))
    for args in (["get", "onlypeer"], ["set", "k"], ["del"], ["keys"],
                 ["keys", "frob", "x"], ["members", "--status", "dead"],
                 ["info", "extra"], ["members", "--control", "a",
                                     "--agent", "b:1"], ["leave", "--bogus"],
                 ["join"], ["join", "nohost"], ["join", "a:1", "b:2"],
                 ["join", "127.0.0.1:65537"], ["join", "127.0.0.1:0"],
                 ["join", "127.0.0.1:+1"], ["join", "::1:7946"],
                 ["join", "[::1]"], ["join", "localhost:"],
                 ["join", "[::1%1]:7946"], ["join", "[127.0.0.1]:7946"],
                 ["members", "--agent", "a:1", "--agent", "b:1"],
                 ["members", "--control", "a", "--control", "b"],
                 ["members", "--status", "live", "--status", "down"]):
        r = cli(exe, *args)
        check(r.returncode == 2, (args, r))
    print("--help of every subcommand; usage errors exit 2")

    a = Agent(exe, "127.0.0.1:0")
    ra = ready(a)
    path = ra["control"]
    check(path == os.path.join(rundir, "scuttlebutt", a.addr + ".sock"), ra)
    check(stat.S_IMODE(os.stat(path).st_mode) == 0o600, oct(os.stat(path).st_mode))
    check(stat.S_IMODE(os.stat(os.path.dirname(path)).st_mode) == 0o700)

    # the only agent of this user: found without --control
    r = cli(exe, "members")
    check(r.returncode == 0 and a.addr in r.stdout, r)
    print("control socket 0600 in a 0700 directory; the only agent found")

    b = Agent(exe, "127.0.0.1:0", [a.addr])
    c = Agent(exe, "127.0.0.1:0", [a.addr], sets=["role=db"])
    for x in (a, b, c):
        for y in (a, b, c):
            if x is not y:
                x.wait(is_event("join", y.addr))

    # several agents, no choice: exit 1, the error lists them
    r = cli(exe, "members")
    check(r.returncode == 1, r)
    check(all(x.addr in r.stderr for x in (a, b, c)), r.stderr)

    # --agent by a host name, not the bound address: exit 1, one line
    # naming the agents that answer
    r = cli(exe, "members", "--agent", "localhost:" + a.addr.split(":")[1])
    check(r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1, r)
    check(all(x.addr in r.stderr for x in (a, b, c)), r.stderr)

    # members: a table, JSON, a status filter
    r = cli(exe, "members", "--agent", a.addr)
    check(r.returncode == 0, r)
    lines = r.stdout.splitlines()
    check(lines[0].split() == ["ADDRESS", "STATUS", "AGE", "KEYS"], lines)
    rows = {l.split()[0]: l.split() for l in lines[1:]}
    check(set(rows) == {a.addr, b.addr, c.addr}, rows)
    check(all(row[1] == "live" for row in rows.values()), rows)
    check(rows[c.addr][3] == "1", rows)
    r = cli(exe, "members", "--control", path, "--json")
    m = json.loads(r.stdout)
    check(m["ok"] and len(m["members"]) == 3, m)
    check(sum(1 for x in m["members"] if x["self"]) == 1, m)
    check(not any(x["leaving"] for x in m["members"]), m)
    r = cli(exe, "members", "--agent", a.addr, "--status", "down")
    check(r.returncode == 0 and len(r.stdout.splitlines()) == 1, r)
    print("members: table, --json, --status")

    # set, get, del through the CLI; errors exit 3
    r = cli(exe, "set", "--agent", b.addr, "color", "blue green")
    check(r.returncode == 0 and r.stdout == "", r)
    a.wait(is_event("update", b.addr, key="color", value="blue green"))
    r = cli(exe, "get", "--agent", a.addr, b.addr, "color")
    check(r.returncode == 0 and r.stdout == "blue green\n", r)
    r = cli(exe, "set", "--agent", b.addr, "--", "dash", "-v")
    check(r.returncode == 0, r)
    a.wait(is_event("update", b.addr, key="dash", value="-v"))
    r = cli(exe, "del", "--agent", b.addr, "color")
    check(r.returncode == 0, r)
    a.wait(is_event("delete", b.addr, key="color"))
    r = cli(exe, "get", "--agent", a.addr, b.addr, "color")
    check(r.returncode == 3 and "enotfound" in r.stderr, r)
    r = cli(exe, "get", "--agent", a.addr, "--json", b.addr, "color")
    check(r.returncode == 3 and json.loads(r.stdout)["ok"] is False, r)
    r = cli(exe, "del", "--agent", b.addr, "never")
    check(r.returncode == 3, r)
    print("set, get, del; refusals exit 3")

    # info: version, config, counters
    r = cli(exe, "info", "--agent", a.addr, "--json")
    info = json.loads(r.stdout)
    check(info["ok"] and info["version"] and info["addr"] == a.addr, info)
    check(info["control"] == path and info["config"]["interval_ms"] == 100,
          info)
    check(info["stats"]["members"]["live"] == 3, info)
    check(info["leaving"] is False, info)
    # the cap as it applies: the default, or 24 datagrams if more
    check(info["config"]["bandwidth"] == 1048576, info)
    check(info["events"]["join"] >= 2 and info["stats"]["packets_in"] > 0,
          info)
    r = cli(exe, "info", "--agent", a.addr)
    check(r.returncode == 0 and "stats.packets_in: " in r.stdout and
          "config.interval_ms: 100" in r.stdout, r)
    print("info: version, config, counters")

    # monitor: events streamed; one that disconnects leaves the agent be
    mon = subprocess.Popen([exe, "monitor", "--agent", a.addr, "--json"],
                           stdout=subprocess.PIPE, text=True)
    check(json.loads(mon.stdout.readline()) == {"ok": True})
    wait_until(lambda: cli(exe, "info", "--agent", a.addr, "--json")
               .stdout.count('"control_clients":2') == 1, "monitor counted")
    check(cli(exe, "set", "--agent", c.addr, "watched", "yes").returncode == 0)
    while True:
        e = json.loads(mon.stdout.readline())
        if e.get("key") == "watched":
            check(e["event"] == "update" and e["peer"] == c.addr and
                  e["value"] == "yes", e)
            break
    # the readable form says nothing when it starts: set until it shows
    readable = subprocess.Popen([exe, "monitor", "--agent", a.addr],
                                stdout=subprocess.PIPE, text=True)
    shown = queue.Queue()
    threading.Thread(target=lambda: [shown.put(l) for l in readable.stdout],
                     daemon=True).start()
    n = 0

    def seen_again():
        nonlocal n
        n += 1
        check(cli(exe, "set", "--agent", c.addr, "watched", "again%d" % n)
              .returncode == 0)
        try:
            while True:
                if "watched=again" in shown.get(timeout=0.5):
                    return True
        except queue.Empty:
            return False
    wait_until(seen_again, "an event on the readable monitor")
    readable.send_signal(signal.SIGINT)
    check(readable.wait(timeout=30) == 0)
    mon.kill()  # disconnects without a word
    mon.wait()
    check(cli(exe, "set", "--agent", c.addr, "after", "monitor").returncode
          == 0)
    a.wait(is_event("update", c.addr, key="after"))
    wait_until(lambda: json.loads(cli(exe, "info", "--agent", a.addr,
                                      "--json").stdout)["control_clients"]
               == 1, "monitors gone")
    print("monitor: events streamed; disconnected monitors dropped")

    # the raw socket: bad requests get errors, the connection stays
    conn = Control(path)
    other = Control(path)  # two clients at once
    for bad in [b"not json", b"[1,2]", b'{"cmd":7}', b'{"cmd":"frob"}',
                b'{"cmd":"get","peer":"x"}', b'{"cmd":"set","key":"k",'
                b'"value":"v","extra":1}', b'{"cmd":"del","key":5}',
                b'{"cmd":"set","key_b64":"***"}', b'{"cmd":"monitor","x":1}',
                b'{"cmd":"key","op":"install","key":"zz"}',
                # an unknown field named in the error, cut at 64 bytes
                # but not in the middle of a character
                ('{"cmd":"set","%s\u00e9":1}' % ("a" * 63)).encode()]:
        conn.send_raw(bad + b"\n")
        r = conn.line()
        check(r["ok"] is False and r["error"], (bad, r))
    check(other.ask({"cmd": "peers"})["ok"] is True)
    # ... saying what was wrong where the text alone would not
    for bad, said in [(b'{"cmd":"set","key_b64":"***","value":"v"}',
                       "key_b64: not a string of base64"),
                      (b'{"cmd":"del","key":5}', "key: not a string"),
                      (b'{"cmd":"set","key":"a","key_b64":"YQ==",'
                       b'"value":"v"}', "key and key_b64: one or the other"),
                      (b'{"cmd":"set","key":"a\\u0000b","value":"v"}',
                       "give such bytes as key_b64")]:
        conn.send_raw(bad + b"\n")
        r = conn.line()
        check(r["ok"] is False and said in r["error"], (bad, r))
    r = conn.ask({"cmd": "set", "key": "bin", "value_b64": "//5vaw=="})
    check(r == {"ok": True}, r)
    b.wait(is_event("update", a.addr, key="bin", value_b64="//5vaw=="))
    r = other.ask({"cmd": "get", "peer": a.addr, "key": "bin"})
    check(r == {"ok": True, "value_b64": "//5vaw=="}, r)
    # requests in one write, replies in order
    conn.send_raw(b'{"cmd":"set","key":"one","value":"1"}\n'
                  b'{"cmd":"get","peer":"%s","key":"one"}\n' % a.addr.encode())
    check(conn.line() == {"ok": True})
    check(conn.line() == {"ok": True, "value": "1"})
    # a line longer than a request may be: an error, then closed
    huge = Control(path)
    try:
        huge.send_raw(b'{"cmd":"set","key":"k","value":"' + b"x" * (1 << 21))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the agent closed the connection while it was being sent
    r = huge.line()
    check(r["ok"] is False and "too long" in r["error"], r)
    check(huge.line() is None)
    # a last request without its newline, then EOF: answered, closed
    last = Control(path)
    last.send_raw(b'{"cmd":"peers"}')
    last.sock.shutdown(socket.SHUT_WR)
    r = last.line()
    check(r is not None and r["ok"] is True, r)
    check(last.line() is None)
    last.close()
    # ... and "monitor" so sent streams events until the client goes
    mon = Control(path)
    mon.send_raw(b'{"cmd":"monitor"}')
    mon.sock.shutdown(socket.SHUT_WR)
    check(mon.line() == {"ok": True})
    check(cli(exe, "set", "--agent", c.addr, "eofmon", "1").returncode == 0)
    while True:
        e = mon.line()
        check(e is not None, "monitor closed")
        if e.get("key") == "eofmon":
            break
    mon.close()
    conn.close()
    other.close()
    print("raw socket: bad requests answered, two clients, binary values, "
          "a last line without a newline")

    # two CLIs at once
    procs = [subprocess.Popen([exe, "members", "--agent", a.addr, "--json"],
                              stdout=subprocess.PIPE, text=True)
             for _ in range(2)]
    for p in procs:
        out, _ = p.communicate(timeout=60)
        check(p.returncode == 0 and len(json.loads(out)["members"]) == 3)
    print("two CLIs at once")

    out_of_descriptors(exe, a)
    idle_clients(exe, a, c, path)

    # a socket path taken: a regular file, a live agent's socket: exit 2
    taken = os.path.join(tmp, "file.sock")
    open(taken, "w").close()
    for where in (taken, path):
        r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0",
                            "--control", where], capture_output=True,
                           text=True, timeout=60)
        check(r.returncode == 2 and where in r.stderr, (where, r))
    check(os.path.isfile(taken) and stat.S_ISSOCK(os.stat(path).st_mode))
    print("a path taken by a file or a live agent: exit 2, left alone")

    # --control and --no-control together, two --config: exit 2, named
    for args, said in ((["--control", taken, "--no-control"],
                        "--control and --no-control"),
                       (["--no-control", "--control", taken],
                        "--control and --no-control"),
                       (["--config", "a.json", "--config", "b.json"],
                        "--config")):
        r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0"] + args,
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and said in r.stderr, (args, r))

    # a stale socket (its agent killed) is replaced
    own = os.path.join(tmp, "sub", "own.sock")
    d = Agent(exe, "127.0.0.1:0", [a.addr], extra=["--control", own])
    check(ready(d)["control"] == own)
    check(stat.S_IMODE(os.stat(os.path.dirname(own)).st_mode) == 0o700)
    d.proc.kill()
    d.proc.wait()
    check(stat.S_ISSOCK(os.stat(own).st_mode))
    d = Agent(exe, "127.0.0.1:0", [a.addr], extra=["--control", own])
    check(cli(exe, "info", "--control", own).returncode == 0)
    d.proc.terminate()
    check(d.proc.wait(timeout=60) == 0 and not os.path.exists(own))
    print("stale socket replaced; removed at exit")

    # --no-control
    e = Agent(exe, "127.0.0.1:0", extra=["--no-control"])
    check("control" not in ready(e), ready(e))
    check(not os.path.exists(os.path.join(rundir, "scuttlebutt",
                                          e.addr + ".sock")))
    e.proc.terminate()
    e.proc.wait(timeout=60)

    # the config file: every flag; flags win; refusals name the key
    conf = os.path.join(tmp, "agent.json")
    with open(conf, "w") as f:
        json.dump({"bind": "127.0.0.1:0", "seed": [a.addr], "interval": 50,
                   "threshold": 9.5, "set": ["from=file"], "cluster":
                   "default", "log-level": "warn", "max-message-size": 600,
                   "bandwidth": 50000, "control": os.path.join(tmp, "conf.sock"),
                   "event-handler": ["join=true"], "handler-timeout": 1000},
                  f)
    args = [exe, "agent", "--config", conf, "--interval", "100",
            "--set", "from=flag"]
    g = Agent.__new__(Agent)
    g._start(args)
    info = json.loads(cli(exe, "info", "--control", ready(g)["control"],
                          "--json").stdout)
    cfg = info["config"]
    check(cfg["bandwidth"] == 50000, cfg)
    check(cfg["interval_ms"] == 100 and cfg["threshold"] == 9.5 and
          cfg["max_message_size"] == 600 and cfg["seeds"] == [a.addr] and
          cfg["handler_timeout_ms"] == 1000 and
          cfg["event_handlers"] == [{"events": ["join"], "command": "true"}],
          cfg)
    a.wait(is_event("update", g.addr, key="from", value="flag"))
    check(cli(exe, "get", "--agent", a.addr, g.addr, "from").stdout ==
          "flag\n")
    g.proc.terminate()
    g.proc.wait(timeout=60)
    for doc, key in [({"bind": "127.0.0.1:0", "bogus": 1}, "bogus"),
                     ({"bind": "127.0.0.1:0", "interval": "100"}, "interval"),
                     ({"bind": "127.0.0.1:0", "seed": "x:1"}, "seed"),
                     ({"bind": "127.0.0.1:0", "interval": 0}, "interval"),
                     ({"bind": 7}, "bind"),
                     ({"bind": "127.0.0.1:0", "no-control": 1}, "no-control"),
                     ({"bind": "127.0.0.1:0", "control": conf + ".sock",
                       "no-control": True}, "no-control"),
                     ({"bind": "127.0.0.1:0", "event-handler": ["jion=x"]},
                      "event-handler")]:
        with open(conf, "w") as f:
            json.dump(doc, f)
        r = subprocess.run([exe, "agent", "--config", conf],
                           capture_output=True, text=True, timeout=60)
        check(r.returncode == 2 and '"%s"' % key in r.stderr, (doc, r))
    with open(conf, "w") as f:
        f.write("{not json")
    r = subprocess.run([exe, "agent", "--config", conf], capture_output=True,
                       text=True, timeout=60)
    check(r.returncode == 2 and conf in r.stderr, r)
    print("config file: settings taken, flags win, refusals name the key")

    # keys: install, use, remove, list on an agent with a key
    k1, k2 = os.urandom(32).hex(), os.urandom(32).hex()
    kf = os.path.join(tmp, "k1")
    with open(kf, "w") as f:
        f.write(k1)
    h = Agent(exe, "127.0.0.1:0", extra=["--key-file", kf])
    hp = ready(h)["control"]
    r = cli(exe, "keys", "list", "--control", hp)
    check(r.returncode == 0 and r.stdout == k1 + "  primary\n", r)
    check(cli(exe, "keys", "install", "--control", hp, "-",
              stdin=k2 + "\n").returncode == 0)
    check(cli(exe, "keys", "use", "--control", hp, k2).returncode == 0)
    r = cli(exe, "keys", "remove", "--control", hp, k2)
    check(r.returncode == 3 and "estate" in r.stderr and
          "key use" in r.stderr, r)  # the primary: says what to do
    r = cli(exe, "keys", "use", "--control", hp, os.urandom(32).hex())
    check(r.returncode == 3 and "enotfound" in r.stderr and
          "no such key" in r.stderr, r)
    r = cli(exe, "keys", "install", "--control", hp, "00" * 32)
    check(r.returncode == 3 and "einval" in r.stderr and
          "zero" in r.stderr, r)
    check(cli(exe, "keys", "remove", "--control", hp, k1).returncode == 0)
    r = json.loads(cli(exe, "keys", "list", "--control", hp, "--json").stdout)
    check(r == {"ok": True, "keys": [{"key": k2, "primary": True}]}, r)
    info = cli(exe, "info", "--control", hp, "--json").stdout
    check(k2 not in info and json.loads(info)["config"]["keys"] == 1, info)
    for op in (["list"], ["install", k1], ["use", k1], ["remove", k1]):
        r = cli(exe, "keys", *op, "--agent", a.addr)  # plaintext agent
        check(r.returncode == 3 and "estate" in r.stderr and
              "without --key-file" in r.stderr, (op, r))
    h.proc.terminate()
    h.proc.wait(timeout=60)
    print("keys: install (from stdin), use, remove, list")

    # join through the CLI: an agent with no seeds meets a's cluster, by
    # a name the client resolves; its own address, a name that does not
    # resolve, and the stdin command with a name are refused
    j = Agent(exe, "127.0.0.1:0")
    ready(j)
    # a list with one address refused starts no join, not even of the
    # good one before it (which would answer within the interval)
    reply = j.command("join " + a.addr + ",localhost:1")
    check(reply["ok"] is False and "by number" in reply["error"], reply)
    time.sleep(1.5)
    peers = j.command("peers")
    check(peers["ok"] and peers["peers"] == [], peers)
    r = cli(exe, "join", "--agent", j.addr,
            "localhost:" + a.addr.rsplit(":", 1)[1])
    check(r.returncode == 0 and r.stdout == "", r)
    a.wait(is_event("join", j.addr))
    j.wait(is_event("join", a.addr))
    r = cli(exe, "join", "--agent", j.addr, j.addr)
    check(r.returncode == 3 and "eaddr" in r.stderr, r)
    r = cli(exe, "join", "--agent", j.addr, "no-such-host.invalid:1")
    check(r.returncode == 2 and "no-such-host.invalid" in r.stderr, r)
    reply = j.command("join localhost:1")
    check(reply["ok"] is False and "by number" in reply["error"], reply)
    j.proc.terminate()
    j.proc.wait(timeout=60)
    print("join: by name, from the client; errors said")

    # leave through the CLI: reported left, the agent keeps serving
    check(cli(exe, "leave", "--agent", c.addr).returncode == 0)
    a.wait(is_event("leave", c.addr, status="left"))
    r = cli(exe, "leave", "--agent", c.addr)
    check(r.returncode == 3 and "eleft" in r.stderr, r)
    r = cli(exe, "members", "--agent", a.addr, "--status", "left")
    check(c.addr in r.stdout, r)
    # the agent that left says so of itself: members, the table, info
    m = json.loads(cli(exe, "members", "--agent", c.addr, "--json").stdout)
    check([x["leaving"] for x in m["members"] if x["self"]] == [True], m)
    r = cli(exe, "members", "--agent", c.addr)
    check("(this agent, leaving)" in r.stdout, r)
    info = json.loads(cli(exe, "info", "--agent", c.addr, "--json").stdout)
    check(info["leaving"] is True, info)
    print("leave: reported left, the agent still answers and says it left")

    stdout_unread(exe, a)
    stdout_full(exe)

    for x in (a, b, c):
        x.proc.send_signal(signal.SIGTERM)
    for x in (a, b, c):
        check(x.proc.wait(timeout=60) == 0)
    check(not os.path.exists(path))
    print("SIGTERM: exit 0, sockets removed")


if __name__ == "__main__":
    main()
