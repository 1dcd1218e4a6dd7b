"""The shared training loop, driven by a toy regression task (CPU, no downloads)."""

from __future__ import annotations

import copy
import json
import logging
import math
import sys

import pytest

torch = pytest.importorskip("torch")

from odqa.errors import OdqaError  # noqa: E402
from odqa.optimization import clip_and_step, linear_schedule, param_groups  # noqa: E402
from odqa.training import TrainConfig, train  # noqa: E402

W_TRUE = torch.tensor([1.0, -2.0, 0.5, 3.0])


class Toy(torch.nn.Module):
    def __init__(self, seed: int = 0, dropout: float = 0.0, hidden: bool = False):
        super().__init__()
        torch.manual_seed(seed)
        self.emb = torch.nn.Linear(4, 4) if hidden else torch.nn.Identity()
        self.drop = torch.nn.Dropout(dropout)
        self.head = torch.nn.Linear(4, 1)

    def forward(self, x):
        return self.head(self.drop(self.emb(x))).squeeze(-1)


class ToyTask:
    """Linear regression; shuffles with (seed, epoch); optional kill, NaN or scripted eval metric."""

    def __init__(self, n=32, batch=4, fail_at=0, nan_at=0, scripted=None):
        g = torch.Generator().manual_seed(123)
        self.x = torch.randn(n, 4, generator=g)
        self.y = self.x @ W_TRUE + 0.3
        self.ex = torch.randn(16, 4, generator=g)
        self.ey = self.ex @ W_TRUE + 0.3
        self.n, self.batch, self.fail_at, self.nan_at, self.scripted = n, batch, fail_at, nan_at, scripted
        self.calls = 0
        self.snapshots = []

    def num_train_batches(self):
        return math.ceil(self.n / self.batch)

    def train_batches(self, epoch, seed):
        order = torch.randperm(self.n, generator=torch.Generator().manual_seed(seed * 1000 + epoch))
        for s in range(0, self.n, self.batch):
            idx = order[s:s + self.batch]
            yield self.x[idx], self.y[idx]

    def loss(self, model, batch):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("simulated kill")
        x, y = batch
        loss = torch.nn.functional.mse_loss(model(x), y)
        return loss * float("nan") if self.calls == self.nan_at else loss

    def evaluate(self, model):
        self.snapshots.append(copy.deepcopy(model.state_dict()))
        model.eval()
        mse = float(torch.nn.functional.mse_loss(model(self.ex), self.ey))
        if self.scripted is not None:
            return {"score": self.scripted[len(self.snapshots) - 1], "mse": mse}
        return {"loss": mse}

    def save(self, model, folder):
        torch.save(model.state_dict(), folder / "model.pt")
        (folder / "config.json").write_text(json.dumps({"model_type": "toy"}))


def cfg(**kw):
    base = dict(lr=0.05, warmup_ratio=0.0, weight_decay=0.0, max_grad_norm=0.0, seed=7)
    return TrainConfig(**{**base, **kw})


def assert_same_weights(a, b):
    for k in a:
        assert torch.allclose(a[k], b[k], atol=1e-6), k


def test_loss_decreases_and_metric_improves(tmp_path):
    task = ToyTask()
    res = train(Toy(), task, cfg(lr=0.2, epochs=4), tmp_path / "out")
    losses = [r["loss"] for r in res.history]
    assert len(res.history) == 4 and res.steps == 32 and res.stopped_reason == "completed"
    assert losses[-1] < losses[0] * 0.5
    assert res.history[-1]["train_loss"] < res.history[0]["train_loss"]
    assert res.best_metric == min(losses) and res.epochs_done == 4
    lines = (tmp_path / "out" / "history.jsonl").read_text().splitlines()
    assert [json.loads(x)["step"] for x in lines] == [8, 16, 24, 32]


def test_warmup_then_linear_decay():
    f = linear_schedule(2, 10)
    assert [f(s) for s in (0, 1, 2, 3, 6, 9, 10, 12)] == [0.0, 0.5, 1.0, 0.875, 0.5, 0.125, 0.0, 0.0]
    assert linear_schedule(0, 4)(0) == 1.0


def test_schedule_applied_per_optimizer_step(tmp_path):
    res = train(Toy(), ToyTask(), cfg(lr=0.1, max_steps=10, warmup_ratio=0.2, eval_every=1), tmp_path / "o")
    assert [r["lr"] for r in res.history] == pytest.approx([0.1 * f for f in
                                                            (0, .5, 1, .875, .75, .625, .5, .375, .25, .125)])
    assert res.stopped_reason == "max_steps"


def test_stop_after_keeps_the_full_schedule(tmp_path):
    res = train(Toy(), ToyTask(), cfg(lr=0.1, max_steps=10, warmup_ratio=0.2, eval_every=1, stop_after=4),
                tmp_path / "o")
    assert res.stopped_reason == "stop_after" and res.steps == 4
    assert [r["lr"] for r in res.history] == pytest.approx([0.1 * f for f in (0, .5, 1, .875)])


