"""The retriever protocol every backend (sparse, dense, hybrid, elastic) follows."""

from __future__ import annotations

from typing import Protocol, Sequence

from odqa.errors import OdqaError
from odqa.types import Hit


class Retriever(Protocol):
    def search(self, queries: Sequence[str], k: int, filters=None) -> list[list[Hit]]:
        """Top-k hits per query, best first (batched); with `filters` (`odqa.retrieval.filters.Filters`),
        among the passages whose metadata they allow."""
        ...


def check_queries(queries: Sequence[str]) -> list[str]:
    out = []
    for i, q in enumerate(queries):
        if not isinstance(q, str) or not q.strip():
            raise OdqaError(f"query {i + 1} is empty: give a question with some words in it")
        out.append(q.strip())
    return out
