"""`odqa train reranker`: the request (a `RerankerTrainConfig` and its inputs), hard-negative mining (BM25
over the pool, or an index's own retriever), the run and its result."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from pydantic import Field

from odqa.config import with_changes
from odqa.reranker.task import RerankerTrainConfig

Files = list[Path]


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
        return asdict(self)


def _mining_search(cfg: RerankerTrainRequest, pool):
    """(search(questions, k) -> hits, what it is): BM25 over the pool, or the index's own retriever."""
    if cfg.pool_index:
        from odqa.index.indexing import load_index
        idx = load_index(cfg.pool_index, cfg.index_dir)
        idx.device = cfg.train.device
        mode = idx.resolve_mode("auto")
        return idx.retriever(mode, idx.hybrid_config(None, None), None).search, f"index {cfg.pool_index} ({mode})"
    from odqa.config import BM25Config
    from odqa.retrieval.sparse import SparseRetriever
    from odqa.text.analyzers import make_analyzer
    sparse = SparseRetriever.build(pool, make_analyzer("mecab"), BM25Config(), include_title=False)
    return sparse.search, f"bm25 over {len(pool)} passages"


def train(cfg: RerankerTrainRequest, *, quiet: bool = True) -> RerankerTrainResult:
    """Fine-tune the cross-encoder (backbone + one-logit head) with a listwise loss over each question's gold
    passage and its hard negatives; the best checkpoint by held-out recall@1 in OUT/best, resumable from OUT/last."""
    import random

    from odqa.corpus import load_corpus, load_questions
    from odqa.device import resolve_device
    from odqa.progress import bar
    from odqa.reranker.model import RerankerSettings, build_reranker
    from odqa.reranker.task import RerankerTask
    from odqa.training_data import holdout_passages, training_pool
    from odqa.optimization import default_freeze_layers, frozen_prefixes
    from odqa.training import train as run_training
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
                               res.history[-1] if res.history else {}, res.stopped_reason,
                               round((time.perf_counter() - t0) / 60, 1))
