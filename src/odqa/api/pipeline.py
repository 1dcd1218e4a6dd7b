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

from odqa.api.config import RETRIEVAL_MODES, PipelineConfig, ReaderSettings, RerankerSettings
from odqa.api.readers import ReaderSpec, check_reader, open_reader, particle_setting, reader_paths
from odqa.api.retriever import Retriever
from odqa.device import checked_device, device_kind, warn_once
from odqa.errors import OdqaError
from odqa.retrieval.base import check_queries
from odqa.timing import collect, ordered, stage
from odqa.types import Answer, Hit

class SpanReader(Protocol):
    def read_batch(self, questions: list[str], hits: list[list[Hit]], quiet: bool = True) -> list[list[Answer]]: ...


@dataclass
class QAResult:
    """The answer to one question: `answers` (best first, empty when none was found), the passages read
    (`hits`, best first) and `timings` (seconds per stage, this question's share of its batch; the stages are
    listed on the JSON output page). `to_json`-style dicts of an answer come from `answer_json`."""
    question: str
    answers: list[Answer]            # best first; empty = no answer found
    hits: list[Hit]                # the passages read, best first
    # seconds per stage, this question's share of its batch: retrieve, read, then the parts of each that
    # ran (odqa.timing.STAGES: query_analysis, query_encoding, sparse_search, dense_search, fusion, rerank,
    # read_tokenize, read_model, read_postprocess)
    timings: dict[str, float] = field(default_factory=dict)
    min_probability: float = 0.0     # the pipeline's threshold: below it the answer is "not sure"

    @property
    def answer(self) -> Answer | None:
        """The best answer, also when it is not sure (`abstained`): the best guess."""
        return self.answers[0] if self.answers else None

    @property
    def abstained(self) -> bool:
        """No answer given with confidence: none found, or the best one's probability below `min_probability`."""
        return not self.answers or self.answers[0].probability < self.min_probability

    def passage(self, span: Answer):
        """The passage (`Passage`) an answer was read from, or None."""
        return next((h.passage for h in self.hits if h.passage.id == span.passage_id), None)

    def answer_json(self, span: Answer) -> dict:
        """An answer as the CLI and the server print it: `Answer.to_json()` plus its passage's `title`."""
        p = self.passage(span)
        return {**span.to_json(), "title": p.title if p else ""}

    def __str__(self) -> str:
        if not self.answers:
            return f"{self.question} -> (no answer)"
        best = self.answers[0]
        p = self.passage(best)
        guess = "not sure, best guess: " if self.abstained else ""
        return f"{self.question} -> {guess}{best.text} ({best.probability:.2f}, {p.title if p else best.passage_id})"


def drop_unmatched(hits: list[Hit]) -> list[Hit]:
    """BM25 score 0 means no query term matched: such passages are not read."""
    return [h for h in hits if h.score > 0 or h.source != "sparse"]


def check_pipeline(config: PipelineConfig):
    """The device models run on (`config.device` resolved once, for whoever loads them: a torch.device, or
    `auto`/`cpu` left as a name for the models that need torch to resolve it);
    refuses first, before anything loads, an unknown device, reader runtime or retrieval mode, a reader that
    is neither a folder, a shipped model nor a hub name, and particle rules that cannot be read."""
    device = checked_device(config.device)
    r = config.reader
    check_reader(r.model, r.particles, r.runtime)
    mode = config.retriever.mode
    if mode not in RETRIEVAL_MODES:
        raise OdqaError(f"unknown retrieval mode '{mode}' (choose from {', '.join(RETRIEVAL_MODES)})")
    return device


def _reader_settings(r: ReaderSettings) -> dict:
    """How results report the reader: folders ([] = sentence level), retrieval_weight, particles, reader_runtime."""
    return {"readers": reader_paths(r.model), "retrieval_weight": r.retrieval_weight,
            "particles": particle_setting(r.model, r.particles), "reader_runtime": r.runtime,
            "min_probability": r.min_probability}


def _rerank_depth(r: RerankerSettings, k: int) -> int:
    """The number of candidates to rerank (max(20, k) by default with a reranker); bad combinations in one line."""
    if r.model is None:
        if r.depth:
            raise OdqaError("`rerank` needs a reranker: `reranker` FOLDER (an `odqa train reranker` OUT/best)")
        return 0
    depth = r.depth or max(20, k)
    if depth < k:
        raise OdqaError(f"`rerank` must be at least `k` (the passages read): got `rerank` {depth}, `k` {k}")
    return depth


