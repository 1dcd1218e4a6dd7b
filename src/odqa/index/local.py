"""The local index backend: passages + BM25 (bm25s) + optional FAISS vectors in one folder."""

from __future__ import annotations

import json
import logging
import shutil
import time
from pathlib import Path

from odqa.atomic import AtomicFolder
from odqa.config import DenseConfig, IndexConfig
from odqa.corpus import CorpusStream
from odqa.errors import IndexCorrupt, IndexStale, OdqaError
from odqa.progress import bar
from odqa.settings import env
from odqa.index import manifest as mf
from odqa.index import store
from odqa.index.index import Index
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever, passage_text
from odqa.index.streaming import build_sparse_streamed
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


def _encode_dense(tmp: Path, passages: list[Passage], cfg: DenseConfig, include_title: bool, quiet: bool,
                  device: str = "auto") -> dict:
    from odqa.retrieval.dense import DenseEncoder, encode_label, passage_ids
    enc = DenseEncoder(cfg.encoder, cfg.max_length, cfg.batch_size, cfg.quantize, cfg.threads, device=device)
    t0 = time.perf_counter()
    texts = [passage_text(p, include_title) for p in passages]
    ids, owners = passage_ids(enc, texts, cfg.window_stride)
    with bar(len(ids), *encode_label(cfg.window_stride), quiet) as pb:
        vectors = enc.encode_ids(ids, pb.update)
    secs = time.perf_counter() - t0
    write_dense(tmp, vectors, owners, cfg)
    out = {"dim": enc.dim, "vectors": len(ids), "encode_seconds": round(secs, 2),
           "passages_per_second": round(len(passages) / secs, 1)}
    if cfg.quantize != "none":
        picked = _spread(len(passages), QUANT_CHECK_PASSAGES)
        out["quantize_check"] = quantize_check(enc, [texts[i] for i in picked], vectors[picked])
    return out


def write_dense(tmp: Path, vectors, owners, cfg: DenseConfig) -> None:
    """The dense part of an index folder: the FAISS index of `vectors` (+ the window map `owners`)."""
    import faiss
    import numpy as np

    from odqa.retrieval.dense import build_faiss
    (tmp / "dense").mkdir(parents=True, exist_ok=True)
    faiss.write_index(build_faiss(vectors, cfg), str(tmp / "dense" / "index.faiss"))
    if owners is not None:
        np.save(tmp / "dense" / "owners.npy", owners)


def _merge_dense(tmp: Path, shard_set, cfg: DenseConfig, quiet: bool) -> dict:
    """The dense part from checked shards (`odqa.index.shards.ShardSet`) instead of encoding."""
    vectors, owners = shard_set.vectors(quiet)
    write_dense(tmp, vectors, owners if cfg.window_stride else None, cfg)
    return shard_set.stats()


def _old_manifest(final: Path, name: str, root) -> tuple[dict | None, dict | None, list[str]]:
    """(the manifest of the index being replaced, the same when its files can be reused, why they cannot)."""
    if not final.exists():
        return None, None, []
    try:
        old = mf.read_manifest(final, name, root)
    except OdqaError as e:        # no, an unreadable or a foreign manifest: rebuild, saying why
        return None, None, [str(e)]
    problems = mf.file_problems(final, old)    # a missing, truncated or altered file: rebuild everything
    return (old, None, problems) if problems else (old, old, [])


