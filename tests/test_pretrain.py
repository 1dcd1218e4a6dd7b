import json
from pathlib import Path

import numpy as np
import pytest

from odqa.errors import OdqaError
from odqa.pretraining.masking import REPLACE, mask_tokens, mean_span_length, sample_spans, span_length_probs
from odqa.pretraining.units import morpheme_segments, token_units, word_segments
from tests.conftest import PASSAGES, write_jsonl
from tests.test_cli import odqa

MASK, VOCAB, SPECIALS = 4, 6000, [0, 1, 2, 3, 4]


def _sequence(n: int = 1200, pad: int = 40):
    """[CLS] tokens... [SEP] [PAD]*pad with distinct ids; special mask covers specials and padding."""
    ids = np.concatenate([[2], np.arange(100, 100 + n), [3], np.zeros(pad, dtype=np.int64)])
    special = np.zeros(ids.size, bool)
    special[0] = special[n + 1] = True
    special[n + 2:] = True
    return ids, special


def test_span_lengths_follow_the_truncated_geometric():
    probs = span_length_probs(0.2, 10)
    assert probs.size == 10 and np.isclose(probs.sum(), 1) and np.all(np.diff(probs) < 0)
    assert round(mean_span_length(0.2, 10), 2) == 3.80 and round(mean_span_length(0.3, 10), 2) == 3.04
    _, special = _sequence()
    for p in (0.2, 0.3):
        lengths = np.array([b - a for seed in range(150) for span in sample_spans(special, seed=seed, span_p=p)
                            for a, b in span])
        spans = [len(span) for seed in range(150) for span in sample_spans(special, seed=seed, span_p=p)]
        assert np.all(lengths == 1) and max(spans) <= 10 and min(spans) >= 1
        # spans are sometimes cut short by an earlier span or the budget, so slightly below the target
        assert 0.9 * mean_span_length(p) <= np.mean(spans) <= 1.01 * mean_span_length(p), (p, np.mean(spans))
        assert abs(np.mean(np.array(spans) == 1) - span_length_probs(p)[0]) < 0.04


@pytest.mark.parametrize("objective", ["span", "token"])
def test_budget_specials_and_replacement_proportions(objective):
    ids, special = _sequence()
    maskable = int((~special).sum())
    kinds = np.zeros(3)
    for seed in range(200):
        x, y = mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, seed=seed, objective=objective,
                           special_ids=SPECIALS)
        chosen = y != -100
        assert chosen.sum() == round(0.15 * maskable)                    # exact budget with one-token units
        assert not chosen[special].any() and np.array_equal(x[special], ids[special])
        assert np.array_equal(y[chosen], ids[chosen]) and np.array_equal(x[~chosen], ids[~chosen])
        swapped = chosen & (x != MASK) & (x != ids)
        assert not np.isin(x[swapped], SPECIALS).any() and np.all(x[swapped] < VOCAB)
        kinds += [(x[chosen] == MASK).sum(), swapped.sum(), (chosen & (x == ids)).sum()]
        if objective == "token":
            assert len(sample_spans(special, seed=seed, objective="token")) == chosen.sum()
    share = kinds / kinds.sum()
    assert np.allclose(share, REPLACE, atol=0.02), share


def test_sampler_is_pure_and_seeded():
    ids, special = _sequence(300)
    a = mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, seed=[7, 1, 3])
    b = mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, seed=[7, 1, 3])
    c = mask_tokens(ids, special, mask_id=MASK, vocab_size=VOCAB, seed=[7, 1, 4])
    assert all(np.array_equal(p, q) for p, q in zip(a, b)) and not np.array_equal(a[1], c[1])
    nothing = mask_tokens(ids[:2], [True, True], mask_id=MASK, vocab_size=VOCAB, seed=0)
    assert np.all(nothing[1] == -100)


@pytest.mark.parametrize("objective", ["span", "token"])
def test_aligned_masking_never_splits_a_unit(objective):
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 5, 400)                       # words of 1-4 tokens
    units = np.repeat(np.arange(sizes.size), sizes)
    n = units.size
    ids = np.arange(100, 100 + n)
    special = np.zeros(n, bool)
    special[0] = special[-1] = True
    budgets = []
    for seed in range(60):
        x, y = mask_tokens(ids, special, mask_id=MASK, vocab_size=10**9, seed=seed, objective=objective,
                           units=units)   # a random token equal to the original is (nearly) impossible here
        chosen = y != -100
        for u in np.unique(units[~special]):
            part = chosen[(units == u) & ~special]
            assert part.all() or not part.any(), f"unit {u} split"
        budgets.append(chosen.sum() / (~special).sum())
        if objective == "span":     # replacement per span: all tokens of a unit get the same treatment
            for u in np.unique(units[chosen]):
                kinds = {("mask" if v == MASK else "keep" if v == o else "rand")
                         for v, o in zip(x[(units == u) & chosen], ids[(units == u) & chosen])}
                assert len(kinds) == 1
    assert abs(np.mean(budgets) - 0.15) < 0.005 and min(budgets) > 0.14 and max(budgets) < 0.16


