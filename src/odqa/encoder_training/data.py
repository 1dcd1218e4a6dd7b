"""The retriever's training data: BM25 hard negatives mined from the training pool."""

from __future__ import annotations

import random

from odqa.types import Passage, Question


def mine_negatives(questions: list[Question], pool: list[Passage], depth: int, seed: int) -> list[list[str]]:
    """For each question, ids of top BM25 passages of the pool that are not its gold passage."""
    from odqa.config import BM25Config
    from odqa.retrieval.sparse import SparseRetriever
    from odqa.text.analyzers import make_analyzer
    sparse = SparseRetriever.build(pool, make_analyzer("mecab"), BM25Config(), include_title=False)
    rng = random.Random(seed)
    out = []
    for i in range(0, len(questions), 256):
        chunk = questions[i:i + 256]
        for q, hits in zip(chunk, sparse.search([q.question for q in chunk], depth + 1)):
            negs = [h.passage.id for h in hits if h.passage.id not in q.gold_ids][:depth]
            if not negs:
                negs = [rng.choice(pool).id]
            out.append(negs)
    return out
