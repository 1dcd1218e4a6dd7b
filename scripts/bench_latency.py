"""Latency of a warm `Pipeline.ask`, whole and per stage, with EM/F1 beside each setting.

    ODQA_INDEX_DIR=indexes python scripts/bench_latency.py --index bench --reader ko-reader \\
        --questions bench/dev_questions.jsonl --out runs/latency \\
        --rows "k=10,runtime=torch" "k=3,runtime=onnx-int8" "k=3,runtime=onnx-int8,stride=32"

A row is `key=value` pairs: k (passages read), runtime (torch | onnx | onnx-int8), weight (the
retrieval-score weight of span scores), max_length and stride (the reader's windows at inference;
default: the checkpoint's), batch (windows per model call), query (the query encoder's runtime:
none | int8 | onnx | onnx-int8, default the index's dense.quantize; the passage vectors stay as built). One pipeline is loaded per runtime and
warmed up on questions outside the set; then every question is asked alone, one after the other
(`Pipeline.ask`), under each row in turn (question 1 under every row, then question 2, ...: a load
that drifts on a shared CPU weighs on every row alike; the order of rows rotates, since the first to
ask a question fills memos the others reuse), and each row reports p50/p95 of the whole ask (wall clock around the call) and of
each stage (`QAResult.timings`: 0 where a stage did not run), each stage's share of the mean ask,
and EM/F1 (KorQuAD normalisation, `odqa.metrics`) of the best answers. `--sample N` asks N questions
spread evenly over the file (0 = all). The machine's load average is recorded before and after each
row: figures taken on a shared CPU say so. Output: OUT/latency.json and OUT/latency.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

WARM_UP = ["대한민국의 수도는 어디인가?", "한글을 만든 사람은 누구인가?", "가장 높은 산은 무엇인가?",
           "조선을 세운 사람은 누구인가?", "임진왜란은 언제 일어났는가?"]
KEYS = {"k": int, "runtime": str, "weight": float, "max_length": int, "stride": int, "batch": int, "query": str}


def parse_row(text: str) -> dict:
    row = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, sep, value = part.partition("=")
        if not sep or key not in KEYS:
            raise SystemExit(f"bench_latency: row {text!r}: '{part}' is not one of {', '.join(f'{k}=' for k in KEYS)}")
        row[key] = KEYS[key](value)
    return row


def percentile(values, q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=float), q)) if len(values) else 0.0


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


class Runner:
    """One loaded pipeline per reader runtime; a row's settings applied to it before the row runs."""

    def __init__(self, args):
        self.args, self.pipes, self.defaults = args, {}, {}

    def pipeline(self, runtime: str):
        import odqa
        if runtime not in self.pipes:
            t0 = time.perf_counter()
            p = odqa.Pipeline.from_index(self.args.index, reader=self.args.reader, index_dir=self.args.index_dir,
                                         mode=self.args.mode, reader_runtime=runtime)
            load = time.perf_counter() - t0
            for q in WARM_UP:
                p.ask(q)
            self.pipes[runtime] = p
            self.defaults[runtime] = {"window": p.reader.window, "batch": p.reader.batch_size,
                                      "weight": p.reader_settings["retrieval_weight"], "load_seconds": round(load, 2),
                                      "load": {s: round(v, 2) for s, v in p.load_seconds.items()}}
        return self.pipes[runtime]

    def apply(self, row: dict):
        """The pipeline of the row's runtime with the row's settings (cheap: attributes of the loaded reader)."""
        runtime = row.get("runtime", "torch")
        p = self.pipeline(runtime)
        d = self.defaults[runtime]
        r = p.reader
        win = d["window"]
        r.window = replace(win, max_length=row.get("max_length", win.max_length), stride=row.get("stride", win.stride))
        r.batch_size = row.get("batch", d["batch"])
        r.post = r.postprocessor(row.get("weight", d["weight"]))
        dense = getattr(p.retriever, "dense", None)
        if dense is not None:
            if "encoder" not in d:
                d["encoder"] = dense.encoder
            dense.encoder = p.index.query_encoder(quantize=row["query"]) if "query" in row else d["encoder"]
        settings = {"k": row.get("k", p.k), "runtime": runtime, "weight": row.get("weight", d["weight"]),
                    "max_length": r.window.max_length, "stride": r.window.stride, "batch": r.batch_size,
                    "query": row.get("query", p.index.manifest.get("dense", {}).get("quantize", "-"))}
        return p, settings


class Row:
    """One setting's measurements, question by question."""

    def __init__(self, runner: Runner, row: dict):
        self.runner, self.row = runner, row
        p, self.settings = runner.apply(row)
        for q in WARM_UP[:2]:                        # this row's shapes once before timing
            p.ask(q, self.settings["k"])
        self.totals, self.stages, self.em, self.f1 = [], {}, [], []

    def ask(self, q) -> None:
        from odqa.metrics import exact_match, f1
        p, _ = self.runner.apply(self.row)
        t0 = time.perf_counter()
        res = p.ask(q.question, self.settings["k"])
        self.totals.append(time.perf_counter() - t0)
        for s, v in res.timings.items():
            self.stages.setdefault(s, []).append(v)
        pred = res.answers[0].text if res.answers else ""
        self.em.append(exact_match(pred, q.answers))
        self.f1.append(f1(pred, q.answers))


