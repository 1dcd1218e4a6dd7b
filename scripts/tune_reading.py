"""Choose how many retrieved passages the reader reads (k) and the retrieval-score weight on TRAIN questions.

    python scripts/tune_reading.py --index bench --reader ko-reader \
        --train bench/train_questions.jsonl --dev bench/dev_questions.jsonl --out runs/tune-reading

Each question is read once over its top-K hybrid passages (K = the largest k tried); the reader's raw
spans (every window's n-best with its passage's retrieval score) are kept in `OUT/raw-SPLIT.jsonl`
(a rerun resumes from them), and every (k, weight) setting is then only a post-processing of those
spans with the reader's own steps (its particle rules): restricted to the top-k passages, mixed with
`weight` x the min-max normalised retrieval score, scored with KorQuAD EM/F1. The setting is chosen
by EM on the train questions (F1, then the smaller k, breaking ties); the dev questions are reported
beside every row, with the stage-loss counts, and never used to choose.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path

from odqa.types import Answer


def read_raw(pipe, questions, k_max: int, path: Path, batch: int = 16) -> tuple[list, list]:
    """(hits, raw spans) per question, resuming from the spans already written to `path`."""
    texts = [q.question for q in questions]
    hits = []
    for b in range(0, len(texts), 64):
        hits += pipe.passages_to_read(texts[b:b + 64], k_max)
    done = [json.loads(line) for line in path.open(encoding="utf-8")] if path.exists() else []
    raw = [[Answer(**s) for s in row["spans"]] for row in done]
    t0 = time.perf_counter()
    with path.open("a", encoding="utf-8") as f:
        for b in range(len(raw), len(texts), batch):
            got = pipe.reader.read_raw(texts[b:b + batch], hits[b:b + batch])
            for q, spans in zip(questions[b:b + batch], got):
                f.write(json.dumps({"id": q.id, "spans": [asdict(s) for s in spans]}, ensure_ascii=False) + "\n")
            raw += got
            print(f"  {path.name}: {len(raw)}/{len(texts)} read ({time.perf_counter() - t0:.0f} s)", flush=True)
    return hits, raw


def score(questions, hits, raw, k: int, weight: float, reader, judge) -> dict:
    from odqa.evaluation.answers import score_answers
    post = reader.postprocessor(weight)
    answers, top_hits = [], []
    for hs, spans in zip(hits, raw):
        hs = hs[:k]
        ids = {h.passage.id for h in hs}
        answers.append(post([s for s in spans if s.passage_id in ids], {h.passage.id: h.passage.text for h in hs}))
        top_hits.append(hs)
    m = score_answers(questions, answers, top_hits, judge, k)["metrics"]
    return {"em": m["em"], "f1": m["f1"], "stages": m["stages"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="bench")
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--reader", default="ko-reader")
    ap.add_argument("--train", type=Path, default=Path("bench/train_questions.jsonl"))
    ap.add_argument("--dev", type=Path, default=Path("bench/dev_questions.jsonl"))
    ap.add_argument("--ks", default="1,2,3,5")
    ap.add_argument("--dev-ks", default="1,2,3,5,10", help="k values read on dev (the current default, 10, included)")
    ap.add_argument("--weights", default="0,0.5,1,2,4,8,16")
    ap.add_argument("--out", type=Path, default=Path("runs/tune-reading"))
    a = ap.parse_args()
    import odqa
    from odqa.corpus import load_questions
    from odqa.evaluation.retrieval import Judge
    ks, dev_ks = [int(x) for x in a.ks.split(",")], [int(x) for x in a.dev_ks.split(",")]
    weights = [float(x) for x in a.weights.split(",")]
    a.out.mkdir(parents=True, exist_ok=True)
    pipe = odqa.Pipeline.from_index(a.index, reader=a.reader, index_dir=a.index_dir)
    judge = Judge(pipe.index.canonical, pipe.index.passage_ids())
    report = {"index": a.index, "mode": pipe.mode, "reader": pipe.reader_settings, "rows": []}
    splits = {}
    for split, path, kk in (("train", a.train, ks), ("dev", a.dev, sorted(set(ks) | set(dev_ks)))):
        qs = load_questions(path)
        t0 = time.perf_counter()
        hits, raw = read_raw(pipe, qs, max(kk), a.out / f"raw-{split}.jsonl")
        splits[split] = (qs, hits, raw, kk)
        report[f"{split}_questions"] = len(qs)
        report[f"{split}_read_seconds"] = round(time.perf_counter() - t0, 1)
    for k in sorted(set(ks) | set(dev_ks)):
        for w in weights:
            row = {"k": k, "weight": w}
            for split, (qs, hits, raw, kk) in splits.items():
                if k in kk:
                    row[split] = score(qs, hits, raw, k, w, pipe.reader, judge)
            report["rows"].append(row)
            print(json.dumps(row, ensure_ascii=False), flush=True)
    trained = [r for r in report["rows"] if "train" in r]
    best = max(trained, key=lambda r: (r["train"]["em"], r["train"]["f1"], -r["k"]))
    report["chosen_on_train"] = {"k": best["k"], "weight": best["weight"], **best}
    (a.out / "report.json").write_text(json.dumps(report, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({"chosen_on_train": report["chosen_on_train"]}, ensure_ascii=False))


if __name__ == "__main__":
    main()
