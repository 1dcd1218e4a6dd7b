"""KLUE relation extraction data: the official JSON shape and the Boostcamp CSV shape.

Official KLUE-RE JSON is a list of records
``{guid, sentence, subject_entity: {word, start_idx, end_idx, type}, object_entity: {...}, label, source}``
with ``end_idx`` inclusive. The Boostcamp CSV has columns ``id, sentence, subject_entity,
object_entity, label, source`` where each entity is a Python-dict string
(``"{'word': '비틀즈', 'start_idx': 24, 'end_idx': 26, 'type': 'ORG'}"``). JSON Lines with
the official record shape is accepted too.

A record whose entity offsets do not select its entity word is reported and skipped
(`REData.skipped`); a label outside the label list is an error naming the record.
"""

from __future__ import annotations

import ast
import csv
import json
import logging
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from odqa.errors import CorpusError, OdqaError

log = logging.getLogger(__name__)

NO_RELATION = "no_relation"

# relation_list.json of KLUE-RE v1.1, index 0 = no_relation (used when no label file is given)
KLUE_RE_LABELS = [
    "no_relation", "org:dissolved", "org:founded", "org:place_of_headquarters", "org:alternate_names",
    "org:member_of", "org:members", "org:political/religious_affiliation", "org:product", "org:founded_by",
    "org:top_members/employees", "org:number_of_employees/members", "per:date_of_birth", "per:date_of_death",
    "per:place_of_birth", "per:place_of_death", "per:place_of_residence", "per:origin", "per:employee_of",
    "per:schools_attended", "per:alternate_names", "per:parents", "per:children", "per:siblings", "per:spouse",
    "per:other_family", "per:colleagues", "per:product", "per:religion", "per:title",
]


@dataclass(frozen=True)
class Entity:
    word: str
    start: int   # character offset of the first character
    end: int     # character offset of the last character (inclusive, as KLUE)
    type: str


@dataclass(frozen=True)
class REExample:
    id: str
    sentence: str
    subject: Entity
    object: Entity
    label: str | None = None
    source: str = ""


@dataclass
class REData:
    path: str
    examples: list[REExample]
    skipped: list[tuple[str, str]] = field(default_factory=list)   # (where, reason)

    def label_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for ex in self.examples:
            out[ex.label or ""] = out.get(ex.label or "", 0) + 1
        return out


def load_labels(path: str | Path | None = None) -> list[str]:
    """Label list from a `relation_list.json` (`{"relations": [...]}` or a plain list); KLUE's 30 if None."""
    if path is None:
        return list(KLUE_RE_LABELS)
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: label file not found")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}: invalid JSON ({e.msg}, line {e.lineno})") from None
    labels = data.get("relations") if isinstance(data, dict) else data
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise CorpusError(f"{path}: expected {{\"relations\": [label, ...]}} or a JSON list of label strings")
    if len(set(labels)) != len(labels):
        dup = sorted({x for x in labels if labels.count(x) > 1})
        raise CorpusError(f"{path}: duplicate label(s) {', '.join(dup)}")
    if labels[0] != NO_RELATION:
        raise CorpusError(f"{path}: the first label must be {NO_RELATION!r} (KLUE's metrics exclude it), "
                        f"got {labels[0]!r}")
    return labels


def default_label_file(data_path: str | Path) -> Path | None:
    """`relation_list.json` beside a data file, if there is one."""
    cand = Path(data_path).parent / "relation_list.json"
    return cand if cand.exists() else None


# ------------------------------------------------------------------ readers


def _raw_records(path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, raw record) pairs; `where` names the line or list index for error messages."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, encoding="utf-8-sig", newline="") as f:
            reader = csv.DictReader(f)
            need = {"sentence", "subject_entity", "object_entity"}
            missing = need - set(reader.fieldnames or [])
            if missing:
                raise CorpusError(f"{path}: CSV lacks column(s) {', '.join(sorted(missing))} "
                                f"(expected id, sentence, subject_entity, object_entity, label)")
            for i, row in enumerate(reader):
                yield f"line {reader.line_num}", {**row, "_index": i}
        return
    text = path.read_text(encoding="utf-8-sig")
    if suffix == ".jsonl":
        for n, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    yield f"line {n}", json.loads(line)
                except json.JSONDecodeError as e:
                    raise CorpusError(f"{path}: line {n}: invalid JSON ({e.msg})") from None
        return
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}: invalid JSON ({e.msg}, line {e.lineno})") from None
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise CorpusError(f"{path}: expected a JSON list of KLUE-RE records (guid, sentence, subject_entity, ...)")
    for i, rec in enumerate(data):
        yield f"record {i}", rec


