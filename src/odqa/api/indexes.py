"""Indexes from Python: build, load, list, and measure retrieval on a question set."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, Union

from odqa.config import IndexConfig, load_config
from odqa.corpus import load_questions, write_jsonl
from odqa.device import resolve_device
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.index import store
from odqa.evaluation.retrieval import Judge, evaluate, grid_points, parse_sweep, sweep_bm25, sweep_fusion
from odqa.evaluation.trec import write_qrels, write_run
from odqa.index.index import Index
from odqa.index.indexing import build_index as _build
from odqa.index.indexing import encode_index_shard as _encode_shard
from odqa.index.indexing import load_index as _load
from odqa.index.indexing import verify_index as _verify
from odqa.index.manifest import BuildResult
from odqa.index.shards import ShardResult
from odqa.retrieval.filters import parse_filters
from odqa.types import Question



class QuestionFile(list):
    """The questions of a file (decoded as `encoding`, default UTF-8), named by it: read up front, so
    that a missing or malformed file fails before any index or model is loaded."""

    def __init__(self, path: str | Path, encoding: str | None = None):
        super().__init__(load_questions(path, encoding))
        self.path = str(path)


Questions = Union[str, Path, QuestionFile, Sequence[Question]]


def _config(config: IndexConfig | str | Path | None, overrides: Sequence[str]) -> IndexConfig:
    if not isinstance(config, IndexConfig):
        return load_config(config, list(overrides), IndexConfig)
    if overrides:
        from odqa.config import apply_overrides
        return apply_overrides(config, list(overrides))
    return config


def build_index(corpus: str | Path | None, name: str, config: IndexConfig | str | Path | None = None,
                overrides: Sequence[str] = (), index_dir: str | Path | None = None, force: bool = False,
                quiet: bool = False, connection=None, wait: bool = False, device: str = "auto",
                shards: bool | str | Path | None = None, shard_count: int = 0) -> BuildResult:
    """Build (or update) index NAME from a corpus file or folder; `device` runs the dense encoder
    (auto | cpu | cuda | cuda:N | mps; checked before any work).

    shards: True (INDEX_DIR/NAME.shards/) or a folder: merge dense shards encoded beforehand (`encode_shard`,
    `encode_shards_ray`) instead of encoding: all N must be there, of this corpus and these settings, else
    the build is refused naming the first bad shard and what differs (`shard_count` picks N when shards of
    several counts are there). The corpus may then be None: the one the shards record.

    config: an IndexConfig, a YAML file, or None (configs/default.yaml's defaults); overrides:
    `section.field=value` strings applied on top (checked before any work starts). `dense.enabled`
    unset keeps an index's dense vectors; false drops them. One build per index at a time: another
    one in progress raises IndexBusy, or is waited for with `wait=True`. The result's `parts` says
    what was built, rebuilt, kept or dropped."""
    config = _config(config, overrides)
    resolve_device(device)
    source = None
    if shards is not None and shards is not False:
        from odqa.config import with_changes
        from odqa.index.shards import ShardSource, recorded_corpus, shards_root
        source = ShardSource(shards_root(name, index_dir, None if shards is True else shards), shard_count)
        corpus = corpus or recorded_corpus(source.base)
        if config.dense.enabled is None:          # merging shards builds the dense part
            config = with_changes(config, dense=with_changes(config.dense, enabled=True))
    if corpus is None:
        raise OdqaError(f"give the corpus to index{' (no shard records one)' if source else ''}")
    return _build(corpus, name, config, index_dir, force=force, quiet=quiet, connection=connection, wait=wait,
                  device=device, shards=source)


def es_connection(url: str | None = None, api_key: str | None = None, user: str | None = None,
                  ca_certs: str | None = None, verify: bool | None = None, timeout: float = 60.0):
    """Where and how to reach Elasticsearch (`build_index(..., connection=)`): these settings first, then the
    ODQA_ES_* environment; credentials stay in memory, never in a manifest."""
    from odqa.index.elastic.client import ESConnection
    return ESConnection.resolve(url, api_key, user, ca_certs=ca_certs, verify=verify, timeout=timeout)


def encode_shard(corpus: str | Path, name: str, shard: str | tuple[int, int],
                 config: IndexConfig | str | Path | None = None, overrides: Sequence[str] = (),
                 index_dir: str | Path | None = None, shard_dir: str | Path | None = None, force: bool = False,
                 quiet: bool = False, device: str = "auto") -> ShardResult:
    """Encode dense shard I of N (`shard`: 'I/N' or (I, N), I from 1) of index NAME into
    `shard_dir` (default INDEX_DIR/NAME.shards/)/I-of-N/; one already there for the same corpus and
    settings is kept (status 'up-to-date'). Run the N shards anywhere (one command each, e.g. a Slurm
    array), then `build_index(corpus, name, ..., shards=True)` merges them into index NAME."""
    config = _config(config, overrides)
    resolve_device(device)
    return _encode_shard(corpus, name, config, shard, index_dir, shard_dir, force=force, quiet=quiet, device=device)


def encode_shards_ray(corpus: str | Path, name: str, shards: int = 4, config: IndexConfig | str | Path | None = None,
                      overrides: Sequence[str] = (), index_dir: str | Path | None = None,
                      shard_dir: str | Path | None = None, force: bool = False, quiet: bool = False,
                      num_cpus: int = 0, device: str = "auto") -> list[ShardResult]:
    """Encode the `shards` dense shards of index NAME with Ray Data batch inference (`pip install odqa[ray]`):
    on the cluster at $RAY_ADDRESS, else on a local Ray instance of `num_cpus` CPUs (default: one per shard,
    at most the machine's). Shards already there for the same inputs are kept. Merge them with
    `build_index(..., shards=True)`; `build_index_ray` does both."""
    from odqa.index.shards_ray import encode_shards_ray as _ray
    config = _config(config, overrides)
    resolve_device(device)
    return _ray(corpus, name, config, shards, index_dir, shard_dir, force=force, quiet=quiet, num_cpus=num_cpus,
                device=device)


def build_index_ray(corpus: str | Path, name: str, shards: int = 4, config: IndexConfig | str | Path | None = None,
                    overrides: Sequence[str] = (), index_dir: str | Path | None = None,
                    shard_dir: str | Path | None = None, force: bool = False, quiet: bool = False,
                    connection=None, wait: bool = False, num_cpus: int = 0, device: str = "auto") -> BuildResult:
    """Index NAME with its dense vectors encoded in `shards` shards on Ray (`encode_shards_ray`), then merged
    (`build_index(..., shards=...)`); the result is the index a single-process build makes."""
    from odqa.config import with_changes
    config = _config(config, overrides)
    config = with_changes(config, dense=with_changes(config.dense, enabled=True))
    encode_shards_ray(corpus, name, shards, config, (), index_dir, shard_dir, force, quiet, num_cpus, device)
    return build_index(corpus, name, config, (), index_dir, force, quiet, connection, wait, device,
                       shards=shard_dir or True, shard_count=shards)


@dataclass
class VerifyReport:
    """The check of every file of an index against its manifest (`verify_index`): `problems` has one line per
    file that failed (empty: the index is intact)."""
    index: str
    path: str
    files: int               # manifest.json included
    bytes: int
    checksums: bool          # False: an index of format 2 (no checksums recorded)
    problems: list[str]      # one line per missing, truncated, altered or unreadable file
    seconds: float
    rebuild: str             # the command that rebuilds the index

    def summary(self) -> str:
        if self.problems:
            return f"{len(self.problems)} of {self.files} files failed the check"
        if not self.checksums:
            return f"no checksums recorded (format 2): `{self.rebuild.removesuffix(' --force')}` records them"
        return f"all {self.files} files intact ({self.bytes / 1e6:.1f} MB checked in {self.seconds:.2f}s)"

    def to_json(self) -> dict:
        return {"index": self.index, "path": self.path, "ok": not self.problems, "files": self.files,
                "bytes": self.bytes, "checksums": self.checksums, "problems": self.problems,
                "seconds": self.seconds}


def verify_index(name: str, index_dir: str | Path | None = None) -> VerifyReport:
    """Check every file of local index NAME (size and checksum against its manifest)."""
    return VerifyReport(name, **_verify(name, index_dir))


def load_index(name: str, index_dir: str | Path | None = None, connection=None, mmap: bool | None = None) -> Index:
    """Index NAME (local or Elasticsearch); `.stale` lists why it no longer matches its sources.
    `mmap=False` reads a local index's BM25 scores into memory instead of mapping them (default: mapped,
    unless ODQA_MMAP=0)."""
    return _load(name, index_dir, connection, mmap)


def list_indexes(index_dir: str | Path | None = None) -> list[str]:
    """Names of the indexes in the index folder."""
    return store.list_indexes(index_dir)


def as_questions(questions: Questions, limit: int = 0) -> list[Question]:
    qs = load_questions(questions) if isinstance(questions, (str, Path)) else list(questions)
    return qs[:limit] if limit else qs


def questions_label(questions: Questions, loaded: list[Question]) -> str:
    if isinstance(questions, QuestionFile):
        return questions.path
    return str(questions) if isinstance(questions, (str, Path)) else f"{len(loaded)} questions"


def _index(index: str | Index, index_dir, device: str = "auto") -> Index:
    """The index (loaded by name), its query encoder to run on `device` (checked first)."""
    resolve_device(device)
    idx = index if isinstance(index, Index) else _load(index, index_dir)
    idx.device = device
    return idx


@dataclass
class RetrievalReport:
    """Retrieval measured on a question file (`evaluate_retrieval`): recall@k, MRR and speed in `metrics`,
    the rank of each question's gold passage in `per_question`."""
    index: str
    questions: str
    mode: str
    metrics: dict            # questions, recall@k.., mrr, trec (ndcg@10, mrr@10, recall@100), judged_by, seconds, ...
    per_question: list[dict] = field(default_factory=list, repr=False)
    run: dict[str, list[tuple[str, float]]] = field(default_factory=dict, repr=False)   # question id -> (passage id, score), best first
    qrels: dict[str, list[str]] = field(default_factory=dict, repr=False)              # question id -> relevant passage ids

    def to_json(self) -> dict:
        return {"index": self.index, "questions": self.questions, "mode": self.mode, "metrics": self.metrics}


@dataclass
class SweepReport:
    """Every combination a sweep tried (`rows`) and the `best` by `metric` (`sweep_retrieval`)."""
    index: str
    questions: str
    mode: str
    metric: str
    best: dict               # params + recall@k.. + mrr
    rows: list[dict]

    def to_json(self) -> dict:
        return {"index": self.index, "questions": self.questions, "mode": self.mode, "metric": self.metric,
                "best": self.best, "rows": self.rows}


def evaluate_retrieval(index: str | Index, questions: Questions, mode: str = "sparse", k: int = 100,
                       alpha: float | None = None, fusion: str | None = None, encoder: str | None = None,
                       index_dir: str | Path | None = None, dump: str | Path | None = None,
                       quiet: bool = True, device: str = "auto", filters=None, run_file: str | Path | None = None,
                       qrels_file: str | Path | None = None) -> RetrievalReport:
    """Recall@1..k and MRR of `index` on questions (judged by gold passage id, else answer string), and
    nDCG@10 / MRR@10 / recall@100 over each question's relevant set (`metrics["trec"]`); `device` runs the
    query encoder; `filters` (texts such as "source=wiki", or a dict) limit the search to the passages whose
    metadata match. run_file / qrels_file: write the TREC run (tag `odqa-MODE`) and qrels there."""
    idx = _index(index, index_dir, device)
    chosen = parse_filters(filters)
    qs = as_questions(questions)
    mode = idx.resolve_mode(mode)
    retriever = idx.retriever(mode, idx.hybrid_config(alpha, fusion), encoder)
    search = (lambda texts, n: retriever.search(texts, n, filters=chosen)) if chosen else retriever.search
    with bar(len(qs), "evaluating", "question", quiet) as pb:
        res = evaluate(search, qs, Judge(idx.canonical, idx.passage_ids()), k=k, progress=pb.update)
    if dump:
        write_jsonl(Path(dump), res["per_question"])
    if run_file:
        write_run(run_file, res["run"], f"odqa-{mode}")
    if qrels_file:
        write_qrels(qrels_file, res["qrels"])
    return RetrievalReport(idx.name, questions_label(questions, qs),
                           mode, res["metrics"], res["per_question"], res["run"], res["qrels"])


def sweep_retrieval(index: str | Index, questions: Questions, sweep: Sequence[str] | dict, mode: str = "sparse",
                    metric: str = "recall@1", k: int = 100, alpha: float | None = None, fusion: str | None = None,
                    encoder: str | None = None, index_dir: str | Path | None = None,
                    quiet: bool = True, device: str = "auto") -> SweepReport:
    """Try every combination of a grid on questions: BM25 k1/b/delta (sparse) or fusion alpha/rrf_k/depth (hybrid)."""
    idx = _index(index, index_dir, device)
    qs = as_questions(questions)
    mode = idx.resolve_mode(mode)
    grid = sweep if isinstance(sweep, dict) else parse_sweep(list(sweep))
    judge = Judge(idx.canonical, idx.passage_ids())
    with bar(len(grid_points(grid)), "sweep", "setting", quiet) as pb:
        if mode == "hybrid":
            res = sweep_fusion(idx.retriever(mode, idx.hybrid_config(alpha, fusion), encoder), qs, judge, grid,
                               metric, k, pb.update)
        elif mode == "sparse":
            res = sweep_bm25(idx.passages, idx.analyzer(), idx.bm25_config(), idx.manifest["sparse"]["include_title"],
                             qs, judge, grid, metric, pb.update)
        else:
            raise OdqaError("`sweep` works with `mode` sparse (k1, b, delta) or `mode` hybrid (alpha, rrf_k)")
    return SweepReport(idx.name, questions_label(questions, qs),
                       mode, res["metric"], res["best"], res["rows"])
