"""`odqa re predict`: relation predictions written as the competition CSV or a JSON variant.

CSV (the Boostcamp KLUE-RE submission shape): columns ``id, pred_label, probs``,
``probs`` being the 30 probabilities in label-list order written as a list
(``[0.91, 0.002, ...]``). JSON: ``{"labels": [...], "predictions": [{"id", "pred_label",
"probs": [...]}, ...]}``. Both are written to a temporary file renamed at the end.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from odqa.atomic import atomic_file
from odqa.errors import ConfigError, OdqaError
from odqa.relation.evaluate import RECheckpointInputs

FORMATS = ("csv", "json")


def output_format(path: Path, fmt: str | None) -> str:
    if fmt:
        if fmt not in FORMATS:
            raise ConfigError(f"prediction format {fmt!r} unknown: choose one of {', '.join(FORMATS)}")
        return fmt
    return "json" if path.suffix.lower() == ".json" else "csv"


def write_predictions(path: str | Path, ids: list[str], probs: np.ndarray, labels: list[str],
                      fmt: str | None = None, preds: np.ndarray | None = None, digits: int = 6) -> str:
    """Write predictions for `ids` (rows of `probs`; labels `preds`, default the argmax); returns the format."""
    path = Path(path)
    fmt = output_format(path, fmt)
    if probs.shape != (len(ids), len(labels)):
        raise OdqaError(f"internal: {probs.shape} probabilities for {len(ids)} ids and {len(labels)} labels")
    preds = probs.argmax(axis=1) if preds is None else preds
    rounded = np.round(probs, digits)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        if fmt == "csv":
            with open(tmp, "w", encoding="utf-8", newline="") as f:
                w = csv.writer(f)
                w.writerow(["id", "pred_label", "probs"])
                for rid, p, row in zip(ids, preds, rounded):
                    w.writerow([rid, labels[p], json.dumps(row.tolist())])
        else:
            rows = [{"id": rid, "pred_label": labels[p], "probs": row.tolist()}
                    for rid, p, row in zip(ids, preds, rounded)]
            tmp.write_text(json.dumps({"labels": labels, "predictions": rows}, ensure_ascii=False, indent=1),
                           encoding="utf-8")
    return fmt


class REPredictRequest(RECheckpointInputs):
    """`odqa re predict`: a checkpoint, data (labels ignored) and the predictions file to write."""
    out: Path                                     # .csv (id, pred_label, probs) or .json
    format: Optional[Literal["csv", "json"]] = None   # default: from the suffix of `out`


@dataclass
class REPredictResult:
    out: str
    format: str
    predictions: int
    skipped: int
    predicted_labels: dict[str, int]

    def to_json(self) -> dict:
        return asdict(self)


def predict(cfg: REPredictRequest, *, quiet: bool = True) -> REPredictResult:
    """Predict relations and write the submission CSV (id, pred_label, probabilities) or JSON."""
    from odqa.relation.data import load_re, report_skipped
    from odqa.relation.features import featurize
    from odqa.relation.inference import decode, predict_probs
    from odqa.relation.model import load_re_checkpoint
    tokenizer, model, settings = load_re_checkpoint(cfg.model, cfg.labels, cfg.device)
    ds = load_re(cfg.data, require_labels=False)
    report_skipped(ds)
    feats = featurize(ds.examples, tokenizer, settings.markers, settings.max_length)
    probs = predict_probs(model, feats, settings, cfg.batch_size, quiet, "predict")
    pred = decode(probs, settings)
    used = write_predictions(cfg.out, feats.example_ids, probs, settings.labels, cfg.format, pred)
    counts = Counter(settings.labels[i] for i in pred)
    return REPredictResult(str(cfg.out), used, len(feats), len(ds.skipped), dict(counts.most_common()))