def test_grad_accumulation_matches_big_batch(tmp_path):
    runs = []
    for batch, accum in ((4, 2), (8, 1)):
        model = Toy()
        res = train(model, ToyTask(batch=batch), cfg(lr=0.1, weight_decay=0.01, max_steps=1, grad_accum=accum,
                                                       eval_every=1), tmp_path / f"a{accum}")
        runs.append((model.state_dict(), res.history[0]["grad_norm"]))
    assert_same_weights(runs[0][0], runs[1][0])
    assert runs[0][1] == pytest.approx(runs[1][1], rel=1e-5)   # the accumulated gradient itself matches


def test_partial_accumulation_group_at_epoch_end(tmp_path):
    res = train(Toy(), ToyTask(n=20, batch=4), cfg(epochs=2, grad_accum=2), tmp_path / "o")  # 5 batches/epoch
    assert res.steps == 6 and [r["step"] for r in res.history] == [3, 6]


def test_clipping_bounds_grad_norm():
    p = torch.nn.Parameter(torch.zeros(10))
    opt = torch.optim.SGD([p], lr=1.0)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    p.grad = torch.full((10,), 100.0)
    norm = clip_and_step([p], opt, sched, max_grad_norm=0.5)
    assert norm == pytest.approx(100.0 * math.sqrt(10))
    assert float(p.detach().norm()) == pytest.approx(0.5, rel=1e-4)   # SGD lr=1: update == clipped gradient
    assert p.grad is None


def test_clipping_in_loop_reports_preclip_norm(tmp_path):
    model = Toy()
    before = copy.deepcopy(model.state_dict())
    res = train(model, ToyTask(), cfg(lr=1.0, max_steps=1, max_grad_norm=1e-3, eval_every=1), tmp_path / "o")
    assert res.history[0]["grad_norm"] > 1e-3
    assert not torch.equal(before["head.weight"], model.state_dict()["head.weight"])


def test_early_stopping_and_best_checkpoint(tmp_path):
    task = ToyTask(scripted=[0.1, 0.3, 0.5, 0.4, 0.45, 0.9, 0.9])
    out = tmp_path / "out"
    res = train(Toy(), task, cfg(epochs=5, eval_every=2, metric="score", greater_is_better=True,
                                 early_stopping_patience=2), out)
    assert res.stopped_reason == "early_stopping" and len(res.history) == 5
    assert res.best_step == 6 and res.best_metric == 0.5 and res.steps == 10
    best = torch.load(out / "best" / "model.pt")
    assert_same_weights(best, task.snapshots[2])
    state = json.loads((out / "best" / "odqa_train_state.json").read_text())
    assert state["step"] == 6 and state["value"] == 0.5 and state["config"]["metric"] == "score"
    assert (out / "last" / "training_state.pt").exists() and (out / "last" / "config.json").exists()


def test_unknown_metric_is_a_clear_error(tmp_path):
    with pytest.raises(OdqaError, match="'f1'"):
        train(Toy(), ToyTask(), cfg(max_steps=1, metric="f1"), tmp_path / "o")


@pytest.mark.parametrize("accum", [1, 2])
def test_resume_after_kill_matches_uninterrupted_run(tmp_path, accum):
    conf = cfg(max_steps=6, grad_accum=accum, eval_every=2, save_every=1, warmup_ratio=0.3, max_grad_norm=1.0,
               weight_decay=0.01)
    ref = Toy(dropout=0.2)
    ref_res = train(ref, ToyTask(n=16), conf, tmp_path / "ref")    # 4 batches per epoch: crosses epochs

    out = tmp_path / "run"
    with pytest.raises(RuntimeError, match="simulated kill"):
        train(Toy(dropout=0.2), ToyTask(n=16, fail_at=3 * accum + 1), conf, out)   # dies during step 4
    assert torch.load(out / "last" / "training_state.pt", weights_only=False)["progress"]["step"] == 3

    resumed = Toy(seed=99, dropout=0.2)   # different init: weights must come from the checkpoint
    res = train(resumed, ToyTask(n=16), conf, out, resume=True)
    assert_same_weights(ref.state_dict(), resumed.state_dict())
    assert res.steps == 6 and res.history == ref_res.history
    assert (out / "history.jsonl").read_text() == (tmp_path / "ref" / "history.jsonl").read_text()


def test_resume_without_checkpoint_names_folder(tmp_path):
    with pytest.raises(OdqaError, match=str(tmp_path / "nowhere" / "last")):
        train(Toy(), ToyTask(), cfg(max_steps=2), tmp_path / "nowhere", resume=True)


def test_non_finite_loss_names_step(tmp_path):
    with pytest.raises(OdqaError, match="step 2"):
        train(Toy(), ToyTask(nan_at=2), cfg(max_steps=5), tmp_path / "o")


def test_time_budget_stops_evaluates_and_saves(tmp_path):
    res = train(Toy(), ToyTask(), cfg(epochs=3, time_budget_minutes=1e-9), tmp_path / "o")
    assert res.stopped_reason == "time_budget" and res.steps == 1 and len(res.history) == 1
    assert (tmp_path / "o" / "best" / "model.pt").exists() and (tmp_path / "o" / "last" / "model.pt").exists()


