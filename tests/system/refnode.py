#!/usr/bin/env python3
"""A model of a node of the reference Go library, for the tests that cannot
have the library (tests/interop/go_interop.py runs the real one).

Each rule reproduces what the library does at c3d0bba (the function named
is the library's), defects included where they matter to a peer:

- identity is the address alone, "ip:port" as the sender of a datagram
  appears (UDPTransport);
- each round (Scuttlebutt.round): a digest request to one random up peer,
  or to every seed only while it knows no up peer (gossipToUpPeer, seed);
  the failure detector over the up peers only, so a peer once down is
  never taken up again (Gossiper.CheckLiveness, PeerMap.Addrs); a digest
  request to one random down peer (gossipToDownPeer); peers down for an
  hour are forgotten (RemoveExpiredPeers);
- a digest (request or response) is its sender's heartbeat, whether or
  not the sender is a peer (FailureDetector.Report); peers are learned
  from its entries only, never from the source address: unknown ones are
  added as up (a join) at version 0 (PeerMap.ApplyDigest); it is answered
  by a delta (peers most out of date first, each peer's keys in version
  order) when there is something to send, then, for a request, by the
  node's own digest, of up peers only (Gossiper.onDigestSync);
- the delta's size check compares the number of digest entries, not the
  message's length, against the limit, so deltas can exceed it
  (Gossiper.sendDelta);
- deltas are applied key by key where the version is newer, only for
  known peers (down ones too) and never about the node itself, and every
  entry about a known peer fires an update, stale ones included
  (PeerMap.ApplyDelta, Peer.UpdateRemote);
- phi = (time since the last heartbeat) / (mean interval), the first
  interval counted as two gossip intervals, at most 1000 intervals kept
  (ArrivalWindow);
- a truncated datagram crashes the library (its decoder reads past the
  end); the model counts it instead: do not send one.

usage (a node on its own, events as JSON lines on stdout):
  refnode.py --bind 127.0.0.1:7000 [--seed HOST:PORT]... [--interval MS]
"""
import json
import random
import select
import socket
import struct
import sys
import threading
import time

DIGEST_REQUEST, DIGEST_RESPONSE, DELTA = 1, 2, 3
FORGET_S = 3600.0


def _str(b):
    return bytes([len(b)]) + b


def encode_digest(addr, version):
    return _str(addr.encode()) + struct.pack(">Q", version)


def _bytes(s):
    """Keys and values are text (bytes received kept as surrogates), or
    any bytes (bytes objects)."""
    return s if isinstance(s, bytes) else s.encode(errors="surrogateescape")


def encode_delta(addr, key, value, version):
    return (_str(addr.encode()) + _str(_bytes(key)) + _str(_bytes(value)) +
            struct.pack(">Q", version))


def decode(buf):
    """(type, entries) of a datagram; raises ValueError where the
    reference would crash (an entry cut short)."""
    kind, p, out = buf[0], 1, []

    def take_str():
        nonlocal p
        n = buf[p]
        if p + 1 + n > len(buf):
            raise ValueError("truncated string")
        s = buf[p + 1:p + 1 + n].decode(errors="surrogateescape")
        p += 1 + n
        return s

    while p < len(buf):
        addr = take_str()
        key = value = None
        if kind == DELTA:
            key, value = take_str(), take_str()
        if p + 8 > len(buf):
            raise ValueError("truncated version")
        (version,) = struct.unpack(">Q", buf[p:p + 8])
        p += 8
        out.append((addr, key, value, version))
    return kind, out


class Peer:
    def __init__(self):
        self.version = 0
        self.entries = {}      # key -> (value, version)
        self.up = True
        self.expiry = None


class Window:
    def __init__(self, bootstrap):
        self.last = None
        self.intervals = []
        self.bootstrap = bootstrap

    def add(self, now):
        self.intervals.append(now - self.last if self.last is not None
                              else self.bootstrap)
        del self.intervals[:-1000]
        self.last = now

    def phi(self, now):
        return (now - self.last) / (sum(self.intervals) /
                                    len(self.intervals))


