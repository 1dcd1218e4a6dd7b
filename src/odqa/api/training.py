"""Training from Python: the reader, its particle rules, the dense retriever, masked-LM pretraining.

Each function takes the task's typed config (`ReaderConfig`, `RetrieverTrainConfig`,
`PretrainConfig`) and the shared loop's `TrainConfig`, and returns a typed result whose
`to_json()` is the object `odqa train ... --json` prints. Defaults that are decisions (the
freeze-layers default of the retriever, the metric a run selects by) live here, once.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from odqa.api.readers import PARTICLES_FILE
from odqa.errors import OdqaError

log = logging.getLogger(__name__)
Paths = Sequence[str | Path]


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
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "skipped_examples"}


def train_reader(train: Paths, out: str | Path, cfg=None, run=None, dev: str | Path | None = None,
                 resume: bool = False, quiet: bool = True) -> ReaderTrainResult:
    """Fine-tune an extractive reader (backbone + span head) on SQuAD/KorQuAD/KLUE-MRC files; best
    checkpoint by dev F1 (by training loss without `dev`) in OUT/best, resumable from OUT/last."""
    from odqa.corpus import load_questions
    from odqa.modeling.checkpoint import build_model
    from odqa.reader.task import ReaderConfig, ReaderTask
    from odqa.training import TrainConfig, train as run_training
    cfg, run, out = cfg or ReaderConfig(), run or TrainConfig(lr=1e-4), Path(out)
    questions = [q for f in train for q in load_questions(f)]
    dev_questions = load_questions(dev) if dev else []
    tokenizer, model = build_model(cfg.backbone, "span", cfg.head)
    task = ReaderTask(tokenizer, questions, dev_questions, cfg, run.batch_size, run.seed, [str(f) for f in train])
    if task.skips.skipped:
        log.warning(f"skipped {task.skips.skipped} training record(s): " + "; ".join(task.skips.records[:3]))
    run = dataclasses.replace(run, metric="f1" if dev_questions else "loss", greater_is_better=bool(dev_questions),
                              freeze_prefixes=task.freeze_prefixes())
    t0 = time.perf_counter()
    res = run_training(model, task, run, out, resume=resume, quiet=quiet)
    return ReaderTrainResult(str(out / "best"), cfg.head.type, task.n_train_questions, len(task.win),
                             task.skips.skipped, len(task.dev), res.best_metric, run.metric, res.best_step, res.steps,
                             res.history[-1] if res.history else {}, res.stopped_reason,
                             round((time.perf_counter() - t0) / 60, 1), list(task.skips.records[:3]))


@dataclass
class ParticlesResult:
    out: str
    questions: int
    examples: int
    train_em_before: float
    train_em_after: float
    rules: list[dict]

    def to_json(self) -> dict:
        return dataclasses.asdict(self)


def train_particles(reader: str | Path, train: Paths, out: str | Path | None = None, analyzer: str = "mecab",
                    limit: int = 0, quiet: bool = True) -> ParticlesResult:
    """Learn which trailing morphemes (josa, endings) to strip from the reader's answers: the reader reads
    each training question's own passage; a rule is kept only if it fixes more predictions than it breaks."""
    from odqa.corpus import load_questions
    from odqa.metrics import exact_match
    from odqa.qa_eval import closed_hits
    from odqa.reader.reader import Reader
    from odqa.text.particles import ParticleRules
    qs = [q for f in train for q in load_questions(f) if q.context and q.answers]
    qs = qs[:limit] if limit else qs
    answers = Reader(reader, n_best=1).read_batch([q.question for q in qs], closed_hits(qs), quiet=quiet)
    examples = [(q.context, a[0].start, a[0].end, q.answers) for q, a in zip(qs, answers) if a]
    rules = ParticleRules.learn(examples, analyzer=analyzer)
    target = Path(out) if out else Path(reader) / PARTICLES_FILE
    rules.save(target)
    before = sum(exact_match(c[s:e], g) for c, s, e, g in examples)
    after = sum(exact_match(rules.apply_text(c, s, e), g) for c, s, e, g in examples)
    n = max(1, len(examples))
    return ParticlesResult(str(target), len(qs), len(examples), round(100 * before / n, 2), round(100 * after / n, 2),
                           rules.to_dict()["rules"])


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
        return dataclasses.asdict(self)


