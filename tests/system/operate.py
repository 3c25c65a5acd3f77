"""What the tests of the agent's operator faces share (agents_control,
agents_handlers, agents_http, agents_browser): a private directory for
control sockets, the agent's ready line, the client subcommands, a raw
control-socket connection, waiting for a condition."""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

from check import check

DEADLINE = 60.0  # seconds, only against hangs


def private_rundir():
    """Points XDG_RUNTIME_DIR (inherited by every agent and client this
    test starts) at a fresh directory, so that "the only agent of this
    user" means this test's, whatever runs beside it."""
    d = tempfile.mkdtemp(prefix="sb-run-")
    os.chmod(d, 0o700)
    os.environ["XDG_RUNTIME_DIR"] = d
    return d


def ready(agent):
    """The agent's ready line: addr, control, http."""
    return agent.wait(lambda e: e.get("event") == "ready")


def cli(exe, *args, stdin=None):
    """Runs `scuttlebutt ARGS...`; its CompletedProcess (text)."""
    return subprocess.run([exe] + [str(a) for a in args], input=stdin,
                          capture_output=True, text=True, timeout=DEADLINE)


def wait_until(pred, what):
    end = time.monotonic() + DEADLINE
    while True:
        v = pred()
        if v:
            return v
        check(time.monotonic() < end, "not within the deadline: " + what)
        time.sleep(0.05)


def debian_module(name):
    """Imports a module that Debian packages under dist-packages, even
    from a Python that does not look there (a pyenv one, say)."""
    import importlib
    try:
        return importlib.import_module(name)
    except ImportError:
        sys.path.append("/usr/lib/python3/dist-packages")
        return importlib.import_module(name)


class Control:
    """A raw connection to an agent's control socket."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(DEADLINE)
        self.sock.connect(path)
        self.buf = b""

    def send_raw(self, data):
        self.sock.sendall(data)

    def line(self):
        while b"\n" not in self.buf:
            try:
                got = self.sock.recv(65536)
            except ConnectionResetError:  # closed with our data unread
                got = b""
            if not got:
                return None
            self.buf += got
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, req):
        self.send_raw(json.dumps(req).encode() + b"\n")
        return self.line()

    def close(self):
        self.sock.close()
