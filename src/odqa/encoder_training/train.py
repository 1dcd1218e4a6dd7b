"""`odqa train retriever`: the request (a `RetrieverTrainConfig` and its inputs), the defaults decided for a
backbone, the run and its result."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from pydantic import Field

from odqa.config import with_changes
from odqa.encoder_training.model import default_temperature
from odqa.encoder_training.task import RetrieverTrainConfig
from odqa.optimization import default_freeze_layers

Files = list[Path]


class RetrieverTrainRequest(RetrieverTrainConfig):
    """`odqa train retriever`: a `RetrieverTrainConfig` (`train: TrainConfig` inside) and its inputs."""
    train_files: Files = Field(min_length=1)      # SQuAD/KorQuAD JSON with contexts
    out: Path                                     # HF folder OUT/best (use with --encoder PATH)
    negatives: Files = Field(default_factory=list)   # corpus files whose passages join the pool as negatives only
    side: Literal["both", "query"] = "both"       # query: the query encoder alone, against fixed passage vectors
    resume: bool = False


@dataclass
class RetrieverTrainResult:
    out: str
    train_questions: int
    heldout_questions: int
    heldout_before: dict
    best_metric: float | None
    best_step: int
    steps: int
    stopped: str
    minutes: float

    def to_json(self) -> dict:
        return asdict(self)


def retriever_defaults(cfg: RetrieverTrainConfig, model) -> RetrieverTrainConfig:
    """`cfg` with its open choices decided for `model`: temperature 0 -> the backbone's own (0.01 for e5,
    else 0.05), freeze_layers None -> a third of the layers."""
    return with_changes(cfg, temperature=cfg.temperature or default_temperature(cfg.backbone),
                        freeze_layers=default_freeze_layers(model) if cfg.freeze_layers is None else cfg.freeze_layers)


def train(cfg: RetrieverTrainRequest, *, quiet: bool = True) -> RetrieverTrainResult:
    """Fine-tune the dense bi-encoder (both sides: in-batch + BM25 hard negatives; `side="query"`: the query
    encoder alone against the base encoder's fixed passage vectors)."""
    from odqa.corpus import load_corpus, load_questions
    from odqa.modeling.backbone import e5_prefix, load_backbone
    from odqa.progress import bar
    from odqa.device import resolve_device
    from odqa.encoder_training.model import passage_base
    from odqa.encoder_training.query_side import QuerySideTask
    from odqa.encoder_training.task import RetrieverTask
    from odqa.optimization import frozen_prefixes
    from odqa.training import train as run_training
    resolve_device(cfg.train.device)
    questions = [q for f in cfg.train_files for q in load_questions(f)]
    extra = [p for f in cfg.negatives for p in load_corpus(f).passages]
    tokenizer, model = load_backbone(cfg.backbone)
    model.to(resolve_device(cfg.train.device))        # the held-out evaluation before training runs there too
    cfg = retriever_defaults(cfg, model)
    prefixes = (e5_prefix("query", cfg.backbone), e5_prefix("passage", cfg.backbone))
    batch, seed = cfg.train.batch_size, cfg.train.seed
    if cfg.side == "query":
        with bar(None, "passage windows", "win", quiet) as pb:
            task = QuerySideTask(tokenizer, questions, cfg, batch, seed, prefixes, extra,
                                 load_backbone(passage_base(cfg.backbone))[1], pb.update)
    else:
        task = RetrieverTask(tokenizer, questions, cfg, batch, seed, prefixes, extra)
    run = with_changes(cfg.train, metric="recall@1", greater_is_better=True,
                       freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings, cfg.freeze_layers))
    t0 = time.perf_counter()
    before = task.evaluate(model)
    res = run_training(model, task, run, cfg.out, resume=cfg.resume, quiet=quiet)
    return RetrieverTrainResult(str(cfg.out / "best"), len(task.train), len(task.heldout), before, res.best_metric,
                                res.best_step, res.steps, res.stopped_reason,
                                round((time.perf_counter() - t0) / 60, 1))
