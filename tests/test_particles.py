import json

import pytest

from odqa.errors import OdqaError
from odqa.text.particles import Example, ParticleRules
from odqa.types import Question

CTX = ("조선의 제4대 임금 세종대왕이 훈민정음을 창제하였다. 이순신에게는 거북선이 있었다. "
       "한라산에서 가장 높은 곳은 1,947 m이며 정상에는 백록담이 있다.")


def ex(pred: str, gold: str, context: str = CTX) -> Example:
    s = context.index(pred)
    return Example(context, s, s + len(pred), [gold])


def strip(rules: ParticleRules, pred: str, context: str = CTX) -> str:
    s = context.index(pred)
    return rules.apply_text(context, s, s + len(pred))


HAND = [ex("세종대왕이", "세종대왕"), ex("이순신에게는", "이순신"), ex("한라산에서", "한라산"),
        ex("1,947 m이며", "1,947 m"), ex("백록담이", "백록담"), ex("훈민정음을", "훈민정음")]


def test_learns_trailing_particles_and_strips_them():
    rules = ParticleRules.learn(HAND)
    keys = set(rules.rules)
    assert {("JKS", "이"), ("JKO", "을"), ("JKB", "에서"), ("JKB", "에게"), ("JX", "는"), ("VCP", "이"),
            ("EC", "며")} <= keys
    assert not any(tag.startswith(("NN", "SN", "SL")) for tag, _ in keys)   # content morphemes never
    for e in HAND:
        assert rules.apply_text(e.context, e.pred_start, e.pred_end) == e.gold_texts[0]
    assert rules.rules[("JKS", "이")].fixes == 2 and rules.rules[("JKS", "이")].breaks == 0
    assert rules.learned_from["exact_before"] == 0 and rules.learned_from["exact_after"] == len(HAND)
    # a span that is already right stays as it is
    assert strip(rules, "세종대왕") == "세종대왕" and strip(rules, "거북선") == "거북선"


def test_chained_stripping_needs_every_rule():
    only_topic = ParticleRules.learn([ex("조선의 제4대 임금 세종대왕이", "조선의 제4대 임금 세종대왕")]
                                     + [Example("그는 학생이다", 0, 2, ["그"])])
    assert ("JX", "는") in only_topic and ("JKB", "에게") not in only_topic
    assert strip(only_topic, "이순신에게는") == "이순신에게"     # stops at the unlearned 에게
    both = ParticleRules.learn([ex("이순신에게는", "이순신")])
    assert strip(both, "이순신에게는") == "이순신"


def test_never_strips_to_empty_and_ignores_bad_spans():
    rules = ParticleRules.learn(HAND)
    s = CTX.index("에서")
    assert rules.apply(CTX, s, s + 2) == (s, s + 2)            # the span is only a particle
    assert rules.apply(CTX, 5, 5) == (5, 5)
    e = CTX.index("세종대왕이") + 3                               # ends inside a morpheme: no strip
    assert rules.apply(CTX, e - 3, e) == (e - 3, e)


def test_tags_with_the_surrounding_context():
    rules = ParticleRules.learn([Example("세종대왕이 만들었다", 0, 5, ["세종대왕"])])
    assert set(rules.rules) == {("JKS", "이")}
    assert rules.apply("세종대왕이 만들었다", 0, 5) == (0, 4)
    # in 세종대왕이었다 the 이 is the copula (VCP), not the subject particle the rule is about;
    # tagging the span text alone would have called it JKS and stripped it
    assert rules.apply("세종대왕이었다", 0, 5) == (0, 5)


def test_a_particle_gold_answers_end_with_is_not_learned():
    ctx = "그 배는 부산으로 향했다. 그는 두 번째로 도착했다. 그녀는 세 번째로 도착했다. 그들은 네 번째로 도착했다."
    examples = [ex("부산으로", "부산", ctx), ex("부산으로", "부산", ctx)]            # 으로 would fix 2
    examples += [ex(w, w, ctx) for w in ("두 번째로", "세 번째로", "네 번째로")]     # 로 is part of these golds
    examples += [Example("그는 서울로 갔다", 3, 6, ["서울"])]                       # 로 would fix 1, break 3
    rules = ParticleRules.learn(examples)
    assert ("JKB", "으로") in rules and ("JKB", "로") not in rules
    assert strip(rules, "두 번째로", ctx) == "두 번째로"
    assert rules.learned_from["candidates"] == 2
    # with more evidence for stripping it than against, the same rule is learned
    more = examples + [Example("그는 서울로 갔다", 3, 6, ["서울"])] * 3
    learned = ParticleRules.learn(more)
    assert ("JKB", "로") in learned
    assert (learned.rules[("JKB", "로")].fixes, learned.rules[("JKB", "로")].breaks) == (4, 3)