def test_freeze_prefixes_and_param_groups(tmp_path):
    model = Toy(hidden=True)
    before = copy.deepcopy(model.state_dict())
    train(model, ToyTask(), cfg(max_steps=3, freeze_prefixes=["emb"]), tmp_path / "o")
    after = model.state_dict()
    assert torch.equal(before["emb.weight"], after["emb.weight"])
    assert not torch.equal(before["head.weight"], after["head.weight"])
    with pytest.raises(OdqaError, match="'nothing'"):
        train(Toy(), ToyTask(), cfg(max_steps=1, freeze_prefixes=["nothing"]), tmp_path / "p")
    decay, plain = param_groups(Toy(hidden=True), 0.01)
    assert decay["weight_decay"] == 0.01 and all(p.ndim == 2 for p in decay["params"])
    assert plain["weight_decay"] == 0.0 and all(p.ndim == 1 for p in plain["params"])


def test_wandb_missing_warns_once_and_trains(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", None)   # `import wandb` raises ImportError; never networked
    monkeypatch.setattr("odqa.training._warned_wandb", False)
    with caplog.at_level(logging.WARNING, logger="odqa.training"):
        train(Toy(), ToyTask(), cfg(max_steps=1, wandb=True), tmp_path / "o")
        train(Toy(), ToyTask(), cfg(max_steps=1, wandb=True), tmp_path / "p")
    assert sum("wandb" in r.getMessage() for r in caplog.records) == 1


def test_frozen_prefixes_on_a_bert_backbone(tmp_path):
    from transformers import AutoModel

    from odqa.optimization import freeze, frozen_prefixes
    from tests.tiny_model import make_tiny_backbone
    assert frozen_prefixes(True) == ["embeddings.word_embeddings"] and frozen_prefixes(False) == []
    model = AutoModel.from_pretrained(str(make_tiny_backbone(tmp_path / "b", layers=3)))
    freeze(model, frozen_prefixes(True, freeze_layers=1))
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert {"embeddings.word_embeddings.weight", "embeddings.position_embeddings.weight"} <= frozen
    assert any(n.startswith("encoder.layer.0.") for n in frozen)
    assert all(n.startswith(("embeddings.", "encoder.layer.0.")) for n in frozen)   # layers 1, 2 and up train


@pytest.mark.parametrize("kwargs, message", [
    ({"lr": 0}, "config field 'lr': input should be greater than 0, got 0"),
    ({"grad_accum": 0}, "config field 'grad_accum': input should be greater than or equal to 1, got 0"),
    ({"batch_size": -2}, "config field 'batch_size'"),
    ({"warmup_ratio": 1.5}, "config field 'warmup_ratio': input should be less than or equal to 1"),
    ({"epochs": "many"}, "config field 'epochs': input should be a valid number"),
    ({"learning_rate": 1e-4}, "unknown config field 'learning_rate' (known: lr, "),
])
def test_train_config_is_checked_when_made_and_changed(kwargs, message):
    from odqa.errors import ConfigError
    with pytest.raises(ConfigError) as e:
        TrainConfig(**kwargs)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1
    c = TrainConfig()
    with pytest.raises(ConfigError, match="config field 'max_steps'"):
        c.max_steps = -1


def test_every_task_config_holds_one_train_config():
    """The loop's knobs are defined once (TrainConfig); each task config holds one, with its own defaults."""
    from odqa.pretraining.config import PretrainConfig
    from odqa.reader.task import ReaderConfig
    from odqa.relation.config import RETrainConfig
    from odqa.encoder_training.task import RetrieverTrainConfig
    loop = set(TrainConfig.model_fields)
    for cls, lr in ((ReaderConfig, 1e-4), (RetrieverTrainConfig, 1e-5), (PretrainConfig, 5e-5), (RETrainConfig, 1e-4)):
        cfg = cls()
        assert isinstance(cfg.train, TrainConfig) and cfg.train.lr == lr, cls
        assert not (set(cls.model_fields) - {"train"}) & loop, cls      # no loop knob restated beside it


def test_trained_word_embeddings_change_only_the_rows_a_batch_used():
    class Emb(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.word_embeddings = torch.nn.Embedding(50, 8)
            self.out = torch.nn.Linear(8, 1)

    model = Emb()
    before = model.word_embeddings.weight.detach().clone()
    groups = param_groups(model, 0.1)
    assert any(p is model.word_embeddings.weight for g in groups if g["weight_decay"] == 0.0 for p in g["params"])
    opt = torch.optim.AdamW(groups, lr=0.1)
    used = torch.tensor([3, 7, 7, 11])
    for _ in range(3):
        opt.zero_grad()
        model.out(model.word_embeddings(used)).sum().backward()
        opt.step()
    changed = (model.word_embeddings.weight.detach() != before).any(dim=1).nonzero().flatten().tolist()
    assert changed == [3, 7, 11]
