"""odqa's nDCG@10, MRR@10 and recall@100 against ranx's on the same run: `odqa evaluate retrieval` writes the
TREC run and qrels files, ranx reads them back and scores them; the two must agree to 4 decimals.

    python scripts/bench_ir_metrics.py --index bench --questions bench/dev_questions.jsonl [--mode sparse]

Prints one line per metric (odqa, ranx, difference) and exits 1 when any differs by 0.00005 or more.
ranx is a dev dependency (pip install -e ".[dev]").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import warnings
from pathlib import Path

METRICS = ("ndcg@10", "mrr@10", "recall@100")


def compare(index: str, questions: str, mode: str = "sparse", k: int = 100, index_dir: str | None = None) -> dict:
    import odqa
    from ranx import Qrels, Run, evaluate
    warnings.filterwarnings("ignore", message=".*unsafe cast.*")      # numba's, inside ranx's nDCG
    with tempfile.TemporaryDirectory() as tmp:
        run_file, qrels_file = Path(tmp) / "run.trec", Path(tmp) / "qrels.trec"
        rep = odqa.evaluate_retrieval(index, questions, mode=mode, k=k, index_dir=index_dir,
                                      run_file=run_file, qrels_file=qrels_file)
        ranx = evaluate(Qrels.from_file(str(qrels_file), kind="trec"), Run.from_file(str(run_file), kind="trec"),
                        list(METRICS), make_comparable=True)
    ours = rep.metrics["trec"]
    rows = {m: {"odqa": round(ours[m], 6), "ranx": round(float(ranx[m]), 6),
                "difference": abs(ours[m] - float(ranx[m]))} for m in METRICS}
    return {"index": index, "questions": questions, "mode": rep.mode, "k": k, "scored": ours["questions"],
            "asked": rep.metrics["questions"], "metrics": rows}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", default="bench")
    ap.add_argument("--questions", default="bench/dev_questions.jsonl")
    ap.add_argument("--mode", default="sparse")
    ap.add_argument("-k", type=int, default=100)
    ap.add_argument("--index-dir", default=None)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    res = compare(a.index, a.questions, a.mode, a.k, a.index_dir)
    if a.json:
        print(json.dumps(res, indent=1))
    else:
        print(f"{res['asked']} questions ({res['scored']} with a relevant passage), index '{res['index']}', "
              f"{res['mode']} top-{res['k']}")
        for m, r in res["metrics"].items():
            print(f"{m:<11} odqa {r['odqa']:.4f}  ranx {r['ranx']:.4f}  difference {r['difference']:.1e}")
    return 0 if all(r["difference"] < 5e-5 for r in res["metrics"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
