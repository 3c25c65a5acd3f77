#!/usr/bin/env python3
"""`scuttlebutt eval --load` at low rates on four real nodes: it exits 0;
the table, the JSON and the CSV hold a row per rate with the same counts;
every update was seen by every other node (itself or a newer value of its
key: the pairs resolved are the writes times the observers), so every
node held every last value after the load; staleness figures are there
and ordered; goodput is below what was sent; no false down (under a
sanitizer, SB_SANITIZED set, the program may be slowed past the
detector's patience and past the 2 s check: those two are not judged).
The plot is drawn where gnuplot is installed. Bad values of the flags are
refused. Behaviour only; the figures themselves are not judged here.

usage: eval_load.py PATH/TO/scuttlebutt
"""
import csv
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile

from check import check

NODES, RATES, KEYS, VALUE, SECONDS = 4, [2, 5], 3, 40, 2


def main():
    exe = sys.argv[1]
    sanitized = bool(os.environ.get("SB_SANITIZED"))
    with tempfile.TemporaryDirectory() as tmp:
        js, cs = os.path.join(tmp, "l.json"), os.path.join(tmp, "l.csv")
        plot = os.path.join(tmp, "l.svg")
        args = [exe, "eval", "--nodes", str(NODES), "--interval", "50",
                "--load", ",".join(map(str, RATES)), "--keys", str(KEYS),
                "--value-bytes", str(VALUE), "--load-seconds", str(SECONDS),
                "--json", js, "--csv", cs]
        if shutil.which("gnuplot"):
            args += ["--plot", plot]
        r = subprocess.run(args, capture_output=True, text=True, timeout=600)
        print(r.stdout)
        check(r.returncode == 0, (r.returncode, r.stderr))
        check("p99 ms" in r.stdout and "all held" in r.stdout, r.stdout)

        doc = json.load(open(js))
        load = doc["load"]
        check(doc["config"]["interval_ms"] == 50, doc["config"])
        # the cap in effect, as the header gives it: none was asked for,
        # so the library's default (not 0, which reads as no bandwidth)
        check(doc["config"]["bandwidth"] == 1048576, doc["config"])
        check(doc["config"]["bandwidth_default"] is True, doc["config"])
        check("bandwidth the default (1048576 B/s)" in r.stdout, r.stdout)
        check((load["keys"], load["value_bytes"], load["seconds"]) ==
              (KEYS, VALUE, SECONDS), load)
        rows = load["rows"]
        check([(x["nodes"], x["rate"]) for x in rows] ==
              [(NODES, rate) for rate in RATES], rows)
        table = [ln.split() for ln in r.stdout.splitlines()
                 if ln.split()[:1] == [str(NODES)]]
        check(len(table) == len(RATES), table)
        for x, line in zip(rows, table):
            planned = NODES * math.floor(x["rate"] * SECONDS)
            check(0 < x["writes"] <= planned, x)
            # every update reached every other node, or a newer value did
            check(x["pairs"] == x["writes"] * (NODES - 1), x)
            check(x["all_held_after_ms"] is not None, x)
            check(0 <= x["superseded"] <= x["pairs"], x)
            st = x["staleness_ms"]
            check(None not in st.values(), st)
            check(0 <= st["p50"] <= st["p99"] <= st["max"], st)
            w = x["writer_p99_ms"]
            check(0 <= w["median"] <= w["worst"], w)
            check(0 < x["goodput_bytes_per_s_per_node"] <
                  x["bytes_per_s_per_node"], x)
            check(x["packets_per_s_per_node"] > 0, x)
            check(x["peak_bytes_per_s"] > 0, x)
            check(isinstance(x["false_downs"], int), x)
            if not sanitized:
                check(x["false_downs"] == 0, "false downs at low rates", x)
                check(x["stale_at_2s"] == 0, x)
            # the table says the same
            check(int(line[2]) == x["writes"] and int(line[3]) == x["pairs"],
                  line, x)
            check(int(line[-3]) == x["false_downs"], line, x)
        lines = list(csv.DictReader(open(cs)))
        check([(int(c["writes"]), int(c["pairs"])) for c in lines] ==
              [(x["writes"], x["pairs"]) for x in rows], lines)
        if shutil.which("gnuplot"):
            check("<svg" in open(plot).read(), "no SVG drawn")

        # bad values are refused: usage (2), or a value too large (1)
        for bad in (["--load", "0"], ["--load", "5,x"],
                    ["--load", "5", "--value-bytes", "8"],
                    ["--load", "5", "--keys", "0"]):
            b = subprocess.run([exe, "eval", "--nodes", "2"] + bad,
                               capture_output=True, text=True)
            check(b.returncode == 2, bad, b.returncode, b.stderr)
        b = subprocess.run([exe, "eval", "--nodes", "2", "--load", "5",
                            "--value-bytes", "1000"],
                           capture_output=True, text=True, timeout=120)
        check(b.returncode == 1 and "does not fit" in b.stderr,
              b.returncode, b.stderr)
    print("ok")


if __name__ == "__main__":
    main()
