"""The dense part of a local index after passages are added and deleted, without re-encoding the rest.

The FAISS index keeps one vector per remaining passage (or window) in passage order, the order a fresh
build of the remaining passages would give: the stored vectors of deleted passages are dropped, the new
passages are encoded and appended, and the index is written anew (vectors are read back exactly from
`flat`, `hnsw` and `ivf` indexes; `ivfpq` keeps only compressed codes, so it is refused: rebuild it).

- flat: the result is the index a full build of the same vectors makes (exact search, same order).
- hnsw: the graph is rebuilt from the stored vectors (no encoding; still an approximate search).
- ivf: the build's trained centroids are kept and the vectors re-added; a full rebuild retrains them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from odqa.config import DenseConfig
from odqa.errors import OdqaError
from odqa.types import Passage

UPDATABLE = ("flat", "hnsw", "ivf")


def check_updatable(dense: dict | None, name: str) -> None:
    if dense and dense.get("index") not in UPDATABLE:
        raise OdqaError(f"index '{name}' has a {dense.get('index')} dense index, whose vectors cannot be read "
                        f"back: live updates need {', '.join(UPDATABLE)}; rebuild it with `odqa index CORPUS "
                        f"--name {name} --force`")


def _vectors(index) -> np.ndarray:
    import faiss
    if isinstance(index, faiss.IndexIVF):
        index.make_direct_map()
    return index.reconstruct_n(0, index.ntotal) if index.ntotal else np.zeros((0, index.d), np.float32)


def _rebuilt(index, vectors: np.ndarray, cfg: DenseConfig):
    import faiss

    from odqa.retrieval.dense import build_faiss
    if isinstance(index, faiss.IndexIVF):           # keep the trained centroids
        index.make_direct_map(False)
        index.reset()
        index.add(vectors)
        return index
    return build_faiss(vectors, cfg)


def dense_config(dense: dict) -> DenseConfig:
    keys = ("encoder", "max_length", "window_stride", "quantize", "index", "hnsw_m", "ivf_nlist", "pq_m")
    return DenseConfig(enabled=True, **{k: dense[k] for k in keys if k in dense})


def update_dense(old: Path, tmp: Path, dense: dict, n_before: int, removed: np.ndarray, added: list[Passage],
                 include_title: bool, device: str = "auto", encode=None) -> dict:
    """Write `tmp/dense/` from `old/dense/`: passages at positions `removed` (of the `n_before` there were)
    dropped, `added` encoded and appended. `encode(texts) -> (vectors, owners or None)` replaces the
    encoder (tests, benchmarks). Returns the manifest's dense record."""
    import faiss

    from odqa.retrieval.dense import load_faiss, load_owners
    from odqa.retrieval.sparse import passage_text
    cfg = dense_config(dense)
    index = load_faiss(old / "dense")
    owners = load_owners(old / "dense", n_before, index.ntotal)
    vectors = _vectors(index)
    gone = np.zeros(n_before, dtype=bool)
    gone[np.asarray(removed, dtype=np.int64)] = True
    new_position = np.cumsum(~gone) - 1
    if owners is None:
        vectors = vectors[~gone]
    else:
        keep = ~gone[owners]
        vectors, owners = vectors[keep], new_position[owners[keep]]
    if added:
        texts = [passage_text(p, include_title) for p in added]
        new_vectors, new_owners = (encode or _encoder(cfg, device))(texts)
        vectors = np.concatenate([vectors, np.asarray(new_vectors, dtype=np.float32)])
        if owners is not None:
            base = int((~gone).sum())
            owners = np.concatenate([owners, base + (np.arange(len(texts)) if new_owners is None else new_owners)])
    out = _rebuilt(index, np.ascontiguousarray(vectors, dtype=np.float32), cfg)
    if isinstance(out, faiss.IndexHNSW):
        out.hnsw.efSearch = index.hnsw.efSearch
    (tmp / "dense").mkdir(parents=True, exist_ok=True)
    faiss.write_index(out, str(tmp / "dense" / "index.faiss"))
    if owners is not None:
        np.save(tmp / "dense" / "owners.npy", owners)
    return {**dense, "vectors": int(out.ntotal)}


def _encoder(cfg: DenseConfig, device: str):
    from odqa.retrieval.dense import DenseEncoder, passage_ids
    enc = DenseEncoder(cfg.encoder, cfg.max_length, cfg.batch_size, cfg.quantize, cfg.threads, device=device)

    def encode(texts):
        ids, owners = passage_ids(enc, texts, cfg.window_stride)
        return enc.encode_ids(ids), owners
    return encode
