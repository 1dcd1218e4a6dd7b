"""Dense retrieval: a bi-encoder (mean pooling, L2 normalisation) with vectors in FAISS.

Texts are tokenised once, sorted by length and batched, so short passages are not
padded to the longest one (length bucketing). `quantize` picks the runtime:
``none`` (torch fp32), ``int8`` (torch dynamic int8 Linear layers), ``onnx`` (ONNX
Runtime fp32) or ``onnx-int8`` (ONNX Runtime dynamic int8, the fastest on CPU); the
ONNX model is exported once and cached; the runtimes live in `odqa.modeling.encoders`.

Passages longer than the encoder's limit are either cut (the default before windows existed)
or, with a window stride, split into overlapping windows of `max_length` tokens, one vector
each; a passage then scores as its best window (`DenseRetriever` with `owners`).

An encoder folder made by query-side fine-tuning (`odqa train retriever --side query`) names its
passage encoder in `odqa_retriever.json`: queries go through the folder's model, passages through
that one (the base encoder, whose vectors the training scored against).
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from odqa.config import DenseConfig
from odqa.errors import IndexCorrupt, OdqaError
from odqa.modeling.encoders import (QUANTIZE, RETRIEVER_FILE, WEIGHT_FILES, EncoderRuntime,  # noqa: F401 (re-exported)
                                    encoder_fingerprint, mean_pool, mean_pool_np, passage_encoder_spec)
from odqa.modeling.runtimes import make_runtime
from odqa.retrieval.base import check_queries
from odqa.retrieval.filters import Filters, MetadataTable, allowed_rows
from odqa.text.normalize import normalize
from odqa.text.pieces import token_prefix
from odqa.timing import stage
from odqa.types import Hit, Passage

log = logging.getLogger(__name__)
UNLIMITED = int(1e30)           # a tokenizer limit no text reaches
INDEX_TYPES = ("flat", "hnsw", "ivf", "ivfpq")


class DenseEncoder:
    """Encodes queries and passages with one (shared) backbone, or passages with the base encoder a
    query-side fine-tuned folder names. Texts are read through `odqa.text.normalize`, as the analyzers read them."""

    def __init__(self, spec: str, max_length: int = 256, batch_size: int = 32, quantize: str = "none",
                 threads: int = 0, model=None, tokenizer=None, device: str = "auto"):
        """`threads` sizes the ONNX Runtime session; the torch runtimes use torch's own thread setting
        (process-wide, so it is left to the application: `torch.set_num_threads` or OMP_NUM_THREADS).
        `device` (auto | cpu | cuda | cuda:N | mps) places the torch fp32 runtime (batches 4x larger on
        CUDA, bf16/fp16 autocast, fp32 vectors); int8 and the ONNX runtimes run on the CPU.

        One encoder may serve concurrent `encode` calls from several threads: the runtime, tokenizer and
        prefixes are made here; the passage runtime of a query-side folder is made once, under a lock;
        tokenizer calls take turns (a fast tokenizer's settings are shared state)."""
        from odqa.device import device_batch_size
        from odqa.modeling.backbone import backbone_info, e5_prefix, load_backbone, quiet_transformers

        if quantize not in QUANTIZE:
            raise OdqaError(f"unknown quantize '{quantize}' (choose from {', '.join(QUANTIZE)})")
        self.device = encoder_device(device, quantize)
        self.spec, self.max_length, self.quantize = spec, max_length, quantize
        self.batch_size = device_batch_size(batch_size, self.device)
        info = backbone_info(spec)
        self.path = info.path
        self.passage_spec = passage_encoder_spec(self.path) if info.kind == "local" else None
        onnx = quantize.startswith("onnx")
        if onnx and self.passage_spec:
            raise OdqaError(f"encoder '{spec}' is a query-side encoder (passages: '{self.passage_spec}'): "
                            f"the onnx runtimes take one shared encoder; set `quantize` to none or int8")
        if onnx and model is not None:
            raise OdqaError("the onnx runtimes export the encoder from its folder; do not pass model=")
        if not onnx and model is None:
            tokenizer, model = load_backbone(spec)
        with quiet_transformers():
            self.runner: EncoderRuntime = make_runtime(spec, self.path, quantize, threads, model, self.device)
            if tokenizer is None:
                from transformers import AutoTokenizer

                from odqa.modeling.pretrained import load_pretrained
                tokenizer = load_pretrained(AutoTokenizer.from_pretrained, self.path, info.kind == "hub")
        self.runtime = self.runner.name
        self.model = getattr(self.runner, "model", None)      # the torch module (None on ONNX Runtime)
        self.onnx = self.runner if onnx else None
        # odqa cuts or windows every sequence itself (`_ids`, `window_ids`): lengths past the model's limit are
        # measured on purpose, so the tokenizer's "longer than the specified maximum sequence length" warning
        # would be wrong; its limit is lifted (the encoder's own limit is `max_length`)
        tokenizer.model_max_length = UNLIMITED
        self.tokenizer = tokenizer
        self._dim = self.runner.dim
        self.prefix = {k: e5_prefix(k, self.path) for k in ("query", "passage")}
        self._passages: EncoderRuntime | None = None
        self._lock = threading.Lock()            # guards the lazily made passage runtime
        self._tokenize_lock = threading.Lock()   # guards the tokenizer
        self._warned = False

    @property
    def dim(self) -> int:
        return self._dim

    def _full_ids(self, texts: Sequence[str], kind: str, max_tokens: int = 0) -> list[list[int]]:
        """Token ids of each text; with `max_tokens`, only at least the first that many are kept: a long
        text is cut to a prefix first (tokenising a 5 MB passage whole takes 25 s)."""
        pre = self.prefix[kind]
        texts = [normalize(t) for t in texts]

        def count(text: str) -> int:
            return len(self.tokenizer(pre + text, add_special_tokens=True)["input_ids"])
        with self._tokenize_lock:
            if max_tokens:
                texts = [token_prefix(t, max_tokens, count) for t in texts]
            return self.tokenizer([pre + t for t in texts], truncation=False, add_special_tokens=True)["input_ids"]

    def _ids(self, texts: Sequence[str], kind: str) -> list[list[int]]:
        out = []
        for ids in self._full_ids(texts, kind, self.max_length):
            if len(ids) > self.max_length:
                if kind == "query" and not self._warned:
                    log.warning("query longer than %d tokens was truncated", self.max_length)
                    self._warned = True
                ids = ids[:self.max_length - 1] + ids[-1:]  # keep the closing special token
            out.append(ids)
        return out

    def _forward(self, input_ids: np.ndarray, mask: np.ndarray, kind: str = "passage") -> np.ndarray:
        """One padded batch -> L2-normalised mean-pooled vectors (float32)."""
        runner = self._passage_runtime() if kind == "passage" and self.passage_spec else self.runner
        return runner.vectors(input_ids, mask)

    def _passage_runtime(self) -> EncoderRuntime:
        """The base encoder of a query-side folder, loaded on first use (querying an index never needs it)."""
        with self._lock:
            if self._passages is None:
                self._passages = make_runtime(self.passage_spec, self.passage_spec, self.quantize, device=self.device)
            return self._passages

    def window_ids(self, texts: Sequence[str], stride: int) -> tuple[list[list[int]], np.ndarray]:
        """Passages as windows of at most `max_length` tokens, `stride` tokens apart; returns the windows'
        token ids and, for each window, the index of its passage. Windows after the first repeat the
        passage prefix (e5's `passage: `) so that every window is encoded as a passage."""
        check_stride(stride)
        windows, owners = [], []
        texts = [normalize(t) for t in texts]
        with self._tokenize_lock:
            spans = windows_with_spans(self.tokenizer, texts, self.prefix["passage"], self.max_length, stride)
        for i, wins in enumerate(spans):
            windows.extend(ids for ids, _, _ in wins)
            owners.extend([i] * len(wins))
        return windows, np.asarray(owners, dtype=np.int64)

    def encode(self, texts: Sequence[str], kind: str = "passage",
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        if not texts:                             # the tokenizer refuses an empty batch
            return np.zeros((0, self.dim), dtype=np.float32)
        return self.encode_ids(self._ids(texts, kind), progress, kind)

    def encode_ids(self, ids: list[list[int]], progress: Callable[[int], None] | None = None,
                   kind: str = "passage") -> np.ndarray:
        """Token id lists (each within `max_length`) -> vectors, batched by length."""
        return encode_by_length(ids, lambda i, m: self._forward(i, m, kind), self.dim,
                                self.tokenizer.pad_token_id or 0, self.batch_size, progress)


def passage_ids(enc: DenseEncoder, texts: Sequence[str], stride: int) -> tuple[list[list[int]], np.ndarray | None]:
    """Passage texts -> (token ids, owners) as an index encodes them: one sequence per passage (owners None)
    with `stride` 0, else one per window with the index of its passage (`window_ids`). Each text is
    tokenised on its own, so a slice of a corpus gives the same rows as the whole of it (dense shards)."""
    if stride:
        return enc.window_ids(texts, stride)
    return enc._ids(texts, "passage"), None


def encode_label(stride: int) -> tuple[str, str]:
    """(what the progress bar of a passage encoding says, its unit)."""
    return ("encoding passage windows", "window") if stride else ("encoding passages", "passage")


def encoder_device(device, quantize: str):
    """Where an encoder runs: `device` (a torch.device, or a name resolved here) for the torch fp32 runtime;
    the CPU for int8 and ONNX (a GPU asked for by name is then refused with one warning)."""
    import torch

    from odqa.device import cpu_only, resolve_device
    if quantize != "none":
        return cpu_only(device, f"quantize-{quantize}", f"dense.quantize {quantize}")
    return device if isinstance(device, torch.device) else resolve_device(device)


def encode_by_length(ids: list[list[int]], forward: Callable[[np.ndarray, np.ndarray], np.ndarray], dim: int,
                     pad: int, batch_size: int, progress: Callable[[int], None] | None = None) -> np.ndarray:
    """Token id lists -> `forward`'s vectors in input order, batched by length (little padding)."""
    order = np.argsort([len(x) for x in ids], kind="stable")
    out = np.zeros((len(ids), dim), dtype=np.float32)
    for s in range(0, len(order), batch_size):
        batch = order[s:s + batch_size]
        out[batch] = forward(*pad_ids([ids[i] for i in batch], pad))
        if progress:
            progress(len(batch))
    return out


def pad_ids(id_lists: Sequence[Sequence[int]], pad: int) -> tuple[np.ndarray, np.ndarray]:
    """Token id lists -> (input ids padded to the longest with `pad`, attention mask), int64."""
    width = max(len(x) for x in id_lists)
    input_ids = np.full((len(id_lists), width), pad, dtype=np.int64)
    mask = np.zeros((len(id_lists), width), dtype=np.int64)
    for r, x in enumerate(id_lists):
        input_ids[r, :len(x)] = x
        mask[r, :len(x)] = 1
    return input_ids, mask


def check_stride(stride: int) -> None:
    if stride < 0:
        raise OdqaError(f"dense.window_stride {stride}: use 0 (cut long passages at dense.max_length) or a positive "
                        "number of tokens between window starts")


def prefix_ids(tokenizer, prefix: str) -> list[int]:
    """Token ids of a passage prefix (e5's `passage: `) as it starts a tokenised passage."""
    pre = prefix.strip()
    return tokenizer(pre, add_special_tokens=False)["input_ids"] if pre else []


def windows_with_spans(tokenizer, texts: Sequence[str], prefix: str, max_length: int,
                       stride: int) -> list[list[tuple[list[int], int, int]]]:
    """For each text, its windows as the index encodes them (`split_windows` over prefix + text),
    each with the character span (start, end) of its text tokens in `text` (prefix excluded)."""
    if not getattr(tokenizer, "is_fast", False):
        raise OdqaError(f"dense windows need a fast (Rust) tokenizer with character offsets; "
                        f"{type(tokenizer).__name__} has none: set dense.window_stride 0")
    pre_ids = prefix_ids(tokenizer, prefix)
    enc = tokenizer([prefix + t for t in texts], truncation=False, add_special_tokens=True,
                    return_offsets_mapping=True)
    out = []
    for ids, offs in zip(enc["input_ids"], enc["offset_mapping"]):
        keep = len(pre_ids) if ids[1:1 + len(pre_ids)] == pre_ids else 0
        wins = []
        for pos in split_windows(list(range(len(ids))), max_length, stride, keep):
            body = [i for i in pos[1 + keep:-1] if offs[i][1] > offs[i][0]] or pos[1:-1] or pos
            wins.append(([ids[i] for i in pos], max(0, offs[body[0]][0] - len(prefix)),
                         max(0, offs[body[-1]][1] - len(prefix))))
        out.append(wins)
    return out


def split_windows(ids: list[int], max_length: int, stride: int, keep: int = 0) -> list[list[int]]:
    """Token ids (first and last are special tokens) -> windows of at most `max_length` ids.

    stride 0 cuts the sequence (keeping the closing token); otherwise window n starts `stride` body
    tokens after window n-1 (at most a window's width, so no text is skipped) and the last window
    ends at the sequence's end. Every window after the first starts with the first `keep` body
    tokens (the passage prefix)."""
    if len(ids) <= max_length:
        return [list(ids)]
    if stride <= 0:
        return [list(ids[:max_length - 1]) + list(ids[-1:])]
    head, tail = list(ids[:1]), list(ids[-1:])
    pre, body = list(ids[1:1 + keep]), list(ids[1 + keep:-1])
    width = max_length - 2 - keep
    stride = min(stride, width)
    out, start = [], 0
    while True:
        out.append(head + pre + body[start:start + width] + tail)
        if start + width >= len(body):
            return out
        start += stride


def build_faiss(vectors: np.ndarray, cfg: DenseConfig):
    import faiss
    d = vectors.shape[1]
    if cfg.index == "flat":
        index = faiss.IndexFlatIP(d)
    elif cfg.index == "hnsw":
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efSearch = cfg.hnsw_ef_search     # stored with the index by faiss.write_index
    elif cfg.index in ("ivf", "ivfpq"):
        nlist = cfg.ivf_nlist or max(1, int(4 * np.sqrt(len(vectors))))
        nlist = min(nlist, len(vectors))
        if cfg.index == "ivf":
            index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            m = cfg.pq_m or max(1, d // 8)
            if d % m:
                raise OdqaError(f"dense.pq_m {m} must divide the vector size {d} (e.g. {d // 8})")
            nbits = max(1, min(8, int(np.log2(len(vectors)))))   # 8 bits; fewer when there are < 256 vectors
            index = faiss.IndexIVFPQ(faiss.IndexFlatIP(d), d, nlist, m, nbits, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = min(nlist, cfg.ivf_nprobe or max(1, nlist // 8))   # stored with the index
    else:
        raise OdqaError(f"unknown dense index '{cfg.index}' (choose from {', '.join(INDEX_TYPES)})")
    index.add(vectors)
    return index


class DenseRetriever:
    """Search over one vector per passage, or per window when `owners` maps vectors to passages; with
    filters, over the vectors of the passages they allow (a FAISS id selector; an exact search over those
    vectors when an approximate index finds fewer than k of them)."""

    def __init__(self, passages: list[Passage], encoder: DenseEncoder, index, owners: np.ndarray | None = None,
                 metadata: MetadataTable | None = None):
        self.passages, self.encoder, self.index, self.owners = passages, encoder, index, owners
        self.metadata = metadata if metadata is not None else MetadataTable(passages)

    def search(self, queries: Sequence[str], k: int = 10, filters: Filters | None = None) -> list[list[Hit]]:
        queries = check_queries(queries)
        rows = allowed_rows(self.metadata, filters)
        with stage("query_encoding"):
            q = self.encoder.encode(queries, "query")
        with stage("dense_search"):
            return self._search_vectors(q, k, rows)

    def _allowed_vectors(self, rows: np.ndarray | None) -> np.ndarray | None:
        if rows is None or self.owners is None:
            return rows
        return np.flatnonzero(np.isin(self.owners, rows)).astype(np.int64)

    def _search_vectors(self, q: np.ndarray, k: int, rows: np.ndarray | None = None) -> list[list[Hit]]:
        n_passages = len(self.passages) if rows is None else len(rows)
        k = min(k, n_passages)
        allowed = self._allowed_vectors(rows)
        if k == 0:
            return [[] for _ in range(len(q))]
        if self.owners is None:
            scores, idx = faiss_search(self.index, q, k, allowed)
            return [[Hit(self.passages[int(i)], float(s), r + 1, "dense") for r, (i, s) in enumerate(zip(ri, rs))
                     if i >= 0] for ri, rs in zip(idx, scores)]
        # a passage's score is its best window: fetch enough windows that k distinct passages survive
        # (exact while the extra windows number at most 3k)
        n_vectors = len(self.owners) if allowed is None else len(allowed)
        extra = n_vectors - n_passages
        scores, idx = faiss_search(self.index, q, min(n_vectors, k + min(extra, 3 * k)), allowed)
        out = []
        for ri, rs in zip(idx, scores):
            seen: set[int] = set()
            hits = []
            for i, s in zip(ri, rs):
                p = int(self.owners[i]) if i >= 0 else -1
                if p >= 0 and p not in seen:
                    seen.add(p)
                    hits.append(Hit(self.passages[p], float(s), len(hits) + 1, "dense"))
                    if len(hits) == k:
                        break
            out.append(hits)
        return out

    def save(self, folder: Path) -> None:
        import faiss
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "index.faiss"))
        if self.owners is not None:
            np.save(folder / "owners.npy", self.owners)


def _search_params(index, allowed: np.ndarray):
    """FAISS search parameters that keep the vectors `allowed` only (the index's own search settings kept)."""
    import faiss
    sel = faiss.IDSelectorBatch(allowed)
    inner = faiss.downcast_index(index)
    if hasattr(inner, "hnsw"):
        return faiss.SearchParametersHNSW(sel=sel, efSearch=inner.hnsw.efSearch), sel
    if hasattr(inner, "nprobe"):
        return faiss.SearchParametersIVF(sel=sel, nprobe=inner.nprobe), sel
    return faiss.SearchParameters(sel=sel), sel


def _exact(index, q: np.ndarray, n: int, allowed: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """Inner-product top-n over the `allowed` vectors, read back from the index (None when it cannot)."""
    import faiss
    inner = faiss.downcast_index(index)
    try:
        try:
            vectors = inner.reconstruct_batch(allowed)
        except RuntimeError:
            if not hasattr(inner, "make_direct_map"):
                raise
            inner.make_direct_map()                  # IVF: a vector is found by its id once the map exists
            vectors = inner.reconstruct_batch(allowed)
    except (RuntimeError, AttributeError):
        return None
    sims = q @ vectors.T
    top = np.argsort(-sims, axis=1, kind="stable")[:, :n]
    return np.take_along_axis(sims, top, 1).astype(np.float32), allowed[top]


def faiss_search(index, q: np.ndarray, n: int, allowed: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(scores, vector ids) of each query's n best, among the `allowed` vector ids when given (sorted).
    An approximate index (HNSW, IVF) that finds fewer than n allowed vectors is searched exactly over them."""
    if allowed is None:
        return index.search(q, n)
    n = min(n, len(allowed))
    if n == 0:
        return np.zeros((len(q), 0), np.float32), np.zeros((len(q), 0), np.int64)
    try:
        params, _sel = _search_params(index, allowed)     # the selector lives as long as the search
        scores, idx = index.search(q, n, params=params)
    except (RuntimeError, TypeError, AttributeError):      # an index without selector support (a GPU copy)
        scores, idx = None, None
    if idx is None or (idx < 0).any():
        exact = _exact(index, q, n, allowed)
        if exact is not None:
            return exact
        if idx is None:
            raise OdqaError("this dense index cannot be searched with filters (no id selector, no stored vectors)")
    return scores, idx


def faiss_for_search(index, device):
    """`index` copied to the GPU for searching when faiss-gpu is installed and `device` is CUDA; else as it is
    (faiss-cpu). Stored files stay in faiss's portable CPU format: only the copy in memory moves."""
    import faiss
    if getattr(device, "type", str(device).split(":")[0]) != "cuda" or not hasattr(faiss, "StandardGpuResources"):
        return index
    resources = faiss.StandardGpuResources()
    gpu = faiss.index_cpu_to_gpu(resources, device.index or 0, index)
    gpu.odqa_resources = resources           # keep the GPU memory pool alive as long as the index
    return gpu


def load_faiss(folder: Path):
    import faiss
    f = folder / "index.faiss"
    if not f.exists():
        raise IndexCorrupt(f"{f}: dense index file missing; rebuild with `odqa index ... --dense --force`")
    try:
        return faiss.read_index(str(f))
    except RuntimeError as e:
        raise IndexCorrupt(f"{f}: unreadable FAISS index ({str(e).strip().splitlines()[-1][:120]}); rebuild with "
                           "`odqa index ... --dense --force`") from None


def load_owners(folder: Path, passages: int, vectors: int) -> np.ndarray | None:
    """The window -> passage map of a windowed index (None for one vector per passage), checked."""
    f = folder / "owners.npy"
    if not f.exists():
        if vectors != passages:
            raise OdqaError(f"{folder}: {vectors} vectors for {passages} passages and no owners.npy; "
                            "rebuild with `odqa index ... --dense --force`")
        return None
    try:
        owners = np.load(f, allow_pickle=False)
    except (OSError, ValueError) as e:
        raise IndexCorrupt(f"{f}: unreadable window map ({e}); rebuild with `odqa index ... --dense --force`") from None
    if len(owners) != vectors or (len(owners) and (owners.min() < 0 or owners.max() >= passages)):
        raise OdqaError(f"{f}: does not match the index ({len(owners)} entries, {vectors} vectors, "
                        f"{passages} passages); rebuild with `odqa index ... --dense --force`")
    return owners
