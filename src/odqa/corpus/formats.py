"""Corpus formats: Boostcamp/KLUE-MRC wiki JSON, JSONL, SQuAD/KorQuAD JSON, folders of .txt; each reader
yields `Passage` objects, and `detect_format` tells which format a file is in."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterator

from odqa.corpus.files import codec, iter_jsonl, load_json, read_text, record_field
from odqa.errors import CorpusError
from odqa.types import Passage

FORMATS = ("auto", "wiki", "jsonl", "squad", "txt")


def squad_passage_id(context: str) -> str:
    """Content-derived id of a SQuAD paragraph, so questions from any file find it."""
    return "sq-" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]


def detect_format(path: Path, encoding: str | None = None) -> str:
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
    raise CorpusError(f"{path}: cannot tell the corpus format; set `format` to wiki|jsonl|squad|txt")


def read_wiki(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    """Boostcamp `wikipedia_documents.json`: {key: {text, title, document_id, ...}}."""
    data = load_json(path, encoding)
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected an object keyed by document id")
    for key, rec in data.items():
        where = f"{path}: record '{key}'"
        text = record_field(rec, "text", where)
        doc_id = str(rec.get("document_id", key))
        yield Passage(id=doc_id, title=str(rec.get("title", "")), text=text, doc_id=doc_id)


def read_jsonl(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    for lineno, rec in iter_jsonl(path, encoding):
        where = f"{path}:{lineno}"
        pid = rec.get("id", rec.get("document_id"))
        if pid is None:
            raise CorpusError(f"{where}: missing field 'id'")
        text = record_field(rec, "text", where)
        doc_id = str(rec.get("doc_id", rec.get("document_id", pid)))
        yield Passage(id=str(pid), title=str(rec.get("title", "")), text=text, doc_id=doc_id)


def squad_articles(path: Path, encoding: str | None = None) -> list[dict]:
    data = load_json(path, encoding)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise CorpusError(f"{path}: not SQuAD/KorQuAD JSON (missing field 'data')")
    return data["data"]


def read_squad(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    for ai, article in enumerate(squad_articles(path, encoding)):
        paragraphs = record_field(article, "paragraphs", f"{path}: data[{ai}]", list)
        title = str(article.get("title", ""))
        for pi, para in enumerate(paragraphs):
            context = record_field(para, "context", f"{path}: data[{ai}].paragraphs[{pi}]")
            doc_id = str(para.get("document_id", title))
            yield Passage(id=squad_passage_id(context), title=title, text=context, doc_id=doc_id)


def read_txt(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise CorpusError(f"{path}: no .txt files found")
    for f in files:
        text = read_text(f, encoding)
        rel = str(f.relative_to(path)) if path.is_dir() else f.name
        yield Passage(id=rel, title=f.stem, text=text, doc_id=rel)


READERS = {"wiki": read_wiki, "jsonl": read_jsonl, "squad": read_squad, "txt": read_txt}
