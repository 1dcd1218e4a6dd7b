"""Sparse retrieval against Lucene + nori (the engine Elasticsearch users get), side by side in one run.

  python scripts/bench_lucene.py --bench bench --out lucene.json --markdown lucene.md

Lucene: `scripts/lucene/NoriBench.java`, compiled here with javac against Debian's jars
(`apt-get install liblucene8-java`, /usr/share/java), indexes the same passage texts as odqa
(title + "\\n" + text) with Lucene's KoreanAnalyzer (nori) and BM25Similarity(k1, b). odqa: MeCab
terms + bm25s, built and loaded through `odqa.api`, for each decompound mode asked. For every engine
and analysis the BM25 k1/b are chosen by the same grid on the TRAIN questions (recall@1, ties by
MRR); dev recall/MRR are reported at those settings (Lucene also at its defaults 1.2/0.75).

Speed, both single thread on this machine in this run: one question at a time after five warm-up
passes over the dev questions, three timed passes (top 10; queries/s of each, the best reported);
odqa also batched (`search` on 64 questions at a time). The load average is recorded: say whether
the CPU was shared. Without java, javac or the jars it prints one line and exits 0.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from odqa.api.indexes import build_index, load_index
from odqa.config import BM25Config, IndexConfig, with_changes
from odqa.corpus import load_corpus, load_questions
from odqa.evaluation.retrieval import Judge, evaluate, sweep_bm25
from odqa.retrieval.sparse import passage_text
from odqa.text.analyzers import make_analyzer
from odqa.types import Hit

HARNESS = Path(__file__).resolve().parent / "lucene" / "NoriBench.java"
JARS = ("lucene-core", "lucene-analyzers-common", "lucene-analyzers-nori")
GRID = {"k1": [0.2, 0.3, 0.5, 0.9, 1.2], "b": [0.1, 0.2, 0.3, 0.5, 0.75]}   # --k1 / --b change it
LUCENE_DEFAULTS = (1.2, 0.75)
METRICS = ("recall@1", "recall@5", "recall@20", "recall@100", "mrr")


def lucene_classpath(jar_dir: Path) -> tuple[str | None, str]:
    """(classpath, "") when java, javac and the Lucene 8 jars are there, else (None, why not)."""
    for tool in ("java", "javac"):
        if shutil.which(tool) is None:
            return None, f"no `{tool}` on PATH (install a JDK, e.g. apt-get install default-jdk-headless)"
    jars = []
    for name in JARS:
        found = sorted(glob.glob(str(jar_dir / f"{name}-8*.jar")))
        if not found:
            return None, f"no {name}-8*.jar in {jar_dir} (apt-get install liblucene8-java)"
        jars.append(found[-1])
    return os.pathsep.join(jars), ""


def escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")


def write_lines(path: Path, texts) -> Path:
    path.write_text("".join(escape(t) + "\n" for t in texts), encoding="utf-8")
    return path


class Lucene:
    """The compiled harness over one corpus (passage texts written once)."""

    def __init__(self, classpath: str, work: Path, texts: list[str]):
        self.work = work
        classes = work / "classes"
        classes.mkdir()
        subprocess.run(["javac", "-d", str(classes), "-cp", classpath, str(HARNESS)], check=True)
        self.classpath = os.pathsep.join([classpath, str(classes)])
        self.passages = write_lines(work / "passages.txt", texts)

    def run(self, mode: str, params: list[tuple[float, float]], sets: dict[str, list[str]], timed: set[str],
            depth: int = 100) -> tuple[dict, dict]:
        """(the harness's JSON, {(set, k1, b): [passage indices per question]})."""
        out = Path(tempfile.mkdtemp(dir=self.work))
        args = [f"{name}={write_lines(out / f'{name}.q', qs)}{':timed' if name in timed else ''}"
                for name, qs in sets.items()]
        spec = ",".join(f"{k1}:{b}" for k1, b in params)
        proc = subprocess.run(["java", "-Xmx2g", "-cp", self.classpath, "NoriBench", str(self.passages), mode,
                               spec, str(depth), str(out), *args], check=True, capture_output=True, text=True)
        report = json.loads(proc.stdout)
        ranked = {}
        for name in sets:
            for k1, b in params:
                lines = (out / f"{name}-{k1}-{b}.txt").read_text(encoding="utf-8").splitlines()
                ranked[(name, k1, b)] = [[int(x) for x in line.split()] for line in lines]
        return report, ranked


def scored(passages, questions, judge, ranked: list[list[int]]) -> dict:
    """Recall/MRR of ranked passage indices (one list per question, in order), judged as odqa judges."""
    hits = {q.question.strip(): [Hit(passages[i], 0.0, r + 1, "lucene") for r, i in enumerate(ids)]
            for q, ids in zip(questions, ranked)}
    m = evaluate(lambda qs, k: [hits[q.strip()][:k] for q in qs], questions, judge)["metrics"]
    return {k: round(m[k], 4) for k in METRICS}


def pick(rows: list[dict]) -> dict:
    return max(rows, key=lambda r: (r["train"]["recall@1"], r["train"]["mrr"]))


def lucene_part(lucene: Lucene, mode: str, corpus, train, dev, judge, grid) -> dict:
    points = [(k1, b) for k1 in grid["k1"] for b in grid["b"]]
    train_qs = [q.question.strip() for q in train]
    _, ranked = lucene.run(mode, points, {"train": train_qs}, set())
    rows = [{"k1": k1, "b": b, "train": scored(corpus.passages, train, judge, ranked[("train", k1, b)])}
            for k1, b in points]
    best = pick(rows)
    dev_points = [(best["k1"], best["b"])] + ([LUCENE_DEFAULTS] if (best["k1"], best["b"]) != LUCENE_DEFAULTS else [])
    report, ranked = lucene.run(mode, dev_points, {"dev": [q.question.strip() for q in dev]}, {"dev"})
    runs = {(r["k1"], r["b"]): r["timed"]["dev"] for r in report["runs"]}
    out = {"engine": "lucene", "lucene": report["lucene"], "analysis": f"nori {mode}", "k1": best["k1"],
           "b": best["b"], "train": best["train"], "build_seconds": report["build_seconds"],
           "dev": scored(corpus.passages, dev, judge, ranked[("dev", best["k1"], best["b"])]),
           "single_qps_passes": runs[(best["k1"], best["b"])], "single_qps": max(runs[(best["k1"], best["b"])]),
           "sweep": rows}
    if len(dev_points) > 1:
        out["dev_at_defaults"] = {"k1": LUCENE_DEFAULTS[0], "b": LUCENE_DEFAULTS[1],
                                  **scored(corpus.passages, dev, judge, ranked[("dev", *LUCENE_DEFAULTS)])}
    return out


def rates(search, questions: list[str], batch: int) -> list[float]:
    """Queries/s of three passes (after five warm-up passes), `batch` questions per call."""
    chunks = [questions[i:i + batch] for i in range(0, len(questions), batch)]
    for _ in range(5):
        for c in chunks:
            search(c, 10)
    out = []
    for _ in range(3):
        t = time.perf_counter()
        for c in chunks:
            search(c, 10)
        out.append(round(len(questions) / (time.perf_counter() - t), 1))
    return out


def odqa_part(mode: str, bench: Path, index_dir: Path, corpus, train, dev, judge, grid) -> tuple[dict, object]:
    """(recall figures, the loaded retriever): k1/b chosen on train, an index built and loaded through
    odqa.api at those settings, dev scored through its `search`."""
    analyzer = make_analyzer("mecab", decompound=mode)
    sweep = sweep_bm25(corpus.passages, analyzer, BM25Config(), True, train, judge, grid)
    best = sweep["best"]["params"]
    cfg = IndexConfig()
    cfg = with_changes(cfg, analyzer=with_changes(cfg.analyzer, decompound=mode),
                       bm25=with_changes(cfg.bm25, k1=best["k1"], b=best["b"]))
    name = f"lucene-bench-{mode}"
    built = build_index(bench / "corpus.jsonl", name, cfg, index_dir=index_dir, quiet=True)
    ret = load_index(name, index_dir).sparse
    dev_m = evaluate(ret.search, dev, judge)["metrics"]
    # the direct scoring path against bm25s's own retrieve, on the same tokens
    questions = [q.question for q in dev]
    terms = ret.analyzer.tokenize(questions)
    ours = ret.scorer.top_k(terms, 10)
    ref = ret.scorer._bm25s().retrieve(terms, k=10, show_progress=False, n_threads=0)
    same_ids = sum(int((a == b).all()) for a, b in zip(ours[0], ref.documents))
    same_scores = sum(int((a == b).all()) for a, b in zip(ours[1], ref.scores))
    return {"engine": "odqa", "analysis": f"mecab decompound={mode}", "k1": best["k1"], "b": best["b"],
            "train": {k: round(sweep["best"][k], 4) for k in METRICS},
            "build_seconds": built.manifest["build_seconds"],
            "dev": {k: round(dev_m[k], 4) for k in METRICS},
            "dev_top10_same_as_bm25s_retrieve": {"ids": same_ids, "scores": same_scores, "of": len(questions)},
            "sweep": sweep["rows"]}, ret


def odqa_speed(run: dict, ret, dev) -> None:
    questions = [q.question for q in dev]
    single = rates(ret.search, questions, 1)
    batched = rates(ret.search, questions, 64)
    run.update(single_qps_passes=single, single_qps=max(single), batched_qps_passes=batched,
               batched_qps=max(batched))


def markdown(result: dict) -> str:
    rows = ["| engine | analysis | k1 / b (train) | train R@1 | dev R@1 | dev R@5 | dev R@20 | dev MRR | "
            "single q/s | batched q/s |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        d = r["dev"]
        rows.append(f"| {r['engine']} | {r['analysis']} | {r['k1']} / {r['b']} | {r['train']['recall@1']:.4f} | "
                    f"{d['recall@1']:.4f} | {d['recall@5']:.4f} | {d['recall@20']:.4f} | {d['mrr']:.4f} | "
                    f"{r['single_qps']:,.0f} | {r.get('batched_qps', 0):,.0f} |".replace("| 0 |", "| – |"))
        if "dev_at_defaults" in r:
            d = r["dev_at_defaults"]
            rows.append(f"| {r['engine']} | {r['analysis']} | {d['k1']} / {d['b']} (defaults) | – | "
                        f"{d['recall@1']:.4f} | {d['recall@5']:.4f} | {d['recall@20']:.4f} | {d['mrr']:.4f} | – | – |")
    return "\n".join(rows) + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--jars", type=Path, default=Path("/usr/share/java"), help="folder of the Lucene 8 jars")
    ap.add_argument("--lucene-modes", default="discard", help="nori decompound modes to try (none,discard,mixed)")
    ap.add_argument("--odqa-modes", default="none,mixed,discard", help="MeCab decompound modes to try")
    ap.add_argument("--k1", default=",".join(map(str, GRID["k1"])), help="k1 values of the train grid")
    ap.add_argument("--b", default=",".join(map(str, GRID["b"])), help="b values of the train grid")
    ap.add_argument("--out", type=Path, help="write the JSON result here")
    ap.add_argument("--markdown", type=Path, help="write the table here")
    args = ap.parse_args()
    classpath, why = lucene_classpath(args.jars)
    if classpath is None:
        print(f"bench_lucene: skipped: {why}")
        return 0
    grid = {"k1": [float(x) for x in args.k1.split(",")], "b": [float(x) for x in args.b.split(",")]}
    corpus = load_corpus(args.bench / "corpus.jsonl")
    train = load_questions(args.bench / "train_questions.jsonl")
    dev = load_questions(args.bench / "dev_questions.jsonl")
    judge = Judge(corpus.canonical, {p.id for p in corpus.passages})
    result = {"cores": os.cpu_count(), "load_average_before": [round(x, 2) for x in os.getloadavg()],
              "passages": len(corpus.passages), "train_questions": len(train), "dev_questions": len(dev),
              "grid": grid, "runs": []}
    with tempfile.TemporaryDirectory(prefix="bench-lucene-") as tmp:
        work = Path(tmp)
        odqa = []                      # recall first (the heavy part), then both speeds back to back
        for mode in filter(None, args.odqa_modes.split(",")):
            odqa.append(odqa_part(mode, args.bench, work / "indexes", corpus, train, dev, judge, grid))
            print(json.dumps({k: v for k, v in odqa[-1][0].items() if k != "sweep"}), flush=True)
        lucene = Lucene(classpath, work, [passage_text(p, True) for p in corpus.passages])
        for mode in filter(None, args.lucene_modes.split(",")):
            result["runs"].append(lucene_part(lucene, mode, corpus, train, dev, judge, grid))
            print(json.dumps({k: v for k, v in result["runs"][-1].items() if k != "sweep"}), flush=True)
        for run, ret in odqa:
            odqa_speed(run, ret, dev)
            result["runs"].append(run)
            print(json.dumps({k: v for k, v in run.items() if k != "sweep"}), flush=True)
    result["load_average_after"] = [round(x, 2) for x in os.getloadavg()]
    table = markdown(result)
    print(table)
    if args.out:
        args.out.write_text(json.dumps(result, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    if args.markdown:
        args.markdown.write_text(table, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
