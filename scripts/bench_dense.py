"""Dense encoding speed and what it keeps, side by side in one run.

  python scripts/bench_dense.py --bench bench --sample 1600 [--repeat 2] [--recall]

Speed (same random sample of benchmark passages, max length 256, --batch-size 16, --threads 2):
  plain       torch fp32, corpus order shuffled, dynamic padding per batch (the usual HF loop)
  bucketed    torch fp32, texts sorted by token length before batching (odqa's encoder)
  int8        bucketed + torch dynamic int8 quantisation of the Linear layers (quantize: int8)
  onnx        bucketed, ONNX Runtime fp32 (quantize: onnx)
  onnx_int8   bucketed, ONNX Runtime dynamic int8 MatMuls (quantize: onnx-int8)
The same is repeated on long passages only (KorQuAD paragraphs, cut at 256 tokens).
Variants run round-robin, --repeat times, and the best rate of each is kept, so a
busy (shared) CPU slows them alike. The ONNX models are exported/quantised once into
the odqa cache before timing. Cosines are against bucketed fp32 (min and mean).
With --recall: dev recall@1/5/20 of fp32 vs --fast (default onnx-int8) over the whole
benchmark corpus, plus FAISS search latency (flat and HNSW) and index memory.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np

VARIANTS = ("plain", "bucketed", "int8", "onnx", "onnx_int8")
QUANTIZE = {"bucketed": "none", "int8": "int8", "onnx": "onnx", "onnx_int8": "onnx-int8"}


def plain_encode(enc, texts, batch_size=16):
    """Reference: what a straightforward HF loop does (no length sorting)."""
    import torch
    from odqa.retrieval.dense import mean_pool
    out = []
    with torch.inference_mode():
        for s in range(0, len(texts), batch_size):
            b = enc.tokenizer([enc.prefix["passage"] + t for t in texts[s:s + batch_size]], truncation=True,
                              max_length=enc.max_length, padding=True, return_tensors="pt")
            out.append(mean_pool(enc.model(**b).last_hidden_state, b["attention_mask"]).numpy())
    return np.vstack(out)


def rates(fns: dict, texts, repeat: int) -> tuple[dict, dict]:
    """Passages/s of each function (best of `repeat` round-robin runs) and its vectors."""
    for fn in fns.values():
        fn(texts[:16])  # warm-up
    best = {k: 0.0 for k in fns}
    vecs = {}
    for _ in range(repeat):
        for k, fn in fns.items():
            t = time.perf_counter()
            vecs[k] = fn(texts)
            best[k] = max(best[k], len(texts) / (time.perf_counter() - t))
    return best, vecs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--sample", type=int, default=1600)
    ap.add_argument("--long", type=int, default=96)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--encoder", default="offline:multilingual-e5-small")
    ap.add_argument("--variants", default=",".join(VARIANTS), help=f"subset of {','.join(VARIANTS)}")
    ap.add_argument("--fast", default="onnx_int8", choices=VARIANTS[2:], help="variant compared with fp32 by --recall")
    ap.add_argument("--recall", action="store_true")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(args.threads)
    from odqa.corpus import load_corpus, load_questions
    from odqa.retrieval.dense import DenseEncoder
    from odqa.retrieval.sparse import passage_text

    corpus = load_corpus(args.bench / "corpus.jsonl")
    texts = [passage_text(p, True) for p in corpus.passages]
    rng = random.Random(0)
    sample = rng.sample(texts, args.sample)
    long = [passage_text(p, True) for p in corpus.passages if not p.id.startswith("re-")][:args.long]
    wanted = [v for v in args.variants.split(",") if v]
    assert set(wanted) <= set(VARIANTS), f"unknown variant in {wanted}"
    needed = {v for v in wanted if v != "plain"} | {"bucketed"} | ({args.fast} if args.recall else set())
    encs = {}
    for v in VARIANTS[1:]:
        if v in needed:
            t = time.perf_counter()
            encs[v] = DenseEncoder(args.encoder, 256, args.batch_size, quantize=QUANTIZE[v], threads=args.threads)
            print(json.dumps({"loaded": v, "seconds": round(time.perf_counter() - t, 1)}), flush=True)
    fns = {v: (lambda t: plain_encode(encs["bucketed"], t, args.batch_size)) if v == "plain" else encs[v].encode
           for v in wanted}
    res = {}
    for name, data in (("benchmark_sample", sample), ("long_paragraphs", long)):
        r, vecs = rates(fns, data, args.repeat)
        ref = vecs["bucketed"] if "bucketed" in vecs else encs["bucketed"].encode(data)
        row = {"passages": len(data), **{f"{v}_per_s": round(r[v], 1) for v in wanted}}
        if "plain" in r:
            row.update({f"speedup_{v}_vs_plain": round(r[v] / r["plain"], 2) for v in wanted if v != "plain"})
        for v in wanted:
            if v != "bucketed":
                cos = (vecs[v] * ref).sum(1)
                row[f"cosine_{v}_min"] = round(float(cos.min()), 5)
                row[f"cosine_{v}_mean"] = round(float(cos.mean()), 5)
        res[name] = row
        print(json.dumps({name: row}), flush=True)
    if args.recall:
        import faiss
        from odqa.config import DenseConfig
        from odqa.retrieval.dense import DenseRetriever, build_faiss
        from odqa.evaluation.retrieval import Judge, evaluate
        dev = load_questions(args.bench / "dev_questions.jsonl")
        judge = Judge(corpus.canonical, {p.id for p in corpus.passages})
        for name in ("bucketed", args.fast):
            enc = encs[name]
            t = time.perf_counter()
            vecs = enc.encode(texts)
            secs = time.perf_counter() - t
            for kind in ("flat", "hnsw"):
                index = build_faiss(vecs, DenseConfig(index=kind))
                m = evaluate(DenseRetriever(corpus.passages, enc, index).search, dev, judge)["metrics"]
                q = enc.encode([d.question for d in dev], "query")
                t = time.perf_counter()
                for i in range(len(q)):
                    index.search(q[i:i + 1], 100)
                lat = (time.perf_counter() - t) / len(q) * 1000
                mem = faiss.serialize_index(index).nbytes / 2 ** 20
                key = f"{'fp32' if name == 'bucketed' else name}_{kind}"
                res[key] = {"encode_per_s_full_corpus": round(len(texts) / secs, 1),
                            **{k: round(m[k], 4) for k in ("recall@1", "recall@5", "recall@20", "mrr")},
                            "search_ms_per_query_k100": round(lat, 3), "index_mb": round(mem, 1)}
                print(json.dumps({key: res[key]}), flush=True)
        for kind in ("flat", "hnsw"):
            a, b = res[f"fp32_{kind}"], res[f"{args.fast}_{kind}"]
            print(json.dumps({f"{args.fast}_minus_fp32_{kind}": {k: round(b[k] - a[k], 4) for k in
                                                                  ("recall@1", "recall@5", "recall@20", "mrr")}}))


if __name__ == "__main__":
    main()
