"""One training loop for every task (retriever, reader, relation extraction, MLM).

The loop knows nothing about tasks: a `Task` gives batches, a scalar loss, an
evaluation dict and a way to save the model. The loop owns AdamW with linear
warmup/decay, gradient accumulation and clipping, evaluation, early stopping,
the best checkpoint (`best/`), a resumable checkpoint (`last/`), `history.jsonl`
and optional W&B logging. Checkpoint folders are written atomically.

Device placement, mixed precision (bf16, or fp16 with its grad scaler), backward and clipping go
through HF `accelerate` (`odqa.training_accel`); `accelerate launch -m odqa train ...` runs the same
loop data-parallel on several GPUs: each process takes every n-th batch of the task's stream, the
main process evaluates and saves (the unwrapped model), the others wait. Checkpoints hold CPU tensors.

Exact resume needs `task.train_batches(epoch, seed)` to be a pure function of
(epoch, seed): the loop replays and skips the batches already consumed.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import random
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Literal, Protocol

import numpy as np
import torch
from pydantic import Field

from odqa.atomic import AtomicFolder, atomic_write_text
from odqa.checksums import check_folder, write_checksums
from odqa.config import Section
from odqa.device import DEVICE_PATTERN, cpu_state, make_accelerator, to_device_batch
from odqa.errors import ModelError, OdqaError
from odqa.optimization import clip_and_step, freeze, linear_schedule, param_groups
from odqa.progress import bar, note

log = logging.getLogger(__name__)
STATE_FILE = "training_state.pt"
_warned_wandb = False


class TrainConfig(Section):
    """The loop's settings, the one place every task's training knobs are defined (a task config holds one
    as `train`). Checked when made, loaded or changed (a bad value is one ConfigError line naming it)."""
    lr: float = Field(5e-5, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(0, ge=0)              # optimizer steps; 0 = from epochs
    stop_after: int = Field(0, ge=0)             # stop at this step without changing the schedule (shared budgets); 0 = off
    batch_size: int = Field(16, ge=1)            # the task builds batches of this size
    grad_accum: int = Field(1, ge=1)             # micro-batches per optimizer step
    warmup_ratio: float = Field(0.06, ge=0, le=1)   # share of the optimizer steps spent warming up
    max_grad_norm: float = Field(1.0, ge=0)      # 0 = no clipping
    eval_every: int = Field(0, ge=0)             # optimizer steps; 0 = end of each epoch
    early_stopping_patience: int = Field(0, ge=0)   # evaluations without improvement; 0 = off
    metric: str = Field("loss", min_length=1)    # key of the evaluation dict (the task's API call sets it)
    greater_is_better: bool = False
    seed: int = Field(42, ge=0)
    num_threads: int = Field(0, ge=0)            # 0 = torch default
    save_every: int = Field(0, ge=0)             # steps between `last/` checkpoints; 0 = with each evaluation
    wandb: bool = False
    wandb_project: str = "odqa"
    time_budget_minutes: float = Field(0.0, ge=0)   # 0 = none
    freeze_prefixes: list[str] = Field(default_factory=list)   # set from the task's freeze settings
    device: str = Field("auto", pattern=DEVICE_PATTERN)   # auto | cpu | cuda | cuda:N | mps (auto: CUDA, else MPS, else CPU)
    mixed_precision: Literal["auto", "no", "bf16", "fp16"] = "auto"   # auto = bf16 (else fp16) on CUDA, no elsewhere


# what the task (its API call) decides rather than the user: not in a task's config file
TASK_DECIDED = ("metric", "greater_is_better", "freeze_prefixes")


class Task(Protocol):
    """What the loop trains. A task may also define `set_step(step)`: the loop calls it before each
    training batch with the number of optimizer steps done (for step-dependent behaviour that must
    survive a resume, e.g. a warm-up phase)."""

    def train_batches(self, epoch: int, seed: int) -> Iterable[Any]: ...
    def num_train_batches(self) -> int: ...
    def loss(self, model, batch) -> torch.Tensor: ...
    def evaluate(self, model) -> dict[str, float]: ...
    def save(self, model, folder: Path) -> None: ...


@dataclass
class TrainResult:
    best_metric: float | None
    best_step: int
    steps: int
    epochs_done: float
    seconds: float
    history: list[dict]
    stopped_reason: str   # completed | early_stopping | time_budget | max_steps | stop_after


@dataclass
class _Progress:
    """Everything besides tensors that a resumed run needs."""
    step: int = 0
    epoch: int = 0
    pos: int = 0            # batches consumed in the current epoch
    best: float | None = None
    best_step: int = 0
    bad_evals: int = 0
    last_eval_step: int = -1
    losses: list[float] = field(default_factory=list)   # micro-batch losses since the last evaluation
    history: list[dict] = field(default_factory=list)


def _rng_state() -> dict:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _wandb_run(cfg: TrainConfig, output_dir: Path):
    global _warned_wandb
    if not cfg.wandb:
        return None
    try:
        import wandb
    except ImportError:
        if not _warned_wandb:
            log.warning("wandb=True but the wandb package is not installed: logging to history.jsonl only")
            _warned_wandb = True
        return None
    return wandb.init(project=cfg.wandb_project, config=cfg.model_dump(), dir=str(output_dir))


class _Loop:
    def __init__(self, model, task: Task, cfg: TrainConfig, out: Path, quiet: bool):
        self.task, self.cfg, self.out, self.quiet = task, cfg, out, quiet
        self.acc, self.mixed_precision = make_accelerator(cfg.device, cfg.mixed_precision)
        self.device, self.world, self.main = self.acc.device, self.acc.num_processes, self.acc.is_main_process
        nb = task.num_train_batches()
        self.nb = nb if self.world == 1 else nb // self.world     # each process takes every world-th batch
        if self.nb <= 0:
            raise OdqaError("the training task has no batches" if nb <= 0 else
                            f"the training task has {nb} batches for {self.world} processes")
        self.total = cfg.max_steps or max(1, math.ceil(cfg.epochs * math.ceil(self.nb / cfg.grad_accum)))
        freeze(model, cfg.freeze_prefixes)
        self.raw = model                                   # unwrapped: evaluated, saved, resumed into
        self.model = self.acc.prepare_model(model)          # on the device (DDP-wrapped under a launcher)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.opt = self.acc.prepare_optimizer(torch.optim.AdamW(param_groups(model, cfg.weight_decay), lr=cfg.lr))
        self.schedule = linear_schedule(math.ceil(cfg.warmup_ratio * self.total), self.total)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self.schedule)
        self.st = _Progress()
        self.running: float | None = None
        self.lr = self.norm = 0.0
        self.last_save = -1

    def resume(self) -> None:
        path = self.out / "last" / STATE_FILE
        if not path.exists():
            raise OdqaError(f"cannot resume: no checkpoint at {path.parent} (train once without `resume`)")
        check_folder(path.parent, ModelError, "train again without `resume` (the checkpoint is damaged)")
        state = torch.load(path, map_location="cpu", weights_only=False)  # our own file: holds rng tuples
        self.raw.load_state_dict(state["model"])
        try:
            self.opt.load_state_dict(state["optimizer"])
        except ValueError:
            raise OdqaError(f"cannot resume from {path.parent}: its trainable parameters differ from this run's "
                            "(resume with the same freeze settings and head)") from None
        self.sched.load_state_dict(state["scheduler"])
        for g, base in zip(self.opt.param_groups, self.sched.base_lrs):   # total may have changed
            g["lr"] = base * self.schedule(self.sched.last_epoch)
        self.st = _Progress(**state["progress"])
        self.last_save = self.st.step
        if state.get("scaler") is not None and self.acc.scaler is not None:
            self.acc.scaler.load_state_dict(state["scaler"])
        _set_rng_state(state["rng"])

    def run(self, resume: bool) -> str:
        if resume:
            self.resume()
        else:
            _seed(self.cfg.seed)
        if self.main:
            self.out.mkdir(parents=True, exist_ok=True)
            _write_history(self.out / "history.jsonl", self.st.history)
        self.wandb = _wandb_run(self.cfg, self.out) if self.main else None
        self.start = time.monotonic()
        mp = "" if self.mixed_precision == "no" else f", {self.mixed_precision} mixed precision"
        procs = f", {self.world} processes" if self.world > 1 else ""
        log.info("training on %s%s%s", self.device, mp, procs)
        note(f"training on {self.device}{mp}{procs}", self.quiet or not self.main)
        self.pbar = bar(self.total, "train", "step", self.quiet or not self.main)
        self.pbar.update(self.st.step)
        self.model.train()
        try:
            reason = self._limit_reason(check_time=False)
            while reason is None:
                reason = self._epoch()
            if self.st.last_eval_step != self.st.step:
                self._evaluate()
            if self.last_save != self.st.step:
                self._save_last()
        finally:
            self.pbar.close()
            if self.wandb is not None:
                self.wandb.finish()
            self.acc.unwrap_model(self.model, keep_fp32_wrapper=False)   # the caller's model, plain again
        return reason

    def _stream(self, epoch: int):
        """This process's share of the task's batches for `epoch` (all of them in a single process)."""
        stream = self.task.train_batches(epoch, self.cfg.seed)
        if self.world > 1:
            stream = itertools.islice(stream, self.acc.process_index, self.nb * self.world, self.world)
        return stream

    def _agree(self, value):
        """The main process's `value` on every process (a decision all of them must take together)."""
        if self.world == 1:
            return value
        from accelerate.utils import broadcast_object_list
        return broadcast_object_list([value])[0]

    def _epoch(self) -> str | None:
        st, accum = self.st, self.cfg.grad_accum
        batches = itertools.islice(self._stream(st.epoch), st.pos, None)
        set_step = getattr(self.task, "set_step", None)
        for batch in batches:
            group = max(1, min(accum, self.nb - (st.pos // accum) * accum))
            if set_step is not None:
                set_step(st.step)
            boundary = (st.pos + 1) % accum == 0 or st.pos + 1 >= self.nb
            batch = to_device_batch(batch, self.device)
            with self.acc.autocast(), (contextlib.nullcontext() if boundary else self.acc.no_sync(self.model)):
                loss = self.task.loss(self.model, batch)
                if not torch.isfinite(loss).all():
                    raise OdqaError(f"non-finite training loss ({loss.item()}) at step {st.step + 1} "
                                    f"(epoch {st.epoch}, batch {st.pos})")
                self.acc.backward(loss / group)
            st.losses.append(loss.item())
            st.pos += 1
            if st.pos % accum == 0 or st.pos >= self.nb:
                reason = self._step(st.losses[-group:])
                if reason:
                    return reason
        if st.pos == 0:
            raise OdqaError(f"task.train_batches(epoch={st.epoch}) yielded no batches")
        if st.pos % accum and st.pos < self.nb:   # the task yielded fewer batches than announced
            if reason := self._step(st.losses[-(st.pos % accum):]):
                return reason
        st.epoch, st.pos = st.epoch + 1, 0
        if not self.cfg.eval_every and st.last_eval_step != st.step:
            if reason := self._evaluate():
                return reason
            self._maybe_save(evaluated=True)
        return self._limit_reason()

    def _step(self, group_losses: list[float]) -> str | None:
        st = self.st
        self.lr = self.sched.get_last_lr()[0]
        self.norm = clip_and_step(self.params, self.opt, self.sched, self.cfg.max_grad_norm, self.acc.clip_grad_norm_)
        st.step += 1
        mean = sum(group_losses) / len(group_losses)
        self.running = mean if self.running is None else 0.9 * self.running + 0.1 * mean
        self.pbar.update(1)
        self.pbar.set_postfix(loss=f"{self.running:.4f}", lr=f"{self.lr:.2e}", refresh=False)
        if self.wandb is not None:
            self.wandb.log({"train/loss": mean, "train/lr": self.lr, "train/grad_norm": self.norm}, step=st.step)
        reason = self._limit_reason()
        evaluate = reason is not None or bool(self.cfg.eval_every and st.step % self.cfg.eval_every == 0)
        if evaluate:
            reason = self._evaluate() or reason
        self._maybe_save(evaluated=evaluate)
        return reason

    def _limit_reason(self, check_time: bool = True) -> str | None:
        if self.st.step >= self.total:
            return "max_steps" if self.cfg.max_steps else "completed"
        if self.cfg.stop_after and self.st.step >= self.cfg.stop_after:
            return "stop_after"
        budget = self.cfg.time_budget_minutes
        if check_time and budget:     # the clocks of several processes differ: the main process decides
            return self._agree("time_budget" if time.monotonic() - self.start > budget * 60 else None)
        return None

    def _score(self, metrics: dict[str, float], train_loss: float | None) -> tuple[float, bool]:
        """The value to compare and whether greater is better."""
        if self.cfg.metric in metrics:
            return metrics[self.cfg.metric], self.cfg.greater_is_better
        if (self.cfg.metric == "loss" or not metrics) and train_loss is not None:
            return train_loss, False
        raise OdqaError(f"metric {self.cfg.metric!r} is not in the evaluation results ({', '.join(metrics)})")

    def _evaluate(self) -> str | None:
        """Evaluate on the main process (the others wait for its decision); 'early_stopping' when
        patience runs out."""
        train_loss = sum(self.st.losses) / len(self.st.losses) if self.st.losses else None
        self.st.losses = []
        self.st.last_eval_step = self.st.step
        reason = self._evaluate_main(train_loss) if self.main else None
        self.model.train()
        return self._agree(reason)

    def _evaluate_main(self, train_loss: float | None) -> str | None:
        """Evaluate, log, keep the best checkpoint."""
        st, cfg = self.st, self.cfg
        with torch.no_grad():
            metrics = {k: float(v) for k, v in self.task.evaluate(self.raw).items()}
        row = {"step": st.step, "epoch": round(st.epoch + st.pos / self.nb, 4), "train_loss": train_loss,
               "lr": self.lr, "grad_norm": self.norm, **metrics, "device": str(self.device)}
        st.history.append(row)
        with open(self.out / "history.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
        if self.wandb is not None:
            self.wandb.log({f"eval/{k}": v for k, v in metrics.items()}, step=st.step)
        value, greater = self._score(metrics, train_loss)
        if st.best is None or (value > st.best if greater else value < st.best):
            st.best, st.best_step, st.bad_evals = value, st.step, 0
            self._save_best(value)
        else:
            st.bad_evals += 1
            if cfg.early_stopping_patience and st.bad_evals >= cfg.early_stopping_patience:
                return "early_stopping"
        return None

    def _save_best(self, value: float) -> None:
        with AtomicFolder(self.out / "best") as tmp:
            self.task.save(self.raw, tmp)
            (tmp / "odqa_train_state.json").write_text(json.dumps(
                {"step": self.st.step, "metric": self.cfg.metric, "value": value, "config": self.cfg.model_dump()},
                indent=2))
            write_checksums(tmp)

    def _maybe_save(self, evaluated: bool) -> None:
        every = self.cfg.save_every
        if (every and self.st.step % every == 0) or (not every and evaluated):
            self._save_last()

    def _save_last(self) -> None:
        """The resumable checkpoint (CPU tensors), written by the main process while the others wait."""
        self.acc.wait_for_everyone()
        if self.main:
            state = {"model": cpu_state(self.raw.state_dict()), "optimizer": cpu_state(self.opt.state_dict()),
                     "scheduler": self.sched.state_dict(), "progress": asdict(self.st), "rng": _rng_state(),
                     "scaler": self.acc.scaler.state_dict() if self.acc.scaler is not None else None}
            with AtomicFolder(self.out / "last") as tmp:
                self.task.save(self.raw, tmp)
                torch.save(state, tmp / STATE_FILE)
                write_checksums(tmp)
        self.acc.wait_for_everyone()
        self.last_save = self.st.step


def _write_history(path: Path, rows: list[dict]) -> None:
    """Rewrite history.jsonl (empty for a fresh run, the checkpoint's rows on resume)."""
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def train(model: torch.nn.Module, task: Task, cfg: TrainConfig, output_dir: Path, resume: bool = False,
          quiet: bool = False) -> TrainResult:
    """Train `model` on `task`; best model in output_dir/best, resumable state in output_dir/last."""
    if cfg.num_threads:
        torch.set_num_threads(cfg.num_threads)
    t0 = time.monotonic()
    loop = _Loop(model, task, cfg, Path(output_dir), quiet)
    reason = loop.run(resume)
    st = loop.st
    return TrainResult(best_metric=st.best, best_step=st.best_step, steps=st.step,
                       epochs_done=round(st.epoch + st.pos / loop.nb, 4), seconds=time.monotonic() - t0,
                       history=st.history, stopped_reason=reason)
