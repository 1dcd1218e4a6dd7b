"""Scale run: how the sparse index's build time, memory, size, load time and queries/s grow with the corpus.

  python scripts/bench_scale.py --bench bench --sizes 10000,100000,1000000 [--real] [--pool DATA]
      [--legacy 100000] [--work /tmp/odqa-scale] [--out scale.jsonl]

Synthetic corpora are generated from the benchmark corpus's own words (frequency-weighted, 20-60 words a
passage, fixed seed) and written as JSONL; queries are 4-8 words drawn from random generated passages
(1,000). `--real` adds the benchmark corpus itself (its dev questions as queries); `--pool DATA` adds every
context of KLUE-MRC and KorQuAD 1.0 and every KLUE-RE sentence (de-duplicated by the build).

Each step runs in a fresh process, so its peak memory is its own:
- build: `odqa.index.indexing.build_index` end to end (what `odqa index CORPUS --no-dense` does: the
  corpus streamed in chunks, MeCab, bm25s, checksums, manifest); peak RSS of the build process and of its
  largest MeCab worker;
- load, once with the BM25 arrays memory-mapped and once read into memory: `load_index` + `.sparse`,
  resident memory after the load and after the queries (anonymous vs file-backed pages);
- queries/s through `SparseRetriever.search`: the 1,000 queries as one batch and one at a time (k 10).
`--legacy N` also builds size N the old way (whole corpus in memory: `load_corpus` + `SparseRetriever.build`)
for a side-by-side peak-memory figure. One JSON line per step; `--out` appends them to a file.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()


# ----------------------------------------------------------------------------- corpora
def generate(bench: Path, n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    counts = collections.Counter()
    with open(bench / "corpus.jsonl", encoding="utf-8") as fh:
        for line in fh:
            counts.update(json.loads(line)["text"].split())
    words = np.array(list(counts))
    p = np.array(list(counts.values()), dtype=np.float64)
    p /= p.sum()
    rng = np.random.default_rng(seed)
    lengths = rng.integers(20, 61, size=n)
    flat = rng.choice(len(words), size=int(lengths.sum()), p=p)
    texts, pos = [], 0
    for ln in lengths:
        texts.append(" ".join(words[flat[pos:pos + ln]]))
        pos += ln
    queries = []
    for i in rng.integers(0, n, size=1000):
        ws = texts[i].split()
        queries.append(" ".join(rng.choice(ws, size=min(len(ws), int(rng.integers(4, 9))), replace=False)))
    return texts, queries


def _write_jsonl(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as fh:
        for r in rows:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")


def make_synthetic(bench: Path, n: int, folder: Path) -> None:
    texts, queries = generate(bench, n)
    _write_jsonl(folder / "corpus.jsonl", ({"id": f"s{i}", "title": "", "text": t} for i, t in enumerate(texts)))
    (folder / "queries.json").write_text(json.dumps(queries, ensure_ascii=False), encoding="utf-8")


def dev_queries(bench: Path) -> list[str]:
    with open(bench / "dev_questions.jsonl", encoding="utf-8") as fh:
        return [json.loads(line)["question"] for line in fh if line.strip()]


def make_pool(data: Path, bench: Path, folder: Path) -> None:
    """Every context of KLUE-MRC and KorQuAD 1.0 (train + dev) and every KLUE-RE sentence, as JSONL."""
    rows = []
    for f in [data / "klue_mrc" / "klue_mrc_train.json", data / "korquad1" / "korquad1_train.json",
              data / "korquad1" / "korquad1_dev.json"]:
        for ai, art in enumerate(json.loads(f.read_text(encoding="utf-8"))["data"]):
            for pi, para in enumerate(art["paragraphs"]):
                rows.append({"id": f"{f.stem}-{ai}-{pi}", "title": art.get("title", ""), "text": para["context"]})
    for f in sorted((data / "klue_re").glob("klue-re-*.json")):
        for i, r in enumerate(json.loads(f.read_text(encoding="utf-8"))):
            rows.append({"id": f"{f.stem}-{r.get('guid', i)}", "title": "", "text": r["sentence"]})
    _write_jsonl(folder / "corpus.jsonl", rows)
    (folder / "queries.json").write_text(json.dumps(dev_queries(bench), ensure_ascii=False), encoding="utf-8")


# ----------------------------------------------------------------------------- measurements
def _status() -> dict:
    """Resident memory now (MB): total, anonymous (the process's own) and file-backed (mapped files)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return {"rss_mb": out.get("VmRSS"), "rss_anon_mb": out.get("RssAnon"), "rss_file_mb": out.get("RssFile")}


def _peak() -> dict:
    return {"peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "peak_rss_worker_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024)}


def _disk(folder: Path) -> dict:
    files = [p for p in folder.rglob("*") if p.is_file()]
    size = lambda fs: round(sum(p.stat().st_size for p in fs) / 2**20, 1)   # noqa: E731
    return {"index_mb": size(files), "bm25_mb": size([p for p in files if "bm25" in p.parts]),
            "passages_mb": size([p for p in files if p.name == "passages.jsonl"])}


