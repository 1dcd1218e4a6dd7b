"""Build and load local indexes (sparse now; dense artefacts join the same folder)."""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from odqa.config import IndexConfig
from odqa.corpus import load_corpus
from odqa.errors import OdqaError
from odqa.progress import bar
from odqa.atomic import AtomicFolder
from odqa.retrieval import store
from odqa.retrieval.sparse import BM25Scorer, SparseRetriever
from odqa.text.analyzers import installed_version, make_analyzer
from odqa.types import Passage


@dataclass
class BuildResult:
    status: str               # built | rebuilt | up-to-date
    folder: Path
    manifest: dict
    reasons: list[str] = field(default_factory=list)


def _settings(cfg: IndexConfig, analyzer_spec: dict) -> dict:
    corpus = asdict(cfg.corpus)
    corpus.pop("format")
    return {"corpus": corpus, "analyzer": analyzer_spec,
            "sparse": {"backend": "bm25s", "include_title": cfg.include_title, **asdict(cfg.bm25)}}


def build_index(corpus_path: str | Path, name: str, cfg: IndexConfig, root=None, force: bool = False,
                quiet: bool = False) -> BuildResult:
    corpus_path = Path(corpus_path)
    final = store.index_dir(name, root)
    analyzer = make_analyzer(cfg.analyzer.name, cfg.analyzer.pos, cfg.analyzer.workers)
    t0 = time.perf_counter()
    corpus = load_corpus(corpus_path, cfg.corpus.format, cfg.corpus.chunk_size, cfg.corpus.chunk_overlap,
                         cfg.corpus.dedup)
    settings = _settings(cfg, analyzer.spec())
    reasons: list[str] = []
    if (final / store.MANIFEST).exists():
        try:
            _, old = store.read_manifest(name, root)
            reasons = store.same_build(old, corpus.sha256, settings)
        except OdqaError as e:
            reasons = [str(e)]
        if not reasons and not force:
            return BuildResult("up-to-date", final, old)
    status = "rebuilt" if final.exists() else "built"
    with AtomicFolder(final) as tmp:
        store.write_passages(tmp, corpus)
        with bar(len(corpus.passages), f"analyzing ({analyzer.name})", "passage", quiet) as pb:
            sparse = SparseRetriever.build(corpus.passages, analyzer, cfg.bm25, cfg.include_title,
                                           progress=pb.update)
        sparse.save(tmp)
        manifest = store.new_manifest(name, store.corpus_record(corpus, corpus_path, settings["corpus"]),
                                      settings["analyzer"], settings["sparse"], time.perf_counter() - t0)
        store.write_json(tmp / store.MANIFEST, manifest)
    return BuildResult(status, final, manifest, reasons)


@dataclass
class LoadedIndex:
    name: str
    folder: Path
    manifest: dict
    passages: list[Passage]
    aliases: dict[str, str]
    stale: list[str]
    _sparse: SparseRetriever | None = None

    def canonical(self, pid: str) -> str:
        return self.aliases.get(pid, pid)

    def analyzer(self):
        a = self.manifest["analyzer"]
        return make_analyzer(a["name"], a["pos"])

    @property
    def sparse(self) -> SparseRetriever:
        if self._sparse is None:
            from odqa.config import BM25Config
            s = self.manifest["sparse"]
            cfg = BM25Config(method=s["method"], k1=s["k1"], b=s["b"], delta=s["delta"])
            scorer = BM25Scorer.load(self.folder / "bm25", cfg)
            self._sparse = SparseRetriever(self.passages, self.analyzer(), scorer, s["include_title"])
        return self._sparse


def load_index(name: str, root=None) -> LoadedIndex:
    folder, manifest = store.read_manifest(name, root)
    passages = list(store.read_passages(folder))
    aliases = json.loads((folder / "aliases.json").read_text(encoding="utf-8"))
    return LoadedIndex(name, folder, manifest, passages, aliases, store.staleness(manifest, installed_version))
