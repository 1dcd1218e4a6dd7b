"""Training from Python: the reader and its particle rules, the dense retriever, masked-LM pretraining and
KLUE relation extraction.

Each function takes one typed, validated request (the task's config plus its inputs; a bad value is one
`ConfigError` line naming the field, raised before any work) and returns a typed result whose `to_json()`
is exactly the object `odqa ... --json` prints. The task configs hold the shared loop's settings once, as
`train: TrainConfig`; what the task decides rather than the user (the metric a run selects by, the frozen
parameters, the retriever's freeze-layers and temperature defaults) is decided here, once.

    import odqa
    from odqa.api.training import ReaderTrainConfig
    from odqa.training import TrainConfig
    res = odqa.train_reader(ReaderTrainConfig(train_files=["train.json"], dev="dev.json", out="runs/reader",
                                              train=TrainConfig(lr=1e-4, max_steps=200)))
    print(res.best_metric, res.to_json())
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

from pydantic import Field

from odqa.api.readers import PARTICLES_FILE
from odqa.config import Section, load_config, validate_config, with_changes
from odqa.device import DEVICE_PATTERN, resolve_device
from odqa.pretraining import PretrainConfig
from odqa.reader.task import ReaderConfig
from odqa.relation.task import RETrainConfig
from odqa.reranker.task import RerankerTrainConfig
from odqa.retrieval.train_dense import RetrieverTrainConfig
from odqa.training import TrainConfig

log = logging.getLogger(__name__)
DEFAULT_RE_MODEL = "ko-re"                        # the shipped RE model (`odqa models`)
Files = list[Path]


def _json(obj) -> dict:
    return dataclasses.asdict(obj)


def _minutes(t0: float) -> float:
    return round((time.perf_counter() - t0) / 60, 1)


# ================================================================ reader


class ReaderTrainConfig(ReaderConfig):
    """`odqa train reader`: a `ReaderConfig` (backbone, head, windows, `train: TrainConfig`) and its inputs."""
    train_files: Files = Field(min_length=1)      # SQuAD/KorQuAD/KLUE-MRC JSON, JSONL or a datasets folder
    out: Path                                     # the best checkpoint is OUT/best, the resumable one OUT/last
    dev: Optional[Path] = None                    # questions with contexts (closed-domain EM/F1 picks the checkpoint)
    resume: bool = False                          # continue from OUT/last
    init: Optional[str] = None                    # start backbone AND head from this reader (folder or shipped name)
    pool: Optional[str] = None                    # negative_passages > 0: index name or corpus file they are mined from
    pool_exclude: Files = Field(default_factory=list)   # question files whose gold passages never become negatives
    index_dir: Optional[Path] = None              # where the pool index lives (default: ODQA_INDEX_DIR / indexes)


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
        return {k: v for k, v in _json(self).items() if k != "skipped_examples"}


def train_reader(cfg: ReaderTrainConfig, *, quiet: bool = True) -> ReaderTrainResult:
    """Fine-tune an extractive reader (backbone + span head); the best checkpoint by dev F1 (by training
    loss without `dev`) in OUT/best, resumable from OUT/last."""
    from odqa.corpus import load_questions
    from odqa.modeling.checkpoint import build_model
    from odqa.reader.task import ReaderTask
    from odqa.training import train as run_training
    resolve_device(cfg.train.device)                 # a device torch cannot use: one line, before any work
    empty: list[str] = []                            # training records without a question: counted, not fatal
    questions = [q for f in cfg.train_files for q in load_questions(f, skipped=empty)]
    dev_questions = load_questions(cfg.dev) if cfg.dev else []
    if cfg.init:
        tokenizer, model, cfg = init_reader(cfg)
    else:
        tokenizer, model = build_model(cfg.backbone, "span", cfg.head)
    negatives = mine_reader_negatives(cfg, questions, quiet) if cfg.negative_passages else None
    task = ReaderTask(tokenizer, questions, dev_questions, cfg, train_files=[str(f) for f in cfg.train_files],
                      negatives=negatives)
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
                             res.history[-1] if res.history else {}, res.stopped_reason, _minutes(t0),
                             list(task.skips.records[:3]))


def mine_reader_negatives(cfg: ReaderTrainConfig, questions, quiet: bool = True):
    """Per training question, `cfg.negative_passages` passages mined from `cfg.pool` (cached in OUT)."""
    from odqa.errors import ConfigError
    from odqa.progress import bar
    from odqa.reader import negatives as neg
    if not cfg.pool:
        raise ConfigError("negative_passages needs a pool to mine them from (--pool INDEX or --pool CORPUS_FILE)")
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


def init_reader(cfg: ReaderTrainConfig):
    """(tokenizer, model, cfg) to continue the reader `cfg.init` (a checkpoint folder or a shipped reader's name):
    its backbone and head weights, and `cfg` with the head settings it was trained with."""
    from odqa.api.readers import DEFAULT_READER
    from odqa.modeling.checkpoint import load_model
    from odqa.modeling.heads import HeadConfig
    from odqa.modeling.shipped import checkpoint_or_shipped
    folder = checkpoint_or_shipped(cfg.init, "reader", DEFAULT_READER)
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


# ============================================================= particles


class ParticlesConfig(Section):
    """`odqa train particles`: learn the trailing morphemes to strip from a reader's answers."""
    reader: Path                                  # reader checkpoint whose predictions the rules correct
    train_files: Files = Field(min_length=1)      # training questions with contexts
    out: Optional[Path] = None                    # rules file (default: READER/particles.json)
    analyzer: Literal["mecab", "kiwi"] = "mecab"
    limit: int = Field(0, ge=0)                   # use only the first N questions (0 = all)


@dataclass
class ParticlesResult:
    out: str
    questions: int
    examples: int
    train_em_before: float
    train_em_after: float
    rules: list[dict]

    def to_json(self) -> dict:
        return _json(self)


def train_particles(cfg: ParticlesConfig, *, quiet: bool = True) -> ParticlesResult:
    """The reader reads each training question's own passage; a rule is kept only if it fixes more of those
    predictions than it breaks."""
    from odqa.corpus import load_questions
    from odqa.qa_eval import closed_hits
    from odqa.reader.reader import Reader
    from odqa.text.particles import ParticleRules
    qs = [q for f in cfg.train_files for q in load_questions(f) if q.context and q.answers]
    qs = qs[:cfg.limit] if cfg.limit else qs
    answers = Reader(cfg.reader, n_best=1, retrieval_weight=0.0).read_batch([q.question for q in qs], closed_hits(qs), quiet=quiet)
    examples = [(q.context, a[0].start, a[0].end, q.answers) for q, a in zip(qs, answers) if a]
    rules = ParticleRules.learn(examples, analyzer=cfg.analyzer)
    target = cfg.out or cfg.reader / PARTICLES_FILE
    rules.save(target)
    before, after = rules.exact_match_rates(examples)
    return ParticlesResult(str(target), len(qs), len(examples), before, after, rules.to_dict()["rules"])


# ============================================================= retriever


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
        return _json(self)


def default_freeze_layers(model) -> int:
    """The retriever's default: embeddings and a third of the layers frozen (4 of e5-small's 12; the
    measured gain, BENCHMARKS.md)."""
    return int(getattr(model.config, "num_hidden_layers", 0)) // 3


def retriever_defaults(cfg: RetrieverTrainConfig, model) -> RetrieverTrainConfig:
    """`cfg` with its open choices decided for `model`: temperature 0 -> the backbone's own (0.01 for e5,
    else 0.05), freeze_layers None -> a third of the layers."""
    from odqa.retrieval.train_dense import default_temperature
    return with_changes(cfg, temperature=cfg.temperature or default_temperature(cfg.backbone),
                        freeze_layers=default_freeze_layers(model) if cfg.freeze_layers is None else cfg.freeze_layers)


def train_retriever(cfg: RetrieverTrainRequest, *, quiet: bool = True) -> RetrieverTrainResult:
    """Fine-tune the dense bi-encoder (both sides: in-batch + BM25 hard negatives; `side="query"`: the query
    encoder alone against the base encoder's fixed passage vectors)."""
    from odqa.corpus import load_corpus, load_questions
    from odqa.modeling.backbone import e5_prefix, load_backbone
    from odqa.progress import bar
    from odqa.retrieval.train_dense import QuerySideTask, RetrieverTask, passage_base
    from odqa.training import frozen_prefixes, train as run_training
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
                                res.best_step, res.steps, res.stopped_reason, _minutes(t0))


