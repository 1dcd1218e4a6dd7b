"""`odqa train reader`: the request (a `ReaderConfig` and its inputs), the run and its result; starting from
a trained reader (`init`) and mining negative passages for multi-passage training."""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

from pydantic import Field

from odqa.config import with_changes
from odqa.reader.task import ReaderConfig

log = logging.getLogger(__name__)
Files = list[Path]


class ReaderTrainRequest(ReaderConfig):
    """`odqa train reader`: a `ReaderConfig` (backbone, head, windows, `train: TrainConfig`) and its inputs."""
    train_files: Files = Field(min_length=1)      # SQuAD/KorQuAD/KLUE-MRC JSON, JSONL or a datasets folder
    out: Path                                     # the best checkpoint is OUT/best, the resumable one OUT/last
    dev: Optional[Path] = None                    # questions with contexts (closed-domain EM/F1 picks the checkpoint)
    resume: bool = False                          # continue from OUT/last
    init: Optional[str] = None                    # start backbone AND head from this reader (folder or shipped name)
    pool: Optional[str] = None                    # negative_passages > 0: index name or corpus file they are mined from
    pool_exclude: Files = Field(default_factory=list)   # question files whose gold passages never become negatives
    index_dir: Optional[Path] = None              # where the pool index lives (default: ODQA_INDEX_DIR / indexes)
    teachers: list[str] = Field(default_factory=list)   # readers (folders or shipped names) distilled into this one


@dataclass
class ReaderTrainResult:
    out: str
    head: str
    train_questions: int
    train_windows: int
    skipped_records: int
    dev_questions: int
    best_metric: float | None
    metric: str
    best_step: int
    steps: int
    last_eval: dict
    stopped: str
    minutes: float
    skipped_examples: list[str] = field(default_factory=list, repr=False)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if k != "skipped_examples"}


def train(cfg: ReaderTrainRequest, *, quiet: bool = True) -> ReaderTrainResult:
    """Fine-tune an extractive reader (backbone + span head); the best checkpoint by dev F1 (by training
    loss without `dev`) in OUT/best, resumable from OUT/last."""
    from odqa.corpus import load_questions
    from odqa.modeling.checkpoint import build_model
    from odqa.reader.task import ReaderTask
    from odqa.training import train as run_training
    from odqa.device import resolve_device
    resolve_device(cfg.train.device)                 # a device torch cannot use: one line, before any work
    empty: list[str] = []                            # training records without a question: counted, not fatal
    questions = [q for f in cfg.train_files for q in load_questions(f, skipped=empty)]
    dev_questions = load_questions(cfg.dev) if cfg.dev else []
    if cfg.init:
        tokenizer, model, cfg = init_reader(cfg)
    else:
        tokenizer, model = build_model(cfg.backbone, "span", cfg.head)
    if cfg.layers is not None and cfg.layers != model.config.num_hidden_layers:
        from odqa.modeling.layers import keep_layers
        kept = keep_layers(model.backbone, cfg.layers)
        model.meta["layers_kept"] = kept
        log.info("reading with %d of the backbone's layers: %s", len(kept), kept)
    negatives = mine_negatives(cfg, questions, quiet) if cfg.negative_passages else None
    task = ReaderTask(tokenizer, questions, dev_questions, cfg, train_files=[str(f) for f in cfg.train_files],
                      negatives=negatives)
    if cfg.teachers:
        task.set_targets(distillation_targets(cfg, tokenizer, task, quiet))
    for where in empty:
        task.skips.add(where, "empty question")
    if task.unanswerable and cfg.normalisation == "shared":
        log.warning(f"shared normalisation: {task.unanswerable} question(s) whose windows lost the answer are skipped")
    if task.skips.skipped:
        log.warning(f"skipped {task.skips.skipped} training record(s): " + "; ".join(task.skips.records[:3]))
    run = with_changes(cfg.train, metric="f1" if dev_questions else "loss", greater_is_better=bool(dev_questions),
                       freeze_prefixes=task.freeze_prefixes())
    t0 = time.perf_counter()
    res = run_training(model, task, run, cfg.out, resume=cfg.resume, quiet=quiet)
    return ReaderTrainResult(str(cfg.out / "best"), cfg.head.type, task.n_train_questions, len(task.win),
                             task.skips.skipped, len(task.dev), res.best_metric, run.metric, res.best_step, res.steps,
                             res.history[-1] if res.history else {}, res.stopped_reason, round((time.perf_counter() - t0) / 60, 1),
                             list(task.skips.records[:3]))


