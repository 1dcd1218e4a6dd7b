"""Dense ANN side by side: exact (flat), HNSW and IVF-PQ on an index's own vectors, and their memory at scale.

  python scripts/bench_ann.py --bench bench --index indexes/bench [--n 1000000] [--hnsw-n 100000]
      [--queries /tmp/odqa-ann/dev_queries.npy]

Part 1, the benchmark: the vectors of the flat FAISS index `odqa index --dense` built (`dense/index.faiss`, one
per passage window, `owners.npy` maps windows to passages) and the dev questions encoded once with the index's
encoder (cached in `--queries`). Each ANN index is built with `odqa.retrieval.dense.build_faiss` (the index
options `odqa index --dense-index hnsw|ivfpq` use) and reports: recall@1 and recall@10 against exact search
(the share of exact top-k vectors found), gold-passage R@1 (top vector's passage is the question's gold),
ms per single query (k 10, one thread), bytes per vector (serialised index / vectors) and build seconds.

Part 2, scale: `--n` synthetic 384-d vectors (bench vectors resampled with Gaussian noise, renormalised);
each index built in a fresh process (build seconds, peak RSS), written, then read back in another fresh
process: index bytes and resident memory once loaded (what a server holds), ms per query. HNSW is built
at `--hnsw-n` vectors when that is smaller (its build is the slow one) and its bytes scale linearly.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve()
CONFIGS = [("flat", {}), ("hnsw", {"hnsw_m": 32, "hnsw_ef_search": 16}), ("hnsw", {"hnsw_m": 32, "hnsw_ef_search": 64}),
           ("hnsw", {"hnsw_m": 32, "hnsw_ef_search": 128}), ("hnsw", {"hnsw_m": 32, "hnsw_ef_search": 256}),
           ("ivfpq", {"ivf_nlist": 128, "ivf_nprobe": 8, "pq_m": 48}),
           ("ivfpq", {"ivf_nlist": 128, "ivf_nprobe": 32, "pq_m": 48}),
           ("ivfpq", {"ivf_nlist": 128, "ivf_nprobe": 32, "pq_m": 96}),
           ("ivfpq", {"ivf_nlist": 128, "ivf_nprobe": 128, "pq_m": 96})]
SCALE = [("flat", {}), ("hnsw", {"hnsw_m": 32, "hnsw_ef_search": 128}),
         ("ivfpq", {"ivf_nlist": 1024, "ivf_nprobe": 32, "pq_m": 48}),
         ("ivfpq", {"ivf_nlist": 1024, "ivf_nprobe": 32, "pq_m": 96})]


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def _peak_mb() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _cfg(kind: str, opts: dict):
    from odqa.config import DenseConfig
    return DenseConfig(index=kind, **opts)


def _label(kind: str, opts: dict) -> str:
    return kind + "".join(f" {k}={v}" for k, v in opts.items())


def _single_ms(index, q: np.ndarray, k: int = 10) -> float:
    t = time.perf_counter()
    for i in range(len(q)):
        index.search(q[i:i + 1], k)
    return (time.perf_counter() - t) / len(q) * 1000


def encode_queries(index_dir: Path, bench: Path, cache: Path) -> np.ndarray:
    if cache.exists():
        return np.load(cache)
    from odqa.corpus import load_questions
    from odqa.retrieval.dense import DenseEncoder
    d = json.loads((index_dir / "manifest.json").read_text(encoding="utf-8"))["dense"]
    enc = DenseEncoder(d["encoder"], d["max_length"], 32)
    q = enc.encode([x.question for x in load_questions(bench / "dev_questions.jsonl")], "query")
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.save(cache, q)
    return q


def bench_part(args) -> None:
    import faiss
    from odqa.corpus import load_questions
    from odqa.retrieval.dense import build_faiss
    faiss.omp_set_num_threads(1)
    flat = faiss.read_index(str(args.index / "dense" / "index.faiss"))
    vecs = flat.reconstruct_n(0, flat.ntotal)
    owners_f = args.index / "dense" / "owners.npy"
    owners = np.load(owners_f) if owners_f.exists() else np.arange(flat.ntotal)
    ids = [json.loads(line)["id"] for line in open(args.index / "passages.jsonl", encoding="utf-8")]
    aliases = json.loads((args.index / "aliases.json").read_text(encoding="utf-8"))
    gold = [{aliases.get(g, g) for g in x.gold_ids} for x in load_questions(args.bench / "dev_questions.jsonl")]
    q = encode_queries(args.index, args.bench, args.queries)
    _, exact = flat.search(q, 10)
    built: dict[str, tuple] = {}            # one build per graph / quantiser; search settings changed on it
    for kind, opts in CONFIGS:
        key = json.dumps([kind, {k: v for k, v in opts.items() if k not in ("hnsw_ef_search", "ivf_nprobe")}])
        if key not in built:
            t = time.perf_counter()
            built[key] = (build_faiss(vecs, _cfg(kind, opts)), time.perf_counter() - t)
        index, build_s = built[key]
        if kind == "hnsw":
            index.hnsw.efSearch = opts["hnsw_ef_search"]
        if kind == "ivfpq":
            index.nprobe = opts["ivf_nprobe"]
        _, got = index.search(q, 10)
        r1 = float(np.mean(got[:, 0] == exact[:, 0]))
        r10 = float(np.mean([len(set(a) & set(b)) / 10 for a, b in zip(got, exact)]))
        gold_r1 = float(np.mean([ids[owners[row[0]]] in g for row, g in zip(got, gold)]))
        print(json.dumps({"part": "bench", "index": _label(kind, opts), "vectors": int(index.ntotal),
                          "recall@1_vs_exact": round(r1, 4), "recall@10_vs_exact": round(r10, 4),
                          "gold_R@1": round(gold_r1, 4), "ms_per_query": round(_single_ms(index, q), 3),
                          "bytes_per_vector": round(len(faiss.serialize_index(index)) / index.ntotal, 1),
                          "build_s": round(build_s, 2)}), flush=True)


def synthetic(index_dir: Path, n: int, seed: int = 0) -> np.ndarray:
    import faiss
    flat = faiss.read_index(str(index_dir / "dense" / "index.faiss"))
    base = flat.reconstruct_n(0, flat.ntotal)
    rng = np.random.default_rng(seed)
    out = np.empty((n, base.shape[1]), dtype=np.float32)
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        x = base[rng.integers(0, len(base), e - s)] + rng.normal(0, 0.03, (e - s, base.shape[1])).astype(np.float32)
        out[s:e] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out


def scale_build(args, kind: str, opts: dict, n: int, path: Path) -> dict:
    import faiss
    from odqa.retrieval.dense import build_faiss
    vecs = synthetic(args.index, n)
    before = _rss_mb()
    t = time.perf_counter()
    index = build_faiss(vecs, _cfg(kind, opts))
    secs = time.perf_counter() - t
    faiss.write_index(index, str(path))
    return {"build_s": round(secs, 1), "build_peak_rss_mb": _peak_mb(), "rss_with_vectors_before_build_mb": before}


def scale_load(args, path: Path) -> dict:
    import faiss
    faiss.omp_set_num_threads(1)
    before = _rss_mb()
    t = time.perf_counter()
    index = faiss.read_index(str(path))
    load_s = time.perf_counter() - t
    rss = _rss_mb()
    q = synthetic(args.index, 200, seed=1)
    return {"vectors": int(index.ntotal), "index_mb": round(path.stat().st_size / 2**20, 1),
            "bytes_per_vector": round(path.stat().st_size / index.ntotal, 1), "load_s": round(load_s, 2),
            "rss_after_load_mb": rss, "rss_of_index_mb": round(rss - before, 1),
            "ms_per_query": round(_single_ms(index, q), 3)}


def _child(*a: str) -> dict:
    out = subprocess.run([sys.executable, str(HERE), *a], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(out.stderr[-3000:])
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--index", type=Path, default=Path("indexes/bench"))
    ap.add_argument("--queries", type=Path, default=Path("/tmp/odqa-ann/dev_queries.npy"))
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--hnsw-n", type=int, default=100_000)
    ap.add_argument("--work", type=Path, default=Path("/tmp/odqa-ann"))
    ap.add_argument("--skip-bench", action="store_true")
    ap.add_argument("--only", default="", help="scale part: only these index kinds (comma-separated)")
    ap.add_argument("--step", help=argparse.SUPPRESS)
    ap.add_argument("--kind", help=argparse.SUPPRESS)
    ap.add_argument("--opts", help=argparse.SUPPRESS)
    ap.add_argument("--size", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--path", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.step == "build":
        print(json.dumps(scale_build(args, args.kind, json.loads(args.opts), args.size, args.path)))
        return
    if args.step == "load":
        print(json.dumps(scale_load(args, args.path)))
        return
    print(json.dumps({"conditions": {"cpus": os.cpu_count(), "load_average": os.getloadavg()}}), flush=True)
    if not args.skip_bench:
        bench_part(args)
    args.work.mkdir(parents=True, exist_ok=True)
    only = {x for x in args.only.split(",") if x}
    for kind, opts in SCALE:
        if only and kind not in only:
            continue
        n = min(args.n, args.hnsw_n) if kind == "hnsw" else args.n
        path = args.work / f"{kind}-{n}.faiss"
        common = ["--index", str(args.index), "--kind", kind, "--opts", json.dumps(opts), "--size", str(n),
                  "--path", str(path)]
        built = _child("--step", "build", *common)
        loaded = _child("--step", "load", *common)
        path.unlink()
        print(json.dumps({"part": "scale", "index": _label(kind, opts), **built, **loaded}), flush=True)
    print(json.dumps({"conditions_after": {"load_average": os.getloadavg()}}), flush=True)


if __name__ == "__main__":
    main()