def test_token_units_from_offsets_words_and_morphemes():
    from odqa.text.morphs import morphemes
    text = "한라산은 1,947 m이며"
    # XLM-R-like pieces: ▁한 라 산 은 ▁1,9 47 ▁m 이며  (a piece may carry the space before it)
    offsets = [(0, 0), (0, 1), (1, 2), (2, 3), (3, 4), (4, 8), (8, 10), (10, 12), (12, 14), (0, 0)]
    special = [True] + [False] * 8 + [True]
    words = token_units(offsets, special, word_segments(text))
    assert words.tolist() == [-1, 0, 0, 0, 0, 1, 1, 2, 2, -1]
    morphs = morphemes([text])[0]
    assert [(m.form, m.tag) for m in morphs][:3] == [("한라산", "NNP"), ("은", "JX"), ("1", "SN")]
    units = token_units(offsets, special, morpheme_segments(text, morphs))
    # 한라산 | 은 | 1 , 947 (▁1,9 + 47 cross morphemes: one unit) | m | 이며 (이 + 며 in one piece)
    assert units.tolist() == [-1, 0, 0, 0, 1, 2, 2, 3, 4, -1]
    lone = token_units([(0, 1), (1, 4)], [False, False], word_segments(" 한라산"))   # a lone ▁ joins its word
    assert lone.tolist() == [0, 0]


def test_units_from_a_real_tokenizer(tmp_path, tiny):
    from odqa.pretraining.features import build_chunks
    from odqa.pretraining.config import PretrainConfig
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(tiny)
    texts = [p["text"] for p in PASSAGES[:5]]
    for align in ("word", "morpheme"):
        chunks = build_chunks(texts, tok, PretrainConfig(max_length=40, align=align), quiet=True)
        assert all(len(c.ids) <= 40 for c in chunks) and len(chunks) >= 3    # sentences packed across passages
        assert sum(int((~c.special).sum()) for c in chunks) == sum(len(tok(t, add_special_tokens=False)["input_ids"])
                                                                   for t in texts)   # nothing lost
        for c in chunks:
            assert np.all(c.units[c.special] == -1) and np.all(c.units[~c.special] >= 0)
            assert np.all(np.diff(c.units[~c.special]) >= 0)
    plain = build_chunks(texts, tok, PretrainConfig(max_length=40), quiet=True)
    assert plain[0].units is None and plain[0].special[0] and plain[0].special[-1]


def make_pretrained_tiny(tmp_path: Path, steps: int = 2, **cfg) -> Path:
    """A tiny backbone pretrained for a few steps (for tests of commands that take --backbone)."""
    from odqa.api.training import PretrainRequest, pretrain
    from odqa.training import TrainConfig
    from tests.tiny_model import make_tiny_backbone
    tiny = make_tiny_backbone(tmp_path / "tiny-base")
    corpus = write_jsonl(tmp_path / "pretrain-corpus.jsonl", PASSAGES)
    out = tmp_path / "pretrained"
    pretrain(PretrainRequest(corpus=corpus, out=out, backbone=str(tiny), max_length=32, **cfg,
                             train=TrainConfig(max_steps=steps, batch_size=2, lr=1e-3)))
    return out