def test_from_gold_synthesises_examples_and_learns():
    qs = [Question("q1", "누가?", ["세종대왕"], context=CTX, answer_starts=[CTX.index("세종대왕")]),
          Question("q2", "누구?", ["이순신"], context=CTX),                               # no start: found
          Question("q3", "높이?", ["1,947 m"], context=CTX),
          {"context": "한라산에서 가장 높은 곳은 백록담이다.", "answers": [{"text": "한라산", "answer_start": 0}]},
          Question("q5", "없음", ["없는 답"], context=CTX)]                                # not in context
    examples = ParticleRules.from_gold(qs)
    spans = [e.context[e.pred_start:e.pred_end] for e in examples]
    assert spans == ["세종대왕", "세종대왕이", "이순신", "이순신에게", "이순신에게는", "1,947 m", "1,947 m이",
                     "1,947 m이며", "한라산", "한라산에서"]
    rules = ParticleRules.learn(examples)
    assert {("JKS", "이"), ("JKB", "에게"), ("JX", "는"), ("JKB", "에서")} <= set(rules.rules)
    assert strip(rules, "백록담이") == "백록담" and strip(rules, "이순신에게는") == "이순신"


def test_save_load_roundtrip_and_errors(tmp_path):
    rules = ParticleRules.learn(HAND)
    path = rules.save(tmp_path / "reader" / "particles.json")
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["format"] == "odqa-particle-rules" and data["version"] == 1
    assert data["analyzer"]["name"] == "mecab" and data["analyzer"]["version"].startswith("python-mecab-ko")
    assert {"tag", "form", "fixes", "breaks", "seen"} == set(data["rules"][0])
    back = ParticleRules.load(path)
    assert back.rules == rules.rules and back.max_strip == rules.max_strip and not back.stale
    assert strip(back, "이순신에게는") == "이순신"

    bad = tmp_path / "bad.json"
    bad.write_text("{not json", encoding="utf-8")
    with pytest.raises(OdqaError) as e:
        ParticleRules.load(bad)
    assert str(e.value).startswith(f"{bad}: ") and "\n" not in str(e.value)
    bad.write_text(json.dumps({**data, "rules": [{"tag": "JKS"}]}), encoding="utf-8")
    with pytest.raises(OdqaError, match="rule 0 needs"):
        ParticleRules.load(bad)
    bad.write_text(json.dumps({**data, "format": "other"}), encoding="utf-8")
    with pytest.raises(OdqaError, match="format"):
        ParticleRules.load(bad)
    with pytest.raises(OdqaError, match="not found"):
        ParticleRules.load(tmp_path / "missing.json")
    stale = {**data, "analyzer": {"name": "mecab", "version": "python-mecab-ko-0.0"}}
    bad.write_text(json.dumps(stale), encoding="utf-8")
    assert "python-mecab-ko-0.0" in ParticleRules.load(bad).stale


def test_empty_rules_are_a_no_op_and_kiwi_works():
    assert ParticleRules().apply(CTX, 0, 10) == (0, 10)
    rules = ParticleRules.learn([ex("한라산에서", "한라산"), ex("훈민정음을", "훈민정음")], analyzer="kiwi")
    assert rules.analyzer == "kiwi" and ("JKB", "에서") in rules
    assert strip(rules, "한라산에서") == "한라산"


def test_exact_match_rates_before_and_after_stripping():
    rules = ParticleRules.learn(HAND)
    assert rules.exact_match_rates(HAND) == (0.0, 100.0)
    mixed = HAND[:2] + [ex("거북선", "거북선"), ex("세종대왕", "임금")]
    assert rules.exact_match_rates(mixed) == (25.0, 75.0)
    assert ParticleRules().exact_match_rates([]) == (0.0, 0.0)
