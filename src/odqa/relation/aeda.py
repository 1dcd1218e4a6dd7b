"""AEDA augmentation (Karimi et al. 2021, "An Easier Data Augmentation"): random punctuation marks
inserted between the words of a sentence.

`aeda` inserts between 1 and max(1, ratio x words) marks (each drawn from `marks`, followed by a space)
at distinct word starts (before the first word too), never inside an entity: a word start strictly
within the subject's or the object's span is not a candidate, so every entity keeps its characters, and
its offsets are shifted by the text inserted before it. `augment_examples` adds `copies` augmented
copies of every example (the originals kept, in order; copies follow), deterministic per seed: the
training set grows, the label distribution does not change.
"""

from __future__ import annotations

import random
import re
from dataclasses import replace

from odqa.errors import OdqaError
from odqa.relation.data import Entity, REExample

AEDA_MARKS = ".;?:!,"
_WORD = re.compile(r"\S+")


def _inside(pos: int, e: Entity) -> bool:
    return e.start < pos <= e.end


def insertion_points(sentence: str, entities: tuple[Entity, ...]) -> list[int]:
    """Character offsets where a mark may go: each word's start, unless it lies inside an entity."""
    return [m.start() for m in _WORD.finditer(sentence) if not any(_inside(m.start(), e) for e in entities)]


def aeda(ex: REExample, rng: random.Random, ratio: float = 0.3, marks: str = AEDA_MARKS) -> REExample:
    """`ex` with random punctuation inserted between its words (entity offsets shifted, words unchanged)."""
    points = insertion_points(ex.sentence, (ex.subject, ex.object))
    if not points or not marks:
        return ex
    words = len(_WORD.findall(ex.sentence))
    n = min(len(points), rng.randint(1, max(1, int(ratio * words))))
    chosen = sorted(rng.sample(points, n))
    inserts = [(p, rng.choice(marks) + " ") for p in chosen]
    out, last = [], 0
    for p, s in inserts:
        out += [ex.sentence[last:p], s]
        last = p
    out.append(ex.sentence[last:])

    def shift(e: Entity) -> Entity:
        d = sum(len(s) for p, s in inserts if p <= e.start)
        return replace(e, start=e.start + d, end=e.end + d)
    return replace(ex, sentence="".join(out), subject=shift(ex.subject), object=shift(ex.object))


def augment_examples(examples: list[REExample], copies: int = 1, ratio: float = 0.3, marks: str = AEDA_MARKS,
                     seed: int = 42) -> list[REExample]:
    """The examples followed by `copies` AEDA copies of each (ids suffixed `-aeda1`, ...)."""
    if copies < 0 or not 0 < ratio <= 1:
        raise OdqaError(f"AEDA needs copies >= 0 and 0 < ratio <= 1 (got copies {copies}, ratio {ratio})")
    rng = random.Random(seed)
    out = list(examples)
    for c in range(1, copies + 1):
        out += [replace(aeda(ex, rng, ratio, marks), id=f"{ex.id}-aeda{c}") for ex in examples]
    return out
