"""Training from Python: the reader and its particle rules, the dense retriever, the reranker, masked-LM
pretraining and KLUE relation extraction.

Each task package holds its own wiring (`reader.train`, `reader.particles`, `encoder_training.train`,
`reranker.train`, `pretraining.train`, `relation.train|evaluate|predict|export`); this module is their one
entry point. Each function takes one typed, validated request (the task's config plus its inputs; a bad value
is one `ConfigError` line naming the field, raised before any work) and returns a typed result whose
`to_json()` is exactly the object `odqa ... --json` prints. Requests and results are named alike across
tasks: `<Task><Verb>Request` and `<Task><Verb>Result`.

    import odqa
    from odqa.api.training import ReaderTrainRequest
    from odqa.training import TrainConfig
    res = odqa.train_reader(ReaderTrainRequest(train_files=["train.json"], dev="dev.json", out="runs/reader",
                                               train=TrainConfig(lr=1e-4, max_steps=200)))
    print(res.best_metric, res.to_json())
"""

from __future__ import annotations

from odqa.api.readers import PARTICLES_FILE
from odqa.config import with_changes
from odqa.encoder_training.task import RetrieverTrainConfig
from odqa.encoder_training.train import RetrieverTrainRequest, RetrieverTrainResult, retriever_defaults
from odqa.pretraining.config import PretrainConfig
from odqa.pretraining.train import PretrainRequest, PretrainResult
from odqa.reader.particles import ParticlesTrainRequest, ParticlesTrainResult
from odqa.reader.task import ReaderConfig
from odqa.reader.train import ReaderTrainRequest, ReaderTrainResult
from odqa.relation.evaluate import REEvaluateRequest, REEvaluateResult
from odqa.relation.export import REExportRequest, REExportResult
from odqa.relation.model import DEFAULT_RE_MODEL
from odqa.relation.predict import REPredictRequest, REPredictResult
from odqa.relation.config import RETrainConfig
from odqa.relation.train import RETrainRequest, RETrainResult, re_train_request
from odqa.reranker.task import RerankerTrainConfig
from odqa.reranker.train import RerankerTrainRequest, RerankerTrainResult

__all__ = [
    "train_reader", "train_particles", "train_retriever", "train_reranker", "pretrain", "train_re", "evaluate_re",
    "predict_re", "export_re_text", "re_train_request", "retriever_defaults", "DEFAULT_RE_MODEL",
    "ReaderConfig", "ReaderTrainRequest", "ReaderTrainResult", "ParticlesTrainRequest", "ParticlesTrainResult",
    "RetrieverTrainConfig", "RetrieverTrainRequest", "RetrieverTrainResult",
    "RerankerTrainConfig", "RerankerTrainRequest", "RerankerTrainResult",
    "PretrainConfig", "PretrainRequest", "PretrainResult",
    "RETrainConfig", "RETrainRequest", "RETrainResult", "REEvaluateRequest", "REEvaluateResult",
    "REPredictRequest", "REPredictResult", "REExportRequest", "REExportResult",
]


def train_reader(cfg: ReaderTrainRequest, *, quiet: bool = True) -> ReaderTrainResult:
    """Fine-tune an extractive reader (backbone + span head); the best checkpoint by dev F1 (by training
    loss without `dev`) in OUT/best, resumable from OUT/last."""
    from odqa.reader.train import train
    return train(cfg, quiet=quiet)


def train_particles(cfg: ParticlesTrainRequest, *, quiet: bool = True) -> ParticlesTrainResult:
    """Learn the trailing morphemes to strip from a reader's answers; the rules go to `cfg.out`
    (default: READER/particles.json, where `--particles auto` finds them)."""
    from odqa.reader.particles import train
    return train(cfg if cfg.out else with_changes(cfg, out=cfg.reader / PARTICLES_FILE), quiet=quiet)


def train_retriever(cfg: RetrieverTrainRequest, *, quiet: bool = True) -> RetrieverTrainResult:
    """Fine-tune the dense bi-encoder (both sides: in-batch + BM25 hard negatives; `side="query"`: the query
    encoder alone against the base encoder's fixed passage vectors)."""
    from odqa.encoder_training.train import train
    return train(cfg, quiet=quiet)


def train_reranker(cfg: RerankerTrainRequest, *, quiet: bool = True) -> RerankerTrainResult:
    """Fine-tune the cross-encoder (backbone + one-logit head) over each question's gold passage and its hard
    negatives; the best checkpoint by held-out recall@1 in OUT/best, resumable from OUT/last."""
    from odqa.reranker.train import train
    return train(cfg, quiet=quiet)


def pretrain(cfg: PretrainRequest, *, quiet: bool = True) -> PretrainResult:
    """Masked-LM domain-adaptive pretraining (span or token masking); OUT is a backbone folder every
    training command takes."""
    from odqa.pretraining.train import train
    return train(cfg, quiet=quiet)


def train_re(cfg: RETrainRequest, *, quiet: bool = True) -> RETrainResult:
    """Fine-tune backbone + classification head on KLUE-RE; the best checkpoint by dev micro-F1 (by training
    loss without a dev file) in OUT/best, resumable from OUT/last."""
    from odqa.relation.train import train
    return train(cfg, quiet=quiet)


def evaluate_re(cfg: REEvaluateRequest, *, quiet: bool = True) -> REEvaluateResult:
    """KLUE's metrics (micro-F1 without no_relation, AUPRC), accuracy, loss and per-label F1 on labelled data."""
    from odqa.relation.evaluate import evaluate
    return evaluate(cfg, quiet=quiet)


def predict_re(cfg: REPredictRequest, *, quiet: bool = True) -> REPredictResult:
    """Predict relations and write the submission CSV (id, pred_label, probabilities) or JSON."""
    from odqa.relation.predict import predict
    return predict(cfg, quiet=quiet)


def export_re_text(cfg: REExportRequest) -> REExportResult:
    """The distinct RE sentences as a JSONL corpus for `odqa pretrain` (optionally no_relation-undersampled)."""
    from odqa.relation.export import export
    return export(cfg)