# ============================================================== reranker


class RerankerTrainRequest(RerankerTrainConfig):
    """`odqa train reranker`: a `RerankerTrainConfig` (`train: TrainConfig` inside) and its inputs."""
    train_files: Files = Field(min_length=1)      # SQuAD/KorQuAD/KLUE-MRC JSON with contexts
    out: Path                                     # the best checkpoint is OUT/best (use with --reranker)
    pool: Files = Field(default_factory=list)     # corpus files: hard negatives mined by BM25 over them (+ gold passages)
    pool_index: Optional[str] = None              # or an index: mined by its retriever (hybrid when it has vectors)
    index_dir: Optional[Path] = None
    resume: bool = False                          # continue from OUT/last


@dataclass
class RerankerTrainResult:
    out: str
    train_questions: int
    heldout_questions: int
    eval_questions: int
    pool_passages: int
    miner: str
    without_negatives: int
    best_metric: float | None
    best_step: int
    steps: int
    last_eval: dict
    stopped: str
    minutes: float

    def to_json(self) -> dict:
        return _json(self)


def _mining_search(cfg: RerankerTrainRequest, pool):
    """(search(questions, k) -> hits, what it is): BM25 over the pool, or the index's own retriever."""
    if cfg.pool_index:
        from odqa.retrieval.indexing import load_index
        idx = load_index(cfg.pool_index, cfg.index_dir)
        idx.device = cfg.train.device
        mode = idx.resolve_mode("auto")
        return idx.retriever(mode, idx.hybrid_config(None, None), None).search, f"index {cfg.pool_index} ({mode})"
    from odqa.config import BM25Config
    from odqa.retrieval.sparse import SparseRetriever
    from odqa.text.analyzers import make_analyzer
    sparse = SparseRetriever.build(pool, make_analyzer("mecab"), BM25Config(), include_title=False)
    return sparse.search, f"bm25 over {len(pool)} passages"


