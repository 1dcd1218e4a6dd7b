"""Training data the tasks share: the pool of the training questions' gold passages, and the passages held out
of it, whole articles at a time, to choose a checkpoint (the dense retriever's and the reranker's training)."""

from __future__ import annotations

import random

from odqa.errors import OdqaError
from odqa.types import Passage, Question


def training_pool(questions: list[Question]) -> list[Passage]:
    seen: dict[str, Passage] = {}
    for q in questions:
        if q.context and q.gold_ids and q.gold_ids[0] not in seen:
            seen[q.gold_ids[0]] = Passage(q.gold_ids[0], q.title, q.context)
    if not seen:
        raise OdqaError("training questions carry no passage text: use SQuAD/KorQuAD JSON with contexts")
    return list(seen.values())


def holdout_passages(pool: list[Passage], share: float, seed: int) -> set[str]:
    """Ids of about `share` of the pool's passages, whole articles (titles) at a time, so that no held-out
    question's article was trained on, as with new questions on new articles; a pool of one article is
    held out by passage."""
    groups: dict[str, list[str]] = {}
    for p in pool:
        groups.setdefault(p.title, []).append(p.id)
    if len(groups) < 2:
        groups = {p.id: [p.id] for p in pool}
    keys = list(groups)
    random.Random(seed).shuffle(keys)
    target, held = int(len(pool) * share), set()
    for k in keys:
        if len(held) >= target:
            break
        held.update(groups[k])
    return held
