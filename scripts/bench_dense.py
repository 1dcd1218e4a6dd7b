"""Dense encoding speed and what it keeps, side by side in one run.

  python scripts/bench_dense.py --bench bench --sample 1600 [--recall]

Speed (same random sample of benchmark passages, max length 256, batch 16, 2 threads):
  plain      fp32, corpus order shuffled, dynamic padding per batch (the usual HF loop)
  bucketed   fp32, texts sorted by token length before batching (odqa's encoder)
  int8       bucketed + dynamic int8 quantisation of the Linear layers
The same is repeated on long passages only (KorQuAD paragraphs, cut at 256 tokens).
With --recall: dev recall@1/5/20 of fp32 vs int8 over the whole benchmark corpus,
plus FAISS search latency (flat and HNSW) and index memory.
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import numpy as np


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


def rate(fn, texts) -> tuple[float, np.ndarray]:
    fn(texts[:16])  # warm-up
    t = time.perf_counter()
    v = fn(texts)
    return len(texts) / (time.perf_counter() - t), v


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bench", type=Path, default=Path("bench"))
    ap.add_argument("--sample", type=int, default=1600)
    ap.add_argument("--long", type=int, default=96)
    ap.add_argument("--encoder", default="offline:multilingual-e5-small")
    ap.add_argument("--recall", action="store_true")
    args = ap.parse_args()

    import torch
    torch.set_num_threads(2)
    from odqa.corpus import load_corpus, load_questions
    from odqa.retrieval.dense import DenseEncoder
    from odqa.retrieval.sparse import passage_text

    corpus = load_corpus(args.bench / "corpus.jsonl")
    texts = [passage_text(p, True) for p in corpus.passages]
    rng = random.Random(0)
    sample = rng.sample(texts, args.sample)
    long = [passage_text(p, True) for p in corpus.passages if not p.id.startswith("re-")][:args.long]
    fp32 = DenseEncoder(args.encoder, 256, 16)
    int8 = DenseEncoder(args.encoder, 256, 16, quantize="int8")
    res = {}
    for name, data in (("benchmark_sample", sample), ("long_paragraphs", long)):
        r_plain, v_plain = rate(lambda t: plain_encode(fp32, t), data)
        r_buck, v_buck = rate(fp32.encode, data)
        r_int8, v_int8 = rate(int8.encode, data)
        res[name] = {"passages": len(data), "plain_fp32_per_s": round(r_plain, 1),
                     "bucketed_fp32_per_s": round(r_buck, 1), "bucketed_int8_per_s": round(r_int8, 1),
                     "speedup_int8_vs_plain": round(r_int8 / r_plain, 2),
                     "cosine_bucketed_vs_plain_min": float((v_plain * v_buck).sum(1).min()),
                     "cosine_int8_vs_fp32_mean": float((v_buck * v_int8).sum(1).mean())}
        print(json.dumps({name: res[name]}), flush=True)
    if args.recall:
        import faiss
        from odqa.retrieval.evaluate import Judge, evaluate
        from odqa.retrieval.dense import DenseRetriever, build_faiss
        from odqa.config import DenseConfig
        dev = load_questions(args.bench / "dev_questions.jsonl")
        judge = Judge(corpus.canonical, {p.id for p in corpus.passages})
        for name, enc in (("fp32", fp32), ("int8", int8)):
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
                res[f"{name}_{kind}"] = {"encode_per_s_full_corpus": round(len(texts) / secs, 1),
                                         **{k: round(m[k], 4) for k in ("recall@1", "recall@5", "recall@20", "mrr")},
                                         "search_ms_per_query_k100": round(lat, 3), "index_mb": round(mem, 1)}
                print(json.dumps({f"{name}_{kind}": res[f"{name}_{kind}"]}), flush=True)


if __name__ == "__main__":
    main()
