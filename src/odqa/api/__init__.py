"""odqa's application layer: the one place the CLI and the HTTP server call into.

    import odqa
    odqa.build_index("wikipedia_documents.json", "wiki")
    p = odqa.Pipeline.from_index("wiki", reader="runs/reader/best")
    print(p.ask("대한민국의 수도는 어디인가?").answer.text)
    cfg = odqa.PipelineConfig.load("pipeline.yaml"); p = odqa.Pipeline.from_config(cfg)

Names are imported lazily, so `import odqa` stays cheap (no torch until a model is loaded).
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "Pipeline": "odqa.api.pipeline", "QAResult": "odqa.api.pipeline", "check_pipeline": "odqa.api.pipeline", "Retriever": "odqa.api.retriever",
    "PipelineConfig": "odqa.api.config", "RetrieverSettings": "odqa.api.config", "RerankerSettings": "odqa.api.config",
    "ReaderSettings": "odqa.api.config", "FLAT": "odqa.api.config", "DEVICE_HELP": "odqa.device", "Answer": "odqa.types", "check_queries": "odqa.retrieval.base",
    "open_reader": "odqa.api.readers", "check_reader": "odqa.api.readers", "Hit": "odqa.types", "Passage": "odqa.types",
    "Interrupted": "odqa.errors", "__version__": "odqa.version", "list_models": "odqa.api.models", "pack_model": "odqa.api.models",
    "build_index": "odqa.api.indexes", "load_index": "odqa.api.indexes", "list_indexes": "odqa.api.indexes",
    "verify_index": "odqa.api.indexes", "VerifyReport": "odqa.api.indexes",
    "add_passages": "odqa.api.updates", "delete_passages": "odqa.api.updates", "upsert_passages": "odqa.api.updates",
    "update_passages": "odqa.api.updates", "compact_index": "odqa.api.updates", "UpdateReport": "odqa.api.updates",
    "encode_shard": "odqa.api.indexes", "encode_shards_ray": "odqa.api.indexes", "build_index_ray": "odqa.api.indexes",
    "evaluate_retrieval": "odqa.api.indexes", "sweep_retrieval": "odqa.api.indexes",
    "RetrievalReport": "odqa.api.indexes", "QuestionFile": "odqa.api.indexes", "SweepReport": "odqa.api.indexes",
    "evaluate_answers": "odqa.api.evaluation", "predict": "odqa.api.evaluation", "AnswerReport": "odqa.api.evaluation",
    "ensemble_nbest": "odqa.api.ensemble",
    "train_re": "odqa.api.training", "evaluate_re": "odqa.api.training", "predict_re": "odqa.api.training",
    "export_re_text": "odqa.api.training",
    "calibrate_reader": "odqa.api.calibration", "CalibrationResult": "odqa.api.calibration",
    "train_reader": "odqa.api.training", "train_retriever": "odqa.api.training", "train_particles": "odqa.api.training",
    "pretrain": "odqa.api.training",
    "run_demo": "odqa.api.demo", "Section": "odqa.config",
    "IndexConfig": "odqa.config", "load_config": "odqa.config",
    "OdqaError": "odqa.errors", "ConfigError": "odqa.errors", "CorpusError": "odqa.errors",
    "IndexNotFound": "odqa.errors", "IndexStale": "odqa.errors", "IndexCorrupt": "odqa.errors",
    "IndexBusy": "odqa.errors", "ModelError": "odqa.errors", "StorageError": "odqa.errors",
    "MissingExtra": "odqa.errors",
    "hit_record": "odqa.api.passages", "hits_from_records": "odqa.api.passages",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'odqa.api' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