def default_freeze_layers(model) -> int:
    """The retriever's default: embeddings and a third of the layers frozen (4 of e5-small's 12; the
    measured gain, BENCHMARKS.md)."""
    return int(getattr(model.config, "num_hidden_layers", 0)) // 3


def train_retriever(train: Paths, out: str | Path, cfg=None, run=None, negatives: Paths = (),
                    side: str = "both", resume: bool = False, quiet: bool = True) -> RetrieverTrainResult:
    """Fine-tune the dense bi-encoder (both sides: in-batch + BM25 hard negatives; `side="query"`: the
    query encoder alone against the base encoder's fixed passage vectors). `cfg.temperature == 0` takes
    the backbone's own (0.01 for e5), `cfg.freeze_layers < 0` the default (a third of the layers)."""
    from odqa.corpus import load_corpus, load_questions
    from odqa.modeling.backbone import e5_prefix, load_backbone
    from odqa.progress import bar
    from odqa.retrieval.train_dense import (QuerySideTask, RetrieverTask, RetrieverTrainConfig, default_temperature,
                                            passage_base)
    from odqa.training import TrainConfig, frozen_prefixes, train as run_training
    if side not in ("both", "query"):
        raise OdqaError(f"--side must be 'both' or 'query', not '{side}'")
    cfg = cfg or RetrieverTrainConfig(temperature=0.0, freeze_layers=-1)   # the defaults below, as on the CLI
    run, out = run or TrainConfig(lr=1e-5), Path(out)
    questions = [q for f in train for q in load_questions(f)]
    extra = [p for f in negatives for p in load_corpus(f).passages]
    tokenizer, model = load_backbone(cfg.backbone)
    cfg = dataclasses.replace(cfg, temperature=cfg.temperature or default_temperature(cfg.backbone),
                              freeze_layers=cfg.freeze_layers if cfg.freeze_layers >= 0 else default_freeze_layers(model))
    prefixes = (e5_prefix("query", cfg.backbone), e5_prefix("passage", cfg.backbone))
    if side == "query":
        with bar(None, "passage windows", "win", quiet) as pb:
            task = QuerySideTask(tokenizer, questions, cfg, run.batch_size, run.seed, prefixes, extra,
                                 load_backbone(passage_base(cfg.backbone))[1], pb.update)
    else:
        task = RetrieverTask(tokenizer, questions, cfg, run.batch_size, run.seed, prefixes, extra)
    run = dataclasses.replace(run, metric="recall@1", greater_is_better=True,
                              freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings, cfg.freeze_layers))
    t0 = time.perf_counter()
    before = task.evaluate(model)
    res = run_training(model, task, run, out, resume=resume, quiet=quiet)
    return RetrieverTrainResult(str(out / "best"), len(task.train), len(task.heldout), before, res.best_metric,
                                res.best_step, res.steps, res.stopped_reason, round((time.perf_counter() - t0) / 60, 1))


def pretrain(corpus: str | Path, out: str | Path, cfg=None, run=None, run_dir: str | Path | None = None,
             resume: bool = False, quiet: bool = True) -> dict[str, Any]:
    """Masked-LM domain-adaptive pretraining (span or token masking); OUT is a backbone folder every
    training command takes. Returns the report `odqa pretrain --json` prints."""
    from odqa.pretraining import PretrainConfig, run_pretrain
    from odqa.training import TrainConfig
    return run_pretrain(corpus, out, cfg or PretrainConfig(), run or TrainConfig(), run_dir, resume=resume,
                        quiet=quiet)
