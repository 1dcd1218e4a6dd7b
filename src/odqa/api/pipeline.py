"""`Pipeline`: retrieve -> read -> answers, loaded once, with per-stage timings.

    import odqa
    p = odqa.Pipeline.from_index("demo")            # load the index and the reader once
    r = p.ask("한라산의 높이는 몇 미터인가?")          # QAResult: answers (best first), hits, timings
    print(r.answers[0].text, r.timings)

One loaded pipeline serves concurrent `ask` calls from several threads with the answers that
sequential calls give: its stages hold no per-call state, and what they build lazily is built
once under a lock.
"""

from __future__ import annotations

import threading
from contextlib import nullcontext
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Protocol, Sequence

from odqa.api.readers import DEFAULT_K, DEFAULT_RETRIEVAL_WEIGHT, ReaderSpec, check_reader, open_reader, particle_setting, reader_paths
from odqa.device import resolve_device
from odqa.errors import OdqaError
from odqa.types import Answer
from odqa.retrieval.base import Retriever, check_queries
from odqa.timing import collect, ordered, stage
from odqa.types import Hit

class SpanReader(Protocol):
    def read_batch(self, questions: list[str], hits: list[list[Hit]], quiet: bool = True) -> list[list[Answer]]: ...


@dataclass
class QAResult:
    question: str
    answers: list[Answer]            # best first; empty = no answer found
    hits: list[Hit]                # the passages read, best first
    # seconds per stage, this question's share of its batch: retrieve, read, then the parts of each that
    # ran (odqa.timing.STAGES: query_analysis, query_encoding, sparse_search, dense_search, fusion, rerank,
    # read_tokenize, read_model, read_postprocess)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def answer(self) -> Answer | None:
        return self.answers[0] if self.answers else None

    def passage(self, span: Answer):
        return next((h.passage for h in self.hits if h.passage.id == span.passage_id), None)

    def answer_json(self, span: Answer) -> dict:
        p = self.passage(span)
        return {**span.to_json(), "title": p.title if p else ""}

    def __str__(self) -> str:
        if not self.answers:
            return f"{self.question} -> (no answer)"
        best = self.answers[0]
        p = self.passage(best)
        return f"{self.question} -> {best.text} ({best.probability:.2f}, {p.title if p else best.passage_id})"


def drop_unmatched(hits: list[Hit]) -> list[Hit]:
    """BM25 score 0 means no query term matched: such passages are not read."""
    return [h for h in hits if h.score > 0 or h.source != "sparse"]


def _settings(reader, retrieval_weight: float, particles, runtime: str = "torch") -> dict:
    return {"readers": reader_paths(reader), "retrieval_weight": retrieval_weight,
            "particles": particle_setting(reader, particles), "reader_runtime": runtime}


def _check_rerank(reranker, rerank: int, k: int) -> int:
    """The number of candidates to rerank (20 by default with a reranker); bad combinations in one line."""
    if rerank < 0:
        raise OdqaError(f"rerank must be at least 0, got {rerank}")
    if reranker is None:
        if rerank:
            raise OdqaError("--rerank N needs a reranker: --reranker FOLDER (an `odqa train reranker` OUT/best)")
        return 0
    rerank = rerank or max(20, k)
    if rerank < k:
        raise OdqaError(f"--rerank N must be at least -k (the passages read): got --rerank {rerank}, -k {k}")
    return rerank