def train_reranker(cfg: RerankerTrainRequest, *, quiet: bool = True) -> RerankerTrainResult:
    """Fine-tune the cross-encoder (backbone + one-logit head) with a listwise loss over each question's gold
    passage and its hard negatives; the best checkpoint by held-out recall@1 in OUT/best, resumable from OUT/last."""
    import random

    from odqa.corpus import load_corpus, load_questions
    from odqa.progress import bar
    from odqa.reranker.model import RerankerSettings, build_reranker
    from odqa.reranker.task import RerankerTask
    from odqa.retrieval.train_dense import holdout_passages, training_pool
    from odqa.training import frozen_prefixes, train as run_training
    resolve_device(cfg.train.device)
    questions = [q for f in cfg.train_files for q in load_questions(f) if q.context and q.gold_ids]
    gold_pool = training_pool(questions)
    gold = {p.id: p for p in gold_pool}
    pool = list(gold_pool) + [p for f in cfg.pool for p in load_corpus(f).passages if p.id not in gold]
    search, miner = _mining_search(cfg, pool)
    depth = max(cfg.negative_depth + 10, cfg.eval_candidates)
    retrieved: dict[str, list] = {}
    with bar(len(questions), "mining negatives", "question", quiet) as pb:
        for s in range(0, len(questions), 256):
            part = questions[s:s + 256]
            for q, hits in zip(part, search([q.question for q in part], depth)):
                retrieved[q.id] = [h.passage for h in hits]
            pb.update(len(part))
    held = holdout_passages(gold_pool, cfg.holdout, cfg.train.seed)
    train_qs = [q for q in questions if q.gold_ids[0] not in held]
    heldout = [q for q in questions if q.gold_ids[0] in held]
    random.Random(cfg.train.seed).shuffle(heldout)
    settings = RerankerSettings(cfg.max_length, cfg.pooling, train={
        "backbone": cfg.backbone, "train_files": [str(f) for f in cfg.train_files], "miner": miner,
        "negatives": cfg.negatives, "negative_depth": cfg.negative_depth})
    tokenizer, model = build_reranker(cfg.backbone, settings, cfg.dropout, cfg.train.seed)
    freeze_layers = default_freeze_layers(model.backbone) if cfg.freeze_layers is None else cfg.freeze_layers
    task = RerankerTask(tokenizer, settings, cfg, train_qs, heldout, retrieved, pool, gold)
    run = with_changes(cfg.train, metric="recall@1" if task.eval_set else "loss", greater_is_better=bool(task.eval_set),
                       freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings, freeze_layers))
    t0 = time.perf_counter()
    res = run_training(model, task, run, cfg.out, resume=cfg.resume, quiet=quiet)
    return RerankerTrainResult(str(cfg.out / "best"), len(task.train), len(heldout), len(task.eval_set), len(pool),
                               miner, task.no_negatives, res.best_metric, res.best_step, res.steps,
                               res.history[-1] if res.history else {}, res.stopped_reason, _minutes(t0))


