#!/usr/bin/env python3
"""`scuttlebutt eval` on a tiny cluster: it exits 0, and its JSON and CSV
hold every measurement for every trial, none timed out; the JSON, the CSV
and the printed table agree on the false downs; the JSON gives the
bandwidth cap in effect, and on the reference wire no monitors, and there are none (four
and five nodes on loopback have no reason to convict a live one; under a
sanitizer, SB_SANITIZED set, the program may be slowed past the detector's
patience, and only the agreement is checked); where gnuplot is, the plot
is drawn to a path with a quote in it. Behaviour only; the other
figures themselves are not judged here.

usage: eval_smoke.py PATH/TO/scuttlebutt
"""
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile

from check import check

METRICS = ["propagation", "detection", "discovery", "leave"]


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        js, cs = os.path.join(tmp, "e.json"), os.path.join(tmp, "e.csv")
        # the plot, where gnuplot is here, to a path with a quote in it
        plot = os.path.join(tmp, "it's.png") if shutil.which("gnuplot") \
            else None
        r = subprocess.run([exe, "eval", "--nodes", "4,5", "--trials", "2",
                            "--window", "1", "--interval", "50",
                            "--json", js, "--csv", cs] +
                           (["--plot", plot] if plot else []),
                           capture_output=True, text=True, timeout=600)
        print(r.stdout)
        check(r.returncode == 0, (r.returncode, r.stderr))
        if plot:
            check(os.path.getsize(plot) > 0, "no plot drawn")
        else:
            print("plot: not checked (no gnuplot here)")
        check("propagation" in r.stdout and "false downs" in r.stdout)
        doc = json.load(open(js))
        check(doc["config"]["trials"] == 2)
        check([c["nodes"] for c in doc["clusters"]] == [4, 5])
        for c in doc["clusters"]:
            for m in METRICS:
                got = c[m + "_ms"]
                check(got["timeouts"] == 0 and len(got["samples"]) == 2, got)
                check(all(v >= 0 for v in got["samples"]))
                check(got["median"] <= got["max"])
            check(c["packets_per_s_per_node"] > 0)
            check(c["bytes_per_s_per_node"] > 0)
            check(c["memory_kb_per_node"] > 0)
        rows = list(csv.DictReader(open(cs)))
        check(len(rows) == 2 * 9, len(rows))
        # every time's row: its samples and its timeouts, as in the JSON
        for c in doc["clusters"]:
            for m in METRICS:
                row = [x for x in rows if x["metric"] == m + "_ms" and
                       int(x["nodes"]) == c["nodes"]]
                check(len(row) == 1, row)
                got = c[m + "_ms"]
                check(int(row[0]["n"]) == len(got["samples"]) and
                      int(row[0]["timeouts"]) == got["timeouts"], row, got)
        # false downs: one figure in the JSON, the CSV and the table
        table = r.stdout[r.stdout.index("false downs"):].splitlines()
        for c in doc["clusters"]:
            fd = c["false_downs"]
            check(isinstance(fd, int), fd)
            csv_fd = [int(row["median"]) for row in rows
                      if row["metric"] == "false_downs" and
                      int(row["nodes"]) == c["nodes"]]
            check(csv_fd == [fd], csv_fd, fd)
            line = [ln.split() for ln in table
                    if ln.split()[:1] == [str(c["nodes"])]]
            check(len(line) == 1 and int(line[0][-1]) == fd, line, fd)
            if not os.environ.get("SB_SANITIZED"):
                check(fd == 0, "false downs in a quiet cluster", c)
        # the cap in effect: the library's default, none asked for
        check(doc["config"]["bandwidth"] == 1048576, doc["config"])
        check(doc["config"]["bandwidth_default"] is True, doc["config"])
        # a bad flag is a usage error, with the status the help gives
        bad = subprocess.run([exe, "eval", "--nodes", "1"],
                             capture_output=True)
        check(bad.returncode == 2)
        usage = subprocess.run([exe, "eval", "--help"], capture_output=True,
                               text=True).stdout
        check("2 on a bad option" in usage, usage)
        # the reference wire has neither push nor monitors (the engine
        # turns both off): the header and the JSON say what ran
        js = os.path.join(tmp, "r.json")
        r = subprocess.run([exe, "eval", "--nodes", "3", "--trials", "1",
                            "--window", "1", "--interval", "50",
                            "--wire", "reference", "--json", js],
                           capture_output=True, text=True, timeout=600)
        print(r.stdout)
        check(r.returncode == 0, (r.returncode, r.stderr))
        check("fanout 0, monitors 0," in r.stdout, r.stdout)
        ref = json.load(open(js))["config"]
        check(ref["wire"] == "reference" and ref["fanout"] == 0 and
              ref["monitors"] == 0, ref)
        check(json.load(open(js))["clusters"][0]["leave_ms"]["samples"] ==
              [])
        # a time not measured is empty in the CSV, not "nan"
        cs = os.path.join(tmp, "r.csv")
        r = subprocess.run([exe, "eval", "--nodes", "3", "--trials", "1",
                            "--window", "1", "--interval", "50",
                            "--wire", "reference", "--csv", cs],
                           capture_output=True, text=True, timeout=600)
        check(r.returncode == 0, (r.returncode, r.stderr))
        leave = [x for x in csv.DictReader(open(cs))
                 if x["metric"] == "leave_ms"]
        check(len(leave) == 1 and leave[0]["median"] == "" and
              leave[0]["n"] == "0", leave)
    print("ok")


if __name__ == "__main__":
    main()