def _cpu_only_warnings(cfg: PipelineConfig, device, idx) -> None:
    """A GPU named in the config for work that runs on the CPU only: one warning each (as the lower layers
    warn when a device name reaches them)."""
    if cfg.device == "auto" or device_kind(device) == "cpu":
        return
    if cfg.reader.runtime != "torch":
        warn_once(f"reader-{cfg.reader.runtime}", f"reader runtime {cfg.reader.runtime} runs on the CPU, not {device}")
    q = ((idx.manifest.get("dense") or {}).get("quantize") or "none") if idx is not None else "none"
    if q != "none" and cfg.retriever.mode != "sparse":
        warn_once(f"quantize-{q}", f"dense.quantize {q} runs on the CPU, not {device}")


class Pipeline:
    """A retriever, an optional reranker and a reader composed; `from_config` (or its short form
    `from_index`) builds one."""

    def __init__(self, retrieval: Retriever | None, reader: SpanReader | Callable[[], SpanReader],
                 config: PipelineConfig, reranker=None, rerank: int = 0):
        """retrieval: the first stage (None: the pipeline reads the passages it is given).
        reader: a reader, or a function that makes one (called once, on the first read).
        reranker: a `reranker.model.CrossEncoder` (or None): `rerank` passages are retrieved, it keeps k."""
        self.retrieval, self.config = retrieval, config
        self.k, self.top = config.retriever.k, config.reader.n_best
        self.reranker, self.rerank = reranker, (rerank if reranker is not None else 0)
        self._reader, self._lock = reader, threading.Lock()
        self.reader_settings = _reader_settings(config.reader)
        self.load_seconds: dict[str, float] = {}     # load_index, load_reader (set by the constructors)
        self._modes: dict[str, Pipeline] = {}

    @classmethod
    def from_config(cls, config: PipelineConfig, lazy_reader: bool = False, connection=None) -> "Pipeline":
        """Load the config's index (none: a reader alone, for closed-domain reading) and reader once.

        lazy_reader: load the reader on the first read, not now (for callers that may only retrieve).
        connection: an Elasticsearch connection for an index on that backend.
        The device is resolved once here (checked before anything loads) and handed to every model."""
        device = check_pipeline(config)
        r = config.reader
        depth = _rerank_depth(config.reranker, config.retriever.k) if config.index is not None else 0
        t0 = time.perf_counter()
        retrieval = cross = None
        if config.index is not None:
            retrieval = Retriever.from_index(config.index, config.retriever, config.index_dir, device, connection)
            if config.reranker.model is not None:
                from odqa.reranker.model import load_reranker
                cross = load_reranker(Path(config.reranker.model), device)
        idx = retrieval.index if retrieval is not None else None
        _cpu_only_warnings(config, device, idx)
        t1 = time.perf_counter()

        def make():
            return open_reader(r.model, idx, r.n_best, r.retrieval_weight, r.particles, device=device,
                               runtime=r.runtime)
        p = cls(retrieval, make if lazy_reader else make(), config, reranker=cross, rerank=depth)
        p.load_seconds = {"load_index": t1 - t0, "load_reader": time.perf_counter() - t1}
        return p

    @classmethod
    def from_index(cls, name: str, reader: ReaderSpec | Sequence[ReaderSpec] = None, *, lazy_reader: bool = False,
                   connection=None, config: PipelineConfig | None = None, **overrides) -> "Pipeline":
        """Load index NAME and a reader once: the short form of `from_config`, settings by their parameter
        names on top of `config` (default: every setting's default).

        reader: a checkpoint folder (`odqa train reader` OUT/best), a shipped model, a list of them
        (soft-voted), or None / "none" (sentence-level answers when no reader is installed / always).
        mode: auto (hybrid when the index has vectors, else sparse) | sparse | dense | hybrid. k: passages read.
        alpha/fusion override the index's fusion settings; encoder: the dense encoder (the index's).
        reranker: an `odqa train reranker` folder (OUT/best): `rerank` passages are retrieved (default
        max(20, k)) and the cross-encoder keeps the best k of them for the reader.
        device: auto | cpu | cuda | cuda:N | mps, where the reader and the query encoder run (checked
        before anything loads; auto = a GPU when torch sees one).
        reader_runtime: torch | onnx | onnx-int8: the reader's span model in torch or in ONNX Runtime
        (fp32 or dynamic int8, on the CPU; exported once per checkpoint and cached).
        retrieval_weight, particles, n_best, index_dir: see `PipelineConfig`.
        """
        cfg = (config or PipelineConfig()).with_overrides(index=name, **overrides,
                                                          **({"reader": reader} if reader is not None else {}))
        return cls.from_config(cfg, lazy_reader=lazy_reader, connection=connection)

    @classmethod
    def from_reader(cls, reader: ReaderSpec | Sequence[ReaderSpec] = None, **overrides) -> "Pipeline":
        """A pipeline without an index: it reads the passages it is given (`read`, closed domain)."""
        overrides = {**overrides, **({"reader": reader} if reader is not None else {})}
        return cls.from_config(PipelineConfig.from_flat(index=None, **overrides))

    @property
    def index(self):
        """The loaded index, None for a pipeline without one (`from_reader`)."""
        return self.retrieval.index if self.retrieval is not None else None

    @property
    def mode(self) -> str | None:
        """The retrieval mode in use (sparse | dense | hybrid; `auto` resolved), None without an index."""
        return self.retrieval.mode if self.retrieval is not None else None

    @property
    def retriever(self):
        """The first stage's search (the retrieval algorithm's object), None without an index."""
        return self.retrieval.searcher if self.retrieval is not None else None

    def in_mode(self, mode: str | None) -> "Pipeline":
        """This pipeline retrieving in another mode (auto | sparse | dense | hybrid): the same index, reader
        and fusion settings; each mode's retriever is built once."""
        retrieval = self._need_retrieval().in_mode(mode)
        if retrieval is self.retrieval:
            return self
        with self._lock:
            if retrieval.mode not in self._modes:
                p = Pipeline(retrieval, lambda: self.reader, self.config, reranker=self.reranker, rerank=self.rerank)
                p.load_seconds = self.load_seconds
                self._modes[retrieval.mode] = p
            return self._modes[retrieval.mode]

    @property
    def reader(self) -> SpanReader:
        """The reader (loaded now if the pipeline was built with `lazy_reader=True`)."""
        with self._lock:
            if not hasattr(self._reader, "read_batch"):
                self._reader = self._reader()
            return self._reader

    @property
    def sentence_level(self) -> bool:
        """True when answers are evidence sentences (`reader="none"`), not spans."""
        return bool(getattr(self.reader, "sentence_level", False))

    def _need_retrieval(self) -> Retriever:
        if self.retrieval is None:
            raise OdqaError("this pipeline has no index: build it with Pipeline.from_index(name) to retrieve")
        return self.retrieval

    def retrieve_batch(self, questions: Sequence[str], k: int | None = None, filters=None) -> list[list[Hit]]:
        """The top k passages of each question (default: the pipeline's k), best first; no reading. `filters`
        (texts such as "source=wiki", or a dict) replace the configured metadata filters for this call."""
        return self._need_retrieval().retrieve_batch(questions, k or self.k, filters)

    def passages_to_read(self, questions: Sequence[str], k: int | None = None, filters=None) -> list[list[Hit]]:
        """The retrieved hits the reader reads (sparse hits that matched no query term dropped)."""
        return [drop_unmatched(hs) for hs in self.retrieve_batch(questions, k, filters)]

    def rerank_hits(self, questions: Sequence[str], hits: Sequence[list[Hit]], k: int | None = None) -> list[list[Hit]]:
        """The reranking stage: each question's best k hits by the cross-encoder (the hits as they are without one)."""
        if self.reranker is None:
            return list(hits)
        return self.reranker.rerank(list(questions), list(hits), k or self.k)

    def candidates(self, questions: Sequence[str], k: int | None = None, filters=None) -> list[list[Hit]]:
        """What the first stage hands on: the passages to read, or with a reranker its `rerank` candidates
        (at least k)."""
        return self.passages_to_read(questions, max(self.rerank, k or self.k) if self.reranker is not None else k,
                                     filters)

    def retrieve(self, question: str, k: int | None = None, filters=None) -> list[Hit]:
        """The top k passages of one question, best first; no reading."""
        return self.retrieve_batch([question], k, filters)[0]

    def read(self, questions: Sequence[str], hits: Sequence[list[Hit]], quiet: bool = True) -> list[list[Answer]]:
        """Answers for questions over the passages given (best first, at most `top` each)."""
        return [spans[:self.top] for spans in self.reader.read_batch(list(questions), list(hits), quiet=quiet)]

    def ask_batch(self, questions: Sequence[str], k: int | None = None, batch_size: int = 64,
                  progress: Callable[[int], None] | None = None, filters=None) -> list[QAResult]:
        """Answer many questions: retrieval, reranking and reading in batches of `batch_size` questions.

        Gives the answers `ask` gives one by one, faster. `progress(n)` is called after each batch with its
        size. `filters` (texts such as "year>=2000", or a dict) replace the configured metadata filters for
        these questions. A blank question or a malformed filter raises `OdqaError` before any work."""
        questions = check_queries(questions)
        if filters is not None:
            self._need_retrieval().active_filters(filters)      # a malformed filter: refused before any work
        out: list[QAResult] = []
        for b in range(0, len(questions), batch_size):
            qs = questions[b:b + batch_size]
            hits, timings = self.passages_for(qs, k, filters)
            out += self.answers_from(qs, hits, [timings] * len(qs))
            if progress:
                progress(len(qs))
        return out

    def passages_for(self, questions: Sequence[str], k: int | None = None,
                     filters=None) -> tuple[list[list[Hit]], dict[str, float]]:
        """The first half of `ask_batch`: each question's passages to read (retrieved, and reranked when the
        pipeline has a reranker), and each question's share of the seconds its stages took."""
        with collect() as stages:           # the retrievers and the reranker mark their stages
            t0 = time.perf_counter()
            hits = self.candidates(questions, k, filters)
            seconds = time.perf_counter() - t0
            with stage("rerank") if self.reranker is not None else nullcontext():
                hits = self.rerank_hits(questions, hits, k)
        n = max(len(questions), 1)
        return hits, {"retrieve": seconds / n, **{s: v / n for s, v in stages.items()}}

    def answers_from(self, questions: Sequence[str], hits: Sequence[list[Hit]],
                     timings: Sequence[dict[str, float]] | None = None) -> list[QAResult]:
        """The second half of `ask_batch`: the questions read over the passages `passages_for` found, as
        results; `timings[i]` (question i's seconds in `passages_for`) are kept beside the reading's."""
        with collect() as stages:           # the reader marks its stages
            t0 = time.perf_counter()
            spans = self.read(questions, hits)
            seconds = time.perf_counter() - t0
        n = max(len(questions), 1)
        read = {s: v / n for s, v in stages.items()}
        out = []
        for i, (q, s, h) in enumerate(zip(questions, spans, hits)):
            first = dict(timings[i]) if timings is not None else {}
            share = {**({"retrieve": first.pop("retrieve")} if "retrieve" in first else {}), "read": seconds / n,
                     **ordered({**first, **read})}
            out.append(QAResult(q, s, list(h), share, self.config.reader.min_probability))
        return out

    def count_windows(self, question: str, hits: Sequence[Hit]) -> int:
        """How many windows the reader reads for `question` over `hits` (the cost of reading them); one per
        passage for a reader that does not say."""
        count = getattr(self.reader, "count_windows", None)
        return count(question, list(hits)) if count is not None else len(hits)

    def ask(self, question: str, k: int | None = None, filters=None) -> QAResult:
        """Answer one question: retrieve k passages (default: the pipeline's k) within `filters`, rerank them if
        the pipeline has a reranker, read them. Safe to call from several threads on one pipeline."""
        return self.ask_batch([question], k, filters=filters)[0]

    def ask_passages(self, question: str, hits: Sequence[Hit]) -> QAResult:
        """Answers to `question` from exactly the passages given (closed domain: nothing retrieved or
        reranked), best first; their scores weigh in as retrieved scores do (`retrieval_weight`)."""
        question = check_queries([question])[0]
        return self.answers_from([question], [list(hits)])[0]
