"""`odqa predict`: best answer per question id, the Boostcamp submission shape `{id: answer}`."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from odqa.cli.ask_cmd import KReadOpt, ParticlesOpt, ReaderRuntimeOpt, RetrievalWeightOpt
from odqa.cli.common import (AlphaOpt, DeviceOpt, EncodingOpt, FusionOpt, IndexDirOpt, JsonOpt, QuietOpt, echo,
                             emit_json, warn_stale)


def predict(
    questions: Path = typer.Argument(..., help="Questions (SQuAD/KorQuAD JSON or JSONL; answers not needed)."),
    out: Path = typer.Option(Path("predictions.json"), "--out", "-o", help="Where to write {id: answer}."),
    encoding: Optional[str] = EncodingOpt,
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Index name (open domain)."),
    reader: Optional[List[str]] = typer.Option(None, "--reader", "-r", help="Reader checkpoint; repeat to soft-vote."),
    closed: bool = typer.Option(False, "--closed", help="Read each question's own passage (needs contexts)."),
    k: int = KReadOpt,
    mode: str = typer.Option("auto", "--mode", "-m", help="sparse | dense | hybrid | auto."),
    alpha: Optional[float] = AlphaOpt,
    fusion: Optional[str] = FusionOpt,
    retrieval_weight: float = RetrievalWeightOpt,
    particles: Optional[Path] = ParticlesOpt,
    reader_runtime: str = ReaderRuntimeOpt,
    index_dir: Optional[Path] = IndexDirOpt,
    device: str = DeviceOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Answer every question of a file and write predictions.json ({question id: answer text}).

    Example: odqa predict test_dataset.json --index wiki --reader runs/reader/best --out predictions.json
    """
    from odqa.api.evaluation import predict as run
    from odqa.api.indexes import QuestionFile
    from odqa.api.pipeline import Pipeline
    from odqa.errors import OdqaError
    readers = list(reader or [])
    if not closed and index is None:
        raise OdqaError("give --index (open domain) or --closed; see `odqa predict --help`")
    questions = QuestionFile(questions, encoding)      # a bad file fails before any model loads
    if closed:
        pipe = Pipeline.from_reader(readers, retrieval_weight=retrieval_weight, particles=particles, device=device,
                                   reader_runtime=reader_runtime)
    else:
        pipe = Pipeline.from_index(index, reader=readers, mode=mode, k=k, index_dir=index_dir, alpha=alpha,
                                   fusion=fusion, retrieval_weight=retrieval_weight, particles=particles,
                                   device=device, reader_runtime=reader_runtime)
        warn_stale(pipe.index)
    preds = run(pipe, questions, out=out, closed=closed, k=k, quiet=quiet or json_out)
    report = {"out": str(out), "questions": len(preds), "answered": sum(1 for v in preds.values() if v),
              "sentence_level": pipe.sentence_level}
    if json_out:
        emit_json(report)
        return
    echo(f"{report['answered']} of {report['questions']} questions answered -> {out}")
