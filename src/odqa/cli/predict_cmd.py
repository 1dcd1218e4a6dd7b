"""`odqa predict`: best answer per question id, the Boostcamp submission shape `{id: answer}`."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from odqa.api import PipelineConfig
from odqa.cli.common import EncodingOpt, IndexDirOpt, JsonOpt, QuietOpt, echo, emit_json
from odqa.cli.pipeline_options import PIPELINE, open_pipeline, pipeline_options


@pipeline_options()
def predict(
    questions: Path = typer.Argument(..., help="Questions (SQuAD/KorQuAD JSON or JSONL; answers not needed)."),
    out: Path = typer.Option(Path("predictions.json"), "--out", "-o", help="Where to write {id: answer}."),
    encoding: Optional[str] = EncodingOpt,
    index: Optional[str] = typer.Option(None, "--index", "-i", help="Index name (open domain)."),
    closed: bool = typer.Option(False, "--closed", help="Read each question's own passage (needs contexts)."),
    pipeline: PipelineConfig = PIPELINE,
    index_dir: Optional[Path] = IndexDirOpt,
    json_out: bool = JsonOpt,
    quiet: bool = QuietOpt,
) -> None:
    """Answer every question of a file and write predictions.json ({question id: answer text}).

    Example: odqa predict test_dataset.json --index wiki --reader runs/reader/best --out predictions.json
    """
    from odqa.api import OdqaError, QuestionFile
    from odqa.api import predict as run
    if not closed and index is None:
        raise OdqaError("give --index (open domain) or --closed; see `odqa predict --help`")
    questions = QuestionFile(questions, encoding)      # a bad file fails before any model loads
    pipe = open_pipeline(pipeline, None if closed else index, index_dir)
    preds = run(pipe, questions, out=out, closed=closed, k=pipeline.retriever.k, quiet=quiet or json_out)
    report = {"out": str(out), "questions": len(preds), "answered": sum(1 for v in preds.values() if v),
              "sentence_level": pipe.sentence_level}
    if json_out:
        emit_json(report)
        return
    echo(f"{report['answered']} of {report['questions']} questions answered -> {out}")