class Pipeline:
    """A retriever and a reader composed; `from_index` builds one from an index name."""

    def __init__(self, retriever: Retriever | None, reader: SpanReader | Callable[[], SpanReader], k: int = DEFAULT_K, *,
                 index=None, mode: str | None = None, reader_settings: dict | None = None, top: int = 20,
                 reranker=None, rerank: int = 0):
        """reader: a reader, or a function that makes one (called once, on the first read).
        reranker: a `reranker.model.CrossEncoder` (or None): `rerank` passages are retrieved, it keeps k."""
        if k < 1:
            raise OdqaError(f"k must be at least 1, got {k}")
        if reranker is not None and rerank < k:
            raise OdqaError(f"rerank N must be at least k (the passages read): got rerank {rerank}, k {k}")
        self.retriever, self.k, self.top = retriever, k, top
        self.reranker, self.rerank = reranker, (rerank if reranker is not None else 0)
        self._reader, self._lock = reader, threading.Lock()
        self.index, self.mode = index, mode
        # readers (folders; [] = sentence level), retrieval_weight, particles, reader_runtime: as results report them
        self.reader_settings = reader_settings or {"readers": [], "retrieval_weight": 0.0, "particles": None,
                                                   "reader_runtime": "torch"}
        self.load_seconds: dict[str, float] = {}     # load_index, load_reader (set by the constructors)
        self._fusion: tuple = (None, None, None)     # alpha, fusion, encoder the retrievers were built with
        self._modes: dict[str, Pipeline] = {}

    @classmethod
    def from_index(cls, name: str, reader: ReaderSpec | Sequence[ReaderSpec] = None, mode: str = "auto",
                   k: int = DEFAULT_K, index_dir: str | Path | None = None, device: str = "auto",
                   alpha: float | None = None, fusion: str | None = None, encoder: str | None = None,
                   retrieval_weight: float = DEFAULT_RETRIEVAL_WEIGHT, particles: ReaderSpec = None, n_best: int = 20,
                   connection=None, lazy_reader: bool = False, reader_runtime: str = "torch",
                   reranker: str | Path | None = None, rerank: int = 0) -> "Pipeline":
        """Load index NAME and a reader once.

        reader: a checkpoint folder (`odqa train reader` OUT/best), a list of them (soft-voted),
        or None / "none" (sentence-level answers). mode: auto (hybrid when the index has vectors,
        else sparse) | sparse | dense | hybrid. alpha/fusion override the index's fusion settings.
        lazy_reader: load the reader on the first read, not now (for callers that may only retrieve).
        reranker: an `odqa train reranker` folder (OUT/best): `rerank` passages are retrieved (default 20) and
        the cross-encoder keeps the best k of them for the reader.
        device: auto | cpu | cuda | cuda:N | mps, where the reader and the query encoder run (checked
        before anything loads; auto = a GPU when torch sees one).
        reader_runtime: torch | onnx | onnx-int8: the reader's span model in torch or in ONNX Runtime
        (fp32 or dynamic int8, on the CPU; exported once per checkpoint and cached).
        """
        from odqa.retrieval.indexing import load_index
        resolve_device(device)
        check_reader(reader, particles, reader_runtime)
        rerank = _check_rerank(reranker, rerank, k)
        t0 = time.perf_counter()
        idx = load_index(name, index_dir, connection)
        idx.device = device
        mode = idx.resolve_mode(mode)
        retriever = idx.retriever(mode, idx.hybrid_config(alpha, fusion), encoder)
        cross = None
        if reranker is not None:
            from odqa.reranker.model import load_reranker
            cross = load_reranker(reranker, device)
        t1 = time.perf_counter()

        def make():
            return open_reader(reader, idx, n_best, retrieval_weight, particles, device=device, runtime=reader_runtime)
        p = cls(retriever, make if lazy_reader else make(), k, index=idx, mode=mode, top=n_best,
                reader_settings=_settings(reader, retrieval_weight, particles, reader_runtime), reranker=cross,
                rerank=rerank)
        p.load_seconds = {"load_index": t1 - t0, "load_reader": time.perf_counter() - t1}
        p._fusion = (alpha, fusion, encoder)
        return p

    def in_mode(self, mode: str | None) -> "Pipeline":
        """This pipeline retrieving in another mode (auto | sparse | dense | hybrid): the same index, reader
        and fusion settings; each mode's retriever is built once."""
        if self.index is None:
            raise OdqaError("this pipeline has no index: build it with Pipeline.from_index(name) to retrieve")
        mode = self.index.resolve_mode(mode)
        if mode == self.mode:
            return self
        with self._lock:
            if mode not in self._modes:
                alpha, fusion, encoder = self._fusion
                retriever = self.index.retriever(mode, self.index.hybrid_config(alpha, fusion), encoder)
                p = Pipeline(retriever, lambda: self.reader, self.k, index=self.index, mode=mode, top=self.top,
                             reader_settings=self.reader_settings, reranker=self.reranker, rerank=self.rerank)
                p.load_seconds, p._fusion = self.load_seconds, self._fusion
                self._modes[mode] = p
            return self._modes[mode]

    @classmethod
    def from_reader(cls, reader: ReaderSpec | Sequence[ReaderSpec] = None, device: str = "auto",
                    retrieval_weight: float = DEFAULT_RETRIEVAL_WEIGHT, particles: ReaderSpec = None, n_best: int = 20,
                    reader_runtime: str = "torch") -> "Pipeline":
        """A pipeline without an index: it reads the passages it is given (`read`, closed domain)."""
        resolve_device(device)
        check_reader(reader, particles, reader_runtime)
        t0 = time.perf_counter()
        rd = open_reader(reader, None, n_best, retrieval_weight, particles, device=device, runtime=reader_runtime)
        p = cls(None, rd, 1, reader_settings=_settings(reader, retrieval_weight, particles, reader_runtime),
                top=n_best)
        p.load_seconds = {"load_index": 0.0, "load_reader": time.perf_counter() - t0}
        return p

    @property
    def reader(self) -> SpanReader:
        with self._lock:
            if not hasattr(self._reader, "read_batch"):
                self._reader = self._reader()
            return self._reader

    @property
    def sentence_level(self) -> bool:
        return bool(getattr(self.reader, "sentence_level", False))

    def _need_retriever(self) -> Retriever:
        if self.retriever is None:
            raise OdqaError("this pipeline has no index: build it with Pipeline.from_index(name) to retrieve")
        return self.retriever

    def retrieve_batch(self, questions: Sequence[str], k: int | None = None) -> list[list[Hit]]:
        return self._need_retriever().search(check_queries(questions), k or self.k)

    def passages_to_read(self, questions: Sequence[str], k: int | None = None) -> list[list[Hit]]:
        """The retrieved hits the reader reads (sparse hits that matched no query term dropped)."""
        return [drop_unmatched(hs) for hs in self.retrieve_batch(questions, k)]

    def rerank_hits(self, questions: Sequence[str], hits: Sequence[list[Hit]], k: int | None = None) -> list[list[Hit]]:
        """The reranking stage: each question's best k hits by the cross-encoder (the hits as they are without one)."""
        if self.reranker is None:
            return list(hits)
        return self.reranker.rerank(list(questions), list(hits), k or self.k)

    def candidates(self, questions: Sequence[str], k: int | None = None) -> list[list[Hit]]:
        """What the first stage hands on: the passages to read, or with a reranker its `rerank` candidates
        (at least k)."""
        return self.passages_to_read(questions, max(self.rerank, k or self.k) if self.reranker is not None else k)

    def retrieve(self, question: str, k: int | None = None) -> list[Hit]:
        return self.retrieve_batch([question], k)[0]

    def read(self, questions: Sequence[str], hits: Sequence[list[Hit]], quiet: bool = True) -> list[list[Answer]]:
        """Answers for questions over the passages given (best first, at most `top` each)."""
        return [spans[:self.top] for spans in self.reader.read_batch(list(questions), list(hits), quiet=quiet)]

    def ask_batch(self, questions: Sequence[str], k: int | None = None, batch_size: int = 64,
                  progress: Callable[[int], None] | None = None) -> list[QAResult]:
        questions = check_queries(questions)
        out: list[QAResult] = []
        for b in range(0, len(questions), batch_size):
            qs = questions[b:b + batch_size]
            with collect() as stages:       # the retrievers, the reranker and the reader mark their stages
                t0 = time.perf_counter()
                hits = self.candidates(qs, k)
                t1 = time.perf_counter()
                with stage("rerank") if self.reranker is not None else nullcontext():
                    hits = self.rerank_hits(qs, hits, k)
                tr = time.perf_counter()
                spans = self.read(qs, hits)
                t2 = time.perf_counter()
            share = {"retrieve": (t1 - t0) / len(qs), "read": (t2 - tr) / len(qs),
                     **{s: v / len(qs) for s, v in ordered(stages).items()}}
            out += [QAResult(q, s, h, dict(share)) for q, s, h in zip(qs, spans, hits)]
            if progress:
                progress(len(qs))
        return out

    def ask(self, question: str, k: int | None = None) -> QAResult:
        return self.ask_batch([question], k)[0]
