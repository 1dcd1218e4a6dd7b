"""Compact model artefacts: pack only what training changed, rebuild an equal checkpoint, refuse altered files."""

import json
import re

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
    from odqa.text.particles import ParticleRules
    ParticleRules().save(tmp_path / "ck" / "particles.json")
    return base, tmp_path / "ck"


def _outputs(folder):
    tok, model, _ = load_model(folder, "span")
    batch = tok(["한라산은 어디?"], ["한라산은 제주도에 있는 산이다"], return_tensors="pt")
    with torch.no_grad():
        return model(batch["input_ids"], batch["attention_mask"])


@pytest.mark.parametrize("precision,tol", [("fp32", 0.0), ("fp16", 1e-2), ("int8", 5e-2), ("int4", 0.5)])
def test_pack_stores_only_changes_and_rebuilds_the_checkpoint(trained, tmp_path, precision, tol):
    base, ck = trained
    rec = pack(ck, tmp_path / "c", str(base), precision)
    assert "embeddings.word_embeddings.weight" in rec["shared"] and rec["tokenizer"] == "base"
    assert "backbone.encoder.layer.0.attention.self.query.weight" in rec["changed"]
    assert "backbone.encoder.layer.1.attention.self.query.weight" not in rec["changed"]
    assert (tmp_path / "c" / "particles.json").exists() and not (tmp_path / "c" / "tokenizer.json").exists()
    rebuilt = materialise(tmp_path / "c", cache_dir=tmp_path / "cache")
    assert (rebuilt / "particles.json").read_bytes() == (ck / "particles.json").read_bytes()
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
    with pytest.raises(ModelError, match=f"{w}: altered .*; pip install X"):
        materialise(tmp_path / "c", cache_dir=tmp_path / "cache", reinstall="pip install X")
    w.unlink()
    with pytest.raises(ModelError, match=f"{w}: file missing"):
        materialise(tmp_path / "c", cache_dir=tmp_path / "cache")


def test_a_shipped_reader_is_found_by_name_and_is_the_default(trained, tmp_path, monkeypatch):
    import odqa
    from odqa.api.readers import open_reader, reader_paths
    from odqa.modeling.shipped import shipped_models
    base, ck = trained
    models = tmp_path / "models"
    pack(ck, models / "ko-reader", str(base), "int8")
    (models / "ko-reader" / "card.json").write_text(json.dumps({"kind": "reader", "licence": "CC BY-SA 4.0"}))
    monkeypatch.setenv("ODQA_MODELS_DIR", str(models))
    monkeypatch.setenv("ODQA_CACHE", str(tmp_path / "cache"))
    (m,) = shipped_models()
    assert m.to_json()["licence"] == "CC BY-SA 4.0" and m.to_json()["size_mb"] > 0
    rd = open_reader("ko-reader")
    assert not getattr(rd, "sentence_level", False) and len(rd.post.steps) > len(open_reader(ck).post.steps)
    assert reader_paths(None) == ["ko-reader"] and not getattr(open_reader(None), "sentence_level", False)
    assert open_reader("none").sentence_level
    from odqa.api.readers import particle_setting     # results name the shipped rules that apply
    rules = str(models / "ko-reader" / "particles.json")
    assert particle_setting(None, None) == rules == particle_setting("ko-reader", None)
    assert particle_setting("none", None) is None and particle_setting(ck, None) is None
    assert particle_setting(None, "my.json") == "my.json"
    assert len(open_reader("ko-reader", particles="none").post.steps) == len(open_reader(ck).post.steps)
    (models / "ko-reader" / COMPACT_WEIGHTS).unlink()
    with pytest.raises(odqa.ModelError, match="compact.safetensors: missing from the shipped model 'ko-reader'"):
        open_reader("ko-reader")


def test_odqa_models_pack_and_list(trained, tmp_path, monkeypatch):
    from tests.test_cli import odqa
    base, ck = trained
    out = tmp_path / "models" / "ko-reader"
    rep = json.loads(odqa("models", "pack", ck, "--out", out, "--base", base, "--json", cwd=tmp_path).stdout)
    assert rep["changed"] >= 1 and rep["shared"] >= 1 and 0 < rep["size_mb"]
    (out / "card.json").write_text(json.dumps({"kind": "reader", "licence": "CC BY-SA 4.0", "data": "x"}))
    monkeypatch.setenv("ODQA_MODELS_DIR", str(tmp_path / "models"))
    listed = json.loads(odqa("models", "--json", cwd=tmp_path).stdout)["models"]
    assert [m["name"] for m in listed] == ["ko-reader"] and listed[0]["kind"] == "reader"
    assert "ko-reader" in odqa("models", cwd=tmp_path).stdout


