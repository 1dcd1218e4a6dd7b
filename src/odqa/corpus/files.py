"""Reading and writing corpus and question files: decoding (UTF-8 with an optional BOM, or a given
`encoding`; text that does not decode is one `CorpusError` naming the file, the byte offset and the flag),
JSON and JSONL, and the checks on a record's fields."""

from __future__ import annotations

import codecs
import hashlib
import itertools
import json
from pathlib import Path
from typing import Iterable, Iterator

from odqa.errors import ConfigError, CorpusError
from odqa.text.pieces import clean


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    dataset = path.is_dir() and any((path / m).exists() for m in ("dataset_info.json", "state.json",
                                                                   "dataset_dict.json"))
    files = sorted(f for f in path.rglob("*" if dataset else "*.txt") if f.is_file()) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def codec(encoding: str | None) -> str:
    """The codec that reads files in `encoding`: None or UTF-8 -> utf-8-sig (a BOM is skipped)."""
    if encoding is None:
        return "utf-8-sig"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(f"unknown encoding '{encoding}' (e.g. utf-8, cp949, euc-kr)") from None
    return "utf-8-sig" if name == "utf-8" else encoding


def _decode_error(path: Path, e: UnicodeDecodeError, encoding: str | None, offset: int = 0) -> CorpusError:
    hint = ("pass its encoding, e.g. --encoding cp949 (Korean Windows files)" if encoding is None
            else f"is --encoding {encoding} right?")
    return CorpusError(f"{path}: not {encoding or 'UTF-8'} text at byte {offset + e.start} ({e.reason}); {hint}")


def read_text(path: Path, encoding: str | None = None) -> str:
    """The whole file as text (UTF-8 with an optional BOM unless `encoding` says otherwise)."""
    data = path.read_bytes()
    try:
        return data.decode(codec(encoding))
    except UnicodeDecodeError as e:
        raise _decode_error(path, e, encoding) from None


def text_lines(path: Path, encoding: str | None = None) -> Iterator[str]:
    """The file's lines (split at "\n"), decoded as they are read, for files of any size."""
    decoder = codecs.getincrementaldecoder(codec(encoding))()
    offset, pending = 0, ""
    with open(path, "rb") as fh:
        for raw in itertools.chain(fh, [b""]):
            buffered = len(decoder.getstate()[0])
            try:
                pending += decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise _decode_error(path, e, encoding, offset - buffered) from None
            offset += len(raw)
            *lines, pending = pending.split("\n")
            yield from lines
    if pending:
        yield pending


def load_json(path: Path, encoding: str | None = None):
    try:
        return json.loads(read_text(path, encoding))
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    except RecursionError:
        raise CorpusError(f"{path}: JSON nested too deeply") from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write one JSON object per line (UTF-8, Korean kept as is); returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def iter_jsonl(path: Path, encoding: str | None = None) -> Iterator[tuple[int, dict]]:
    for lineno, line in enumerate(text_lines(path, encoding), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{lineno}: malformed JSON line ({e.msg})") from None
        except RecursionError:
            raise CorpusError(f"{path}:{lineno}: JSON nested too deeply") from None
        if not isinstance(rec, dict):
            raise CorpusError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        yield lineno, rec


def record_object(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise CorpusError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def record_field(rec: dict, name: str, where: str, kind=str):
    if name not in record_object(rec, where):
        raise CorpusError(f"{where}: missing field '{name}'")
    value = rec[name]
    if not isinstance(value, kind):
        raise CorpusError(f"{where}: field '{name}' must be {kind.__name__}, got {type(value).__name__}")
    return clean(value) if kind is str else value
