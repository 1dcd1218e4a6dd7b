"""Build and load local indexes: passages + sparse BM25 + optional dense FAISS, one folder."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from odqa.atomic import AtomicFolder
from odqa.config import BM25Config, DenseConfig, HybridConfig, IndexConfig
from odqa.corpus import load_corpus
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.retrieval import store
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever
from odqa.text.analyzers import installed_version, make_analyzer
from odqa.types import Passage

MODES = ("sparse", "dense", "hybrid")
BACKENDS = ("local", "elasticsearch")
DENSE_KEYS = ("encoder", "encoder_sha256", "max_length", "window_stride", "quantize", "index", "hnsw_m", "ivf_nlist")
DENSE_DEFAULTS = {"window_stride": 0}      # keys added after indexes were built without them
# what the stored passage vectors depend on besides the passages' text: an encoder that only changes the
# query side (a query-side fine-tuned folder over the same passage encoder) keeps them
VECTOR_KEYS = ("passage_sha256", "max_length", "window_stride", "quantize", "index", "hnsw_m", "ivf_nlist", "e5_prefixes")


@dataclass
class BuildResult:
    status: str               # built | rebuilt | up-to-date
    folder: Path
    manifest: dict
    reasons: list[str] = field(default_factory=list)


def _dense_settings(cfg: DenseConfig) -> dict | None:
    if not cfg.enabled:
        return None
    from odqa.modeling.backbone import backbone_info
    from odqa.retrieval.dense import check_stride, encoder_fingerprint, passage_encoder_spec
    info = backbone_info(cfg.encoder)
    check_stride(cfg.window_stride)
    passages = passage_encoder_spec(info.path) if info.kind == "local" else None
    sha = encoder_fingerprint(info.path)
    return {"encoder": cfg.encoder, "encoder_sha256": sha,
            "passage_sha256": encoder_fingerprint(backbone_info(passages).path) if passages else sha,
            "max_length": cfg.max_length,
            "window_stride": cfg.window_stride, "quantize": cfg.quantize, "index": cfg.index, "hnsw_m": cfg.hnsw_m, "ivf_nlist": cfg.ivf_nlist,
            "e5_prefixes": info.e5_prefixes}


def _settings(cfg: IndexConfig, analyzer_spec: dict) -> dict:
    corpus = asdict(cfg.corpus)
    corpus.pop("format")
    return {"corpus": corpus, "analyzer": analyzer_spec,
            "sparse": {"backend": "bm25s", "include_title": cfg.include_title, **asdict(cfg.bm25)},
            "dense": _dense_settings(cfg.dense)}


def _same_dense(old: dict | None, new: dict | None) -> bool:
    return bool(old and new) and all(old.get(k, DENSE_DEFAULTS.get(k)) == new.get(k, DENSE_DEFAULTS.get(k))
                                     for k in DENSE_KEYS)


def _same_vectors(old: dict | None, new: dict | None) -> bool:
    """The stored passage vectors serve the new settings (same passage encoder and layout)."""
    if not (old and new):
        return False
    have = {**{k: old.get(k, DENSE_DEFAULTS.get(k)) for k in VECTOR_KEYS},
            "passage_sha256": old.get("passage_sha256", old.get("encoder_sha256"))}
    return all(have[k] == new.get(k, DENSE_DEFAULTS.get(k)) for k in VECTOR_KEYS)


def _encode_dense(tmp: Path, passages: list[Passage], cfg: DenseConfig, include_title: bool, quiet: bool) -> dict:
    from odqa.retrieval.dense import DenseEncoder, DenseRetriever, build_faiss
    from odqa.retrieval.sparse import passage_text
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
        out["quantize_check"] = quantize_check(enc, texts=[passage_text(passages[i], include_title) for i in
                                                           _spread(len(passages), QUANT_CHECK_PASSAGES)],
                                               vectors=vectors[_spread(len(passages), QUANT_CHECK_PASSAGES)])
    return out


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
    import sys

    import numpy as np

    from odqa.retrieval.dense import DenseEncoder
    ref = DenseEncoder(enc.spec, enc.max_length, enc.batch_size, "none").encode(texts, "passage")
    cos = (np.asarray(vectors) * ref).sum(1)
    res = {"passages": len(texts), "min_cosine": round(float(cos.min()), 5), "mean_cosine": round(float(cos.mean()), 5)}
    if res["min_cosine"] < QUANT_MIN_COSINE:
        print(f"odqa: warning: --quantize {enc.quantize} bends this encoder's vectors (cosine to fp32 down to "
              f"{res['min_cosine']:.3f} on {len(texts)} passages): recall may drop; check it, or use "
              "--quantize onnx (fp32) or none", file=sys.stderr)
    return res


def build_index(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
                quiet: bool = False, connection=None) -> BuildResult:
    """Build (or update) index NAME. Parts whose inputs did not change are copied, not rebuilt.

    With `cfg.backend == "elasticsearch"` the index lives on a cluster (`connection`, else ODQA_ES_* env)
    and `indexes/NAME/` only holds a pointer to it (see `odqa.retrieval.elastic`)."""
    if cfg.backend not in BACKENDS:
        raise OdqaError(f"unknown backend '{cfg.backend}' (choose from {', '.join(BACKENDS)})")
    if cfg.backend == "elasticsearch":
        from odqa.retrieval.elastic import build_es_index
        return build_es_index(corpus_path, name, cfg, root, force, quiet, connection)
    corpus_path = Path(corpus_path)
    final = store.index_dir(name, root)
    analyzer = make_analyzer(cfg.analyzer.name, cfg.analyzer.pos, cfg.analyzer.workers)
    t0 = time.perf_counter()
    corpus = load_corpus(corpus_path, cfg.corpus.format, cfg.corpus.chunk_size, cfg.corpus.chunk_overlap,
                         cfg.corpus.dedup)
    settings = _settings(cfg, analyzer.spec())
    reasons: list[str] = []
    old = None
    if (final / store.MANIFEST).exists():
        try:
            _, old = store.read_manifest(name, root)
            reasons = store.same_build(old, corpus.sha256, {k: v for k, v in settings.items() if k != "dense"})
            if not _same_dense(old.get("dense"), settings["dense"]) and (old.get("dense") or settings["dense"]):
                reasons.append("dense")
        except OdqaError as e:
            reasons, old = [str(e)], None
        if not reasons and not force:
            return BuildResult("up-to-date", final, old)
    reuse_sparse = old is not None and not force and "dense" in reasons and len(reasons) == 1
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
            if same_text and _same_dense(old.get("dense"), dense):
                shutil.copytree(final / "dense", tmp / "dense")
                dense = old["dense"]
            elif same_text and _same_vectors(old.get("dense"), dense):   # only the query encoder changed
                shutil.copytree(final / "dense", tmp / "dense")
                dense = {**old["dense"], **dense, "vectors_from": old["dense"]["encoder"]}
            else:
                dense = {**dense, **_encode_dense(tmp, corpus.passages, cfg.dense, cfg.include_title, quiet)}
        manifest = store.new_manifest(name, store.corpus_record(corpus, corpus_path, settings["corpus"]),
                                      settings["analyzer"], settings["sparse"], time.perf_counter() - t0)
        manifest["dense"] = dense
        store.write_json(tmp / store.MANIFEST, manifest)
    return BuildResult(status, final, manifest, reasons)


@dataclass
class LoadedIndex:
    name: str
    folder: Path
    manifest: dict
    passages: list[Passage]
    aliases: dict[str, str]
    stale: list[str]
    _cache: dict = field(default_factory=dict)

    def canonical(self, pid: str) -> str:
        return self.aliases.get(pid, pid)

    def analyzer(self):
        a = self.manifest["analyzer"]
        return make_analyzer(a["name"], a["pos"])

    @property
    def sparse(self) -> SparseRetriever:
        if "sparse" not in self._cache:
            s = self.manifest["sparse"]
            cfg = BM25Config(method=s["method"], k1=s["k1"], b=s["b"], delta=s["delta"])
            scorer = BM25Scorer.load(self.folder / "bm25", cfg)
            self._cache["sparse"] = SparseRetriever(self.passages, self.analyzer(), scorer, s["include_title"])
        return self._cache["sparse"]

    def passage_ids(self) -> set[str]:
        """Ids of every passage (cheaper than iterating `passages` on a remote index)."""
        return {p.id for p in self.passages}

    def query_encoder(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0):
        """The index's dense encoder (cached); refuses an encoder other than the one the index was built with."""
        d = self.manifest.get("dense")
        if not d:
            raise OdqaError(f"index '{self.name}' has no dense part: add it with "
                            f"`odqa index CORPUS --name {self.name} --dense`")
        if encoder and encoder != d["encoder"]:
            from odqa.modeling.backbone import backbone_info
            from odqa.retrieval.dense import encoder_fingerprint
            if encoder_fingerprint(backbone_info(encoder).path) != d["encoder_sha256"]:
                raise OdqaError(f"index '{self.name}' was built with encoder '{d['encoder']}', not '{encoder}': "
                                f"use --encoder {d['encoder']} or rebuild the index with --encoder {encoder}")
        key = ("encoder", quantize or d["quantize"], threads)
        if key not in self._cache:
            from odqa.retrieval.dense import DenseEncoder
            self._cache[key] = DenseEncoder(d["encoder"], d["max_length"], quantize=key[1], threads=threads)
        return self._cache[key]

    def dense(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0):
        """The dense retriever; refuses an encoder other than the one the index was built with."""
        enc = self.query_encoder(encoder, quantize, threads)
        key = ("dense", id(enc))
        if key not in self._cache:
            from odqa.retrieval.dense import DenseRetriever, load_faiss, load_owners
            index = load_faiss(self.folder / "dense")
            owners = load_owners(self.folder / "dense", len(self.passages), index.ntotal)
            self._cache[key] = DenseRetriever(self.passages, enc, index, owners)
        return self._cache[key]

    def retriever(self, mode: str = "sparse", hybrid: HybridConfig | None = None, encoder: str | None = None):
        if mode == "sparse":
            return self.sparse
        if mode == "dense":
            return self.dense(encoder)
        if mode == "hybrid":
            from odqa.retrieval.hybrid import HybridRetriever
            return HybridRetriever(self.sparse, self.dense(encoder), hybrid or HybridConfig())
        raise OdqaError(f"unknown retrieval mode '{mode}' (choose from {', '.join(MODES)})")


def load_index(name: str, root=None, connection=None) -> LoadedIndex:
    """Index NAME, local or on Elasticsearch (`connection`, else the pointer's URL with ODQA_ES_* credentials)."""
    folder, manifest = store.read_manifest(name, root)
    if manifest.get("backend") == "elasticsearch":
        from odqa.retrieval.elastic import load_es_index
        return load_es_index(name, folder, manifest, connection)
    passages = list(store.read_passages(folder))
    aliases = json.loads((folder / "aliases.json").read_text(encoding="utf-8"))
    return LoadedIndex(name, folder, manifest, passages, aliases, store.staleness(manifest, installed_version))