# ============================================================ pretraining


class PretrainRequest(PretrainConfig):
    """`odqa pretrain`: a `PretrainConfig` (masking, chunking, `train: TrainConfig`) and its inputs."""
    corpus: Path                                  # corpus file or folder (JSONL, wiki JSON, SQuAD JSON, .txt)
    out: Path                                     # the published backbone folder
    run_dir: Optional[Path] = None                # checkpoints and history (default: OUT.run)
    resume: bool = False                          # continue from RUN_DIR/last


@dataclass
class PretrainResult:
    out: str
    run_dir: str
    objective: str
    align: str
    steps: int
    best_step: int
    heldout_loss_before: float | None
    heldout_loss: float | None
    stopped: str
    epochs_done: float
    seconds: float
    train_seconds: float
    seconds_per_step: float | None
    chunks_train: int
    chunks_heldout: int
    mlm_head: dict
    verified: dict

    def to_json(self) -> dict:
        return _json(self)


def pretrain(cfg: PretrainRequest, *, quiet: bool = True) -> PretrainResult:
    """Masked-LM domain-adaptive pretraining (span or token masking); OUT is a backbone folder every
    training command takes."""
    from odqa.pretraining import run_pretrain
    resolve_device(cfg.train.device)
    task_cfg = PretrainConfig(**{k: getattr(cfg, k) for k in PretrainConfig.model_fields})
    report = run_pretrain(cfg.corpus, cfg.out, task_cfg, cfg.run_dir, resume=cfg.resume, quiet=quiet)
    return PretrainResult(**report)


# ==================================================== relation extraction


class RETrainRequest(RETrainConfig):
    """`odqa re train`: an `RETrainConfig` (configs/re.yaml, `train: TrainConfig` inside) and its inputs."""
    train_file: Path                              # KLUE-RE JSON/JSONL or Boostcamp CSV
    dev_file: Optional[Path] = None               # selects the best checkpoint by micro-F1
    out: Path = Path("runs/re")                   # best/ (the model), last/ (resumable)
    labels: Optional[Path] = None                 # relation_list.json (default: beside the data, else KLUE's 30)
    resume: bool = False                          # continue from OUT/last (same settings and labels)

    def task_config(self) -> RETrainConfig:
        return RETrainConfig(**{k: getattr(self, k) for k in RETrainConfig.model_fields})


def re_train_request(train_file: str | Path, out: str | Path = "runs/re", dev_file: str | Path | None = None,
                     labels: str | Path | None = None, resume: bool = False, config: str | Path | None = None,
                     overrides: Sequence[str] = (), **flags: Any) -> RETrainRequest:
    """The request `odqa re train` makes: configs/re.yaml's defaults (or the YAML file `config`), then the
    `--set` overrides, then the `flags` given (None = keep; `lr`, `patience`, ... in the flat layout)."""
    base = load_config(config, list(overrides), RETrainConfig).model_dump()
    for key, value in flags.items():
        if value is None:
            continue
        node, parts = base, RETrainConfig.renamed.get(key, key).split(".")
        for part in parts[:-1]:
            node = node[part]
        node[parts[-1]] = value
    return validate_config(RETrainRequest, {**base, "train_file": train_file, "out": out, "dev_file": dev_file,
                                            "labels": labels, "resume": resume})


@dataclass
class RETrainResult:
    out: str
    train_examples: int
    train_skipped: int
    examples_per_epoch: int
    train_truncated: int
    dev_examples: int
    dev_skipped: int
    best_step: int
    steps: int
    epochs_done: float
    stopped: str
    minutes: float
    best: dict
    config: dict        # the config in the flat layout, plus its `train` section

    def to_json(self) -> dict:
        return _json(self)


