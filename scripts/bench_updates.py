"""Live index updates against full rebuilds, on a synthetic corpus.

    python scripts/bench_updates.py --passages 100000 --out runs/bench_updates.json

Builds a synthetic corpus (Zipf-distributed words, whitespace analysis), then in one run: the full build,
an update that adds 1 % new passages and deletes another 1 %, a full rebuild of the resulting passages,
every dev query's top-10 from both (ids and float32 scores), the same after compaction, and search speed
of each shape. Dense: the same update through `odqa.index.dense_updates.update_dense` with precomputed
random unit vectors (no encoder), compared with a flat FAISS index built from the resulting vectors.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import odqa

WS = ["analyzer.name=whitespace"]


def corpus(n: int, start: int, rng: random.Random, vocab: int = 50_000) -> list[dict]:
    cum = list(itertools.accumulate(1 / (r + 1) for r in range(vocab)))
    words = [f"w{i}" for i in range(vocab)]
    return [{"id": f"p{i}", "title": "", "text": " ".join(rng.choices(words, cum_weights=cum, k=rng.randint(20, 120)))}
            for i in range(start, start + n)]


def write(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def top10(name: str, root: Path, queries: list[str]):
    retriever = odqa.load_index(name, root).sparse
    (hits, secs) = timed(lambda: retriever.search(queries, 10))
    return [[(h.passage.id, h.score) for h in q] for q in hits], len(queries) / secs


def dense_check(n: int, dim: int, rng: np.random.Generator, work: Path) -> dict:
    """The dense update path with precomputed vectors: ids of the top-10 equal a flat index of the result."""
    import faiss

    from odqa.index.dense_updates import update_dense

    def unit(m):
        v = rng.standard_normal((m, dim)).astype(np.float32)
        return v / np.linalg.norm(v, axis=1, keepdims=True)
    base, new = unit(n), unit(n // 100)
    old = work / "dense-old"
    (old / "dense").mkdir(parents=True)
    t_build = time.perf_counter()
    index = faiss.IndexFlatIP(dim)
    index.add(base)
    faiss.write_index(index, str(old / "dense" / "index.faiss"))
    t_build = time.perf_counter() - t_build
    removed = np.sort(rng.choice(n, n // 100, replace=False))
    by_text = {f"n{i}": v for i, v in enumerate(new)}
    added = [odqa.Passage(f"n{i}", "", f"n{i}") for i in range(len(new))]
    tmp = work / "dense-new"
    tmp.mkdir()
    record = {"index": "flat", "encoder": "precomputed"}
    _, t_update = timed(lambda: update_dense(old, tmp, record, n, removed, added, False,
                                             encode=lambda texts: (np.stack([by_text[t] for t in texts]), None)))
    keep = np.ones(n, dtype=bool)
    keep[removed] = False
    full = faiss.IndexFlatIP(dim)
    full.add(np.concatenate([base[keep], new]))
    got = faiss.read_index(str(tmp / "dense" / "index.faiss"))
    queries = unit(200)
    (_, a), (_, b) = got.search(queries, 10), full.search(queries, 10)
    return {"passages": n, "dim": dim, "queries": len(queries), "top10_equal": bool((a == b).all()),
            "index_write_seconds": round(t_build, 3), "update_seconds": round(t_update, 3)}


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=100_000)
    ap.add_argument("--queries", type=int, default=500)
    ap.add_argument("--dense-dim", type=int, default=384)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    rng = random.Random(args.seed)
    n, share = args.passages, max(1, args.passages // 100)
    work = Path(tempfile.mkdtemp(prefix="bench-updates-"))
    try:
        root = work / "idx"
        base = corpus(n, 0, rng)
        added = corpus(share, n, rng)
        deleted = sorted(rng.sample(range(n), share))
        gone = {f"p{i}" for i in deleted}
        queries = [" ".join(rng.choice(r["text"].split()) for _ in range(rng.randint(2, 6)))
                   for r in rng.sample(base, args.queries)]
        _, t_build = timed(lambda: odqa.build_index(write(work / "base.jsonl", base), "live", overrides=WS,
                                                    index_dir=root, quiet=True))
        rep, t_update = timed(lambda: odqa.update_passages("live", add=write(work / "add.jsonl", added),
                                                           delete=sorted(gone), index_dir=root))
        result = [r for r in base if r["id"] not in gone] + added
        _, t_full = timed(lambda: odqa.build_index(write(work / "full.jsonl", result), "full", overrides=WS,
                                                   index_dir=root, quiet=True))
        live, qps_live = top10("live", root, queries)
        want, qps_full = top10("full", root, queries)
        _, t_compact = timed(lambda: odqa.compact_index("live", root))
        compacted, qps_compacted = top10("live", root, queries)
        out = {
            "passages": n, "added": len(added), "deleted": len(gone), "queries": len(queries),
            "analyzer": "whitespace", "bm25": "atire k1 0.3 b 0.1 (defaults)",
            "build_seconds": round(t_build, 2), "update_seconds": round(t_update, 2),
            "full_rebuild_seconds": round(t_full, 2), "compact_seconds": round(t_compact, 2),
            "update_share_of_rebuild": round(t_update / t_full, 4),
            "compact_share_of_rebuild": round(t_compact / t_full, 4),
            "top10_equal_after_update": live == want, "top10_equal_after_compact": compacted == want,
            "queries_per_second": {"rebuilt": round(qps_full, 1), "updated": round(qps_live, 1),
                                   "compacted": round(qps_compacted, 1)},
            "update_report": {k: v for k, v in rep.to_json().items() if k not in ("added", "deleted", "aliased")},
            "dense": dense_check(n, args.dense_dim, np.random.default_rng(args.seed), work),
            "date": time.strftime("%Y-%m-%d"),
        }
    finally:
        shutil.rmtree(work, ignore_errors=True)
    text = json.dumps(out, indent=2)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n", encoding="utf-8")
    return out


if __name__ == "__main__":
    sys.exit(0 if main() else 1)