def test_pretrain_output_is_a_backbone(tmp_path, corpus_file, tiny):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForMaskedLM

    from odqa.api.training import PretrainRequest, PretrainResult, pretrain
    from odqa.corpus import file_sha256
    from odqa.modeling.backbone import load_backbone, wants_e5_prefixes
    from odqa.pretraining.publish import read_manifest
    from odqa.retrieval.dense import mean_pool
    from odqa.training import TrainConfig

    out = tmp_path / "pt"
    req = PretrainRequest(corpus=corpus_file, out=out, backbone=str(tiny), max_length=32, align="morpheme",
                          train=TrainConfig(batch_size=2, max_steps=3, lr=1e-3))
    res = pretrain(req)
    assert isinstance(res, PretrainResult) and res.steps == 3 and res.stopped == "max_steps" and res.chunks_heldout >= 1
    assert res.mlm_head["head_initialised"] and res.mlm_head["output_tied_to_embeddings"]
    assert res.heldout_loss_before > 0 and res.heldout_loss > 0
    man = read_manifest(out)
    assert man["base_backbone"] == str(tiny) and man["corpus"]["sha256"] == file_sha256(corpus_file)
    assert (man["config"]["objective"], man["config"]["align"], man["steps"]) == ("span", "morpheme", res.best_step)
    assert "train" not in man["config"] and man["train"]["max_steps"] == 3 and man["train"]["lr"] == 1e-3
    assert man["analyzer"]["name"] == "mecab" and man["odqa_version"]
    assert man["mask"]["mean_span_length"] == pytest.approx(3.797, abs=1e-3)
    assert (out / "tokenizer.json").exists() and (out / "tokenizer_config.json").exists()
    assert not any(p.name.startswith(".") for p in out.parent.iterdir() if p.name.startswith(".pt"))

    # the folder is a plain encoder backbone: same encoder weights as the trained MLM model
    tok, enc = load_backbone(str(out))
    assert type(enc).__name__ == "BertModel" and not wants_e5_prefixes(out)
    _, mlm = load_backbone(str(out), auto_class=AutoModelForMaskedLM)
    for name, t in enc.state_dict().items():
        assert torch.equal(t, mlm.base_model.state_dict()[name]), name
    base = load_file(str(Path(tiny) / "model.safetensors"))
    now = load_file(str(out / "model.safetensors"))
    assert torch.equal(base["embeddings.word_embeddings.weight"], now["bert.embeddings.word_embeddings.weight"])
    assert not torch.equal(base["encoder.layer.0.attention.self.query.weight"],
                           now["bert.encoder.layer.0.attention.self.query.weight"])      # it did train
    # retriever-style use: embed a batch
    batch = tok(["한라산", "백록담은 한라산 정상에 있다"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        vecs = mean_pool(enc(**batch).last_hidden_state, batch["attention_mask"])
    assert vecs.shape == (2, 32) and torch.isfinite(vecs).all()
    # resume continues the same run (a longer budget is not a settings change) and republishes
    again = pretrain(req.model_copy(update={"resume": True, "train": TrainConfig(batch_size=2, max_steps=5, lr=1e-3)}))
    assert again.steps == 5 and read_manifest(out)["total_steps"] == 5


def test_pretrained_backbone_helper_and_errors(tmp_path, corpus_file):
    from odqa.api.training import PretrainRequest, pretrain
    from odqa.errors import ConfigError
    from odqa.modeling.backbone import load_backbone
    from odqa.pretraining.config import PretrainConfig
    out = make_pretrained_tiny(tmp_path, objective="token", align="word")
    assert json.loads((out / "odqa_pretrain.json").read_text())["config"]["objective"] == "token"
    load_backbone(str(out))
    with pytest.raises(ConfigError, match="config field 'objective': input should be 'span' or 'token', got 'spam'"):
        PretrainConfig(objective="spam")
    tiny = str(tmp_path / "tiny-base")
    with pytest.raises(OdqaError, match="settings changed since the checkpoint"):     # resume with other masking settings
        pretrain(PretrainRequest(corpus=corpus_file, out=out, backbone=tiny, max_length=32, objective="span",
                                 align="word", resume=True))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("keep me")
    with pytest.raises(OdqaError, match="refusing to replace"):
        pretrain(PretrainRequest(corpus=corpus_file, out=tmp_path / "mine", backbone=tiny, max_length=32))
    with pytest.raises(OdqaError, match="exceeds the backbone's 128 positions"):
        pretrain(PretrainRequest(corpus=corpus_file, out=tmp_path / "z", backbone=tiny, max_length=512))


@pytest.mark.parametrize("kwargs, message", [
    ({"head_warmup_steps": -1}, "config field 'head_warmup_steps': input should be greater than or equal to 0"),
    ({"mask_ratio": 1.0}, "config field 'mask_ratio': input should be less than 1"),
    ({"align": "char"}, "config field 'align'"),
    ({"max_length": 4}, "config field 'max_length'"),
    ({"holdout": 0.5}, "config field 'holdout'"),
    ({"train": {"lr": -1}}, "config field 'train.lr': input should be greater than 0, got -1"),
])
def test_pretrain_config_is_checked_when_made(kwargs, message):
    from odqa.errors import ConfigError
    from odqa.pretraining.config import PretrainConfig
    with pytest.raises(ConfigError) as e:
        PretrainConfig(**kwargs)
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1


def test_pretrain_cli_wiring(tmp_path, corpus_file, tiny):
    """`odqa pretrain`: flags reach the API, --json prints the result, errors are one line with their exit code."""
    from odqa.pretraining.publish import read_manifest
    out = tmp_path / "pt"
    rep = json.loads(odqa("pretrain", "--corpus", corpus_file, "--out", out, "--backbone", tiny, "--max-length", "32",
                          "--batch-size", "2", "--max-steps", "2", "--lr", "1e-3", "--objective", "token",
                          "--align", "word", "--mask-ratio", "0.2", "--json", cwd=tmp_path).stdout)
    assert set(rep) == {"out", "run_dir", "objective", "align", "steps", "best_step", "heldout_loss_before",
                        "heldout_loss", "stopped", "epochs_done", "seconds", "train_seconds", "seconds_per_step",
                        "chunks_train", "chunks_heldout", "mlm_head", "verified"}
    assert rep["steps"] == 2 and (rep["objective"], rep["align"]) == ("token", "word")
    man = read_manifest(out)
    assert man["config"]["mask_ratio"] == 0.2 and man["train"]["lr"] == 1e-3 and man["train"]["batch_size"] == 2
    text = odqa("pretrain", "--corpus", corpus_file, "--out", tmp_path / "pt2", "--backbone", tiny, "--max-length",
                "32", "--batch-size", "2", "--max-steps", "1", cwd=tmp_path)
    assert "backbone saved to" in text.stdout and "had no MLM head" in text.stderr
    p = odqa("pretrain", "--corpus", tmp_path / "none.jsonl", "--out", tmp_path / "y", cwd=tmp_path, check=False)
    assert p.returncode == 3 and p.stderr.strip() == f"odqa: error: {tmp_path / 'none.jsonl'}: corpus not found"
    p = odqa("pretrain", "--corpus", corpus_file, "--out", tmp_path / "y", "--objective", "spam", cwd=tmp_path,
             check=False)
    assert p.returncode == 2 and p.stderr.strip().startswith("odqa: error: config field 'objective'")
    assert "Example: odqa pretrain" in odqa("pretrain", "--help", cwd=tmp_path).stdout


def _weights(folder: Path) -> dict:
    from safetensors.torch import load_file
    return {k.split("bert.")[-1]: v for k, v in load_file(str(folder / "model.safetensors")).items()}


@pytest.mark.parametrize("warmup, encoder_moves", [(3, False), (1, True)])
def test_head_warmup_leaves_the_encoder_alone(tmp_path, warmup, encoder_moves):
    import torch
    out = make_pretrained_tiny(tmp_path, steps=3, head_warmup_steps=warmup)
    base, new = _weights(tmp_path / "tiny-base"), _weights(out)
    key = "encoder.layer.0.attention.self.query.weight"
    assert key in base and key in new
    assert (not torch.equal(base[key], new[key])) == encoder_moves
    manifest = json.loads((out / "odqa_pretrain.json").read_text())
    assert manifest["config"]["head_warmup_steps"] == warmup


def test_a_pretrained_backbone_trains_a_reader(tmp_path):
    """pretrain -> train reader -> evaluate, on a tiny model."""
    import torch

    from tests.conftest import squad_file
    out = make_pretrained_tiny(tmp_path, steps=3, objective="span", align="word", head_warmup_steps=1)
    train = squad_file(tmp_path / "train.json")
    from odqa.api.training import ReaderTrainRequest, train_reader
    from odqa.reader.inference import WindowSettings
    from odqa.training import TrainConfig
    res = train_reader(ReaderTrainRequest(train_files=[train], dev=train, out=tmp_path / "run", backbone=str(out),
                                         window=WindowSettings(max_length=48, stride=16),
                                         train=TrainConfig(max_steps=4, batch_size=4, lr=3e-3)))
    assert res.steps == 4
    meta = json.loads((tmp_path / "run" / "best" / "odqa_head.json").read_text())
    assert meta["base_backbone"] == str(out)          # the reader started from the pretrained folder
    pre = _weights(out)
    key = "encoder.layer.1.output.dense.weight"
    ev = json.loads(odqa("evaluate", "--closed", "--reader", tmp_path / "run" / "best", "--questions", train, "--json",
                         cwd=tmp_path).stdout)
    assert ev["questions"] == 9 and 0 <= ev["f1"] <= 100
    assert torch.isfinite(pre[key]).all()