class RefNode:
    def __init__(self, bind="127.0.0.1:0", seeds=(), interval=0.1,
                 max_message=512, threshold=8.0, on_event=None):
        host, port = bind.rsplit(":", 1)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((host, int(port)))
        h, p = self.sock.getsockname()
        self.addr = "%s:%d" % (h, p)
        self.seeds = list(seeds)
        self.interval = interval
        self.max_message = max_message
        self.threshold = threshold
        self.on_event = on_event
        self.peers = {self.addr: Peer()}
        self.windows = {}
        self.lock = threading.Lock()
        self.events = []           # (kind, addr, key, value)
        self.largest_in = {}       # source address -> largest datagram
        self.largest_out = 0
        self.malformed = 0
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    # ---- the API of the reference -------------------------------------
    def update_local(self, key, value):
        with self.lock:
            me = self.peers[self.addr]
            if key in me.entries and me.entries[key][0] == value:
                return
            me.version += 1
            me.entries[key] = (value, me.version)

    def lookup(self, addr, key):
        with self.lock:
            p = self.peers.get(addr)
            e = p.entries.get(key) if p else None
            return e[0] if e else None

    def up_addrs(self):
        """Up peers, ourselves included."""
        with self.lock:
            return sorted(a for a, p in self.peers.items() if p.up)

    def stop(self):
        """Stops without a word, as a crashed process would."""
        self.running = False
        self.thread.join()
        self.sock.close()

    # ---- the protocol ---------------------------------------------------
    def _event(self, kind, addr, key=None, value=None):
        self.events.append((kind, addr, key, value))
        if self.on_event:
            self.on_event(kind, addr, key, value)

    def _send(self, buf, to):
        host, port = to.rsplit(":", 1)
        self.largest_out = max(self.largest_out, len(buf))
        try:
            self.sock.sendto(buf, (host, int(port)))
        except OSError:
            pass

    def _digest(self, kind):
        addrs = [a for a, p in self.peers.items() if p.up]
        random.shuffle(addrs)
        buf = bytes([kind])
        for a in addrs:
            e = encode_digest(a, self.peers[a].version)
            if len(buf) + len(e) > self.max_message:
                break
            buf += e
        return buf

    def _report(self, addr, now):
        w = self.windows.setdefault(addr, Window(2 * self.interval))
        w.add(now)

    def _is_down(self, addr, now):
        w = self.windows.get(addr)
        if w is None:
            w = self.windows[addr] = Window(2 * self.interval)
            w.add(now)
        return w.phi(now) > self.threshold

    def _on_digest(self, entries, sender, request, now):
        self._report(sender, now)
        for addr, _, _, _ in entries:
            if addr not in self.peers:
                self.peers[addr] = Peer()
                self._event("join", addr)
        behind = []
        for addr, _, _, version in entries:
            known = self.peers[addr].version
            if version < known:
                behind.append((known - version, addr, version))
        behind.sort(key=lambda t: -t[0])
        delta = bytes([DELTA])
        for _, addr, version in behind:
            keys = sorted((v[1], k, v[0])
                          for k, v in self.peers[addr].entries.items()
                          if v[1] > version)
            for kver, key, value in keys:
                e = encode_delta(addr, key, value, kver)
                if len(entries) + len(e) > self.max_message:  # the defect
                    break
                delta += e
        if len(delta) > 1:
            self._send(delta, sender)
        if request:
            self._send(self._digest(DIGEST_RESPONSE), sender)

    def _on_delta(self, entries):
        for addr, key, value, version in entries:
            if addr == self.addr or addr not in self.peers:
                continue
            p = self.peers[addr]
            if key not in p.entries or version > p.entries[key][1]:
                p.entries[key] = (value, version)
                p.version = max(p.version, version)
            self._event("update", addr, key, value)  # stale ones too

    def _on_datagram(self, buf, sender, now):
        if not buf:
            return
        self.largest_in[sender] = max(self.largest_in.get(sender, 0),
                                      len(buf))
        try:
            kind, entries = decode(buf)
        except (ValueError, IndexError):
            self.malformed += 1  # the reference would have crashed
            return
        if kind in (DIGEST_REQUEST, DIGEST_RESPONSE):
            self._on_digest(entries, sender, kind == DIGEST_REQUEST, now)
        elif kind == DELTA:
            self._on_delta(entries)

    def _round(self, now):
        ups = [a for a, p in self.peers.items() if p.up and a != self.addr]
        if ups:
            self._send(self._digest(DIGEST_REQUEST), random.choice(ups))
        else:
            for s in self.seeds:
                if s != self.addr:
                    self._send(self._digest(DIGEST_REQUEST), s)
        for addr, p in list(self.peers.items()):
            if addr == self.addr or not p.up:
                continue  # a down peer is never taken up again
            if self._is_down(addr, now):
                p.up, p.expiry = False, now + FORGET_S
                self._event("leave", addr)
        downs = [a for a, p in self.peers.items() if not p.up]
        if downs:
            self._send(self._digest(DIGEST_REQUEST), random.choice(downs))
        for addr in [a for a, p in self.peers.items()
                     if p.expiry is not None and p.expiry < now]:
            del self.peers[addr]
            self.windows.pop(addr, None)

    def _run(self):
        next_round = time.monotonic() + self.interval
        while self.running:
            wait = max(0.0, min(next_round - time.monotonic(), 0.05))
            ready, _, _ = select.select([self.sock], [], [], wait)
            now = time.monotonic()
            with self.lock:
                if ready:
                    buf, (h, p) = self.sock.recvfrom(65536)
                    self._on_datagram(buf, "%s:%d" % (h, p), now)
                if now >= next_round:
                    self._round(now)
                    next_round = now + self.interval


def main():
    args, seeds, bind, interval = sys.argv[1:], [], "127.0.0.1:0", 500
    while args:
        flag, value = args.pop(0), args.pop(0)
        if flag == "--bind":
            bind = value
        elif flag == "--seed":
            seeds.append(value)
        elif flag == "--interval":
            interval = int(value)
        else:
            sys.exit(__doc__)

    def show(kind, addr, key, value):
        obj = {"event": kind, "peer": addr}
        if key is not None:
            obj.update(key=key, value=value)
        print(json.dumps(obj), flush=True)
    node = RefNode(bind, seeds, interval / 1000.0, on_event=show)
    print(json.dumps({"event": "ready", "addr": node.addr}), flush=True)
    for line in sys.stdin:
        words = line.split(None, 2)
        if len(words) == 3 and words[0] == "set":
            node.update_local(words[1], words[2].rstrip("\n"))
    node.stop()


if __name__ == "__main__":
    main()
