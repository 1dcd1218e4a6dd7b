"""AEDA augmentation of KLUE-RE sentences: entity spans keep their words, marks stay within bounds."""

from __future__ import annotations

import random

import pytest

from odqa.errors import OdqaError
from odqa.relation.aeda import AEDA_MARKS, aeda, augment_examples
from odqa.relation.data import Entity, REExample


def _example(i: int = 0) -> REExample:
    s = "조선 의 이순신 장군은 1545년 서울 건천동 에서 태어나 임진왜란 때 거북선 으로 왜군을 물리쳤다 ."
    subj = s.index("이순신")
    obj = s.index("서울 건천동")
    return REExample(f"ex{i}", s, Entity("이순신", subj, subj + 2, "PER"),
                     Entity("서울 건천동", obj, obj + len("서울 건천동") - 1, "LOC"), "per:place_of_birth")


def _word(sentence: str, e: Entity) -> str:
    return sentence[e.start:e.end + 1]


@pytest.mark.parametrize("seed", range(30))
def test_spans_point_at_the_same_words_and_marks_within_bounds(seed):
    ex = _example()
    out = aeda(ex, random.Random(seed), ratio=0.3)
    assert _word(out.sentence, out.subject) == "이순신"
    assert _word(out.sentence, out.object) == "서울 건천동"          # a word start inside an entity gets no mark
    words = len(ex.sentence.split())
    inserted = len(out.sentence.split()) - words
    assert 1 <= inserted <= max(1, int(0.3 * words))
    assert all(len(t) == 1 and t in AEDA_MARKS for t in out.sentence.split() if t not in ex.sentence.split())
    # removing the inserted marks gives the sentence back
    kept = [t for t in out.sentence.split()]
    for t in ex.sentence.split():
        kept.remove(t)
    assert all(t in AEDA_MARKS for t in kept)
    assert out.label == ex.label


def test_augment_examples_is_deterministic_per_seed_and_keeps_originals():
    data = [_example(i) for i in range(5)]
    a = augment_examples(data, copies=2, seed=7)
    b = augment_examples(data, copies=2, seed=7)
    c = augment_examples(data, copies=2, seed=8)
    assert a == b and a != c
    assert a[:5] == data and len(a) == 15
    assert [x.id for x in a[5:10]] == [f"ex{i}-aeda1" for i in range(5)]
    with pytest.raises(OdqaError):
        augment_examples(data, ratio=0)


def test_sentence_without_free_word_start_is_unchanged():
    s = "서울대학교"
    ex = REExample("x", s, Entity("서울", 0, 1, "ORG"), Entity("대학교", 2, 4, "ORG"))
    # the only word start is 0 (before the subject): a mark may go there and shift both entities
    out = aeda(ex, random.Random(0))
    assert _word(out.sentence, out.subject) == "서울" and _word(out.sentence, out.object) == "대학교"