def _report_skipped(data) -> None:
    if data.skipped:
        where, why = data.skipped[0]
        log.warning(f"{data.path}: skipped {len(data.skipped)} record(s) whose entity offsets do not match the word "
                    f"(first: {where}: {why})")


def _re_labels(path: Path | None, data_file: Path) -> list[str]:
    from odqa.relation.data import default_label_file, load_labels
    return load_labels(path if path else default_label_file(data_file))


def train_re(cfg: RETrainRequest, *, quiet: bool = True) -> RETrainResult:
    """Fine-tune backbone + classification head on KLUE-RE; the best checkpoint by dev micro-F1 (by training
    loss without a dev file) in OUT/best, resumable from OUT/last."""
    from odqa.relation.data import load_re
    from odqa.relation.task import RESettings, RETask, build_re_model, check_resumable
    from odqa.training import frozen_prefixes, train as run_training
    resolve_device(cfg.train.device)
    label_list = _re_labels(cfg.labels, cfg.train_file)
    settings = RESettings(label_list, cfg.markers, cfg.pooling, cfg.hierarchical, cfg.max_length)
    if cfg.resume:
        check_resumable(cfg.out / "last", settings, cfg.backbone)
    train_data = load_re(cfg.train_file, label_list)
    _report_skipped(train_data)
    dev_data = load_re(cfg.dev_file, label_list) if cfg.dev_file else None
    if dev_data:
        _report_skipped(dev_data)
    if cfg.markers == "e1" and cfg.freeze_embeddings:
        log.warning("--markers e1 with frozen word embeddings: the new [E1]..[/E2] embeddings stay at their initial "
                    "values (use --train-embeddings to learn them)")
    task_cfg = cfg.task_config()
    config = {**task_cfg.flat(), "train": task_cfg.train.model_dump()}
    t0 = time.perf_counter()
    tokenizer, model, settings = build_re_model(task_cfg, label_list)
    settings.train = {**config, "train_file": str(cfg.train_file),
                      "dev_file": str(cfg.dev_file) if cfg.dev_file else None}
    examples = train_data.examples
    if cfg.augment == "aeda":
        from odqa.relation.aeda import augment_examples
        examples = augment_examples(examples, cfg.aeda_copies, cfg.aeda_ratio, cfg.aeda_marks, cfg.train.seed)
    task = RETask(tokenizer, settings, task_cfg, examples, dev_data.examples if dev_data else None,
                  quiet=quiet)
    run = with_changes(task_cfg.train, metric="micro_f1" if dev_data else "loss", greater_is_better=bool(dev_data),
                       freeze_prefixes=frozen_prefixes(cfg.freeze_embeddings))
    res = run_training(model, task, run, cfg.out, resume=cfg.resume, quiet=quiet)
    best_row = next((r for r in res.history if r["step"] == res.best_step), {})
    return RETrainResult(
        str(cfg.out / "best"), len(train_data.examples), len(train_data.skipped), task.num_examples(),
        task.train.truncated, len(task.dev) if task.dev is not None else 0,
        len(dev_data.skipped) if dev_data else 0, res.best_step, res.steps, res.epochs_done, res.stopped_reason,
        _minutes(t0), {k: best_row[k] for k in ("micro_f1", "auprc", "accuracy", "loss", "train_loss") if k in best_row},
        config)


class REEvaluateConfig(Section):
    """`odqa re evaluate`: a checkpoint and labelled data."""
    model: Union[str, Path, None] = None          # checkpoint folder (e.g. runs/re/best) or shipped name; None = ko-re
    data: Path                                    # labelled KLUE-RE JSON/JSONL or Boostcamp CSV
    labels: Optional[Path] = None                 # refuse the model unless it uses this label list
    batch_size: int = Field(64, ge=1)
    device: str = Field("auto", pattern=DEVICE_PATTERN)   # auto | cpu | cuda | cuda:N | mps


@dataclass
class REEvaluateResult:
    model: str
    data: str
    examples: int
    skipped: int
    truncated: int
    seconds: float
    micro_f1: float
    auprc: float
    accuracy: float
    loss: float
    per_label: dict[str, dict]

    def to_json(self) -> dict:
        return _json(self)


