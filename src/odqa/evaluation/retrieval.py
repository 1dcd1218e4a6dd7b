"""Retrieval evaluation: recall@k and MRR by gold passage id, or by answer string
when a question's gold passage is not in the index; nDCG@10, MRR@10 and recall@100 over each question's
relevant set (the run and qrels that TREC files hold); BM25 parameter sweeps."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import dataclass
from typing import Callable, Sequence

from odqa.config import BM25Config, with_changes
from odqa.errors import OdqaError
from odqa.metrics import RECALL_KS, mrr, recall_at_k, trec_metrics
from odqa.text.normalize import normalize
from odqa.types import Hit, Question

_WS = re.compile(r"\s+")


def _squash(s: str) -> str:
    return _WS.sub("", s)


@dataclass
class Judge:
    """Decides relevance of a hit for a question against one index."""
    canonical: Callable[[str], str]
    known_ids: set[str]

    def gold_set(self, q: Question) -> set[str]:
        return {self.canonical(g) for g in q.gold_ids} & self.known_ids

    def relevant(self, q: Question, hits: Sequence[Hit]) -> tuple[set[str], str]:
        """The question's relevant passage ids (its qrels) and how they were judged: its gold ids in the index
        ("id"); else the passages retrieved that contain an answer ("answer"); else those of its gold documents
        retrieved ("doc"); else none ("none")."""
        gold = self.gold_set(q)
        if gold:
            return gold, "id"
        answers = [_squash(normalize(a)) for a in q.answers if a.strip()]
        if answers:
            found = {h.passage.id for h in hits if any(a in _squash(normalize(h.passage.text)) for a in answers)}
            return found, "answer"
        gold_docs = set(q.gold_ids)
        in_docs = {h.passage.id for h in hits if h.passage.doc_id in gold_docs}
        return (in_docs, "doc") if in_docs else (set(), "none")

    def first_relevant(self, q: Question, hits: Sequence[Hit]) -> tuple[int | None, str]:
        relevant, mode = self.relevant(q, hits)
        return next((h.rank for h in hits if h.passage.id in relevant), None), mode


def evaluate(search: Callable[[list[str], int], list[list[Hit]]], questions: list[Question], judge: Judge,
             k: int = max(RECALL_KS), batch: int = 64, progress=None) -> dict:
    """Run the questions through `search` and score them. Returns the report dict
    (documented in docs/reference/json-output.md): `metrics`, `per_question`, and `run` (question id ->
    [(passage id, score)], best first) and `qrels` (question id -> relevant passage ids) for TREC files."""
    ranks: list[int | None] = []
    judged: list[tuple[list[int], int]] = []
    per_question = []
    run: dict[str, list[tuple[str, float]]] = {}
    qrels: dict[str, list[str]] = {}
    modes = {"id": 0, "answer": 0, "doc": 0, "none": 0}
    t0 = time.perf_counter()
    for i in range(0, len(questions), batch):
        chunk = questions[i:i + batch]
        results = search([q.question for q in chunk], k)
        for q, hits in zip(chunk, results):
            relevant, mode = judge.relevant(q, hits)
            relevant_ranks = [h.rank for h in hits if h.passage.id in relevant]
            rank = min(relevant_ranks, default=None)
            modes[mode] += 1
            ranks.append(rank)
            judged.append((relevant_ranks, len(relevant)))
            run[q.id] = [(h.passage.id, h.score) for h in hits]
            qrels[q.id] = sorted(relevant)
            per_question.append({"id": q.id, "question": q.question, "rank": rank, "judged_by": mode,
                                 "gold_ids": q.gold_ids, "top": [h.passage.id for h in hits[:5]]})
        if progress:
            progress(len(chunk))
    seconds = time.perf_counter() - t0
    if modes["none"] == len(questions):
        raise OdqaError("no question has a gold id in this index or an answer to match: cannot score")
    report = {"questions": len(questions), **recall_at_k(ranks, [x for x in RECALL_KS if x <= k]),
              "mrr": mrr(ranks), "trec": trec_metrics(judged), "judged_by": modes, "seconds": round(seconds, 3),
              "queries_per_second": round(len(questions) / seconds, 1) if seconds else None}
    return {"metrics": report, "per_question": per_question, "run": run, "qrels": qrels}


# ------------------------------------------------------------------ sweeps
_SPLIT = re.compile(r"[,;]\s*(?=[A-Za-z_][\w.]*\s*=)")


def parse_sweep(spec: Sequence[str]) -> dict[str, list[float]]:
    """`["k1=0.9,1.2,b=0.5,0.75"]` or `["k1=0.9,1.2", "b=0.5"]` -> {"k1": [...], "b": [...]}."""
    grid: dict[str, list[float]] = {}
    for item in spec:
        for part in _SPLIT.split(item.strip()):
            if "=" not in part:
                raise OdqaError(f"sweep '{part}' must look like name=v1,v2,...")
            name, values = part.split("=", 1)
            try:
                grid[name.strip()] = [float(v) for v in values.split(",") if v.strip()]
            except ValueError:
                raise OdqaError(f"sweep '{part}': values must be numbers") from None
            if not grid[name.strip()]:
                raise OdqaError(f"sweep '{part}': no values")
    return grid


def grid_points(grid: dict[str, list[float]]) -> list[dict[str, float]]:
    names = list(grid)
    return [dict(zip(names, combo)) for combo in itertools.product(*(grid[n] for n in names))]


def bm25_variant(base: BM25Config, point: dict[str, float]) -> BM25Config:
    allowed = {"k1", "b", "delta"}
    unknown = set(point) - allowed
    if unknown:
        raise OdqaError(f"cannot sweep {', '.join(sorted(unknown))} for BM25 (sweepable: k1, b, delta)")
    return with_changes(base, **point)


def sweep_bm25(passages, analyzer, base: BM25Config, include_title: bool, questions: list[Question],
               judge: Judge, grid: dict[str, list[float]], metric: str = "recall@1", progress=None) -> dict:
    """Score every grid point on `questions`; corpus and questions are analysed once."""
    from odqa.retrieval.sparse import BM25Scorer, SparseRetriever, passage_text

    doc_terms = analyzer.tokenize([passage_text(p, include_title) for p in passages])
    q_terms = dict(zip((q.question for q in questions), analyzer.tokenize([q.question for q in questions])))
    rows = []
    for point in grid_points(grid):
        cfg = bm25_variant(base, point)
        scorer = BM25Scorer(cfg).fit(doc_terms)

        def search(qs, k, scorer=scorer):
            idx, sc = scorer.top_k([q_terms[q] for q in qs], k)
            return [[Hit(passages[int(i)], float(s), r + 1, "sparse") for r, (i, s) in enumerate(zip(ri, rs)) if s > 0]
                    for ri, rs in zip(idx, sc)]

        metrics = evaluate(search, questions, judge)["metrics"]
        if metric not in metrics:
            raise OdqaError(f"unknown sweep metric '{metric}' (choose from {', '.join(k for k in metrics if k.startswith(('recall', 'mrr')))})")
        rows.append({"params": point, **{k: v for k, v in metrics.items() if k.startswith(("recall", "mrr"))}})
        if progress:
            progress(1)
    best = max(rows, key=lambda r: (r[metric], r["mrr"]))
    return {"metric": metric, "best": best, "rows": rows}


FUSION_SWEEPABLE = ("alpha", "rrf_k", "depth")


def sweep_fusion(hybrid, questions: list[Question], judge: Judge, grid: dict[str, list[float]],
                 metric: str = "recall@1", k: int = 100, progress=None) -> dict:
    """Try fusion settings on questions; both retrievers run once, at the largest depth asked.

    Sweepable: `alpha` (minmax weight), `rrf_k` (RRF), `depth` (candidates taken from each list
    before fusing, which also sets the min-max range); recall@k for k above a row's depth is
    bounded by what that depth keeps."""
    from odqa.retrieval.hybrid import fuse

    unknown = set(grid) - set(FUSION_SWEEPABLE)
    if unknown:
        raise OdqaError(f"cannot sweep {', '.join(sorted(unknown))} for hybrid "
                        f"(sweepable: {', '.join(FUSION_SWEEPABLE)})")
    texts = [q.question for q in questions]
    fetch = max([k, hybrid.cfg.depth] + [int(v) for v in grid.get("depth", [])])
    sparse, dense = [], []
    for i in range(0, len(texts), 64):
        s, d = hybrid.candidates(texts[i:i + 64], fetch)
        sparse += s
        dense += d
    cands = dict(zip(texts, zip(sparse, dense)))
    rows = []
    for point in grid_points(grid):
        point = {n: (int(v) if n in ("rrf_k", "depth") else v) for n, v in point.items()}
        cfg = with_changes(hybrid.cfg, **point)

        def search(qs, kk, cfg=cfg):
            return [fuse(s[:cfg.depth], d[:cfg.depth], cfg, kk) for s, d in (cands[q] for q in qs)]

        metrics = evaluate(search, questions, judge, k=k)["metrics"]
        rows.append({"params": point, **{m: v for m, v in metrics.items() if m.startswith(("recall", "mrr"))}})
        if progress:
            progress(1)
    if metric not in rows[0]:
        raise OdqaError(f"unknown sweep metric '{metric}'")
    best = max(rows, key=lambda r: (r[metric], r["mrr"]))
    return {"metric": metric, "best": best, "rows": rows}
