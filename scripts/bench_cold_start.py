"""Cold start of `odqa ask`: N fresh processes per row, wall clock and CPU time (user + sys), medians.

    python scripts/bench_cold_start.py --index bench --index-dir indexes -n 5 \\
        --row "old torch=src:../odqa-old/src" --row "new torch=src:/path/to/checkout/src" \\
        --row "new onnx=src:/path/to/checkout/src --reader-runtime onnx" --out runs/cold_start

A row is `LABEL=[src:FOLDER] [extra ask options]`: FOLDER is put first on PYTHONPATH (an odqa source tree,
so that two checkouts compare in one run), the options are added to `odqa ask QUESTION --index NAME`.
Each process is `python -m odqa ask ...` with the interpreter running this script; rows take turns (run 1 of
every row, then run 2, ...), so a load that drifts on a shared CPU weighs on every row alike, and a first
untimed run per row warms the file cache and any one-time caches (exports, rebuilt models). CPU time is the
child's user + sys (`RUSAGE_CHILDREN`): much less sensitive to other work on the machine than wall clock. The
load average is recorded before and after. Output: a table on stdout, and OUT/cold_start.json with --out.
Every row's answer (the best one's text) is printed beside its times: rows that should agree can be seen to.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path


def parse_row(text: str) -> tuple[str, str | None, list[str]]:
    label, _, rest = text.partition("=")
    words = shlex.split(rest)
    src = next((w[len("src:"):] for w in words if w.startswith("src:")), None)
    return label.strip(), src, [w for w in words if not w.startswith("src:")]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--index", default="bench")
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--question", default="한라산의 높이는 몇 미터인가?")
    ap.add_argument("-n", "--runs", type=int, default=5)
    ap.add_argument("--row", action="append", required=True, help="LABEL=[src:FOLDER] [ask options] (repeat)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    rows = [parse_row(r) for r in args.row]
    base = [sys.executable, "-m", "odqa", "ask", args.question, "--index", args.index, "--json"]
    if args.index_dir:
        base += ["--index-dir", args.index_dir]
    results = {label: {"wall": [], "cpu": [], "answer": None} for label, _, _ in rows}
    load_before = os.getloadavg()
    for run in range(args.runs + 1):                 # run 0 warms caches and is not counted
        for label, src, extra in rows:
            env = {**os.environ, "ODQA_QUIET": "1"}
            if src:
                env["PYTHONPATH"] = os.pathsep.join(p for p in (src, os.environ.get("PYTHONPATH")) if p)
            wall, cpu, out = timed(base + extra, env)
            if run:
                results[label]["wall"].append(wall)
                results[label]["cpu"].append(cpu)
            answers = json.loads(out).get("answers") or [{}]
            results[label]["answer"] = answers[0].get("text")
    load_after = os.getloadavg()
    print(f"{args.runs} fresh processes per row, median (load average {load_before[0]:.2f} -> {load_after[0]:.2f})")
    print(f"{'row':<28} {'wall s':>8} {'user+sys s':>11}  answer")
    summary = {}
    for label, r in results.items():
        summary[label] = {"wall_median_s": round(statistics.median(r["wall"]), 3),
                          "cpu_median_s": round(statistics.median(r["cpu"]), 3),
                          "wall_s": [round(x, 3) for x in r["wall"]], "cpu_s": [round(x, 3) for x in r["cpu"]],
                          "answer": r["answer"]}
        print(f"{label:<28} {summary[label]['wall_median_s']:>8.2f} {summary[label]['cpu_median_s']:>11.2f}  "
              f"{r['answer']}")
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "cold_start.json").write_text(json.dumps(
            {"question": args.question, "index": args.index, "runs": args.runs, "rows": args.row,
             "loadavg_before": load_before, "loadavg_after": load_after, "results": summary},
            ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def timed(cmd: list[str], env: dict) -> tuple[float, float, str]:
    """(wall seconds, the child's user + sys seconds, its stdout): one child at a time, so the growth of
    RUSAGE_CHILDREN across the run is that child's own."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        raise SystemExit(f"{shlex.join(cmd)} failed ({p.returncode}):\n{p.stderr.decode(errors='replace')}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, p.stdout.decode()


if __name__ == "__main__":
    main()
