"""Compact model artefacts: pack only what training changed, rebuild an equal checkpoint, refuse altered files."""

import json

import pytest
import torch

from odqa.errors import ModelError
from odqa.modeling.checkpoint import build_model, load_model, save_model
from odqa.modeling.compact import COMPACT_WEIGHTS, materialise, pack
from odqa.modeling.heads import HeadConfig
from tests.tiny_model import make_tiny_backbone


@pytest.fixture
def trained(tmp_path):
    """A tiny 'trained' reader: its word embeddings kept (frozen), one layer changed, a head."""
    base = make_tiny_backbone(tmp_path / "base", hidden=64)
    tok, model = build_model(str(base), "span", HeadConfig(type="linear"))
    with torch.no_grad():
        model.backbone.encoder.layer[0].attention.self.query.weight.add_(0.01)
    save_model(model, tok, tmp_path / "ck", extra={"reader": {"window": {"max_length": 48, "stride": 16}}})
    (tmp_path / "ck" / "particles.json").write_text('{"rules": []}')
    return base, tmp_path / "ck"


def _outputs(folder):
    tok, model, _ = load_model(folder, "span")
    batch = tok(["한라산은 어디?"], ["한라산은 제주도에 있는 산이다"], return_tensors="pt")
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"])


@pytest.mark.parametrize("precision,tol", [("fp32", 0.0), ("fp16", 1e-2), ("int8", 5e-2)])
def test_pack_stores_only_changes_and_rebuilds_the_checkpoint(trained, tmp_path, precision, tol):
    base, ck = trained
    rec = pack(ck, tmp_path / "c", str(base), precision)
    assert "embeddings.word_embeddings.weight" in rec["shared"] and rec["tokenizer"] == "base"
    assert "backbone.encoder.layer.0.attention.self.query.weight" in rec["changed"]
    assert "backbone.encoder.layer.1.attention.self.query.weight" not in rec["changed"]
    assert (tmp_path / "c" / "particles.json").exists() and not (tmp_path / "c" / "tokenizer.json").exists()
    rebuilt = materialise(tmp_path / "c", cache_dir=tmp_path / "cache")
    assert json.loads((rebuilt / "particles.json").read_text()) == {"rules": []}
    for a, b in zip(_outputs(ck), _outputs(rebuilt)):
        assert torch.allclose(a, b, atol=tol) if tol else torch.equal(a, b)
    assert materialise(tmp_path / "c", cache_dir=tmp_path / "cache") == rebuilt     # cached


def test_an_altered_or_missing_compact_file_is_named_with_the_reinstall_command(trained, tmp_path):
    base, ck = trained
    pack(ck, tmp_path / "c", str(base))
    w = tmp_path / "c" / COMPACT_WEIGHTS
    data = bytearray(w.read_bytes())
    data[-1] ^= 0xFF
    w.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"{w}: altered or truncated .* reinstall it: pip install X"):
        materialise(tmp_path / "c", cache_dir=tmp_path / "cache", reinstall="pip install X")
    w.unlink()
    with pytest.raises(ModelError, match=f"{w}: missing"):
        materialise(tmp_path / "c", cache_dir=tmp_path / "cache")
