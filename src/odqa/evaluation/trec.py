"""TREC files of a retrieval evaluation: the run (what was retrieved, best first) and the qrels (what is
relevant), as trec_eval, ranx and pyserini read them. Written atomically (odqa.atomic)."""

from __future__ import annotations

from pathlib import Path

from odqa.atomic import atomic_write_text
from odqa.errors import OdqaError


def _check_id(kind: str, value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise OdqaError(f"{kind} id {value!r} cannot go into a TREC file: ids must be non-empty, without spaces")
    return value


def run_text(run: dict[str, list[tuple[str, float]]], tag: str) -> str:
    """`QID Q0 DOCID RANK SCORE TAG` lines, each question's passages best first."""
    return "".join(f"{_check_id('question', q)} Q0 {_check_id('passage', pid)} {rank} {float(score)!r} {tag}\n"
                   for q, hits in run.items() for rank, (pid, score) in enumerate(hits, 1))


def qrels_text(qrels: dict[str, list[str]]) -> str:
    """`QID 0 DOCID 1` lines: each question's relevant passages (a question with none has no line)."""
    return "".join(f"{_check_id('question', q)} 0 {_check_id('passage', pid)} 1\n"
                   for q, pids in qrels.items() for pid in pids)


def _write(path: str | Path, text: str) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, text)
    return path


def write_run(path: str | Path, run: dict[str, list[tuple[str, float]]], tag: str) -> Path:
    return _write(path, run_text(run, tag))


def write_qrels(path: str | Path, qrels: dict[str, list[str]]) -> Path:
    return _write(path, qrels_text(qrels))
