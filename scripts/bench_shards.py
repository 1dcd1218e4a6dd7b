"""Sharded dense encoding against a single-process build, side by side in one run.

Takes the first PASSAGES passages of the bench corpus, then builds three indexes of them with the same
dense settings (the bench index's: offline e5-small, windows of 256 tokens 128 apart):

  single   odqa.build_index (one process encodes everything)
  cmd      N shards, each by its own `odqa index SLICE --name cmd --dense --shard I/N` process (one after
           the other: this machine's cores are shared), then `odqa index SLICE --name cmd --dense --merge`
  ray      odqa.build_index_ray, N shards on a local Ray instance of --ray-cpus CPUs

and reports, for each: encoding passages/s (sum of the shards' encode time for the sharded ones; wall
time of the whole build too), the largest difference of its vectors to the single-process ones, whether
the dense top-10 of every dev question whose gold passage is in the slice is the same, and R@1/R@5.

    PYTHONPATH=src nice -n 10 python scripts/bench_shards.py --out /tmp/shards-bench [--passages 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SETS = ["dense.enabled=true", "dense.encoder=offline:multilingual-e5-small", "dense.max_length=256",
        "dense.window_stride=128"]


def vectors(root: Path, name: str):
    import faiss
    d = root / name / "dense"
    index = faiss.read_index(str(d / "index.faiss"))
    return index.reconstruct_n(0, index.ntotal), np.load(d / "owners.npy")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", default="bench")
    ap.add_argument("--out", required=True)
    ap.add_argument("--passages", type=int, default=1000)
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--ray-cpus", type=int, default=2)
    ap.add_argument("--skip-ray", action="store_true")
    args = ap.parse_args()
    import odqa
    from odqa.corpus import load_questions

    out = Path(args.out)
    root = out / "indexes"
    out.mkdir(parents=True, exist_ok=True)
    # the slice: the gold passages of the first dev questions first (so dev recall has questions to score),
    # then the corpus in order, N passages in all
    every = (Path(args.bench) / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
    gold = {g for q in load_questions(Path(args.bench) / "dev_questions.jsonl")[:args.passages // 3] for g in q.gold_ids}
    lines = [x for x in every if json.loads(x)["id"] in gold][:args.passages]
    taken = set(lines)
    lines += [x for x in every if x not in taken][:args.passages - len(lines)]
    corpus = out / "slice.jsonl"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ids = {json.loads(x)["id"] for x in lines}
    qs = [q for q in load_questions(Path(args.bench) / "dev_questions.jsonl") if set(q.gold_ids) & ids]

    rows = {}
    t = time.perf_counter()
    single = odqa.build_index(corpus, "single", None, SETS, index_dir=root, quiet=True, force=True)
    rows["single process"] = {"wall_s": time.perf_counter() - t, "dense": single.manifest["dense"]}

    t = time.perf_counter()
    flags = [f"--set={s}" for s in SETS] + ["--index-dir", str(root), "-q"]
    for i in range(1, args.shards + 1):
        subprocess.run([sys.executable, "-m", "odqa", "index", str(corpus), "--name", "cmd", "--shard",
                        f"{i}/{args.shards}", "--force", *flags], check=True)
    subprocess.run([sys.executable, "-m", "odqa", "index", str(corpus), "--name", "cmd", "--merge", "--force",
                    *flags], check=True)
    rows[f"{args.shards} shards by commands"] = {"wall_s": time.perf_counter() - t,
                                                 "dense": odqa.load_index("cmd", root).manifest["dense"]}
    names = {"single process": "single", f"{args.shards} shards by commands": "cmd"}
    if not args.skip_ray:
        t = time.perf_counter()
        try:
            res = odqa.build_index_ray(corpus, "ray", args.shards, None, SETS, index_dir=root, quiet=True,
                                       force=True, num_cpus=args.ray_cpus)
        except Exception as e:        # a local Ray instance may fail to start on an overloaded machine
            print(f"Ray run failed: {e.__class__.__name__}: {str(e)[:300]}", file=sys.stderr)
            args.skip_ray = True
    if not args.skip_ray:
        rows[f"{args.shards} shards on Ray (local, {args.ray_cpus} CPUs)"] = {"wall_s": time.perf_counter() - t,
                                                                            "dense": res.manifest["dense"]}
        names[f"{args.shards} shards on Ray (local, {args.ray_cpus} CPUs)"] = "ray"

    ref_v, ref_o = vectors(root, "single")
    base = odqa.load_index("single", root)
    ref_hits = [[h.passage.id for h in x] for x in base.retriever("dense").search([q.question for q in qs], 10)]
    report = {"passages": args.passages, "questions": len(qs), "shards": args.shards, "rows": []}
    for label, r in rows.items():
        name = names[label]
        v, o = vectors(root, name)
        idx = odqa.load_index(name, root)
        hits = [[h.passage.id for h in x] for x in idx.retriever("dense").search([q.question for q in qs], 10)]
        m = odqa.evaluate_retrieval(idx, qs, mode="dense", k=10).metrics
        d = r["dense"]
        report["rows"].append({
            "build": label, "vectors": int(len(v)), "encode_seconds": d["encode_seconds"],
            "passages_per_second": d["passages_per_second"], "wall_seconds": round(r["wall_s"], 1),
            "shard_seconds": (d.get("shards") or {}).get("encode_seconds"),
            "max_abs_diff": float(np.abs(v - ref_v).max()) if v.shape == ref_v.shape else None,
            "same_owners": bool(len(o) == len(ref_o) and (o == ref_o).all()),
            "same_top10": sum(a == b for a, b in zip(hits, ref_hits)), "recall@1": m["recall@1"],
            "recall@5": m["recall@5"]})
    (out / "report.json").write_text(json.dumps(report, indent=1) + "\n", encoding="utf-8")
    print(f"{args.passages} passages, {len(qs)} dev questions with their gold passage in the slice")
    print("| build | vectors | encode s | passages/s | build wall s | max abs diff to single | same top-10 | R@1 | R@5 |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in report["rows"]:
        print(f"| {r['build']} | {r['vectors']} | {r['encode_seconds']} | {r['passages_per_second']} | "
              f"{r['wall_seconds']} | {r['max_abs_diff']:.2e} | {r['same_top10']}/{len(qs)} | "
              f"{r['recall@1']:.3f} | {r['recall@5']:.3f} |")


if __name__ == "__main__":
    main()
