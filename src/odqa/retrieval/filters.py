"""Metadata filters: search within the passages whose metadata match.

A filter is one condition on one metadata field, written as text:

    source=wiki                 equal (a number compares as a number: year=2000 matches 2000 and "2000")
    source!=wiki                not equal (a passage without the field matches)
    source in [wiki, news]      one of several values
    year>=2000   year<2010      numeric ranges (>, >=, <, <=)
    date>=2023-01-01            date ranges on ISO dates (YYYY-MM-DD...), compared at the precision given

Several filters must all hold (AND). A field holding a list matches when one of its items does. A
dict form is accepted too: `{"source": "wiki", "lang": ["ko", "en"]}` (equal; a list means `in`).

`Filters` is the parsed form; `MetadataTable` reads the metadata of an index's passages once and gives the
row numbers a filter allows (cached per filter), which the retrievers search within: BM25 scores only those
rows, FAISS searches with an id selector, so k hits come back whenever k passages match.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from odqa.errors import OdqaError

_COND = re.compile(r"^\s*(?P<field>[^\s=<>!\[\]]+)\s*(?P<op>>=|<=|!=|=|>|<|\s+in\s+)\s*(?P<value>.*?)\s*$",
                   re.IGNORECASE)
_DATE = re.compile(r"^\d{4}-\d{2}(-\d{2}([T ][\d:.]+)?)?$")
_NUMBER = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$")
RANGES = (">", ">=", "<", "<=")
CACHED_FILTERS = 64               # allowed-row sets kept per index


class FilterError(OdqaError):
    """A filter that cannot be read."""


def _unquote(raw: str) -> str:
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "'\"":
        return raw[1:-1]
    return raw


def _number(raw: str) -> int | float | None:
    if not _NUMBER.match(raw):
        return None
    return float(raw) if any(c in raw for c in ".eE") else int(raw)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Condition:
    field: str
    op: str                    # = | != | in | > | >= | < | <=
    values: tuple[str, ...]    # as written (unquoted); several for `in`
    text: str                  # the filter as given

    def _equal(self, v: Any, raw: str) -> bool:
        if isinstance(v, (list, tuple)):
            return any(self._equal(x, raw) for x in v)
        if isinstance(v, bool):
            return raw.lower() == str(v).lower()
        n = _number(raw)
        if n is not None and (_is_number(v) or (isinstance(v, str) and _number(v.strip()) is not None)):
            return float(v) == float(n)
        return v is not None and str(v) == raw

    def _in_range(self, v: Any) -> bool:
        if isinstance(v, (list, tuple)):
            return any(self._in_range(x) for x in v)
        raw = self.values[0]
        n = _number(raw)
        if n is not None:
            if isinstance(v, str) and _number(v.strip()) is not None:
                v = float(v)
            if not _is_number(v):
                return False
            a, b = float(v), float(n)
        else:                    # an ISO date: compare at the precision given (2024-01-01 covers the whole day)
            if v is None or _is_number(v) or isinstance(v, bool):
                return False
            a, b = str(v)[:len(raw)].replace(" ", "T"), raw.replace(" ", "T")
        return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[self.op]

    def matches(self, v: Any) -> bool:
        if self.op == "=":
            return self._equal(v, self.values[0])
        if self.op == "!=":
            return not self._equal(v, self.values[0])
        if self.op == "in":
            return any(self._equal(v, raw) for raw in self.values)
        return self._in_range(v)

    def to_dict(self) -> dict:
        return {"field": self.field, "op": self.op, "values": list(self.values)}


def parse_condition(text: str) -> Condition:
    """One filter (`field=value`, `field in [a, b]`, `field>=x`...); a malformed one is a FilterError naming it."""
    if not isinstance(text, str) or not text.strip():
        raise FilterError(f"filter {text!r}: empty; write field=value, field in [a, b] or field>=value")
    m = _COND.match(text)
    if not m:
        raise FilterError(f"filter '{text}': not field=value, field!=value, field in [a, b], or a range "
                          "(field>=value, field<value, ...)")
    name, op, raw = m["field"], m["op"].strip().lower(), m["value"]
    if op == "in":
        if not (raw.startswith("[") and raw.endswith("]")):
            raise FilterError(f"filter '{text}': `in` takes a list in brackets, e.g. {name} in [a, b]")
        values = tuple(_unquote(x) for x in raw[1:-1].split(",") if x.strip())
        if not values:
            raise FilterError(f"filter '{text}': the list after `in` is empty")
        return Condition(name, op, values, text)
    value = _unquote(raw)
    if not value or (value[0] in "<>=!" and value == raw):
        raise FilterError(f"filter '{text}': no value after '{op}' (write e.g. {name}{op}2000)")
    if op in RANGES and _number(value) is None and not _DATE.match(value):
        raise FilterError(f"filter '{text}': a range compares numbers or ISO dates (YYYY-MM-DD), not '{value}'")
    return Condition(name, op, (value,), text)


@dataclass(frozen=True)
class Filters:
    """Conditions that must all hold (AND); empty = every passage."""
    conditions: tuple[Condition, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.conditions)

    @property
    def key(self) -> tuple[str, ...]:
        return tuple(sorted(c.text for c in self.conditions))

    def texts(self) -> list[str]:
        return [c.text for c in self.conditions]

    def matches(self, metadata: Mapping[str, Any]) -> bool:
        return all(c.matches(metadata.get(c.field)) for c in self.conditions)


def parse_filters(spec: "Filters | str | Sequence[str] | Mapping[str, Any] | None") -> Filters:
    """Filters from text (one filter), a list of texts, a dict (field -> value, a list meaning `in`) or None."""
    if spec is None:
        return Filters()
    if isinstance(spec, Filters):
        return spec
    if isinstance(spec, str):
        return Filters((parse_condition(spec),))
    if isinstance(spec, Mapping):
        conds = []
        for name, value in spec.items():
            if isinstance(value, (list, tuple)):
                if not value:
                    raise FilterError(f"filter '{name}': the list of values is empty")
                conds.append(Condition(str(name), "in", tuple(str(v) for v in value), f"{name} in {list(value)}"))
            else:
                conds.append(Condition(str(name), "=", (str(value),), f"{name}={value}"))
        return Filters(tuple(conds))
    if isinstance(spec, Iterable):
        return Filters(tuple(parse_condition(s) for s in spec))
    raise FilterError(f"filters {spec!r}: give a list of texts such as ['source=wiki', 'year>=2000']")


class MetadataTable:
    """The metadata of an index's passages, read once on the first filtered search (one column a field),
    and the rows each filter allows (cached)."""

    def __init__(self, passages: Sequence):
        self.passages = passages
        self._columns: dict[str, list] | None = None
        self._rows: dict[tuple[str, ...], np.ndarray] = {}
        self._lock = threading.Lock()

    def columns(self) -> dict[str, list]:
        with self._lock:
            if self._columns is None:
                cols: dict[str, list] = {}
                n = len(self.passages)
                for i, p in enumerate(self.passages):
                    for name, value in (getattr(p, "metadata", None) or {}).items():
                        col = cols.get(name)
                        if col is None:
                            col = cols[name] = [None] * n
                        col[i] = value
                self._columns = cols
            return self._columns

    def rows(self, filters: Filters) -> np.ndarray:
        """Sorted row numbers of the passages every condition holds for."""
        key = filters.key
        with self._lock:
            if key in self._rows:
                return self._rows[key]
        cols = self.columns()
        n = len(self.passages)
        keep = np.ones(n, dtype=bool)
        for c in filters.conditions:
            if c.field not in cols:
                known = ", ".join(sorted(cols)) or "none: the corpus was indexed without metadata"
                raise FilterError(f"filter '{c.text}': no passage has the field '{c.field}' (fields: {known})")
            col = cols[c.field]
            keep &= np.fromiter((c.matches(v) for v in col), dtype=bool, count=n)
        rows = np.flatnonzero(keep).astype(np.int64)
        with self._lock:
            if len(self._rows) >= CACHED_FILTERS:
                self._rows.pop(next(iter(self._rows)))
            self._rows[key] = rows
        return rows


def allowed_rows(metadata: MetadataTable | None, filters: Filters | None) -> np.ndarray | None:
    """The rows a search may return (None: all of them)."""
    if not filters:
        return None
    if metadata is None:
        raise OdqaError("this retriever has no passage metadata to filter on")
    return metadata.rows(filters)
