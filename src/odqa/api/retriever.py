"""`Retriever`: an index searched in one mode with its fusion settings, no reader.

    r = odqa.Retriever.from_index("demo", RetrieverSettings(mode="hybrid", k=5))
    hits = r.retrieve("한라산의 높이는?")           # best first
    r.in_mode("sparse").retrieve_batch(questions)  # another mode of the same index, built once

What `odqa retrieve`, the server's /v1/retrieve and a `Pipeline`'s first stage search with.

Metadata filters (`settings.filters`, or `filters=` per call, which replaces them) are applied inside the
search: k hits come back whenever k passages match them.

    r.retrieve("한라산의 높이는?", filters=["source=wiki", "year>=2000"])
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Sequence

from odqa.api.config import PipelineConfig, RetrieverSettings
from odqa.retrieval.filters import Filters, parse_filters
from odqa.types import Hit

FilterSpec = "Filters | str | Sequence[str] | dict | None"


class Retriever:
    """Retrieval without a reader: an index searched in one mode with one set of `RetrieverSettings`
    (`Retriever.from_index(name, settings)`)."""

    def __init__(self, index, settings: RetrieverSettings, mode: str | None = None):
        """index: a loaded index (its query encoder placed where it should run); mode: the mode to search in
        (default: the settings' mode, `auto` resolved by the index)."""
        self.index, self.settings = index, settings
        self.mode = index.resolve_mode(mode or settings.mode)
        self.searcher = index.retriever(self.mode, index.hybrid_config(settings.alpha, settings.fusion),
                                        settings.encoder)
        self._modes: dict[str, Retriever] = {self.mode: self}
        self._lock = threading.Lock()
        self.filters = parse_filters(settings.filters)

    @classmethod
    def from_index(cls, name: str, settings: RetrieverSettings | None = None, index_dir: str | Path | None = None,
                   device=None, connection=None) -> "Retriever":
        """Load index NAME; its query encoder runs on `device` (a torch.device, or a name resolved here)."""
        from odqa.device import checked_device
        from odqa.index.indexing import load_index
        device = checked_device(PipelineConfig.model_fields["device"].default if device is None else device)
        idx = load_index(name, index_dir, connection)
        idx.device = device
        return cls(idx, settings or RetrieverSettings())

    def in_mode(self, mode: str | None) -> "Retriever":
        """The same index and settings searched in another mode (auto | sparse | dense | hybrid); each built once."""
        mode = self.index.resolve_mode(mode)
        with self._lock:
            if mode not in self._modes:
                r = Retriever(self.index, self.settings, mode)
                r._modes, r._lock = self._modes, self._lock
                self._modes[mode] = r
            return self._modes[mode]

    def active_filters(self, filters: FilterSpec = None) -> Filters:
        """The filters a search applies: those given (a text, a list of texts, a dict), else the settings' own."""
        return self.filters if filters is None else parse_filters(filters)

    def retrieve_batch(self, questions: Sequence[str], k: int | None = None,
                       filters: FilterSpec = None) -> list[list[Hit]]:
        """The top k passages of each question (default: the settings' k), best first; `filters` (metadata
        conditions, see `odqa.retrieval.filters`) replace the settings' own for this call."""
        from odqa.retrieval.base import check_queries
        chosen = self.active_filters(filters)
        qs, k = check_queries(questions), k or self.settings.k
        return self.searcher.search(qs, k, filters=chosen) if chosen else self.searcher.search(qs, k)

    def retrieve(self, question: str, k: int | None = None, filters: FilterSpec = None) -> list[Hit]:
        """The top k passages of one question, best first."""
        return self.retrieve_batch([question], k, filters)[0]