def summary(r: Row, before: list[float]) -> dict:
    from odqa.timing import STAGES
    totals, stages, em, f, settings = r.totals, r.stages, r.em, r.f1, r.settings
    n = len(totals)
    mean_total = float(np.mean(totals)) if totals else 0.0
    order = ["retrieve", "read"] + [s for s in STAGES if s in stages] + \
            [s for s in stages if s not in STAGES and s not in ("retrieve", "read")]
    per_stage = {}
    for s in order:
        vals = stages[s] + [0.0] * (n - len(stages[s]))          # a stage that did not run for a question: 0
        per_stage[s] = {"p50_ms": round(1000 * percentile(vals, 50), 1), "p95_ms": round(1000 * percentile(vals, 95), 1),
                        "share": round(float(np.mean(vals)) / mean_total, 3) if mean_total else 0.0}
    return {"settings": settings, "questions": n, "em": round(100 * float(np.mean(em)), 2),
            "f1": round(100 * float(np.mean(f)), 2), "p50_ms": round(1000 * percentile(totals, 50), 1),
            "p95_ms": round(1000 * percentile(totals, 95), 1), "mean_ms": round(1000 * mean_total, 1),
            "stages": per_stage, "load_average_before": before, "load_average_after": load_average()}


SHOWN = ("query_analysis", "query_encoding", "sparse_search", "dense_search", "fusion", "rerank",
         "read_tokenize", "read_model", "read_postprocess")
SHORT = {"query_analysis": "analyse", "query_encoding": "encode", "sparse_search": "sparse", "dense_search": "dense",
         "fusion": "fuse", "rerank": "rerank", "read_tokenize": "tokenise", "read_model": "model",
         "read_postprocess": "post"}


def markdown(report: dict) -> str:
    rows = report["rows"]
    stages = [s for s in SHOWN if any(s in r["stages"] for r in rows)]
    head = ["k", "runtime", "query", "weight", "window", "batch", "EM", "F1", "p50 ms", "p95 ms"] + \
           [f"{SHORT[s]} p50 (share)" for s in stages] + ["load avg"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        s = r["settings"]
        cells = [str(s["k"]), s["runtime"], s["query"], f"{s['weight']:g}", f"{s['max_length']}/{s['stride']}",
                 str(s["batch"]), f"{r['em']:.2f}",
                 f"{r['f1']:.2f}", f"**{r['p50_ms']:.0f}**", f"{r['p95_ms']:.0f}"]
        for st in stages:
            x = r["stages"].get(st)
            cells.append(f"{x['p50_ms']:.1f} ({100 * x['share']:.0f} %)" if x else "–")
        cells.append(f"{r['load_average_before'][0]:.1f}-{r['load_average_after'][0]:.1f}")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="bench")
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--reader", default="ko-reader")
    ap.add_argument("--mode", default="auto")
    ap.add_argument("--questions", type=Path, default=Path("bench/dev_questions.jsonl"),
                    help="questions with answers (bench/train_questions.jsonl to choose settings)")
    ap.add_argument("--sample", type=int, default=0, help="ask N questions spread evenly over the file (0 = all)")
    ap.add_argument("--rows", nargs="+", default=["runtime=torch"], help='e.g. "k=3,runtime=onnx-int8,stride=32"')
    ap.add_argument("--out", type=Path, default=Path("runs/latency"))
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args()
    rows = [parse_row(r) for r in args.rows]
    import torch

    from odqa.corpus import load_questions
    questions = load_questions(args.questions)
    if args.sample and args.sample < len(questions):
        step = len(questions) / args.sample
        questions = [questions[int(i * step)] for i in range(args.sample)]
    from odqa.progress import bar
    runner = Runner(args)
    report = {"index": args.index, "reader": args.reader, "questions_file": str(args.questions),
              "questions": len(questions), "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": []}
    args.out.mkdir(parents=True, exist_ok=True)
    measured = [Row(runner, row) for row in rows]
    report["loads"] = {rt: {k: v for k, v in d.items() if k not in ("window", "encoder")}
                       for rt, d in runner.defaults.items()}
    before = load_average()
    progress = bar(len(questions), f"asking ({len(rows)} rows each)", "question", quiet=args.quiet)
    for i, q in enumerate(questions):
        turn = i % len(measured)            # rotated: the row that asks a question first pays caches that others
        for r in measured[turn:] + measured[:turn]:      # reuse (the particle rules' memoised morphemes)
            r.ask(q)
        progress.update(1)
        if (i + 1) % 50 == 0 or i + 1 == len(questions):      # partial results of a long run are kept
            report["rows"] = [summary(r, before) for r in measured]
            report["asked"] = i + 1
            _write(args.out / "latency.json", json.dumps(report, ensure_ascii=False, indent=1) + "\n")
            _write(args.out / "latency.md", markdown(report))
    progress.close()
    for r in report["rows"]:
        print(json.dumps({k: v for k, v in r.items() if k != "stages"}, ensure_ascii=False), flush=True)
    print(markdown(report))


def _write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


if __name__ == "__main__":
    main()
