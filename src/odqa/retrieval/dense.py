"""Dense retrieval: a bi-encoder (mean pooling, L2 normalisation) with vectors in FAISS.

Texts are tokenised once, sorted by length and batched, so short passages are not
padded to the longest one (length bucketing). Optional dynamic int8 quantisation
of the Linear layers speeds up CPU encoding.
"""

from __future__ import annotations

import hashlib
import sys
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from odqa.config import DenseConfig
from odqa.errors import OdqaError
from odqa.retrieval.base import check_queries
from odqa.types import Hit, Passage

INDEX_TYPES = ("flat", "hnsw", "ivf")
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")


def encoder_fingerprint(path: str | Path) -> str:
    """sha256 of the encoder's weight file (or its hub name when it has no local folder)."""
    folder = Path(path)
    for name in WEIGHT_FILES:
        f = folder / name
        if f.exists():
            h = hashlib.sha256()
            with open(f, "rb") as fh:
                for block in iter(lambda: fh.read(1 << 22), b""):
                    h.update(block)
            return h.hexdigest()
    return f"hub:{path}"


def mean_pool(hidden, mask):
    import torch
    m = mask.unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * m).sum(1) / m.sum(1).clamp(min=1e-9)
    return torch.nn.functional.normalize(pooled, p=2, dim=-1)


class DenseEncoder:
    """Encodes queries and passages with one (shared) backbone."""

    def __init__(self, spec: str, max_length: int = 256, batch_size: int = 32, quantize: str = "none",
                 threads: int = 0, model=None, tokenizer=None):
        import torch
        from odqa.modeling.backbone import backbone_info, e5_prefix, load_backbone

        if threads:
            torch.set_num_threads(threads)
        self.spec, self.max_length, self.batch_size, self.quantize = spec, max_length, batch_size, quantize
        info = backbone_info(spec)
        self.path = info.path
        if model is None:
            tokenizer, model = load_backbone(spec)
        self.tokenizer, self.model = tokenizer, model.eval()
        if quantize == "int8":
            with warnings.catch_warnings():  # torch marks eager dynamic quantisation deprecated; it still works
                warnings.simplefilter("ignore")
                self.model = torch.ao.quantization.quantize_dynamic(self.model, {torch.nn.Linear}, dtype=torch.qint8)
        elif quantize != "none":
            raise OdqaError(f"unknown quantize '{quantize}' (choose none or int8)")
        self.prefix = {k: e5_prefix(k, self.path) for k in ("query", "passage")}
        self._warned = False

    @property
    def dim(self) -> int:
        return int(self.model.config.hidden_size)

    def _ids(self, texts: Sequence[str], kind: str) -> list[list[int]]:
        pre = self.prefix[kind]
        enc = self.tokenizer([pre + t for t in texts], truncation=False, add_special_tokens=True)["input_ids"]
        out = []
        for ids in enc:
            if len(ids) > self.max_length:
                if kind == "query" and not self._warned:
                    print(f"odqa: warning: query longer than {self.max_length} tokens was truncated", file=sys.stderr)
                    self._warned = True
                ids = ids[:self.max_length - 1] + ids[-1:]  # keep the closing special token
            out.append(ids)
        return out

    def encode(self, texts: Sequence[str], kind: str = "passage",
               progress: Callable[[int], None] | None = None) -> np.ndarray:
        import torch
        ids = self._ids(texts, kind)
        order = np.argsort([len(x) for x in ids], kind="stable")
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        pad = self.tokenizer.pad_token_id or 0
        with torch.inference_mode():
            for s in range(0, len(order), self.batch_size):
                batch = order[s:s + self.batch_size]
                width = max(len(ids[i]) for i in batch)
                input_ids = torch.full((len(batch), width), pad, dtype=torch.long)
                mask = torch.zeros((len(batch), width), dtype=torch.long)
                for r, i in enumerate(batch):
                    input_ids[r, :len(ids[i])] = torch.tensor(ids[i])
                    mask[r, :len(ids[i])] = 1
                hidden = self.model(input_ids=input_ids, attention_mask=mask).last_hidden_state
                out[batch] = mean_pool(hidden, mask).float().numpy()
                if progress:
                    progress(len(batch))
        return out


def build_faiss(vectors: np.ndarray, cfg: DenseConfig):
    import faiss
    d = vectors.shape[1]
    if cfg.index == "flat":
        index = faiss.IndexFlatIP(d)
    elif cfg.index == "hnsw":
        index = faiss.IndexHNSWFlat(d, cfg.hnsw_m, faiss.METRIC_INNER_PRODUCT)
    elif cfg.index == "ivf":
        nlist = cfg.ivf_nlist or max(1, int(4 * np.sqrt(len(vectors))))
        nlist = min(nlist, len(vectors))
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(d), d, nlist, faiss.METRIC_INNER_PRODUCT)
        index.train(vectors)
        index.nprobe = max(1, nlist // 8)
    else:
        raise OdqaError(f"unknown dense index '{cfg.index}' (choose from {', '.join(INDEX_TYPES)})")
    index.add(vectors)
    return index


class DenseRetriever:
    def __init__(self, passages: list[Passage], encoder: DenseEncoder, index):
        self.passages, self.encoder, self.index = passages, encoder, index

    def search(self, queries: Sequence[str], k: int = 10) -> list[list[Hit]]:
        queries = check_queries(queries)
        q = self.encoder.encode(queries, "query")
        scores, idx = self.index.search(q, min(k, len(self.passages)))
        return [[Hit(self.passages[int(i)], float(s), r + 1, "dense") for r, (i, s) in enumerate(zip(ri, rs)) if i >= 0]
                for ri, rs in zip(idx, scores)]

    def save(self, folder: Path) -> None:
        import faiss
        folder.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self.index, str(folder / "index.faiss"))


def load_faiss(folder: Path):
    import faiss
    f = folder / "index.faiss"
    if not f.exists():
        raise OdqaError(f"{f}: dense index file missing; rebuild with `odqa index ... --dense --force`")
    return faiss.read_index(str(f))