def _load_re(model: str | None, labels: Path | None, device: str = "auto"):
    from odqa.modeling.shipped import checkpoint_or_shipped
    from odqa.relation.data import load_labels
    from odqa.relation.task import load_re_model
    resolve_device(device)
    folder = checkpoint_or_shipped(model, "re", DEFAULT_RE_MODEL)
    return load_re_model(folder, load_labels(labels) if labels else None, device)


def evaluate_re(cfg: REEvaluateConfig, *, quiet: bool = True) -> REEvaluateResult:
    """KLUE's metrics (micro-F1 without no_relation, AUPRC), accuracy, loss and per-label F1 on labelled data."""
    from odqa.relation.data import load_re
    from odqa.relation.metrics import per_label_f1
    from odqa.relation.task import decode, evaluate_probs, featurize, predict_probs
    tokenizer, model, settings = _load_re(cfg.model, cfg.labels, cfg.device)
    ds = load_re(cfg.data, settings.labels)
    _report_skipped(ds)
    t0 = time.perf_counter()
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length, settings.labels)
    probs = predict_probs(model, feats, settings, cfg.batch_size, quiet, "evaluate")
    metrics = {k: round(v, 4) for k, v in evaluate_probs(probs, feats.labels, settings).items()}
    return REEvaluateResult(str(cfg.model or DEFAULT_RE_MODEL), str(cfg.data), len(ds.examples), len(ds.skipped), feats.truncated,
                            round(time.perf_counter() - t0, 1), metrics["micro_f1"], metrics["auprc"],
                            metrics["accuracy"], metrics["loss"],
                            per_label_f1(decode(probs, settings), feats.labels, settings.labels))


class REPredictConfig(Section):
    """`odqa re predict`: a checkpoint, data (labels ignored) and the predictions file to write."""
    model: Union[str, Path, None] = None          # as in REEvaluateConfig
    data: Path
    out: Path                                     # .csv (id, pred_label, probs) or .json
    format: Optional[Literal["csv", "json"]] = None   # default: from the suffix of `out`
    labels: Optional[Path] = None
    batch_size: int = Field(64, ge=1)
    device: str = Field("auto", pattern=DEVICE_PATTERN)


@dataclass
class REPredictResult:
    out: str
    format: str
    predictions: int
    skipped: int
    predicted_labels: dict[str, int]

    def to_json(self) -> dict:
        return _json(self)


def predict_re(cfg: REPredictConfig, *, quiet: bool = True) -> REPredictResult:
    """Predict relations and write the submission CSV (id, pred_label, probabilities) or JSON."""
    from odqa.relation.data import load_re
    from odqa.relation.predict import write_predictions
    from odqa.relation.task import decode, featurize, predict_probs
    tokenizer, model, settings = _load_re(cfg.model, cfg.labels, cfg.device)
    ds = load_re(cfg.data, require_labels=False)
    _report_skipped(ds)
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length)
    probs = predict_probs(model, feats, settings, cfg.batch_size, quiet, "predict")
    pred = decode(probs, settings)
    used = write_predictions(cfg.out, feats.example_ids, probs, settings.labels, cfg.format, pred)
    counts = Counter(settings.labels[i] for i in pred)
    return REPredictResult(str(cfg.out), used, len(feats), len(ds.skipped), dict(counts.most_common()))


class REExportConfig(Section):
    """`odqa re export-text`: the distinct RE sentences as a pretraining corpus."""
    train_files: Files = Field(min_length=1)
    out: Path                                     # JSONL {id, title, text}
    no_relation_keep: float = Field(1.0, ge=0, le=1)   # share of no_relation records kept (1 = all)
    seed: int = Field(42, ge=0)


@dataclass
class REExportResult:
    out: str
    records: int
    sentences: int
    no_relation_keep: float

    def to_json(self) -> dict:
        return _json(self)


def export_re_text(cfg: REExportConfig) -> REExportResult:
    """The distinct RE sentences as a JSONL corpus for `odqa pretrain` (optionally no_relation-undersampled)."""
    from odqa.relation.data import export_text, load_re, undersample_no_relation
    keep = cfg.no_relation_keep
    examples = []
    for f in cfg.train_files:
        ds = load_re(f, require_labels=keep < 1.0)
        _report_skipped(ds)
        examples.extend(undersample_no_relation(ds.examples, keep, cfg.seed) if keep < 1.0 else ds.examples)
    return REExportResult(str(cfg.out), len(examples), export_text(examples, cfg.out), keep)