def build(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
          quiet: bool = False, connection=None, device: str = "auto", shards=None) -> mf.BuildResult:
    """Build (or update) local index NAME. Parts whose inputs did not change are copied, not rebuilt.
    `device` is where the dense encoder runs (the vectors are stored in fp32 whatever it is).
    `shards` (`odqa.index.shards.ShardSource`): take the vectors from dense shards encoded beforehand
    (checked against this corpus and these settings first) instead of encoding them here.

    Without `dense.enabled` set either way, an index with vectors keeps them (`mf.keep_dense`)."""
    corpus_path = Path(corpus_path)
    final = store.open_folder(name, root)
    recorded, old, reasons = _old_manifest(final, name, root)
    cfg = mf.keep_dense(cfg, recorded)          # a damaged index is rebuilt with the parts it had
    analyzer = make_analyzer(cfg.analyzer.name, cfg.analyzer.pos, cfg.analyzer.workers, cfg.analyzer.decompound)
    t0 = time.perf_counter()
    corpus = CorpusStream(corpus_path, cfg.corpus.format, cfg.corpus.chunk_size, cfg.corpus.chunk_overlap,
                          cfg.corpus.dedup, cfg.corpus.encoding, cfg.corpus.fields())   # read once, below, in chunks
    settings = mf.build_settings(cfg, analyzer.spec())
    hybrid = mf.hybrid_settings(cfg.hybrid)
    if old is not None:
        reasons = mf.rebuild_reasons(old, corpus.sha256, settings)
        if not reasons and not force:
            if old.get("hybrid") != hybrid or old.get("migrated_from") or not old.get("checksums"):
                old = mf.write_manifest(final, {**old, "hybrid": hybrid}, rehash=False)
            return mf.BuildResult("up-to-date", final, old, parts=_parts(True, old, old, True, True))
    reuse_sparse = old is not None and not force and reasons == ["dense"]
    status = "rebuilt" if final.exists() else "built"
    keep_vectors = False
    with AtomicFolder(final) as tmp:
        if reuse_sparse:
            for part in ("passages.jsonl", "aliases.json"):
                shutil.copy2(final / part, tmp / part)
            shutil.copytree(final / "bm25", tmp / "bm25")
            # same corpus content and corpus settings: the counts are the ones the old build recorded
            rec = old["corpus"]
            corpus.n_passages, corpus.n_duplicates, corpus.n_empty = (
                rec["passages"], rec["duplicates_merged"], rec["empty_skipped"])
        else:
            build_sparse_part(corpus, tmp, analyzer, cfg, quiet)
        dense = settings["dense"]
        # stored vectors hold only while the passages' text is the same (corpus, chunking, titles)
        same_text = (old is not None and not force and not {"corpus content", "corpus"} & set(reasons)
                     and old.get("sparse", {}).get("include_title") == cfg.include_title)
        if dense:
            keep_vectors = same_text and mf.same_vectors(old.get("dense"), dense)
            if keep_vectors and mf.same_dense(old.get("dense"), dense):
                shutil.copytree(final / "dense", tmp / "dense")
                dense = old["dense"]
            elif keep_vectors:                                     # only the query encoder changed
                shutil.copytree(final / "dense", tmp / "dense")
                dense = {**old["dense"], **dense, "vectors_from": old["dense"]["encoder"]}
            elif shards is not None:         # checked against the corpus as read above (its passage count)
                dense = {**dense, **_merge_dense(tmp, shards.load(corpus, cfg, settings, name), cfg.dense, quiet)}
            else:
                with store.PassageStore(tmp / store.PASSAGES) as passages:
                    dense = {**dense, **_encode_dense(tmp, passages, cfg.dense, cfg.include_title, quiet, device)}
        manifest = mf.new_manifest(name, mf.corpus_record(corpus, corpus_path, settings["corpus"]),
                                   settings["analyzer"], settings["sparse"], time.perf_counter() - t0,
                                   BACKEND, hybrid)
        manifest["dense"] = dense
        manifest = mf.write_manifest(tmp, manifest)
    return mf.BuildResult(status, final, manifest, reasons,
                          _parts(status == "rebuilt", recorded, manifest, reuse_sparse, keep_vectors))


def build_sparse_part(corpus: CorpusStream, tmp: Path, analyzer, cfg: IndexConfig, quiet: bool) -> None:
    """passages.jsonl, aliases.json and bm25/ of the index in `tmp`, the corpus read once in chunks
    (`odqa.index.streaming`), so memory does not hold the corpus's texts or terms."""
    with bar(None, f"analyzing ({analyzer.name})", "passage", quiet) as pb:
        build_sparse_streamed(corpus, tmp, analyzer, cfg.bm25, cfg.include_title, progress=pb.update)
    store.write_aliases(tmp, corpus.aliases)


def _parts(existed: bool, old: dict | None, new: dict, kept_sparse: bool, kept_dense: bool) -> dict[str, str]:
    """What happened to each part of the index: built (new), rebuilt, kept, dropped (or none)."""
    def fate(had: bool, has: bool, kept: bool) -> str:
        return ("kept" if kept else "rebuilt" if had else "built") if has else ("dropped" if had else "none")
    return {"sparse": fate(existed, True, kept_sparse),
            "dense": fate(bool(old and old.get("dense")), bool(new.get("dense")), kept_dense)}


