"""Tabular files read as rows (dicts): Parquet (pyarrow), CSV and TSV, and `datasets.save_to_disk` folders.

Rows are read in batches, so a file of any size streams. Values come as Python values: Parquet and
datasets keep their types (numbers, lists, structs as dicts, dates as ISO text); CSV and TSV cells are
text, and a cell that holds a JSON or Python list (`["d1", "d2"]`, as AutoRAG's CSV exports write
`retrieval_gt`) is read as that list where a list is expected (`as_list`).
"""

from __future__ import annotations

import ast
import csv
import datetime
import json
import sys
from pathlib import Path
from typing import Any, Iterator

from odqa.corpus.files import codec, text_lines
from odqa.errors import CorpusError

TABLE_SUFFIXES = {".parquet": "parquet", ".pq": "parquet", ".csv": "csv", ".tsv": "tsv"}
DATASET_MARKERS = ("dataset_info.json", "state.json", "dataset_dict.json")
BATCH_ROWS = 4096


def is_dataset_folder(path: Path) -> bool:
    """A `datasets.save_to_disk` folder (a Dataset or a DatasetDict)."""
    return path.is_dir() and any((path / m).exists() for m in DATASET_MARKERS)


def plain(value: Any) -> Any:
    """A cell as a JSON-friendly Python value (dates as ISO text, tuples as lists, structs as dicts)."""
    if isinstance(value, (datetime.date, datetime.datetime, datetime.time)):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if hasattr(value, "tolist"):          # numpy scalars and arrays
        return plain(value.tolist())
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def as_list(value: Any) -> Any:
    """A list cell: a list as it is; text that spells a list (CSV) parsed; other values as they are."""
    if isinstance(value, str) and value.strip().startswith("["):
        text = value.strip()
        try:
            return json.loads(text)
        except ValueError:
            try:
                return ast.literal_eval(text)
            except (ValueError, SyntaxError):
                return value
    return value


def columns(path: Path, kind: str, encoding: str | None = None) -> list[str]:
    """The column names of a table."""
    if kind == "parquet":
        return list(_parquet(path).schema_arrow.names)
    if kind == "dataset":
        return list(dataset_folder(path).column_names)
    header = next(iter(_csv_reader(path, kind, encoding)), None)
    return list(header or [])


def iter_rows(path: Path, kind: str, encoding: str | None = None) -> Iterator[tuple[str, dict]]:
    """(where, row) of each row: where names the file and the row (`file:line` for CSV, `file: row N` else)."""
    if kind == "parquet":
        pf, n = _parquet(path), 0
        for batch in pf.iter_batches(batch_size=BATCH_ROWS):
            for row in batch.to_pylist():
                yield f"{path}: row {n}", {k: plain(v) for k, v in row.items()}
                n += 1
    elif kind == "dataset":
        for n, row in enumerate(dataset_folder(path)):
            yield f"{path}: row {n}", {k: plain(v) for k, v in row.items()}
    else:
        reader = _csv_reader(path, kind, encoding)
        header = next(reader, None)
        if header is None:
            return
        for lineno, cells in enumerate(reader, 2):
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise CorpusError(f"{path}:{lineno}: {len(cells)} cells, the header has {len(header)} columns "
                                  f"({', '.join(header)})")
            yield f"{path}:{lineno}", dict(zip(header, cells))


def _parquet(path: Path):
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise CorpusError(f"{path}: reading Parquet needs pyarrow: pip install pyarrow") from None
    try:
        return pq.ParquetFile(str(path))
    except Exception as e:                    # pyarrow raises ArrowInvalid / OSError subclasses
        raise CorpusError(f"{path}: not a readable Parquet file ({str(e).splitlines()[0][:160]})") from None


def dataset_folder(path: Path, not_found: str = "not a datasets.save_to_disk folder"):
    """The dataset of a `datasets.save_to_disk` folder (a DatasetDict folder only when it holds one split)."""
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise CorpusError(f"{path}: reading a datasets folder needs the `datasets` package (pip install odqa[ml])") \
            from None
    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError:
        raise CorpusError(f"{path}: {not_found}") from None
    if isinstance(ds, DatasetDict):
        if len(ds) != 1:
            raise CorpusError(f"{path}: holds splits {', '.join(ds)}; pass one of them, e.g. {path / next(iter(ds))}")
        ds = next(iter(ds.values()))
    return ds


def _csv_reader(path: Path, kind: str, encoding: str | None) -> Iterator[list[str]]:
    """The rows of a CSV/TSV file; a row the csv module cannot parse is one line naming the file and line."""
    csv.field_size_limit(min(sys.maxsize, 2 ** 31 - 1))
    lines = (line + "\n" for line in text_lines(path, encoding))
    reader = csv.reader(lines, delimiter="\t" if kind == "tsv" else ",")
    try:
        yield from reader
    except csv.Error as e:
        raise CorpusError(f"{path}:{reader.line_num}: not a well-formed {kind.upper()} row ({e})") from None


def table_kind(path: Path) -> str | None:
    """parquet | csv | tsv | dataset, or None when `path` is none of them."""
    if is_dataset_folder(path):
        return "dataset"
    return TABLE_SUFFIXES.get(path.suffix.lower()) if path.is_file() else None


__all__ = ["TABLE_SUFFIXES", "as_list", "codec", "columns", "is_dataset_folder", "iter_rows", "plain", "table_kind"]
