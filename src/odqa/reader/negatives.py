"""Negative passages for multi-passage reader training, mined with a retriever over a pool.

Each training question is run against the pool (an index, or a corpus file indexed in memory with
BM25); its top retrieved passages that are NOT its own passage become windows without an answer.
The rule that keeps the gold passage out: a retrieved passage is dropped when its id is excluded
(e.g. the evaluation articles), when its text is the question's own context (whitespace-normalised),
or when it contains any of the question's answer strings (whitespace-normalised substring): a passage
that holds the answer text may well answer the question, so it is never trained as "no answer".

Mined passages are cached in `OUT/negatives.jsonl` (one line per question: its position, id and the
passages), with a header line naming the pool and settings; a rerun or a resume with the same
settings and questions reads the cache instead of mining again.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from odqa.atomic import atomic_write_text
from odqa.errors import OdqaError
from odqa.types import Passage, Question

CACHE_FILE = "negatives.jsonl"
_SPACE = re.compile(r"\s+")


def _norm(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def is_negative(passage: Passage, question: Question, excluded: set[str] = frozenset()) -> bool:
    """True when `passage` may be trained as a no-answer passage for `question` (the rule above)."""
    if passage.id in excluded:
        return False
    text = _norm(passage.text)
    if question.context and text == _norm(question.context):
        return False
    return not any(a and _norm(a) in text for a in question.answers)


@dataclass
class MiningSettings:
    pool: str                 # index name or corpus file
    mode: str                 # sparse | hybrid
    k: int                    # negatives per question
    excluded: int             # number of excluded passage ids

    def header(self) -> dict:
        return {"pool": self.pool, "mode": self.mode, "k": self.k, "excluded": self.excluded}


def mine(questions: Sequence[Question], retriever, k: int, excluded: set[str] = frozenset(),
         batch: int = 256, depth: int | None = None, progress=None) -> list[list[Passage]]:
    """Up to `k` negative passages per question from `retriever.search` (the first `depth` hits read;
    default 3k + 10, more when ids are excluded)."""
    depth = depth or 3 * k + 10
    out: list[list[Passage]] = []
    for b in range(0, len(questions), batch):
        part = questions[b:b + batch]
        hits = retriever.search([q.question for q in part], depth)
        for q, hs in zip(part, hits):
            keep, seen = [], set()
            for h in hs:
                if h.passage.id in seen or not is_negative(h.passage, q, excluded):
                    continue
                seen.add(h.passage.id)
                keep.append(h.passage)
                if len(keep) == k:
                    break
            out.append(keep)
        if progress:
            progress(len(part))
    return out


def excluded_ids(files: Sequence[Path], pool_passages=None) -> set[str]:
    """Passage ids to keep out of the pool: the gold ids of the questions in `files`, and the ids of pool
    passages whose text is one of their contexts (SQuAD-shaped files carry contexts, not pool ids)."""
    from odqa.corpus import load_questions
    ids, texts = set(), set()
    for f in files:
        for q in load_questions(f):
            ids.update(q.gold_ids)
            if q.context:
                texts.add(_norm(q.context))
    if texts and pool_passages is not None:
        ids.update(p.id for p in pool_passages if _norm(p.text) in texts)
    return ids


def load_cache(folder: Path, settings: MiningSettings, questions: Sequence[Question]) -> list[list[Passage]] | None:
    """The cached negatives when they were mined with these settings for these questions, else None."""
    path = Path(folder) / CACHE_FILE
    if not path.exists():
        return None
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0])
        rows = [json.loads(x) for x in lines[1:]]
    except (IndexError, json.JSONDecodeError):
        return None
    if header != settings.header() or len(rows) != len(questions):
        return None
    if any(r["id"] != q.id for r, q in zip(rows, questions)):
        return None
    return [[Passage(p["id"], p.get("title", ""), p["text"], p.get("doc_id", "")) for p in r["passages"]] for r in rows]


def save_cache(folder: Path, settings: MiningSettings, questions: Sequence[Question],
               negatives: Sequence[Sequence[Passage]]) -> Path:
    path = Path(folder) / CACHE_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(settings.header(), ensure_ascii=False)]
    for i, (q, ns) in enumerate(zip(questions, negatives)):
        ps = [{"id": p.id, "title": p.title, "text": p.text, "doc_id": p.doc_id} for p in ns]
        lines.append(json.dumps({"i": i, "id": q.id, "passages": ps}, ensure_ascii=False))
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


def pool_retriever(pool: str, mode: str, index_dir: str | Path | None = None):
    """(retriever, passages) for `pool`: a corpus file (BM25 over MeCab morphemes built in memory; sparse only)
    or the name of an index (sparse or hybrid with the index's own fusion settings)."""
    p = Path(pool)
    if p.is_file():
        if mode != "sparse":
            raise OdqaError(f"`pool` {pool}: a corpus file is mined with sparse retrieval only; for {mode} mining "
                            f"build an index of it (`odqa index {pool} --name NAME --dense`) and pass `pool` NAME")
        from odqa.config import BM25Config
        from odqa.corpus import load_corpus
        from odqa.retrieval.sparse import SparseRetriever
        from odqa.text.analyzers import make_analyzer
        passages = list(load_corpus(p).passages)
        return SparseRetriever.build(passages, make_analyzer("mecab"), BM25Config()), passages
    from odqa.index.indexing import load_index
    index = load_index(pool, index_dir)
    return index.retriever(mode), index.passages
