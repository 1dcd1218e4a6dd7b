"""Distillation: the soft-voted spans of teacher readers as training targets for one student."""

import json

import pytest
import torch

from odqa.modeling.losses import distillation_loss
from tests.conftest import squad_file
from tests.test_cli import odqa


def test_distillation_loss_is_zero_when_the_student_matches_and_pulls_towards_the_teacher():
    torch.manual_seed(0)
    student = torch.randn(3, 10, requires_grad=True)
    t = 2.0
    same = torch.log_softmax(student.detach() / t, dim=-1)
    assert distillation_loss(student, same, t).item() == pytest.approx(0.0, abs=1e-5)
    teacher = torch.log_softmax(torch.randn(3, 10) / t, dim=-1)
    loss = distillation_loss(student, teacher, t)
    assert loss.item() > 0
    loss.backward()
    with torch.no_grad():
        moved = student - 0.5 * student.grad
    assert distillation_loss(moved, teacher, t) < loss


def test_padding_positions_of_the_teacher_carry_no_mass():
    student = torch.tensor([[2.0, 1.0, -1e4, -1e4]])
    teacher = torch.log_softmax(torch.tensor([[2.0, 1.0, -1e4, -1e4]]), dim=-1).clamp(min=-1e4)
    loss = distillation_loss(student, teacher, 1.0)
    assert torch.isfinite(loss) and loss.item() == pytest.approx(0.0, abs=1e-5)


def test_a_student_distils_two_teachers_and_the_targets_are_cached(tiny, tmp_path):
    train = squad_file(tmp_path / "train.json")
    common = ["--train", train, "--max-length", "48", "--stride", "16", "--batch-size", "4", "--lr", "1e-3",
              "--json", "--backbone", tiny]
    for name, seed in (("t1", "1"), ("t2", "2")):
        odqa("train", "reader", *common, "--out", tmp_path / name, "--max-steps", "2", "--seed", seed, cwd=tmp_path)
    teachers = ["--teacher", tmp_path / "t1" / "best", "--teacher", tmp_path / "t2" / "best"]
    rep = json.loads(odqa("train", "reader", *common, *teachers, "--out", tmp_path / "s", "--max-steps", "2",
                          "--distill-weight", "0.7", cwd=tmp_path).stdout)
    assert rep["steps"] == 2
    meta = json.loads((tmp_path / "s" / "best" / "odqa_head.json").read_text())
    assert meta["extra"]["reader"]["distilled"] is True
    cache = torch.load(tmp_path / "s" / "teacher_targets.pt", weights_only=False)
    assert cache["key"]["teachers"] == [str(tmp_path / "t1" / "best"), str(tmp_path / "t2" / "best")]
    targets = cache["targets"]
    assert len(targets) == rep["train_windows"]
    probs = torch.from_numpy(targets[0].astype("float32")).exp()
    assert probs.shape[0] == 2 and torch.allclose(probs.sum(dim=1), torch.ones(2), atol=2e-2)


def test_a_teacher_of_another_vocabulary_is_refused(tiny):
    from transformers import AutoTokenizer
    from odqa.errors import ModelError
    from odqa.reader.distill import teacher_targets
    from odqa.reader.features import make_windows

    class OtherVocabulary:
        def get_vocab(self):
            return {"[PAD]": 0, "다른": 1}

    tok = AutoTokenizer.from_pretrained(str(tiny))
    win = make_windows(tok, ["백록담이 있는 산은?"], ["한라산 정상에는 백록담이 있다."], 48, 16)
    with pytest.raises(ModelError, match=r"teachers\[0\]: its tokenizer differs"):
        teacher_targets([(OtherVocabulary(), None)], tok, win, 2.0)


def test_layers_to_keep_are_evenly_spaced_from_the_first_to_the_last():
    from odqa.errors import ConfigError
    from odqa.modeling.layers import layers_to_keep
    assert layers_to_keep(12, 6) == [0, 2, 4, 7, 9, 11]
    assert layers_to_keep(12, 12) == list(range(12)) and layers_to_keep(12, 1) == [11]
    assert layers_to_keep(4, 2) == [0, 3]
    with pytest.raises(ConfigError, match="cannot keep 5 of a backbone's 4 layers"):
        layers_to_keep(4, 5)


def test_a_shallower_student_starts_from_its_teachers_layers_and_loads_as_a_smaller_model(tmp_path):
    from odqa.modeling.checkpoint import load_model
    from tests.tiny_model import make_tiny_backbone

    deep = str(make_tiny_backbone(tmp_path / "bb4", layers=4))
    train = squad_file(tmp_path / "train.json")
    common = ["--train", train, "--max-length", "48", "--stride", "16", "--batch-size", "4", "--lr", "1e-3",
              "--json", "--max-steps", "2"]
    odqa("train", "reader", *common, "--backbone", deep, "--out", tmp_path / "t", cwd=tmp_path)
    teacher = tmp_path / "t" / "best"
    rep = json.loads(odqa("train", "reader", *common, "--init", teacher, "--teacher", teacher, "--layers", "2",
                          "--lr", "1e-12", "--out", tmp_path / "s", cwd=tmp_path).stdout)
    assert rep["steps"] == 2
    _, student, meta = load_model(tmp_path / "s" / "last", "span", device="cpu")
    _, full, _ = load_model(teacher, "span", device="cpu")
    assert student.config.num_hidden_layers == 2 and len(student.backbone.encoder.layer) == 2
    assert meta["layers_kept"] == [0, 3]
    for mine, theirs in ((0, 0), (1, 3)):            # lr ~0: the kept layers are the teacher's, renumbered
        a = student.backbone.encoder.layer[mine].state_dict()
        b = full.backbone.encoder.layer[theirs].state_dict()
        assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert not torch.allclose(student.backbone.encoder.layer[1].state_dict()["output.dense.weight"],
                              full.backbone.encoder.layer[1].state_dict()["output.dense.weight"], atol=1e-3)
    too_many = odqa("train", "reader", *common, "--init", teacher, "--layers", "5", "--out", tmp_path / "x",
                    cwd=tmp_path, check=False)
    assert too_many.returncode != 0 and "cannot keep 5 of a backbone's 4 layers" in too_many.stderr
