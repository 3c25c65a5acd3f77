#!/usr/bin/env python3
"""Reflection through a cluster of three `scuttlebutt agent` processes.

A third party (a UDP socket of this test, which never answers) must get
nothing from the cluster when a stranger names its address: an ACK2 from
the stranger with a guessed echo is dropped (unsolicited); after a real
SYN, ACK and ACK2 from the stranger (who then holds the echo), the
third party is hearsay; a SYN with the third party's address as its
source gets at most one reply no larger than itself. The test counts
what reaches the third party in 10 s (100 gossip intervals) and asserts
that no agent lists it, and that the agent's `stats` command counts
the first step as unsolicited and the second as hearsay. `--log-level`
takes the four level names and refuses others.

usage: agents_reflection.py PATH/TO/scuttlebutt
"""
import os
import socket
import struct
import subprocess
import sys
import time

from agents import Agent, is_event
from check import check

VERSION = 8
SYN, ACK, ACK2 = 1, 2, 3
PADDED = 0x02


def fnv1a32(s):
    h = 0x811c9dc5
    for b in s.encode():
        h = ((h ^ b) * 0x01000193) & 0xffffffff
    return h


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append(v & 0x7f | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def header(kind):
    return b"SB" + bytes([VERSION, kind]) + struct.pack(">I",
                                                        fnv1a32("default"))


def padded_syn(size=200):
    """A SYN that lists nobody, padded so that the ACK has room."""
    m = (header(SYN) + struct.pack(">Q", 0x1234) + bytes([PADDED]) +
         struct.pack(">Q", 0) + varint(0))  # summary 0: ours differs
    return m + bytes(size - len(m))


def ack2_naming(echo, addr):
    """An ACK2 whose one delta says `addr` is a member with a key."""
    a = addr.encode()
    key, value = b"k", b"forged"
    delta = (bytes([len(a)]) + a + varint(1) + varint(5 << 2) + b"\0" +
             varint(0) + varint(1) + varint(0) + varint(1) +
             bytes([len(key)]) + key + varint(1) + b"\0" +
             varint(len(value)) + value)
    return header(ACK2) + struct.pack(">Q", echo) + varint(1) + delta


def udp(port=0):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", port))
    return s


def addr_of(s):
    return "%s:%d" % s.getsockname()


def hostport(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    exe = sys.argv[1]
    r = subprocess.run([exe, "agent", "--bind", "127.0.0.1:0",
                        "--log-level", "loud"], capture_output=True,
                       text=True, timeout=30)
    check(r.returncode == 2 and "--log-level" in r.stderr, r)
    quiet = ["--log-level", "error"]
    agents = [Agent(exe, "127.0.0.1:0", extra=quiet)]
    for _ in range(2):
        agents.append(Agent(exe, "127.0.0.1:0", [agents[0].addr],
                            extra=quiet))
    for a in agents:
        for b in agents:
            if a is not b:
                a.wait(is_event("join", b.addr))
    print("3 agents:", " ".join(a.addr for a in agents))

    victim = udp()
    victim.setblocking(False)
    target = hostport(agents[1].addr)
    stranger = udp()
    stranger.settimeout(5.0)

    # drops before ours: a beat can come from a peer still a stranger
    # while the cluster forms (it heard an answer to its probe first)
    base = agents[1].command("stats")["stats"]["drops"]

    # 1. a forged ACK2, the echo guessed
    stranger.sendto(ack2_naming(int.from_bytes(os.urandom(8), "big"),
                                addr_of(victim)), target)
    # 2. the stranger holds its address: SYN, ACK, then an ACK2 that
    #    echoes the ACK's token and names the third party
    stranger.sendto(padded_syn(), target)
    reply, _ = stranger.recvfrom(65536)
    check(reply[:4] == header(ACK)[:4], reply[:8])
    check(len(reply) <= 200, len(reply))
    token = struct.unpack(">Q", reply[16:24])[0]
    stranger.sendto(ack2_naming(token, addr_of(victim)), target)
    # 3. a SYN whose source is the third party's address: the victim's
    #    socket sends it, and reads any reply below
    syn = padded_syn(64)
    victim.sendto(syn, target)

    got, nbytes = 0, 0
    end = time.monotonic() + 10.0
    while time.monotonic() < end:
        try:
            data = victim.recv(65536)
            got += 1
            nbytes += len(data)
        except BlockingIOError:
            time.sleep(0.01)
    print("third party got %d datagrams (%d bytes) in 10 s; the SYN from "
          "its address was %d bytes" % (got, nbytes, len(syn)))
    check(got <= 1 and nbytes <= len(syn), (got, nbytes))
    for a in agents:
        peers = a.command("peers")
        check(peers["ok"], peers)
        listed = [p.get("addr") for p in peers["peers"]]
        check(addr_of(victim) not in listed, listed)
    print("no agent lists the third party")
    stats = agents[1].command("stats")
    check(stats["ok"], stats)
    drops = {k: v - base[k] for k, v in stats["stats"]["drops"].items()}
    check(drops["unsolicited"] == 1 and drops["hearsay"] == 1, drops)
    check(stats["stats"]["members"]["live"] == 3, stats)
    print("the agent counted them: unsolicited %d, hearsay %d" %
          (drops["unsolicited"], drops["hearsay"]))
    for a in agents:
        a.proc.terminate()
    for a in agents:
        check(a.proc.wait(timeout=30) == 0)


if __name__ == "__main__":
    main()
