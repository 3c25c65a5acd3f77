#!/usr/bin/env python3
"""The client subcommands against what answers that they must not trust.

Malformed replies from a fake agent (a string where an array was due, a
member without an address, an "ok" that is no boolean, junk, a bad
event on `monitor`, ...): exit 1 and "malformed" said, no crash; a
well-formed reply from it still printed; a listener that never answers
given up on (exit 1). The default directory: the
user's own 0700 one is looked into (a key reaches the fake agent), one
open to the group, or a symlink, is refused with exit 1 before any
connection. As root only (else exit 77 after the rest, the reason
printed): a directory of nobody's, mode 0777, with a listener of
nobody's in it, refused by default, with --agent, and with --control
(the listener runs as another uid): exit 1 and nothing sent, while the
listener is shown to record what does reach it.

usage: agents_client.py PATH/TO/scuttlebutt
"""
import base64
import json
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading

from check import check
from operate import DEADLINE, cli, wait_until


class FakeAgent:
    """A process that is no agent, listening at path: to every request
    line it answers `lines` as they are, then closes; `got` holds the
    requests."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(path)
        self.sock.listen()
        self.lines = []
        self.got = []
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.settimeout(DEADLINE)
                data = b""
                try:
                    while b"\n" not in data:
                        got = conn.recv(65536)
                        if not got:
                            break
                        data += got
                    self.got.append(data)
                    conn.sendall(b"".join(line.encode() + b"\n"
                                          for line in self.lines))
                except OSError:
                    pass


# Malformed replies to one subcommand each; every one is answered by
# exit 1 and "malformed".
MALFORMED = [
    (["members"], ['{"ok":true,"members":[1]}']),
    (["members"], ['{"ok":true,"members":[{"addr":1,"status":"live",'
                   '"age_ms":1,"keys":0}]}']),
    (["members"], ['{"ok":true,"members":[{"addr":"a:1","status":"live",'
                   '"age_ms":1,"keys":0},{"addr":"b:1"}]}']),
    (["members"], ['{"ok":true,"members":[{"addr":"a:1","status":"live",'
                   '"age_ms":"1","keys":0,"self":1}]}']),
    (["members"], ['{"ok":true,"members":{}}']),
    (["members"], ['{"ok":true}']),
    (["members"], ['[1]']),
    (["members"], ['not json']),
    (["members"], ['{"ok":1}']),
    (["members"], ['{"members":[]}']),
    (["set", "k", "v"], ['{"ok":false,"error":5}']),
    (["set", "k", "v"], ['{"ok":false}']),
    (["get", "p", "k"], ['{"ok":true}']),
    (["get", "p", "k"], ['{"ok":true,"value":5}']),
    (["get", "p", "k"], ['{"ok":true,"value_b64":"!!"}']),
    (["keys", "list"], ['{"ok":true,"keys":[{"key":5}]}']),
    (["keys", "list"], ['{"ok":true,"keys":[1]}']),
    (["keys", "list"], ['{"ok":true,"keys":"x"}']),
    (["monitor"], ['{"ok":true}', '{"event":"join","peer":5,"time_ms":1}']),
    (["monitor"], ['{"ok":true}', '{"event":"leave","peer":"a:1",'
                   '"time_ms":1}']),
    (["monitor"], ['{"ok":true}', '{"event":"join","peer":"a:1"}']),
    (["monitor"], ['{"ok":true}', '{"event":"update","peer":"a:1",'
                   '"time_ms":1,"value_b64":"!!"}']),
    (["monitor"], ['{"ok":true}', 'junk']),
]

# Well-formed ones, printed: exit 0 and this on stdout.
WELLFORMED = [
    (["members"], ['{"ok":true,"members":[{"addr":"b:1","status":"down",'
                   '"age_ms":5000,"keys":0},{"addr":"a:1","status":"live",'
                   '"age_ms":1,"keys":2,"self":true}]}'], "(this agent)"),
    (["get", "p", "k"], ['{"ok":true,"value_b64":"aGk="}'], "hi\n"),
    (["keys", "list"], ['{"ok":true,"keys":[{"key":"ab","primary":true}]}'],
     "ab  primary"),
    (["info"], ['{"ok":true,"x":[1,{"y":null}],"z":"w"}'], "x.1.y: null"),
    (["members", "--json"], ['{"ok":true,"members":[1]}'], '"members":[1]'),
]


def malformed(exe, tmp):
    path = os.path.join(tmp, "fake.sock")
    fake = FakeAgent(path)
    for args, lines in MALFORMED:
        fake.lines = lines
        n = len(fake.got)
        r = cli(exe, *args, "--control", path)
        check(r.returncode == 1, (args, lines, r.returncode, r.stderr))
        check("malformed" in r.stderr, (args, lines, r.stderr))
        check(len(fake.got) == n + 1, (args, "the request did not reach"))
    print("malformed replies: exit 1, no crash (%d cases)" % len(MALFORMED))
    for args, lines, out in WELLFORMED:
        fake.lines = lines
        r = cli(exe, *args, "--control", path)
        check(r.returncode == 0, (args, r.returncode, r.stderr))
        check(out in r.stdout, (args, r.stdout))
    print("well-formed replies from the fake agent printed")
    # members sorted as numbers: IPv4 first, then IPv6, then the port
    fake.lines = ['{"ok":true,"members":[%s]}' % ",".join(
        '{"addr":"%s","status":"live","age_ms":1,"keys":0}' % addr
        for addr in ["[::1]:5", "10.0.0.10:1", "10.0.0.9:80", "[::]:7",
                     "10.0.0.9:1"])]
    r = cli(exe, "members", "--control", path)
    rows = [line.split()[0] for line in r.stdout.splitlines()[1:]]
    check(rows == ["10.0.0.9:1", "10.0.0.9:80", "10.0.0.10:1", "[::]:7",
                   "[::1]:5"], rows)
    print("members sorted by address as numbers")
    # monitor: a key or value a peer wrote cannot forge an event line or
    # reach the terminal as an escape sequence
    fake.lines = ['{"ok":true}',
                  '{"event":"update","peer":"a:1","time_ms":1,'
                  '"key":"k\\n  9.999  leave   b:1  (down)",'
                  '"value":"\\u001b[31mred\\\\\\u0085\\u00e9"}',
                  '{"event":"update","peer":"a:1","time_ms":2,"key":"k",'
                  '"value_b64":"%s"}' % base64.b64encode(b"\xff\x1b\x7f").decode(),
                  # a "value" that is no string: the bytes are value_b64's
                  '{"event":"update","peer":"a:1","time_ms":3,"key":"k",'
                  '"value":0,"value_b64":"%s"}' % base64.b64encode(b"\x9b2J").decode()]
    r = cli(exe, "monitor", "--control", path)
    check(r.returncode == 1 and "closed the connection" in r.stderr, r)
    check(r.stdout == "   0.001  update  a:1  k\\n  9.999  leave   b:1  (down)"
                      "=\\x1b[31mred\\\\\\u0085\u00e9\n"
                      "   0.002  update  a:1  k=\\xff\\x1b\\x7f\n"
                      "   0.003  update  a:1  k=\\x9b2J\n", r.stdout)
    print("monitor: control characters in keys and values escaped")

    # a listener that never answers: the client gives up (10 s), exit 1
    mute_path = path + ".mute"
    mute = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    mute.bind(mute_path)
    mute.listen()
    held = []
    threading.Thread(target=lambda: held.append(mute.accept()),
                     daemon=True).start()
    r = cli(exe, "members", "--control", mute_path)
    check(r.returncode == 1 and "no reply" in r.stderr, r)
    print("an agent that never answers: exit 1 after the wait")


def rundir(exe, tmp):
    """The default directory of this user's: looked into when 0700, not
    when open to the group or a symlink."""
    xdg = os.path.join(tmp, "xdg")
    own = os.path.join(xdg, "scuttlebutt")
    os.makedirs(own, mode=0o700)
    os.chmod(own, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = xdg
    fake = FakeAgent(os.path.join(own, "127.0.0.1:7001.sock"))
    fake.lines = ['{"ok":true}']
    key = os.urandom(32).hex()
    for extra in [[], ["--agent", "127.0.0.1:7001"]]:
        r = cli(exe, "keys", "install", "-", *extra, stdin=key + "\n")
        check(r.returncode == 0, (extra, r.returncode, r.stderr))
        check(key in json.loads(fake.got[-1])["key"], fake.got[-1])
    print("a 0700 default directory of this user's is looked into")

    n = len(fake.got)
    os.chmod(own, 0o750)
    for extra in [[], ["--agent", "127.0.0.1:7001"]]:
        r = cli(exe, "keys", "install", "-", *extra, stdin=key + "\n")
        check(r.returncode == 1, (extra, r.returncode, r.stderr))
        check(own in r.stderr and "not looking" in r.stderr, r.stderr)
    os.chmod(own, 0o700)
    link = os.path.join(tmp, "xdg-link")
    os.makedirs(link, mode=0o700)
    os.symlink(own, os.path.join(link, "scuttlebutt"))
    os.environ["XDG_RUNTIME_DIR"] = link
    r = cli(exe, "members")
    check(r.returncode == 1 and "not looking" in r.stderr, r.stderr)
    check(len(fake.got) == n, "a refused directory was looked into")
    print("a default directory open to the group, or a symlink: refused")


LISTENER = r'''
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(sys.argv[1])
s.listen()
while True:
    c, _ = s.accept()
    c.settimeout(10)
    data = b""
    try:
        while b"\n" not in data:
            got = c.recv(65536)
            if not got:
                break
            data += got
        print(data.hex(), flush=True)  # before the reply: seen once it is
        c.sendall(b'{"ok":true}\n')
    except OSError:
        print(data.hex(), flush=True)
    c.close()
'''


def nobody():
    try:
        pw = pwd.getpwnam("nobody")
        return pw.pw_uid, pw.pw_gid
    except KeyError:
        return 65534, 65534


def as_nobody(argv, **kw):
    uid, gid = nobody()
    return subprocess.Popen(argv, user=uid, group=gid, extra_groups=[], **kw)


def python_for_nobody():
    """An interpreter nobody may run (a pyenv one under /root may not
    be); None if there is none."""
    for exe in [sys.executable, "/usr/bin/python3", shutil.which("python3")]:
        if not exe:
            continue
        try:
            p = as_nobody([exe, "-c", "pass"], stderr=subprocess.DEVNULL)
            if p.wait(timeout=DEADLINE) == 0:
                return exe
        except OSError:
            pass
    return None


def untrusted(exe, tmp, python):
    """A directory and a listener of nobody's: nothing sent to it."""
    uid, _ = nobody()
    xdg = os.path.join(tmp, "xdg-nobody")
    bad = os.path.join(xdg, "scuttlebutt")
    os.makedirs(bad)
    for d in (tmp, xdg):
        os.chmod(d, 0o755)
    os.chown(bad, uid, -1)
    os.chmod(bad, 0o777)
    path = os.path.join(bad, "127.0.0.1:7001.sock")
    listener = as_nobody([python, "-c", LISTENER, path],
                         stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: os.path.exists(path), "the listener's socket")
        check(os.stat(path).st_uid == uid)
        os.environ["XDG_RUNTIME_DIR"] = xdg
        key = os.urandom(32).hex()
        for extra, says in [([], "not looking"),
                            (["--agent", "127.0.0.1:7001"], "not looking"),
                            (["--control", path], "runs as uid %d" % uid)]:
            for args in (["keys", "install", "-"], ["members"]):
                r = cli(exe, *args, *extra, stdin=key + "\n")
                check(r.returncode == 1, (args, extra, r.returncode,
                                          r.stderr))
                check(says in r.stderr, (args, extra, r.stderr))
        # the listener does record what reaches it
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(DEADLINE)
        probe.connect(path)
        probe.sendall(b"probe\n")
        probe.recv(100)
        probe.close()
    finally:
        listener.kill()
    out = listener.communicate(timeout=DEADLINE)[0].split()
    got = [bytes.fromhex(x) for x in out]
    check(b"probe\n" in got, got)
    check(not any(key.encode() in g or b"cmd" in g for g in got), got)
    print("a directory and a listener of nobody's: refused, nothing sent")


def main():
    exe = sys.argv[1]
    tmp = tempfile.mkdtemp(prefix="sb-client-")
    malformed(exe, tmp)
    rundir(exe, tmp)
    if os.geteuid() != 0:
        print("skipped: a directory and a listener of another user's need "
              "root (chown, another uid)")
        sys.exit(77)
    python = python_for_nobody()
    if not python:
        print("skipped: no Python that nobody may run")
        sys.exit(77)
    untrusted(exe, tmp, python)
    print("ok")


if __name__ == "__main__":
    main()
