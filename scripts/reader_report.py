"""Every figure of one reader on both dev sets: closed and open domain, EM/F1, span errors, calibration.

    python scripts/reader_report.py --reader runs/curriculum/ko/best --out runs/report-ko \\
        [--label "curriculum, ko stage"] [--bench bench] [--index-dir indexes] [--data ../shared/data] [-- EXTRA]

Runs, each written to OUT/NAME.json (an existing file is kept, so an interrupted report resumes):

| NAME | command |
| --- | --- |
| korquad-closed | `odqa evaluate --closed --questions DATA/korquad1/korquad1_dev.json` |
| klue-closed | `odqa evaluate --closed --questions DATA/klue_mrc/klue_mrc_dev.json` |
| korquad-open | `odqa evaluate --index bench --questions BENCH/dev_questions.jsonl` |
| klue-open | `odqa evaluate --index bench-klue --questions BENCH/klue_dev_questions.jsonl` |
| demo | `odqa evaluate --index demo --questions` the bundled demo questions |

all with `--reader READER --json` and the pipeline's defaults (retrieval mode, k, retrieval weight: pass others
after `--`). `bench-klue` is the benchmark index with `BENCH/klue_passages.jsonl` added
(`scripts/make_bench.py`; `odqa index --name bench-klue --add`). A run whose index is missing is skipped and
said so. Then OUT/report.json (every figure) and OUT/report.md (one table row per run) are written.
Only dev files are read here, and only to report: settings are chosen on train questions elsewhere.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

FIELDS = ("em", "f1", "questions")


def runs(args) -> list[tuple[str, list[str]]]:
    data, bench = Path(args.data), Path(args.bench)
    demo = Path(__file__).resolve().parent.parent / "src" / "odqa" / "data" / "demo_questions.jsonl"
    return [
        ("korquad-closed", ["--closed", "--questions", str(data / "korquad1" / "korquad1_dev.json")]),
        ("klue-closed", ["--closed", "--questions", str(data / "klue_mrc" / "klue_mrc_dev.json")]),
        ("korquad-open", ["--index", "bench", "--questions", str(bench / "dev_questions.jsonl")]),
        ("klue-open", ["--index", "bench-klue", "--questions", str(bench / "klue_dev_questions.jsonl")]),
        ("demo", ["--index", "demo", "--questions", str(demo)]),
    ]


def index_exists(cmd: list[str], index_dir: str | None) -> bool:
    if "--index" not in cmd:
        return True
    name = cmd[cmd.index("--index") + 1]
    if name == "demo":
        return True                                   # built on first use
    root = Path(index_dir) if index_dir else None
    return root is None or (root / name / "manifest.json").is_file()


def evaluate(name: str, cmd: list[str], args, extra: list[str]) -> dict | None:
    out = Path(args.out) / f"{name}.json"
    if out.is_file():
        return json.loads(out.read_text(encoding="utf-8"))
    if not index_exists(cmd, args.index_dir):
        print(f"{name}: skipped (no index {cmd[cmd.index('--index') + 1]!r} in {args.index_dir})", file=sys.stderr)
        return None
    full = [args.odqa, "evaluate", *cmd, "--reader", args.reader, "--json", "--quiet", *extra]
    if args.index_dir and "--index" in cmd and name != "demo":      # the demo index lives where `odqa demo` put it
        full += ["--index-dir", args.index_dir]
    print(f"{name}: {' '.join(full)}", file=sys.stderr)
    done = subprocess.run(full, capture_output=True, text=True)
    if done.returncode:
        print(f"{name}: failed ({done.returncode}): {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
        return None
    tmp = out.with_suffix(".tmp")
    tmp.write_text(done.stdout, encoding="utf-8")
    tmp.replace(out)
    return json.loads(done.stdout)


def row(label: str, name: str, r: dict) -> str:
    cal = r.get("calibration") or {}
    cov = cal.get("em_at_coverage") or {}
    errors = r.get("span_errors") or {}
    span = " / ".join(str(errors.get(k, "–")) for k in ("inside_gold", "contains_gold", "overlap", "disjoint"))
    return (f"| {label} | {name} | {r.get('questions')} | {r.get('em')} | {r.get('f1')} | {cal.get('ece', '–')} | "
            f"{cal.get('auroc', '–')} | {cov.get('50', '–')} | {span} |")


def main() -> None:
    argv = sys.argv[1:]
    extra = argv[argv.index("--") + 1:] if "--" in argv else []
    argv = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--reader", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--label", default=None)
    ap.add_argument("--data", default="../shared/data")
    ap.add_argument("--bench", default="bench")
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--odqa", default=str(Path(sys.executable).parent / "odqa"))
    args = ap.parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    label = args.label or args.reader
    report, lines = {"reader": args.reader, "label": label, "extra": extra, "runs": {}}, []
    for name, cmd in runs(args):
        r = evaluate(name, cmd, args, extra)
        if r is None:
            continue
        report["runs"][name] = {k: r.get(k) for k in FIELDS} | {"calibration": r.get("calibration"),
                                                                  "span_errors": r.get("span_errors"),
                                                                  "setting": r.get("setting")}
        lines.append(row(label, name, r))
    head = ["| reader | run | questions | EM | F1 | ECE | AUROC | EM@50 % | span errors (inside / contains / overlap / disjoint) |",
            "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    (Path(args.out) / "report.json").write_text(json.dumps(report, indent=1, ensure_ascii=False) + "\n",
                                                encoding="utf-8")
    (Path(args.out) / "report.md").write_text("\n".join(head + lines) + "\n", encoding="utf-8")
    print("\n".join(head + lines))


if __name__ == "__main__":
    main()
