"""Corpus formats: Boostcamp/KLUE-MRC wiki JSON, JSONL, SQuAD/KorQuAD JSON, folders of .txt, Parquet, CSV,
TSV and `datasets.save_to_disk` folders; each reader yields `Passage` objects, and `detect_format` tells
which format a file is in.

Records (JSONL lines, table rows) are read through `Fields`: which column holds the id, the title, the text,
and which become the passage's metadata (what filters match on). Unset, the id is the first of `id`,
`doc_id`, `document_id`; the text the first of `text`, `contents`, `content`; the title `title`; and the
metadata every other column (a `metadata` column holding a mapping, as AutoRAG corpora have, gives its
keys). A column asked for and missing is one error naming the file and the columns it has."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from odqa.corpus.files import codec, iter_jsonl, load_json, read_text, record_field
from odqa.corpus.tables import iter_rows, columns, plain, table_kind
from odqa.errors import CorpusError
from odqa.text.pieces import clean
from odqa.types import Passage

FORMATS = ("auto", "wiki", "jsonl", "squad", "txt", "parquet", "csv", "tsv", "datasets")
ID_FIELDS = ("id", "doc_id", "document_id")
TEXT_FIELDS = ("text", "contents", "content")
TITLE_FIELDS = ("title",)
DOC_ID_FIELDS = ("doc_id", "document_id")
METADATA_FIELD = "metadata"       # a column holding a mapping: its keys are metadata fields (AutoRAG)


@dataclass(frozen=True)
class Fields:
    """Which record fields make a passage: None = the defaults above; `metadata` None = every other field,
    () = none, else those named."""
    id: str | None = None
    title: str | None = None
    text: str | None = None
    metadata: Sequence[str] | None = None

    def named(self) -> list[str]:
        return [f for f in (self.id, self.title, self.text) if f] + list(self.metadata or [])


def _first(rec: dict, given: str | None, defaults: tuple[str, ...]) -> str | None:
    if given:
        return given
    return next((f for f in defaults if f in rec), None)


def _metadata(rec: dict, fields: Fields, used: set[str], where: str) -> dict[str, Any]:
    if fields.metadata is not None:
        out = {}
        for name in fields.metadata:
            if name in rec:
                out[name] = plain(rec[name])
            elif isinstance(rec.get(METADATA_FIELD), dict) and name in rec[METADATA_FIELD]:
                out[name] = plain(rec[METADATA_FIELD][name])
            else:
                raise CorpusError(f"{where}: missing metadata field '{name}' (fields: {', '.join(rec)})")
        return out
    out = {}
    for name, value in rec.items():
        if name in used:
            continue
        if name == METADATA_FIELD and isinstance(value, dict):
            out.update({str(k): plain(v) for k, v in value.items()})
        elif value is not None:
            out[name] = plain(value)
    return out


def record_passage(rec: dict, where: str, fields: Fields | None = None) -> Passage:
    """A passage from one flat record (JSONL line, table row) read through `fields`."""
    fields = fields or Fields()
    id_field = _first(rec, fields.id, ID_FIELDS)
    if id_field is None or id_field not in rec or rec[id_field] is None:
        raise CorpusError(f"{where}: missing field '{fields.id or 'id'}' (fields: {', '.join(rec)})")
    text_field = _first(rec, fields.text, TEXT_FIELDS) or "text"
    if text_field not in rec:
        raise CorpusError(f"{where}: missing field '{text_field}' (fields: {', '.join(rec)})")
    text = rec[text_field]
    if text is None:
        text = ""
    if not isinstance(text, str):
        raise CorpusError(f"{where}: field '{text_field}' must be str, got {type(text).__name__}")
    title_field = _first(rec, fields.title, TITLE_FIELDS)
    if fields.title and fields.title not in rec:
        raise CorpusError(f"{where}: missing field '{fields.title}' (fields: {', '.join(rec)})")
    pid = str(rec[id_field])
    doc_field = next((f for f in DOC_ID_FIELDS if f in rec and f != id_field and rec[f] is not None), None)
    used = {id_field, text_field, title_field, doc_field} - {None}
    return Passage(id=pid, title=str(rec.get(title_field) or "") if title_field else "", text=clean(text),
                   doc_id=str(rec[doc_field]) if doc_field else pid,
                   metadata=_metadata(rec, fields, used, where))


def squad_passage_id(context: str) -> str:
    """Content-derived id of a SQuAD paragraph, so questions from any file find it."""
    return "sq-" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]


def detect_format(path: Path, encoding: str | None = None) -> str:
    kind = table_kind(path)
    if kind is not None:
        return "datasets" if kind == "dataset" else kind
    if path.is_dir():
        return "txt"
    if path.suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix == ".txt":
        return "txt"
    with open(path, encoding=codec(encoding), errors="replace") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("{") and '"data"' in head[:2000] and ('"paragraphs"' in head or '"version"' in head):
        return "squad"
    if head.startswith("{"):
        first_line = head.split("\n", 1)[0].strip()
        if first_line.endswith("}") and len(head.split("\n")) > 1:
            return "jsonl"
        return "wiki"
    raise CorpusError(f"{path}: cannot tell the corpus format; set `format` to {'|'.join(FORMATS[1:])}")


def read_wiki(path: Path, encoding: str | None = None, fields: Fields | None = None) -> Iterator[Passage]:
    """Boostcamp `wikipedia_documents.json`: {key: {text, title, document_id, ...}}."""
    data = load_json(path, encoding)
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected an object keyed by document id")
    for key, rec in data.items():
        where = f"{path}: record '{key}'"
        text = record_field(rec, "text", where)
        doc_id = str(rec.get("document_id", key))
        yield Passage(id=doc_id, title=str(rec.get("title", "")), text=text, doc_id=doc_id)


def read_jsonl(path: Path, encoding: str | None = None, fields: Fields | None = None) -> Iterator[Passage]:
    for lineno, rec in iter_jsonl(path, encoding):
        yield record_passage(rec, f"{path}:{lineno}", fields)


def _check_columns(path: Path, kind: str, fields: Fields, encoding: str | None) -> None:
    """One error naming the file and its columns when a column asked for is not there."""
    have = columns(path, kind, encoding)
    missing = [f for f in fields.named() if f not in have and not (f in (fields.metadata or ()) and METADATA_FIELD in have)]
    if not fields.id and not any(f in have for f in ID_FIELDS):
        missing.insert(0, "id")
    if not fields.text and not any(f in have for f in TEXT_FIELDS):
        missing.append("text")
    if missing:
        raise CorpusError(f"{path}: no column {', '.join(repr(m) for m in missing)} (columns: {', '.join(have)}); "
                          "name them with `id_field`, `title_field`, `text_field` and `metadata_fields`")


def read_table(path: Path, encoding: str | None = None, fields: Fields | None = None,
               kind: str = "parquet") -> Iterator[Passage]:
    """Parquet, CSV, TSV or a datasets folder, one row a passage."""
    fields = fields or Fields()
    _check_columns(path, kind, fields, encoding)
    for where, row in iter_rows(path, kind, encoding):
        yield record_passage(row, where, fields)


def squad_articles(path: Path, encoding: str | None = None) -> list[dict]:
    data = load_json(path, encoding)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise CorpusError(f"{path}: not SQuAD/KorQuAD JSON (missing field 'data')")
    return data["data"]


def read_squad(path: Path, encoding: str | None = None, fields: Fields | None = None) -> Iterator[Passage]:
    for ai, article in enumerate(squad_articles(path, encoding)):
        paragraphs = record_field(article, "paragraphs", f"{path}: data[{ai}]", list)
        title = str(article.get("title", ""))
        for pi, para in enumerate(paragraphs):
            context = record_field(para, "context", f"{path}: data[{ai}].paragraphs[{pi}]")
            doc_id = str(para.get("document_id", title))
            yield Passage(id=squad_passage_id(context), title=title, text=context, doc_id=doc_id)


def read_txt(path: Path, encoding: str | None = None, fields: Fields | None = None) -> Iterator[Passage]:
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise CorpusError(f"{path}: no .txt files found")
    for f in files:
        text = read_text(f, encoding)
        rel = str(f.relative_to(path)) if path.is_dir() else f.name
        yield Passage(id=rel, title=f.stem, text=text, doc_id=rel)


READERS = {"wiki": read_wiki, "jsonl": read_jsonl, "squad": read_squad, "txt": read_txt,
           "parquet": lambda p, e=None, f=None: read_table(p, e, f, "parquet"),
           "csv": lambda p, e=None, f=None: read_table(p, e, f, "csv"),
           "tsv": lambda p, e=None, f=None: read_table(p, e, f, "tsv"),
           "datasets": lambda p, e=None, f=None: read_table(p, e, f, "dataset")}
