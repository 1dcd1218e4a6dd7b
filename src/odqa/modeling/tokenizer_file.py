"""A checkpoint's fast tokenizer read with the `tokenizers` library alone (no transformers, no torch).

`TokenizerFile(folder)` loads `tokenizer.json` and answers the calls the reader makes of a Hugging Face fast
tokenizer, with the same ids, offsets and windows: a text or a list of texts (`add_special_tokens`,
`return_offsets_mapping`), and (question, context) pairs cut into overlapping windows (`truncation=
"only_second"`, `max_length`, `stride`, `return_overflowing_tokens`). What it returns supports `enc[name]`,
`name in enc` and `enc.sequence_ids(i)`. The ONNX runtimes read with it, so that a process answering with
them never imports torch or transformers' model code.

Like a fast tokenizer it keeps its truncation settings as state: callers serialise calls (the reader does).
"""

from __future__ import annotations

import json
from pathlib import Path

TOKENIZER_JSON = "tokenizer.json"


class Encoded(dict):
    """Batch-encoding fields by name (`input_ids`, `attention_mask`, `offset_mapping`, ...) and the
    sequence ids of each row."""

    def __init__(self, fields: dict, encodings: list):
        super().__init__(fields)
        self.encodings = encodings

    def sequence_ids(self, i: int = 0) -> list[int | None]:
        return self.encodings[i].sequence_ids


class TokenizerFile:
    """The tokenizer of a folder from its `tokenizer.json`, with `tokenizer_config.json`'s model input names and
    special tokens (what transformers' fast tokenizer reads from the same files)."""

    def __init__(self, folder: str | Path):
        from tokenizers import Tokenizer
        folder = Path(folder)
        self._tokenizer = Tokenizer.from_file(str(folder / TOKENIZER_JSON))
        config = {}
        path = folder / "tokenizer_config.json"
        if path.is_file():
            config = json.loads(path.read_text(encoding="utf-8"))
        # which fields a call returns (token_type_ids only when named): the folder's setting, else transformers'
        # default for a tokenizers-backed tokenizer; a caller that knows the model's inputs may set it
        self.model_input_names = list(config.get("model_input_names") or ["input_ids", "attention_mask"])
        pad = config.get("pad_token")
        pad = pad.get("content") if isinstance(pad, dict) else pad
        self.pad_token_id = self._tokenizer.token_to_id(pad) if pad is not None else None

    @property
    def backend_tokenizer(self):
        return self._tokenizer

    def get_vocab(self) -> dict[str, int]:
        return self._tokenizer.get_vocab(with_added_tokens=True)

    def __call__(self, text, text_pair=None, *, add_special_tokens: bool = True, truncation=None,
                 max_length: int | None = None, stride: int = 0, return_overflowing_tokens: bool = False,
                 return_offsets_mapping: bool = False, padding: bool = False) -> Encoded:
        if padding:
            raise ValueError("TokenizerFile does not pad")
        single = isinstance(text, str)
        texts = [text] if single else list(text)
        pairs = None if text_pair is None else ([text_pair] if single else list(text_pair))
        tok = self._tokenizer
        tok.no_padding()
        if truncation:
            strategy = "longest_first" if truncation is True else truncation
            tok.enable_truncation(max_length, stride=stride, strategy=strategy, direction="right")
        else:
            tok.no_truncation()
        inputs = texts if pairs is None else list(zip(texts, pairs))
        encodings = tok.encode_batch(inputs, add_special_tokens=add_special_tokens)
        rows, owners = [], []
        for i, e in enumerate(encodings):
            for piece in [e] + (list(e.overflowing) if return_overflowing_tokens else []):
                rows.append(piece)
                owners.append(i)
        fields = {"input_ids": [r.ids for r in rows]}
        if "token_type_ids" in self.model_input_names:
            fields["token_type_ids"] = [r.type_ids for r in rows]
        if "attention_mask" in self.model_input_names:
            fields["attention_mask"] = [r.attention_mask for r in rows]
        if return_offsets_mapping:
            fields["offset_mapping"] = [r.offsets for r in rows]
        if return_overflowing_tokens:
            fields["overflow_to_sample_mapping"] = owners
        if single and not return_overflowing_tokens:
            fields = {k: v[0] for k, v in fields.items()}
        return Encoded(fields, rows)
