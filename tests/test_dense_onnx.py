"""ONNX Runtime dense encoding (dense.quantize: onnx | onnx-int8) on the tiny test model."""

import json

import numpy as np
import pytest

from odqa.config import IndexConfig, apply_overrides
from odqa.errors import OdqaError
from odqa.index.indexing import build_index, load_index

pytest.importorskip("onnxruntime", reason="onnxruntime not installed (pip install 'odqa[onnx]')")

TEXTS = ["한라산은 제주도에 있는 산이다", "김치는 한국의 전통 음식이다",
         "세종대왕은 훈민정음을 창제하였다 " * 4, "지리산", "이순신은 거북선으로 왜군을 물리쳤다"]


@pytest.fixture(scope="module")
def fp32(tiny, cache):
    from odqa.retrieval.dense import DenseEncoder
    return DenseEncoder(tiny, max_length=32, batch_size=2).encode(TEXTS)


def encoder(tiny, quantize):
    from odqa.retrieval.dense import DenseEncoder
    return DenseEncoder(tiny, max_length=32, batch_size=2, quantize=quantize, threads=1)


def test_onnx_fp32_and_int8_agree_with_torch(tiny, cache, fp32):
    onnx = encoder(tiny, "onnx")
    v = onnx.encode(TEXTS)
    assert v.shape == fp32.shape and onnx.dim == 32 and onnx.runtime == "onnx"
    assert np.allclose(np.linalg.norm(v, axis=1), 1, atol=1e-5)
    assert (v * fp32).sum(1).min() >= 0.9999
    q8 = encoder(tiny, "onnx-int8")
    assert (q8.encode(TEXTS) * fp32).sum(1).min() >= 0.99
    assert q8.onnx.model_path != onnx.onnx.model_path and q8.onnx.model_path.parent.name.endswith("-int8-r1")
    # bucketing: one by one gives the same vectors as batched
    assert np.allclose(np.vstack([onnx.encode([t]) for t in TEXTS]), v, atol=1e-5)


def test_cache_is_reused_not_exported_again(tiny, cache, monkeypatch):
    from odqa.modeling import onnx_runtime as onnx_encoder
    first = encoder(tiny, "onnx-int8").onnx.model_path
    mtime = first.stat().st_mtime_ns

    def boom(*a, **k):
        raise AssertionError("exported again")
    monkeypatch.setattr(onnx_encoder, "export_fp32", boom)
    monkeypatch.setattr(onnx_encoder, "quantize_int8", boom)
    again = encoder(tiny, "onnx-int8")
    assert again.onnx.model_path == first and first.stat().st_mtime_ns == mtime
    meta = json.loads((first.parent / onnx_encoder.SIDECAR).read_text())
    assert meta["opset"] == onnx_encoder.OPSET and meta["kind"] == "int8" and len(meta["encoder_sha256"]) == 64


def test_corrupt_or_missing_cache_is_exported_again(tiny, cache, fp32):
    from odqa.modeling import onnx_runtime as onnx_encoder
    path = encoder(tiny, "onnx").onnx.model_path
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one flipped byte
    path.write_bytes(bytes(data))
    assert (encoder(tiny, "onnx").encode(TEXTS) * fp32).sum(1).min() >= 0.9999
    path.unlink()
    assert (encoder(tiny, "onnx").encode(TEXTS) * fp32).sum(1).min() >= 0.9999
    (path.parent / onnx_encoder.SIDECAR).write_text("{not json")
    enc = encoder(tiny, "onnx")
    assert json.loads((path.parent / onnx_encoder.SIDECAR).read_text())["kind"] == "fp32"
    assert (enc.encode(TEXTS) * fp32).sum(1).min() >= 0.9999


def test_unloadable_cache_entry_gives_clear_error(tiny, cache, monkeypatch):
    from odqa.modeling import onnx_runtime as onnx_encoder
    path = encoder(tiny, "onnx").onnx.model_path
    monkeypatch.setattr(onnx_encoder, "_problem", lambda folder, want: None)  # pretend the bad file checks out
    real = path.read_bytes()
    try:
        path.write_bytes(b"not an onnx model")
        with pytest.raises(OdqaError, match="cannot load the cached ONNX encoder .* delete"):
            encoder(tiny, "onnx")
    finally:
        path.write_bytes(real)


def test_missing_onnxruntime_is_one_clear_line(tiny, monkeypatch):
    import builtins
    real_import = builtins.__import__

    def fake(name, *a, **k):
        if name.split(".")[0] == "onnxruntime":
            raise ImportError(name)
        return real_import(name, *a, **k)
    monkeypatch.setattr(builtins, "__import__", fake)
    with pytest.raises(OdqaError, match=r"pip install 'odqa\[onnx\]'"):
        encoder(tiny, "onnx-int8")


def test_unknown_quantize_and_model_argument(tiny):
    from odqa.retrieval.dense import DenseEncoder
    with pytest.raises(OdqaError, match="unknown quantize 'int4'.*onnx-int8"):
        DenseEncoder(tiny, quantize="int4")
    with pytest.raises(OdqaError, match="do not pass model="):
        DenseEncoder(tiny, quantize="onnx", model=object())


def test_index_records_onnx_int8_and_queries_use_it(tiny, cache, corpus_file, index_root, monkeypatch, caplog):
    from odqa.index import local as indexing
    cfg = apply_overrides(IndexConfig(), ["dense.enabled=true", f"dense.encoder={tiny}", "dense.quantize=onnx-int8",
                                          "dense.max_length=64"])
    monkeypatch.setattr(indexing, "QUANT_MIN_COSINE", 1.01)   # any real quantisation falls below this
    res = build_index(corpus_file, "o", cfg, index_root)
    assert res.manifest["dense"]["quantize"] == "onnx-int8"
    check = res.manifest["dense"]["quantize_check"]   # int8 vectors compared with fp32 ones at build time
    assert check["passages"] == len(load_index("o", index_root).passages) and 0.9 < check["min_cosine"] <= 1.0
    assert check["min_cosine"] <= check["mean_cosine"]
    assert "--quantize onnx-int8 bends this encoder's vectors" in caplog.text
    idx = load_index("o", index_root)
    retriever = idx.dense()
    assert retriever.encoder.quantize == "onnx-int8" and retriever.encoder.runtime == "onnx"
    p = idx.passages[2]
    assert retriever.search([p.title + "\n" + p.text], 1)[0][0].passage.id == p.id
    # another runtime is another index: not silently reused
    other = apply_overrides(cfg, ["dense.quantize=none"])
    res2 = build_index(corpus_file, "o", other, index_root)
    assert res2.reasons == ["dense"] and res2.manifest["dense"]["quantize"] == "none"