def step_build(folder: Path, legacy: bool) -> dict:
    from odqa.config import DenseConfig, IndexConfig
    cfg = IndexConfig(dense=DenseConfig(enabled=False))
    corpus = folder / "corpus.jsonl"
    root = folder / ("indexes-legacy" if legacy else "indexes")
    shutil.rmtree(root, ignore_errors=True)
    t = time.perf_counter()
    if legacy:       # the whole corpus and its terms in memory, as builds were before streaming
        from odqa.corpus import load_corpus
        from odqa.index import store
        from odqa.retrieval.sparse import SparseRetriever
        from odqa.text.analyzers import make_analyzer
        c = load_corpus(corpus)
        (root / "legacy").mkdir(parents=True)
        store.write_passages(root / "legacy", c)
        SparseRetriever.build(c.passages, make_analyzer("mecab"), cfg.bm25).save(root / "legacy")
        n, chars = len(c.passages), sum(len(p.text) for p in c.passages)
    else:
        from odqa.index.indexing import build_index
        res = build_index(corpus, "scale", cfg, root=root, quiet=True)
        n, chars = res.manifest["corpus"]["passages"], None
    secs = time.perf_counter() - t
    out = {"step": "build-legacy" if legacy else "build", "passages": n, "build_s": round(secs, 1), **_peak()}
    if chars:
        out["characters"] = chars
    out.update(_disk(root / ("legacy" if legacy else "scale")))
    if legacy:
        shutil.rmtree(root, ignore_errors=True)
    return out


def step_load(folder: Path, mmap: bool) -> dict:
    import gc
    before = _status()["rss_mb"]
    from odqa.index.indexing import load_index
    queries = json.loads((folder / "queries.json").read_text(encoding="utf-8"))
    t = time.perf_counter()
    idx = load_index("scale", folder / "indexes", mmap=mmap)
    sparse = idx.sparse                         # BM25 arrays loaded (or mapped) and checked here
    load_s = time.perf_counter() - t
    gc.collect()
    after_load = _status()
    sparse.search(queries[:5], 10)               # the analyzer's first call (MeCab dictionary) out of the timing
    t = time.perf_counter()
    sparse.search(queries, 10)
    batched = len(queries) / (time.perf_counter() - t)
    t = time.perf_counter()
    for q in queries:
        sparse.search([q], 10)
    single = len(queries) / (time.perf_counter() - t)
    after_q = _status()
    return {"step": "load-mmap" if mmap else "load-in-memory", "passages": len(idx.passages),
            "load_s": round(load_s, 2), "rss_before_import_mb": before,
            **{f"after_load_{k}": v for k, v in after_load.items()},
            **{f"after_queries_{k}": v for k, v in after_q.items()},
            "queries": len(queries), "qps_batched": round(batched, 1), "qps_single": round(single, 1)}


def _child(*args: str) -> dict:
    env = {**os.environ, "ODQA_QUIET": "1"}
    out = subprocess.run([sys.executable, str(HERE), *args], capture_output=True, text=True, env=env)
    if out.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_corpus(label: str, folder: Path, legacy: bool, emit) -> None:
    emit({"corpus": label, **_child("--step", "build", "--folder", str(folder))})
    if legacy:
        emit({"corpus": label, **_child("--step", "build-legacy", "--folder", str(folder))})
    for mode in ("load-mmap", "load-in-memory"):
        emit({"corpus": label, **_child("--step", mode, "--folder", str(folder))})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--real", action="store_true", help="also the benchmark corpus itself")
    ap.add_argument("--pool", type=Path, help="also a pool of real Korean passages from this data folder")
    ap.add_argument("--legacy", default="", help="sizes also built the old, in-memory way")
    ap.add_argument("--work", type=Path, default=Path("/tmp/odqa-scale"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step:
        steps = {"build": lambda: step_build(args.folder, False), "build-legacy": lambda: step_build(args.folder, True),
                 "load-mmap": lambda: step_load(args.folder, True), "load-in-memory": lambda: step_load(args.folder, False)}
        print(json.dumps(steps[args.step]()))
        return

    def emit(row: dict) -> None:
        print(json.dumps(row, ensure_ascii=False), flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as fh:
                fh.write(json.dumps(row, ensure_ascii=False) + "\n")

    emit({"conditions": {"cpus": os.cpu_count(), "load_average": os.getloadavg(),
                         "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})
    legacy = {int(x) for x in args.legacy.split(",") if x}
    corpora = []
    if args.real:
        corpora.append(("bench", lambda f: (shutil.copy(args.bench / "corpus.jsonl", f / "corpus.jsonl"),
                                            (f / "queries.json").write_text(json.dumps(dev_queries(args.bench),
                                                                                       ensure_ascii=False)))))
    if args.pool:
        corpora.append(("korean-pool", lambda f: make_pool(args.pool, args.bench, f)))
    for n in (int(x) for x in args.sizes.split(",") if x):
        corpora.append((f"synthetic-{n}", lambda f, n=n: make_synthetic(args.bench, n, f)))
    for label, make in corpora:
        folder = args.work / label
        folder.mkdir(parents=True, exist_ok=True)
        t = time.perf_counter()
        make(folder)
        emit({"corpus": label, "step": "generate", "seconds": round(time.perf_counter() - t, 1),
              "corpus_mb": round((folder / "corpus.jsonl").stat().st_size / 2**20, 1)})
        run_corpus(label, folder, int(label.rsplit("-", 1)[-1]) in legacy if label.startswith("synthetic") else False,
                   emit)
        shutil.rmtree(folder / "indexes", ignore_errors=True)
    emit({"conditions_after": {"load_average": os.getloadavg(),
                               "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}})


if __name__ == "__main__":
    main()
