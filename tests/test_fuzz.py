"""Property tests (hypothesis): odqa never crashes on arbitrary input, it raises its own errors.

Every test states its examples (`max_examples`) and deadline explicitly, sized to take a few
seconds; no example database is written (`database=None`), so CI runs are the same every time
(`derandomize=True`).
"""

import json
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from odqa.errors import ConfigError, OdqaError


def fuzz(examples: int, deadline_ms: int | None = 2000):
    return settings(max_examples=examples, deadline=deadline_ms, database=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


HANGUL = st.characters(min_codepoint=0xAC00, max_codepoint=0xD7A3)
KOREANISH = st.text(st.one_of(HANGUL, st.sampled_from(" .,!?\n0123456789abcXYZ"), st.characters()), max_size=120)


# ------------------------------------------------------------------ analyzers
@pytest.fixture(scope="module")
def analyzers():
    """The four index analyzers (and MeCab's decompounding modes), made once; Kiwi and MeCab loaded before
    any timed example."""
    from odqa.text.analyzers import make_analyzer
    from odqa.text.morphs import morphemes
    morphemes(["가"], "kiwi")
    out = [make_analyzer(name, workers=1) for name in ("mecab", "kiwi", "whitespace", "char-ngram")] + [
        make_analyzer("mecab", workers=1, decompound=mode) for mode in ("mixed", "discard")]
    for an in out:
        an("가")                       # this thread's MeCab tagger made before the first timed example
    return out


def check_offsets(text, morphs):
    from odqa.text.pieces import clean
    text = clean(text)                 # lone surrogates are read as U+FFFD (same offsets)
    assert all(0 <= m.start < m.end <= len(text) and text[m.start:m.end] == m.form for m in morphs)
    assert all(a.end <= b.start for a, b in zip(morphs, morphs[1:]))


@fuzz(150)
@given(st.text(st.characters(), max_size=200))                   # surrogates included
def test_morphemes_of_any_string_lie_inside_it_in_order(analyzers, text):
    from odqa.text.morphs import morphemes
    for analyzer in ("mecab", "kiwi"):
        check_offsets(text, morphemes([text], analyzer)[0])


@fuzz(40)
@given(st.lists(KOREANISH, min_size=1, max_size=60).map(" ".join))
def test_morphemes_of_long_strings_read_in_pieces_stay_inside_and_in_order(analyzers, text):
    from odqa.text import pieces
    from odqa.text.morphs import morphemes
    text = (text + " ") * (pieces.PIECE_CHARS // max(1, len(text)) + 2)      # longer than one piece
    check_offsets(text, morphemes([text])[0])


@fuzz(150)
@given(st.text(max_size=300), st.integers(1, 40))
def test_pieces_cover_any_string_in_order_within_the_bound(text, limit):
    from odqa.text.pieces import spans
    sp = spans(text, limit)
    assert sp[0][0] == 0 and sp[-1][1] == len(text) and all(a[1] == b[0] for a, b in zip(sp, sp[1:]))
    assert all(e - s <= limit for s, e in sp) and (len(sp) == 1 or all(e > s for s, e in sp))


@fuzz(100)
@given(st.lists(st.text(st.characters(), max_size=80), max_size=5))
def test_index_analyzers_take_any_strings(analyzers, texts):
    for an in analyzers:
        out = an.tokenize(texts)
        assert len(out) == len(texts) and all(isinstance(t, str) and t for terms in out for t in terms)


# ------------------------------------------------------------------ corpus and question readers
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
                    lambda kids: st.lists(kids, max_size=4) | st.dictionaries(
                        st.sampled_from(["id", "text", "title", "data", "paragraphs", "context", "qas", "question",
                                         "answers", "answer_start", "gold_ids", "document_id", "version"])
                        | st.text(max_size=8), kids, max_size=5), max_leaves=25)


def shaped(fields: dict) -> st.SearchStrategy:
    """Objects with some of `fields` (each a strategy), or any JSON in their place."""
    return JSON | st.fixed_dictionaries({}, optional=fields)


ANSWERS = JSON | st.lists(JSON | shaped({"text": JSON, "answer_start": JSON}), max_size=3) | shaped(
    {"text": JSON | st.lists(JSON, max_size=2), "answer_start": JSON | st.lists(JSON, max_size=2)})
QA = shaped({"question": JSON | st.text(max_size=5), "id": JSON, "answers": ANSWERS})
SQUAD = shaped({"version": JSON, "data": JSON | st.lists(shaped({"title": JSON, "paragraphs": JSON | st.lists(
    shaped({"context": JSON | st.text(max_size=10), "document_id": JSON, "qas": JSON | st.lists(QA, max_size=3)}),
    max_size=3)}), max_size=3)})
ROW = shaped({"id": JSON, "document_id": JSON, "doc_id": JSON, "title": JSON, "text": JSON | st.text(max_size=10),
              "question": JSON, "answers": ANSWERS, "gold_ids": JSON, "context": JSON})
WIKI = st.dictionaries(st.text(max_size=4), ROW, max_size=3)
DOCUMENTS = st.one_of(JSON, SQUAD, WIKI, st.lists(ROW, max_size=4))


def read_everything(data: bytes, suffix: str):
    """load_corpus (every format) and load_questions on a file holding `data`: only OdqaError may come out."""
    from odqa.corpus import FORMATS, load_corpus, load_questions
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / f"input{suffix}"
        f.write_bytes(data)
        for call in [lambda: load_questions(f)] + [lambda fmt=fmt: load_corpus(f, fmt) for fmt in FORMATS]:
            try:
                call()
            except OdqaError:
                pass


@fuzz(150)
@given(st.binary(max_size=300), st.sampled_from([".jsonl", ".json", ".txt", ""]))
def test_random_bytes_give_only_odqa_errors(data, suffix):
    read_everything(data, suffix)


@fuzz(200)
@given(DOCUMENTS, st.sampled_from([".jsonl", ".json"]), st.booleans())
def test_random_json_gives_only_odqa_errors(value, suffix, lines):
    rows = value if lines and isinstance(value, list) else [value]
    read_everything("".join(json.dumps(v, ensure_ascii=False) + "\n" for v in rows).encode("utf-8"), suffix)


# ------------------------------------------------------------------ reader post-processing, particles
@st.composite
def windows(draw):
    passage = draw(st.text(min_size=1, max_size=80))
    cuts = sorted(draw(st.sets(st.integers(0, len(passage)), min_size=2, max_size=12)))
    offsets = [None] + [(a, b) for a, b in zip(cuts, cuts[1:])] + [None]     # CLS, context tokens, SEP
    n = len(offsets)
    logits = st.lists(st.floats(-30, 30, allow_nan=False, width=32), min_size=n, max_size=n)
    return passage, offsets, np.array(draw(logits)), np.array(draw(logits))


@fuzz(200)
@given(st.lists(windows(), min_size=1, max_size=3), st.integers(1, 20), st.integers(1, 10),
       st.floats(0, 1))
def test_post_processed_spans_lie_inside_their_passage(wins, n_best, max_tokens, retrieval_weight):
    from odqa.reader.postprocess import default_postprocessor, window_spans
    from odqa.types import Answer
    passages = {f"p{i}": w[0] for i, w in enumerate(wins)}
    spans = [Answer(passage[s:e], f"p{i}", s, e, score, retrieval_score=float(i))
             for i, (passage, offsets, sl, el) in enumerate(wins)
             for score, s, e in window_spans(sl, el, offsets, n_best, max_tokens)]
    out = default_postprocessor(n_best, retrieval_weight)(spans, passages)
    assert len(out) <= n_best and sum(s.probability for s in out) <= 1 + 1e-6
    for s in out:
        assert 0 <= s.start <= s.end <= len(passages[s.passage_id]) and s.text == passages[s.passage_id][s.start:s.end]


@pytest.fixture(scope="module")
def rules():
    from odqa.text.particles import ParticleRules, Rule
    keys = [("JKS", "이"), ("JKS", "가"), ("JX", "은"), ("JX", "는"), ("JKO", "을"), ("JKO", "를"), ("JKB", "에"),
            ("JKB", "에서"), ("JKB", "으로"), ("JKB", "로"), ("JKG", "의"), ("JX", "도"), ("SF", "."), ("VCP", "이")]
    return ParticleRules({k: Rule(*k) for k in keys})


@fuzz(200)
@given(st.text(st.one_of(HANGUL, st.sampled_from(list("이가은는을를에서으로의도. ,")), st.characters()), max_size=60),
       st.data())
def test_particle_stripping_keeps_a_nonempty_prefix_of_the_span(rules, context, data):
    start = data.draw(st.integers(0, len(context)))
    end = data.draw(st.integers(start, len(context)))
    s, e = rules.apply(context, start, end)
    assert s == start and start <= e <= end                       # a prefix of the span, never longer
    assert e > start or end == start                              # never emptied
    assert context[start:end].startswith(rules.apply_text(context, start, end))


# ------------------------------------------------------------------ the config loader
KEYS = st.sampled_from(["corpus.format", "corpus.chunk_size", "corpus.chunk_overlap", "corpus.encoding",
                        "analyzer.name", "analyzer.pos", "bm25.k1", "bm25.b", "bm25.method", "dense.enabled",
                        "dense.max_length", "hybrid.alpha", "include_title", "backend", "lr", "epochs", "corpus",
                        "bm25", "x.y.z", ""]) | st.text(max_size=12)
VALUES = st.sampled_from(["1", "0", "-1", "0.5", "true", "null", "[]", "{}", "mecab", "cp949", "nan", "1e309",
                          "[NN, VV]", "'", "a: b", ""]) | st.text(max_size=12)


@fuzz(200)
@given(st.lists(st.tuples(KEYS, VALUES).map("=".join) | st.text(max_size=15), max_size=4))
def test_overrides_give_a_config_or_a_config_error(overrides):
    from odqa.config import IndexConfig, load_config
    from odqa.training import TrainConfig
    for cls in (IndexConfig, TrainConfig):
        try:
            load_config(None, overrides, cls)
        except ConfigError:
            pass


@fuzz(150)
@given(st.one_of(JSON.map(lambda v: json.dumps(v).encode()), st.binary(max_size=200),
                 st.dictionaries(KEYS, st.dictionaries(KEYS, JSON, max_size=3) | JSON, max_size=4)
                 .map(lambda d: json.dumps(d).encode())))
def test_config_files_give_a_config_or_a_config_error(data):
    from odqa.config import IndexConfig, load_config
    with tempfile.TemporaryDirectory() as tmp:
        f = Path(tmp) / "c.yaml"
        f.write_bytes(data)
        try:
            load_config(f, [], IndexConfig)
        except ConfigError:
            pass


# ------------------------------------------------------------------ the CLI argument parser
def _command_options():
    """(command path, its option names) for every odqa command, from the typer app."""
    import click
    import typer

    from odqa.cli.main import app
    out = []

    def walk(cmd, path):
        opts = [o for p in cmd.params for o in getattr(p, "opts", []) if o.startswith("-")]
        out.append((path, opts))
        if isinstance(cmd, click.Group):
            for name, sub in cmd.commands.items():
                walk(sub, path + [name])
    walk(typer.main.get_command(app), [])
    return out


COMMANDS = _command_options()
HEAVY = ["odqa.api.indexes.build_index", "odqa.api.indexes.load_index", "odqa.api.indexes.evaluate_retrieval",
         "odqa.api.indexes.sweep_retrieval", "odqa.api.indexes.QuestionFile", "odqa.api.pipeline.Pipeline.from_index",
         "odqa.api.pipeline.Pipeline.from_reader", "odqa.api.evaluation.evaluate_answers", "odqa.api.evaluation.predict",
         "odqa.api.demo.run_demo", "odqa.api.models.pack_model", "odqa.api.ensemble.ensemble_nbest",
         "odqa.index.elastic.client.ESConnection.resolve"] + [
    f"odqa.api.training.{n}" for n in ("train_reader", "train_retriever", "train_particles", "pretrain", "train_re",
                                       "evaluate_re", "predict_re", "export_re_text")]


@pytest.fixture(scope="module")
def stubbed():
    """Everything that would load data or models raises a usage-style OdqaError (exit 2) instead."""
    def stub(*a, **k):
        raise OdqaError("stubbed: the arguments parsed and the command started its work")
    with pytest.MonkeyPatch.context() as mp:
        for target in HEAVY:
            mp.setattr(target, stub)
        yield


@st.composite
def argvs(draw):
    path, opts = draw(st.sampled_from(COMMANDS))
    token = st.sampled_from(opts) if opts else st.nothing()
    value = st.sampled_from(["0", "-1", "3", "x", "질문", "k1=0.5", "bm25.k1=abc", "--", "-", "."]) | st.text(max_size=8)
    rest = draw(st.lists(token | value | st.sampled_from(["--help", "--no-such-option", "-h", "--version"]),
                         max_size=6))
    return path + rest


@fuzz(250, deadline_ms=None)
@given(argvs())
def test_random_argv_exits_0_or_2_without_a_traceback(stubbed, tmp_path, argv):
    from tests.test_cli import odqa
    p = odqa(*argv, cwd=tmp_path, check=False)        # any exception but SystemExit fails the test
    assert p.returncode in (0, 2), (argv, p.stderr)
    assert "Traceback" not in p.stderr
