#!/usr/bin/env python3
"""`scuttlebutt eval` on a tiny cluster: it exits 0, and its JSON and CSV
hold every measurement for every trial, none timed out. Behaviour only;
the figures themselves are not judged here.

usage: eval_smoke.py PATH/TO/scuttlebutt
"""
import csv
import json
import os
import subprocess
import sys
import tempfile

METRICS = ["propagation", "detection", "discovery", "leave"]


def main():
    exe = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        js, cs = os.path.join(tmp, "e.json"), os.path.join(tmp, "e.csv")
        r = subprocess.run([exe, "eval", "--nodes", "4,5", "--trials", "2",
                            "--window", "1", "--interval", "50",
                            "--json", js, "--csv", cs],
                           capture_output=True, text=True, timeout=600)
        print(r.stdout)
        assert r.returncode == 0, (r.returncode, r.stderr)
        assert "propagation" in r.stdout and "false downs" in r.stdout
        doc = json.load(open(js))
        assert doc["config"]["trials"] == 2
        assert [c["nodes"] for c in doc["clusters"]] == [4, 5]
        for c in doc["clusters"]:
            for m in METRICS:
                got = c[m + "_ms"]
                assert got["timeouts"] == 0 and len(got["samples"]) == 2, got
                assert all(v >= 0 for v in got["samples"])
                assert got["median"] <= got["max"]
            assert c["packets_per_s_per_node"] > 0
            assert c["bytes_per_s_per_node"] > 0
            assert c["memory_kb_per_node"] > 0
            assert c["false_downs"] >= 0
        rows = list(csv.DictReader(open(cs)))
        assert len(rows) == 2 * 9, len(rows)
        # a bad flag is a usage error
        bad = subprocess.run([exe, "eval", "--nodes", "1"],
                             capture_output=True)
        assert bad.returncode == 2
    print("ok")


if __name__ == "__main__":
    main()