class LocalIndex(Index):
    """An index folder searched in this process (bm25s + FAISS).

    Each file is checked against the manifest's record when it is first read (sizes of all of them at
    load; checksums of the passages at load, of `bm25/` and `dense/` when those are first searched).
    Passages are read from their file on demand (`store.PassageStore`); BM25 scores are memory-mapped
    unless `mmap` is False (`load_index(..., mmap=False)`, or ODQA_MMAP=0)."""

    mmap = True                     # map bm25/ score arrays from their files (not a field)

    @property
    def root(self) -> Path | None:
        return store.root_flag(self.folder)

    def check(self, prefix: str) -> None:
        """IndexCorrupt naming a bad file under `prefix`; IndexStale when the index was rebuilt since it
        was loaded (the manifest on disk is another build's)."""
        try:
            mf.check_files(self.folder, self.manifest, self.name, prefix, root=self.root)
        except IndexCorrupt:
            self.same_build()
            raise

    def same_build(self) -> None:
        """IndexStale if the folder now holds another build than the one loaded (a rebuild swapped it in)."""
        if _rebuilt(self.folder, self.manifest):
            raise IndexStale(f"index '{self.name}' at {self.folder} was rebuilt after this process loaded "
                             "it: load it again")

    def metadata(self):
        """The passages' metadata for filtered searches (read on the first one; one table for every retriever)."""
        from odqa.retrieval.filters import MetadataTable
        return self.cached("metadata", lambda: MetadataTable(self.passages))

    def analyzer(self):
        a = {**mf.ANALYZER_DEFAULTS, **self.manifest["analyzer"]}
        return make_analyzer(a["name"], a["pos"], decompound=a["decompound"])

    @property
    def sparse(self) -> SparseRetriever:
        def make():
            self.check("bm25/")
            try:
                scorer = BM25Scorer.load(self.folder / "bm25", self.bm25_config(), mmap=self.mmap)
            except (OSError, ValueError, KeyError, TypeError) as e:
                self.same_build()             # swapped while it was read (a mapped file of the new build): stale
                raise mf.corrupt_file(self.folder / "bm25", f"BM25 index ({e.__class__.__name__}: {e})",
                                      self.name, self.manifest, self.root) from None
            self.same_build()                 # not swapped while it was read
            return SparseRetriever(self.passages, self.analyzer(), scorer, self.manifest["sparse"]["include_title"],
                                   self.metadata())
        return self.cached("sparse", make)

    def dense(self, encoder: str | None = None, quantize: str | None = None, threads: int = 0):
        """The dense retriever; refuses an encoder other than the one the index was built with."""
        enc = self.query_encoder(encoder, quantize, threads)

        def make():
            from odqa.retrieval.dense import DenseRetriever, load_faiss, load_owners
            from odqa.retrieval.dense import faiss_for_search
            self.check("dense/")
            index = load_faiss(self.folder / "dense")
            owners = load_owners(self.folder / "dense", len(self.passages), index.ntotal)
            self.same_build()
            return DenseRetriever(self.passages, enc, faiss_for_search(index, enc.device), owners, self.metadata())
        return self.cached(("dense", id(enc)), make)


def _rebuilt(folder: Path, manifest: dict) -> bool:
    """The manifest in `folder` is no longer `manifest` (another build was swapped in)."""
    try:
        now = json.loads(mf.manifest_path(folder).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True
    return now.get(mf.SELF_CHECKSUM) != manifest.get(mf.SELF_CHECKSUM)


def _open_passages(folder: Path, manifest: dict) -> store.PassageStore:
    """The index's passages, read on demand; every line parsed once when no checksum vouches for them."""
    passages = store.PassageStore(folder / store.PASSAGES)
    want = (manifest.get("corpus") or {}).get("passages")
    if want is not None and want != len(passages):
        passages.close()
        raise ValueError(f"{len(passages)} passages, {want} recorded")
    if not manifest.get("checksums"):
        for _ in passages:
            pass
    return passages


def load(name: str, folder: Path, manifest: dict, connection=None) -> LocalIndex:
    root = store.root_flag(folder)
    mf.check_files(folder, manifest, name, full=False, root=root)          # every file there, at its size
    read = {"passages.jsonl": lambda: _open_passages(folder, manifest),
            "aliases.json": lambda: json.loads((folder / "aliases.json").read_text(encoding="utf-8"))}
    got = {}
    for part, reader in read.items():
        mf.check_files(folder, manifest, name, part, root=root)
        try:
            got[part] = reader()
        except (OSError, ValueError, KeyError, TypeError) as e:
            raise mf.corrupt_file(folder / part, f"index file ({e.__class__.__name__})", name, manifest,
                                  root) from None
    if _rebuilt(folder, manifest):         # swapped while read: load_index reads the new one
        raise IndexCorrupt(f"{folder}: index '{name}' was rebuilt while it was read")
    passages, aliases = got["passages.jsonl"], got["aliases.json"]
    index = LocalIndex(name, folder, manifest, passages, aliases, mf.staleness(manifest, installed_version))
    index.mmap = default_mmap()
    return index


def default_mmap() -> bool:
    """Whether BM25 scores are memory-mapped when a caller does not say: yes, unless ODQA_MMAP=0."""
    return env().mmap