def _flip(f):
    b = bytearray(f.read_bytes())
    b[len(b) // 2] ^= 0xFF
    f.write_bytes(bytes(b))


def test_every_file_of_a_checkpoint_and_of_its_compact_form_is_checked_at_load(trained, tmp_path):
    """Each recorded file, altered or deleted: loading names it (ModelError), whatever its kind."""
    import shutil
    from odqa.checksums import CHECKSUMS
    base, ck = trained
    packed = tmp_path / "c"
    pack(ck, packed, str(base), "fp16")
    for folder, load in ((ck, lambda f: load_model(f, "span")),
                         (packed, lambda f: materialise(f, cache_dir=tmp_path / f"cache-{f.name}"))):
        recorded = json.loads((folder / CHECKSUMS).read_text())["files"]
        added_later = {"particles.json"} if folder == ck else set()      # the fixture writes it after saving
        assert set(recorded) == {p.name for p in folder.iterdir() if p.is_file()} - {CHECKSUMS} - added_later
        for name in recorded:
            for damage in (_flip, lambda f: f.unlink()):
                work = tmp_path / f"w-{folder.name}-{name}-{damage.__name__}"
                shutil.copytree(folder, work)
                damage(work / name)
                where, what = re.escape(str(work)), re.escape(name)       # a missing file may be named as incomplete
                with pytest.raises(ModelError, match=f"^{where}(/{what}: (altered|file missing)|: incomplete model "
                                                     f"folder, {what} missing)"):
                    load(work)


def test_the_shipped_models_are_intact_and_every_file_is_recorded():
    from odqa.checksums import CHECKSUMS, folder_problems
    from odqa.modeling.shipped import shipped_models
    models = shipped_models()
    assert models
    for m in models:
        recorded = json.loads((m.folder / CHECKSUMS).read_text())["files"]
        assert set(recorded) == {p.name for p in m.folder.iterdir() if p.is_file()} - {CHECKSUMS}
        assert folder_problems(m.folder) == []


def test_int4_rows_round_trip_within_half_a_step_of_their_group_scale():
    from odqa.modeling.compact import GROUP4, _dequantize, _quantize
    t = torch.randn(32, 8 * GROUP4) * torch.linspace(0.1, 3, 32)[:, None]
    stored = _quantize("w", t, "int4")
    assert stored["w::q4"].dtype == torch.uint8 and stored["w::q4"].shape == (32, 4 * GROUP4)   # two values a byte
    back = _dequantize(stored)["w"]
    step = t.reshape(32, -1, GROUP4).abs().amax(dim=2) / 7
    assert (back - t).abs().reshape(32, -1, GROUP4).le(step[..., None] / 2 + 1e-3).all()
    assert not torch.equal(back, t)


def test_int8g_keeps_a_small_group_exact_next_to_a_large_outlier_where_per_row_int8_cannot():
    from odqa.modeling.compact import GROUP8, _dequantize, _quantize
    t = torch.randn(16, 4 * GROUP8) * 1e-3
    t[:, 0] = 10.0                                   # one outlier per row sets the per-row scale
    stored = _quantize("w", t, "int8g")
    per_row, grouped = _dequantize(_quantize("w", t, "int8"))["w"], _dequantize(stored)["w"]
    assert stored["w::q8g"].dtype == torch.int8 and stored["w::scale8g"].shape == (16, 4)
    rest = slice(GROUP8, None)                       # the groups without the outlier
    assert per_row[:, rest].abs().max() == 0         # the per-row scale rounds them all to zero
    step = t.reshape(16, -1, GROUP8).abs().amax(dim=2) / 127
    assert (grouped - t).abs().reshape(16, -1, GROUP8).le(step[..., None] / 2 + 1e-4).all()
    assert (grouped[:, rest] - t[:, rest]).abs().max() < 0.01 * t[:, rest].abs().max()   # within 1 % of their size


def test_an_unknown_precision_is_refused_in_one_line_before_anything_is_written(tmp_path):
    from odqa.api.models import pack_model
    from odqa.errors import OdqaError
    with pytest.raises(OdqaError, match=r"^`precision` must be int4, int8, int8g, fp16, fp32, not 'int3'$"):
        pack_model(tmp_path / "ck", tmp_path / "out", precision="int3")   # type: ignore[arg-type]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("precision", ["fp32", "int8g"])
def test_trained_embedding_rows_are_stored_alone_and_put_back_into_the_base_matrix(tmp_path, precision):
    base = make_tiny_backbone(tmp_path / "base", hidden=64)
    tok, model = build_model(str(base), "span", HeadConfig(type="linear"))
    emb = model.backbone.embeddings.word_embeddings.weight
    rows = [5, 17, 40]
    with torch.no_grad():
        emb[rows] += torch.linspace(-0.05, 0.05, emb.shape[1])
    save_model(model, tok, tmp_path / "ck")
    rec = pack(tmp_path / "ck", tmp_path / "c", str(base), precision)
    assert rec["row_sparse"] == ["embeddings.word_embeddings.weight"]
    from safetensors.torch import load_file
    stored = load_file(str(tmp_path / "c" / COMPACT_WEIGHTS))
    assert stored["backbone.embeddings.word_embeddings.weight::rows"].tolist() == rows
    rebuilt = materialise(tmp_path / "c", cache_dir=tmp_path / "cache")
    got = load_file(str(rebuilt / "model.safetensors"))["embeddings.word_embeddings.weight"]
    want = emb.detach()
    untouched = [i for i in range(want.shape[0]) if i not in rows]
    assert torch.equal(got[untouched], want[untouched])            # every other row is the base's, exactly
    assert torch.allclose(got[rows], want[rows], atol=0 if precision == "fp32" else 1e-3)
