"""Soft voting of reader n-best files from Python (`odqa ensemble`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional, Sequence, Union


@dataclass
class EnsembleResult:
    out: str
    predictions: Optional[str]
    members: list[dict]                 # {"file", "questions"} per n-best file
    weights: list[float]
    questions: int
    mismatched_questions: int           # questions missing from some files (the other files vote for them)

    def to_json(self) -> dict:
        return asdict(self)


def ensemble_nbest(files: Sequence[Union[str, Path]], out: Union[str, Path],
                   weights: Union[str, Sequence[float], None] = None, predictions: Union[str, Path, None] = None,
                   top: int = 0) -> EnsembleResult:
    """Soft-vote n-best files on character offsets (probabilities summed per (passage, start, end), so readers
    with different tokenizers combine) into `out`; `weights` one per file ("0.6,0.4" or numbers; default equal),
    `predictions` also gets {question id: best text}, `top` keeps that many answers per question (0 = all)."""
    from odqa.reader import ensemble as nb
    members = [nb.load_nbest(p) for p in files]
    if isinstance(weights, str) or weights is None:
        w = nb.parse_weights(weights, len(members))
    else:
        w = [float(x) for x in weights]
    combined = nb.soft_vote(members, w, top, warn_mismatch=False)
    nb.write_json(out, combined)
    if predictions:
        nb.write_json(predictions, nb.predictions_from(combined))
    return EnsembleResult(str(out), str(predictions) if predictions else None,
                          [{"file": str(p), "questions": len(m)} for p, m in zip(files, members)],
                          w or [1.0] * len(members), len(combined), nb.mismatched_questions(members))
