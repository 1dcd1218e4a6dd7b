"""The local index backend: passages + BM25 (bm25s) + optional FAISS vectors in one folder."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from odqa.atomic import AtomicFolder
from odqa.config import DenseConfig, IndexConfig
from odqa.corpus import load_corpus
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.retrieval import manifest as mf
from odqa.retrieval import store
from odqa.retrieval.index import Index
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever, passage_text
from odqa.text.analyzers import installed_version, make_analyzer
from odqa.types import Passage

log = logging.getLogger(__name__)

BACKEND = "local"
QUANT_CHECK_PASSAGES = 32     # passages re-encoded in fp32 to check a quantised encoder
QUANT_MIN_COSINE = 0.98       # below this on any of them, the build warns


def _spread(n: int, k: int) -> list[int]:
    """k indices spread evenly over range(n) (all of them when n <= k)."""
    return list(range(n)) if n <= k else [round(i * (n - 1) / (k - 1)) for i in range(k)]


def quantize_check(enc, texts: list[str], vectors) -> dict:
    """Cosine of the quantised vectors to plain fp32 ones on a few passages; warns when they bend.

    Quantisation keeps a model's vectors only as well as its weights and activations allow:
    measured here, ONNX int8 kept e5-small at cosine >= 0.99 but a fine-tuned copy of it at 0.92.
    """
    import numpy as np

    from odqa.retrieval.dense import DenseEncoder
    ref = DenseEncoder(enc.spec, enc.max_length, enc.batch_size, "none").encode(texts, "passage")
    cos = (np.asarray(vectors) * ref).sum(1)
    res = {"passages": len(texts), "min_cosine": round(float(cos.min()), 5), "mean_cosine": round(float(cos.mean()), 5)}
    if res["min_cosine"] < QUANT_MIN_COSINE:
        log.warning(f"--quantize {enc.quantize} bends this encoder's vectors (cosine to fp32 down to "
                    f"{res['min_cosine']:.3f} on {len(texts)} passages): recall may drop; check it, or use "
                    "--quantize onnx (fp32) or none")
    return res


def _encode_dense(tmp: Path, passages: list[Passage], cfg: DenseConfig, include_title: bool, quiet: bool) -> dict:
    from odqa.retrieval.dense import DenseEncoder, DenseRetriever, build_faiss
    enc = DenseEncoder(cfg.encoder, cfg.max_length, cfg.batch_size, cfg.quantize, cfg.threads)
    t0 = time.perf_counter()
    texts = [passage_text(p, include_title) for p in passages]
    if cfg.window_stride:
        ids, owners = enc.window_ids(texts, cfg.window_stride)
    else:
        ids, owners = enc._ids(texts, "passage"), None
    what = "encoding passage windows" if owners is not None else "encoding passages"
    with bar(len(ids), what, "window" if owners is not None else "passage", quiet) as pb:
        vectors = enc.encode_ids(ids, pb.update)
    secs = time.perf_counter() - t0
    DenseRetriever(passages, enc, build_faiss(vectors, cfg), owners).save(tmp / "dense")
    out = {"dim": enc.dim, "vectors": len(ids), "encode_seconds": round(secs, 2),
           "passages_per_second": round(len(passages) / secs, 1)}
    if cfg.quantize != "none":
        picked = _spread(len(passages), QUANT_CHECK_PASSAGES)
        out["quantize_check"] = quantize_check(enc, [texts[i] for i in picked], vectors[picked])
    return out


def build(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
          quiet: bool = False, connection=None) -> mf.BuildResult:
    """Build (or update) local index NAME. Parts whose inputs did not change are copied, not rebuilt."""
    corpus_path = Path(corpus_path)
    final = store.open_folder(name, root)
    analyzer = make_analyzer(cfg.analyzer.name, cfg.analyzer.pos, cfg.analyzer.workers)
    t0 = time.perf_counter()
    corpus = load_corpus(corpus_path, cfg.corpus.format, cfg.corpus.chunk_size, cfg.corpus.chunk_overlap,
                         cfg.corpus.dedup, cfg.corpus.encoding)
    settings = mf.build_settings(cfg, analyzer.spec())
    hybrid = mf.hybrid_settings(cfg.hybrid)
    reasons: list[str] = []
    old = None
    if mf.manifest_path(final).exists():
        try:
            old = mf.read_manifest(final, name, root)
            reasons = mf.rebuild_reasons(old, corpus.sha256, settings)
        except OdqaError as e:       # an unreadable or foreign manifest: rebuild, saying why
            reasons, old = [str(e)], None
        if old is not None and not reasons and not force:
            if old.get("hybrid") != hybrid or old.get("migrated_from"):
                old = {k: v for k, v in old.items() if k != "migrated_from"} | {"hybrid": hybrid}
                mf.replace_manifest(final, old)
            return mf.BuildResult("up-to-date", final, old)
    reuse_sparse = old is not None and not force and reasons == ["dense"]
    status = "rebuilt" if final.exists() else "built"
    with AtomicFolder(final) as tmp:
        if reuse_sparse:
            for part in ("passages.jsonl", "aliases.json"):
                shutil.copy2(final / part, tmp / part)
            shutil.copytree(final / "bm25", tmp / "bm25")
        else:
            store.write_passages(tmp, corpus)
            with bar(len(corpus.passages), f"analyzing ({analyzer.name})", "passage", quiet) as pb:
                sparse = SparseRetriever.build(corpus.passages, analyzer, cfg.bm25, cfg.include_title,
                                               progress=pb.update)
            sparse.save(tmp)
        dense = settings["dense"]
        # stored vectors hold only while the passages' text is the same (corpus, chunking, titles)
        same_text = (old is not None and not force and not {"corpus content", "corpus"} & set(reasons)
                     and old.get("sparse", {}).get("include_title") == cfg.include_title)
        if dense:
            if same_text and mf.same_dense(old.get("dense"), dense):
                shutil.copytree(final / "dense", tmp / "dense")
                dense = old["dense"]
            elif same_text and mf.same_vectors(old.get("dense"), dense):   # only the query encoder changed
                shutil.copytree(final / "dense", tmp / "dense")
                dense = {**old["dense"], **dense, "vectors_from": old["dense"]["encoder"]}
            else:
                dense = {**dense, **_encode_dense(tmp, corpus.passages, cfg.dense, cfg.include_title, quiet)}
        manifest = mf.new_manifest(name, mf.corpus_record(corpus, corpus_path, settings["corpus"]),
                                   settings["analyzer"], settings["sparse"], time.perf_counter() - t0,
                                   BACKEND, hybrid)
        manifest["dense"] = dense
        mf.write_json(tmp / mf.MANIFEST, manifest)
    return mf.BuildResult(status, final, manifest, reasons)


class LocalIndex(Index):
    """An index folder searched in this process (bm25s + FAISS)."""

    def analyzer(self):
        a = self.manifest["analyzer"]
        return make_analyzer(a["name"], a["pos"])

    @property
    def sparse(self) -> SparseRetriever:
        def make():
            scorer = BM25Scorer.load(self.folder / "bm25", self.bm25_config())
            return SparseRetriever(self.passages, self.analyzer(), scorer, self.manifest["sparse"]["include_title"])
        return self.cached("sparse", make)

    def dense(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0):
        """The dense retriever; refuses an encoder other than the one the index was built with."""
        enc = self.query_encoder(encoder, quantize, threads)

        def make():
            from odqa.retrieval.dense import DenseRetriever, load_faiss, load_owners
            index = load_faiss(self.folder / "dense")
            owners = load_owners(self.folder / "dense", len(self.passages), index.ntotal)
            return DenseRetriever(self.passages, enc, index, owners)
        return self.cached(("dense", id(enc)), make)


def load(name: str, folder: Path, manifest: dict, connection=None) -> LocalIndex:
    passages = list(store.read_passages(folder))
    aliases = json.loads((folder / "aliases.json").read_text(encoding="utf-8"))
    return LocalIndex(name, folder, manifest, passages, aliases, mf.staleness(manifest, installed_version))
