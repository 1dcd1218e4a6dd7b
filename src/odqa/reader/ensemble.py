"""Soft voting of reader n-best lists on character offsets.

Readers with different tokenizers cannot average logits token by token, but they
all report answers as character offsets into the same passage text. `soft_vote`
sums the (optionally weighted) probabilities of each (passage_id, start, end) span
over the members, renormalises per question and sorts.

The n-best file (`nbest.json`, written by the reader):

    {"<question id>": [{"text": str, "passage_id": str, "start": int, "end": int,
                        "probability": float, "score": float}, ...]}

start/end are character offsets into the passage text (end exclusive);
probabilities are normalised over the question's list, sorted descending. The
ensemble output has the same format (`score` = the summed weighted probability
before renormalisation), so it can be ensembled or evaluated again.
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any, Sequence

from odqa.atomic import atomic_write_text
from odqa.errors import OdqaError

log = logging.getLogger(__name__)

FIELDS = {"text": str, "passage_id": str, "start": int, "end": int, "probability": (int, float),
          "score": (int, float)}
NBest = dict[str, list[dict[str, Any]]]


def validate_nbest(data: Any, source: str = "n-best") -> NBest:
    """Check the n-best structure; raise a one-line OdqaError naming the source and question id."""
    if not isinstance(data, dict):
        raise OdqaError(f"{source}: expected an object keyed by question id, got {type(data).__name__}")
    for qid, entries in data.items():
        if not isinstance(entries, list):
            raise OdqaError(f"{source}: question {qid}: expected a list of answers, got {type(entries).__name__}")
        for i, e in enumerate(entries):
            where = f"{source}: question {qid}: answer {i}"
            if not isinstance(e, dict):
                raise OdqaError(f"{where}: expected an object, got {type(e).__name__}")
            for name, kind in FIELDS.items():
                if name not in e:
                    raise OdqaError(f"{where}: missing field '{name}'")
                v = e[name]
                if not isinstance(v, kind) or isinstance(v, bool):
                    raise OdqaError(f"{where}: field '{name}' has type {type(v).__name__}")
            if not 0 <= e["start"] <= e["end"]:
                raise OdqaError(f"{where}: bad offsets start={e['start']} end={e['end']}")
            if not math.isfinite(e["probability"]) or e["probability"] < 0:
                raise OdqaError(f"{where}: probability must be a finite number >= 0, got {e['probability']}")
    return data


def load_nbest(path: str | Path) -> NBest:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise OdqaError(f"{path}: n-best file not found") from None
    except (OSError, UnicodeDecodeError) as e:
        raise OdqaError(f"{path}: cannot read ({' '.join(str(e).split())})") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise OdqaError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    return validate_nbest(data, str(path))


def parse_weights(text: str | None, members: int) -> list[float] | None:
    """"0.6,0.4" -> [0.6, 0.4] (one per member)."""
    if not text:
        return None
    try:
        weights = [float(x) for x in text.split(",")]
    except ValueError:
        raise OdqaError(f"`weights` must be comma-separated numbers, got {text!r}") from None
    _check_weights(weights, members)
    return weights


def _check_weights(weights: Sequence[float], members: int) -> None:
    if len(weights) != members:
        raise OdqaError(f"{len(weights)} weights for {members} n-best lists")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise OdqaError(f"weights must be >= 0 with a positive sum, got {list(weights)}")


def mismatched_questions(nbests: Sequence[NBest]) -> int:
    """How many questions are missing from at least one member."""
    if not nbests:
        return 0
    union = set().union(*nbests)
    common = set(nbests[0]).intersection(*nbests[1:])
    return len(union - common)


def soft_vote(nbests: Sequence[NBest], weights: Sequence[float] | None = None, top: int = 0,
              warn_mismatch: bool = True) -> NBest:
    """Sum weighted probabilities per (passage_id, start, end), renormalise, sort (top n if `top`).

    A question missing from a member just gets nothing from it; the number of such questions
    is logged as a warning (see `mismatched_questions`)."""
    if not nbests:
        raise OdqaError("soft voting needs at least one n-best list")
    weights = list(weights) if weights is not None else [1.0] * len(nbests)
    _check_weights(weights, len(nbests))
    missing = mismatched_questions(nbests) if warn_mismatch else 0
    if missing:
        log.warning("%d questions are missing from some n-best lists; they are voted by the others", missing)
    order: list[str] = []
    seen: set[str] = set()
    for nb in nbests:
        for qid in nb:
            if qid not in seen:
                seen.add(qid)
                order.append(qid)
    out: NBest = {}
    for qid in order:
        acc: dict[tuple[str, int, int], dict[str, Any]] = {}
        for nb, w in zip(nbests, weights):
            for e in nb.get(qid, []):
                key = (e["passage_id"], int(e["start"]), int(e["end"]))
                if key not in acc:
                    acc[key] = {"text": e["text"], "passage_id": key[0], "start": key[1], "end": key[2],
                                "probability": 0.0, "score": 0.0}
                acc[key]["score"] += w * float(e["probability"])
        total = sum(a["score"] for a in acc.values())
        rows = list(acc.values())
        for a in rows:
            a["probability"] = a["score"] / total if total > 0 else 1.0 / len(rows)
        rows.sort(key=lambda a: (-a["probability"], a["passage_id"], a["start"], a["end"]))
        out[qid] = rows[:top] if top else rows
    return out


def predictions_from(nbest: NBest) -> dict[str, str]:
    """{question id: best answer text} ('' for a question with an empty list)."""
    return {qid: (rows[0]["text"] if rows else "") for qid, rows in nbest.items()}


def write_json(path: str | Path, data: Any) -> Path:
    """Write JSON atomically (temporary sibling, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")
    except OSError as e:
        raise OdqaError(f"{path}: cannot write ({e.strerror or e})") from None
    return path


class VotingReader:
    """Several readers answering as one: their n-best lists soft-voted per question (equal weights)."""

    def __init__(self, members: Sequence[Any], weights: Sequence[float] | None = None):
        self.members, self.weights = list(members), weights
        self.name = "+".join(getattr(m, "name", "?") for m in self.members)
        self.sentence_level = all(getattr(m, "sentence_level", False) for m in self.members)

    def count_windows(self, question: str, hits: list) -> int:
        """The windows every member reads (each reads them all)."""
        return sum(m.count_windows(question, hits) if hasattr(m, "count_windows") else len(hits)
                   for m in self.members)

    def read_batch(self, questions: list[str], hits: list, quiet: bool = True) -> list:
        from odqa.types import Answer
        per_member = [m.read_batch(questions, hits, quiet=quiet) for m in self.members]
        nbests = [{str(i): [s.to_json() for s in spans] for i, spans in enumerate(answers)} for answers in per_member]
        voted = soft_vote(nbests, self.weights, warn_mismatch=False)
        return [[Answer(e["text"], e["passage_id"], e["start"], e["end"], e.get("score", 0.0), e["probability"])
                 for e in voted.get(str(i), [])] for i in range(len(questions))]
