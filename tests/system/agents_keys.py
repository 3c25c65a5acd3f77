#!/usr/bin/env python3
"""Cluster keys through `scuttlebutt agent`.

Key files in hex and raw are read, bad ones refused at start (exit 2),
a line of text of 32 bytes among them; one that every user can read is
reported on stderr;
agents with one key see each other, and neither an agent with another key
nor a plaintext one gets in; the first two rotate to the second key with
`key install`, `key use`, `key remove` on stdin, after which the agent
holding only that key joins them and their keys reach it; bad key
commands get error replies. Events are asserted; the deadlines only keep
a broken build from hanging, and "does not join" is checked after 3 s
(30 gossip intervals).

usage: agents_keys.py PATH/TO/scuttlebutt
"""
import os
import subprocess
import sys
import tempfile
import time

from agents import Agent, is_event
from check import check


def main():
    exe = sys.argv[1]
    tmp = tempfile.mkdtemp()
    k1 = os.urandom(32)
    k2 = os.urandom(32)
    files = {
        "k1": k1.hex() + "\n",           # hex, with a newline
        "k2": k2,                        # raw
        "short": os.urandom(31),
        "nothex": "z" * 64,
        "long": k1.hex() + "0",
        "empty": b"",
        "text32": "0123456789abcdef0123456789abcdef",  # half a hex key
        # a password written with echo: 31 characters and a newline (it
        # was taken as 32 raw key bytes), or with a Windows line end
        "line32": "correct-horse-battery-staple-31\n",
        "crlf32": "correct-horse-battery-stapl-30\r\n",
        "padded": k1.hex() + " " * 300 + "x",
        # a file never filled, raw or in hex: a key anyone can guess
        "zero": bytes(32),
        "zerohex": "0" * 64 + "\n",
    }
    for name, data in files.items():
        if isinstance(data, str):  # as written: no newline translation
            data = data.encode()
        with open(os.path.join(tmp, name), "wb") as f:
            f.write(data)
    check(len(files["line32"]) == 32 and len(files["crlf32"]) == 32)
    path = lambda name: os.path.join(tmp, name)

    # bad key files: a clear error at start, exit 2
    for bad in ["short", "nothex", "long", "empty", "missing", "text32",
                "line32", "crlf32", "padded", "zero", "zerohex"]:
        r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0",
                            "--key-file", path(bad)], capture_output=True,
                           text=True, timeout=30)
        check(r.returncode == 2, (bad, r.returncode))
        check(path(bad) in r.stderr, (bad, r.stderr))
    # the same key twice (a keyring holds each once)
    r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0", "--key-file",
                        path("k1"), "--key-file", path("k2"), "--key-file",
                        path("k1")], capture_output=True, text=True,
                       timeout=30)
    check(r.returncode == 2 and "the same key" in r.stderr, r)
    print("bad key files refused with exit 2, and the same key twice")

    # a key file every user can read: said on stderr, naming the file
    # (the agent took it without a word); one of its owner's: nothing
    for mode, warned in [(0o644, True), (0o600, False)]:
        os.chmod(path("k1"), mode)
        r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0",
                            "--no-control", "--key-file", path("k1")],
                           input="quit\n", capture_output=True, text=True,
                           timeout=30)
        check(r.returncode == 0, (oct(mode), r))
        said = path("k1") in r.stderr and "every user can read" in r.stderr
        check(said == warned, (oct(mode), r.stderr))
    print("a key file every user can read is reported")

    a = Agent(exe, "127.0.0.1:0", extra=["--key-file", path("k1")])
    b = Agent(exe, "127.0.0.1:0", [a.addr], extra=["--key-file", path("k1")])
    a.wait(is_event("join", b.addr))
    b.wait(is_event("join", a.addr))
    print("two agents with one key see each other")

    c = Agent(exe, "127.0.0.1:0", [a.addr], ["from=c"],
              extra=["--key-file", path("k2")])
    d = Agent(exe, "127.0.0.1:0", [a.addr], ["from=d"])
    time.sleep(3.0)
    for x in (a, b):
        for y in (c, d):
            check(x.count(is_event("join", y.addr)) == 0, (x.addr, y.addr))
    check(c.count(lambda e: e.get("event") == "join") == 0)
    check(d.count(lambda e: e.get("event") == "join") == 0)
    print("another key and no key stay out")

    # bad key commands
    for bad in ["key", "key install", "key install zz",
                "key install " + k2.hex() + "00", "key rotate " + k2.hex(),
                "key install " + "0" * 64,
                "key use " + k2.hex(), "key remove " + k1.hex()]:
        r = a.command(bad)
        check(r["ok"] is False and r["error"], (bad, r))
    r = d.command("key install " + k2.hex())  # a plaintext agent
    check(r["ok"] is False, r)
    print("bad key commands refused")

    # rotation on a and b: install, use, remove; then c gets in
    for step in ["key install " + k2.hex(), "key use " + k2.hex(),
                 "key remove " + k1.hex()]:
        for x in (a, b):
            check(x.command(step) == {"ok": True}, (step, x.addr))
    check(a.command("set after rotation") == {"ok": True})
    for x in (a, b):
        x.wait(is_event("join", c.addr))
        x.wait(is_event("update", c.addr, key="from", value="c"))
        c.wait(is_event("join", x.addr))
    c.wait(is_event("update", a.addr, key="after", value="rotation"))
    check(a.count(is_event("join", d.addr)) == 0)
    print("rotated to the new key: its holder joined, keys flow")

    for x in (a, b, c, d):
        x.command("quit")
        check(x.proc.wait(timeout=30) == 0)
    print("ok")


if __name__ == "__main__":
    main()
