"""A reader's answer probability made trustworthy: the temperature fitted on held-out training questions.

    rep = calibrate_reader("runs/reader/best", "runs/holdout/held.json")             # closed domain
    rep = calibrate_reader("runs/reader/best", "held.json", index="wiki")           # as the pipeline reads
    # -> runs/reader/best/calibration.json: {"temperature": T, ...}; the reader applies it from then on

The reader reads each question (its own passage, or the index's top k); the temperature T that minimises the
log loss of the best answer's probability against exact match is searched over the n-best lists (p -> p^(1/T),
renormalised, as the reader's post-processing applies it). A reader already calibrated is fitted on top of its
temperature (the two compose into one). Fit on questions the reader was not trained on.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from odqa.api.evaluation import Questions, evaluate_answers
from odqa.api.pipeline import Pipeline
from odqa.atomic import atomic_write_text
from odqa.calibration import calibration_report, fit_temperature, tempered
from odqa.errors import OdqaError
from odqa.reader.reader import CALIBRATION_FILE, read_temperature


@dataclass
class CalibrationResult:
    """What `calibrate_reader` fitted: the `temperature`, written to `out`, and the calibration report
    (`ece`, `auroc`, ...) of the held-out questions `before` and `after` it."""
    out: str
    temperature: float
    questions: int
    before: dict          # calibration_report at the reader's temperature so far
    after: dict           # with the fitted temperature

    def to_json(self) -> dict:
        return asdict(self)


def _tempered(nbest: list[list[float]], t: float) -> list[float]:
    """Each question's best answer probability at temperature t (0 where it has no answer)."""
    return [float(tempered(p, t)[0]) if p else 0.0 for p in nbest]


def calibrate_reader(reader: str, questions: Questions, *, index: Optional[str] = None, k: Optional[int] = None,
                     out: Optional[str | Path] = None, index_dir: Optional[Path] = None, device: str = "auto",
                     quiet: bool = True) -> CalibrationResult:
    """Fit the temperature of `reader` (a checkpoint folder) on `questions` (held-out training questions with
    answers) and write it to `out` (default READER/calibration.json)."""
    folder = Path(reader)
    if out is None and not folder.is_dir():
        raise OdqaError(f"`reader` {reader}: not a checkpoint folder; pass `out` (a calibration.json to ship with it)")
    target = Path(out) if out is not None else folder / CALIBRATION_FILE
    pipe = (Pipeline.from_index(index, reader=reader, index_dir=index_dir, device=device) if index
            else Pipeline.from_reader(reader, device=device))
    rep = evaluate_answers(pipe, questions, closed=index is None, k=k, quiet=quiet)
    scored = list(rep.stages)                       # the questions with answers
    if len(scored) < 20:
        raise OdqaError(f"`questions`: {len(scored)} question(s) with answers; fitting a temperature needs at least 20")
    nbest = [[a["probability"] for a in rep.nbest[qid]] for qid in scored]
    correct = [rep.stages[qid] == "correct" for qid in scored]
    fitted = fit_temperature(lambda t: _tempered(nbest, t), correct)
    temperature = read_temperature(folder) * fitted if folder.is_dir() else fitted
    record = {"temperature": round(temperature, 6), "questions": len(scored),
              "setting": {"closed": index is None, "index": index, "k": rep.metrics["setting"].get("k")},
              "before": calibration_report(_tempered(nbest, 1.0), correct),
              "after": calibration_report(_tempered(nbest, fitted), correct)}
    atomic_write_text(target, json.dumps(record, ensure_ascii=False, indent=1) + "\n")
    return CalibrationResult(str(target), record["temperature"], len(scored), record["before"], record["after"])
