"""`odqa ensemble`: soft voting of reader n-best files."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.common import JsonOpt, echo, emit_json, warn


def ensemble(
    nbest: List[Path] = typer.Argument(..., help="n-best JSON files written by readers (two or more)."),
    out: Path = typer.Option(..., "--out", "-o", help="Combined n-best JSON (same format)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="One weight per file, e.g. 0.6,0.4 (default: equal)."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", help="Also write {question id: best text}."),
    top: int = typer.Option(0, "--top", min=0, help="Keep this many answers per question (0 = all)."),
    json_out: bool = JsonOpt,
) -> None:
    """Soft-vote n-best lists on character offsets: probabilities are summed per
    (passage, start, end), so readers with different tokenizers combine.

    Example: odqa ensemble runs/e5/nbest.json runs/klue/nbest.json --weights 0.6,0.4 --out ens.json --predictions pred.json
    """
    from odqa.api.ensemble import ensemble_nbest

    res = ensemble_nbest(nbest, out, weights, predictions, top)
    if json_out:
        emit_json(res.to_json())
        return
    if res.mismatched_questions:
        warn(f"{res.mismatched_questions} questions are missing from some n-best files; the other files vote for them")
    echo(f"{res.questions} questions from {len(res.members)} n-best files -> {out}"
         + (f" (predictions: {predictions})" if predictions else ""))