def _entity(value: Any, what: str) -> Entity:
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise ValueError(f"{what} is not a dict string: {value[:60]!r}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be an object with word, start_idx, end_idx, type")
    try:
        word, start, end = value["word"], int(value["start_idx"]), int(value["end_idx"])
    except KeyError as e:
        raise ValueError(f"{what} lacks {e.args[0]!r}") from None
    except (TypeError, ValueError):
        raise ValueError(f"{what} has non-integer offsets") from None
    if not isinstance(word, str):
        raise ValueError(f"{what}.word must be a string")
    return Entity(word, start, end, str(value.get("type") or "UNK"))


def _offset_problem(sentence: str, e: Entity, what: str) -> str | None:
    if not 0 <= e.start <= e.end < len(sentence):
        return f"{what} offsets {e.start}..{e.end} outside the sentence (length {len(sentence)})"
    got = sentence[e.start:e.end + 1]
    if got != e.word:
        return f"{what} offsets {e.start}..{e.end} select {got!r}, not the word {e.word!r}"
    return None


def load_re(path: str | Path, labels: list[str] | None = None, require_labels: bool = True,
            max_reports: int = 10) -> REData:
    """Read KLUE-RE JSON/JSONL or Boostcamp CSV.

    `labels`: the label list; a record with another label raises OdqaError naming it.
    `require_labels=False` (prediction) ignores labels entirely (Boostcamp's test CSV carries 100).
    Records with entity offsets that do not match the word are skipped and listed in `skipped`;
    the first `max_reports` are logged as warnings.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: data file not found")
    known = set(labels) if labels is not None else None
    examples: list[REExample] = []
    skipped: list[tuple[str, str]] = []
    seen: set[str] = set()
    for where, rec in _raw_records(path):
        if not isinstance(rec, dict):
            raise CorpusError(f"{path}: {where}: expected an object, got {type(rec).__name__}")
        rid = str(rec.get("guid", rec.get("id", "")) or "").strip() or str(rec.get("_index", where))
        loc = f"{path}: {where} ({rid})"
        sentence = rec.get("sentence")
        if not isinstance(sentence, str):
            raise CorpusError(f"{loc}: missing or non-string 'sentence'")
        try:
            subj = _entity(rec.get("subject_entity"), "subject_entity")
            obj = _entity(rec.get("object_entity"), "object_entity")
        except ValueError as e:
            raise CorpusError(f"{loc}: {e}") from None
        label = None
        if require_labels:
            raw = rec.get("label")
            if raw is None or str(raw).strip() == "":
                raise CorpusError(f"{loc}: missing label")
            label = str(raw).strip()
            if known is not None and label not in known:
                raise CorpusError(f"{loc}: unknown label {label!r} (not one of the {len(known)} labels in use)")
        problem = _offset_problem(sentence, subj, "subject_entity") or _offset_problem(sentence, obj, "object_entity")
        if problem:
            skipped.append((f"{where} ({rid})", problem))
            if len(skipped) <= max_reports:
                log.warning("%s: skipped: %s", loc, problem)
            continue
        if rid in seen:
            raise CorpusError(f"{loc}: duplicate id {rid!r}")
        seen.add(rid)
        examples.append(REExample(rid, sentence, subj, obj, label, str(rec.get("source") or "")))
    if len(skipped) > max_reports:
        log.warning("%s: skipped %d records with entity offsets that do not match the word", path, len(skipped))
    if not examples:
        raise CorpusError(f"{path}: no usable records" + (f" ({len(skipped)} skipped)" if skipped else ""))
    return REData(str(path), examples, skipped)


# -------------------------------------------------------------- sampling


def report_skipped(data: REData) -> None:
    """One warning for the records `load_re` skipped (their entity offsets do not match the word)."""
    if data.skipped:
        where, why = data.skipped[0]
        log.warning(f"{data.path}: skipped {len(data.skipped)} record(s) whose entity offsets do not match the word "
                    f"(first: {where}: {why})")


def undersample_no_relation(examples: list[REExample], keep: float, seed: int) -> list[REExample]:
    """All relation examples plus round(keep * n) of the no_relation ones (chosen with `seed`), in order."""
    if not 0.0 <= keep <= 1.0:
        raise CorpusError(f"no_relation keep ratio must be in [0, 1], got {keep}")
    neg = [i for i, ex in enumerate(examples) if ex.label == NO_RELATION]
    k = round(keep * len(neg))
    chosen = set(random.Random(seed).sample(neg, k)) if k < len(neg) else set(neg)
    return [ex for i, ex in enumerate(examples) if ex.label != NO_RELATION or i in chosen]


def export_text(examples: Iterable[REExample], out: str | Path) -> int:
    """Write the distinct sentences as JSONL `{id, title, text}` (the `odqa pretrain --corpus` shape)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from odqa.corpus import write_jsonl

    def distinct():
        seen: set[str] = set()
        for ex in examples:
            if ex.sentence not in seen:
                seen.add(ex.sentence)
                yield {"id": ex.id, "title": "", "text": ex.sentence}
    tmp = out.with_name(f".{out.name}.tmp")
    n = write_jsonl(tmp, distinct())
    tmp.replace(out)
    return n