def mine_negatives(cfg: ReaderTrainRequest, questions, quiet: bool = True):
    """Per training question, `cfg.negative_passages` passages mined from `cfg.pool` (cached in OUT)."""
    from odqa.errors import ConfigError
    from odqa.progress import bar
    from odqa.reader import negatives as neg
    if not cfg.pool:
        raise ConfigError("negative_passages needs a pool to mine them from (`pool`: an index name or a corpus file)")
    retriever, passages = neg.pool_retriever(cfg.pool, cfg.mining, cfg.index_dir)
    excluded = neg.excluded_ids(cfg.pool_exclude, passages)
    settings = neg.MiningSettings(str(cfg.pool), cfg.mining, cfg.negative_passages, len(excluded))
    cached = neg.load_cache(cfg.out, settings, questions)
    if cached is not None:
        log.info("negative passages read from %s", cfg.out / neg.CACHE_FILE)
        return cached
    with bar(len(questions), "mining negatives", "question", quiet) as pb:
        found = neg.mine(questions, retriever, cfg.negative_passages, excluded, progress=pb.update)
    neg.save_cache(cfg.out, settings, questions, found)
    return found


def distillation_targets(cfg: ReaderTrainRequest, tokenizer, task, quiet: bool = True):
    """The teachers' soft spans over the task's windows (cached in OUT for a resumed run)."""
    from odqa.modeling.checkpoint import load_model
    from odqa.modeling.shipped import checkpoint_or_shipped
    from odqa.progress import bar
    from odqa.reader import distill
    key = distill.cache_key(cfg.teachers, cfg.distill_temperature, task.win)
    cached = distill.load_cache(cfg.out, key)
    if cached is not None:
        log.info("distillation targets read from %s", cfg.out / distill.CACHE_FILE)
        return cached
    teachers = []
    for spec in cfg.teachers:
        tok, model, _ = load_model(checkpoint_or_shipped(spec, "reader", spec), "span", device=cfg.train.device)
        teachers.append((tok, model))
    with bar(len(task.win), "teachers reading", "window", quiet) as pb:
        targets = distill.teacher_targets(teachers, tokenizer, task.win, cfg.distill_temperature,
                                          cfg.eval_batch_size, progress=pb.update)
    distill.save_cache(cfg.out, key, targets)
    return targets


def init_reader(cfg: ReaderTrainRequest):
    """(tokenizer, model, cfg) to continue the reader `cfg.init` (a checkpoint folder or a shipped reader's name):
    its backbone and head weights, and `cfg` with the head settings it was trained with."""
    from odqa.modeling.checkpoint import load_model
    from odqa.modeling.heads import HeadConfig
    from odqa.modeling.shipped import checkpoint_or_shipped
    folder = checkpoint_or_shipped(cfg.init, "reader", str(cfg.init))
    tokenizer, model, meta = load_model(folder, "span", device="cpu")
    head = HeadConfig.from_dict(meta["head"])
    if cfg.head.em_feature and not head.em_feature:      # the feature added to a reader trained without it
        from odqa.modeling.heads import make_em_embedding
        head = dataclasses.replace(head, em_feature=True)
        model.head.em = make_em_embedding(model.config.hidden_size)
        model.meta["head"] = head.to_dict()
    model.train()
    log.info("starting from reader %s (%s head)", folder, head.type)
    return tokenizer, model, with_changes(cfg, head=head, backbone=str(meta.get("base_backbone") or cfg.backbone))
