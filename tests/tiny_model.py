"""A tiny randomly initialised BERT + WordPiece tokenizer, and reader checkpoints on it, made in the test (no download)."""

from __future__ import annotations

from pathlib import Path

TEXTS = [
    "한라산은 제주도에 있는 산이다", "지리산의 최고봉은 천왕봉이다", "세종대왕은 훈민정음을 창제하였다",
    "이순신은 거북선으로 왜군을 물리쳤다", "김치는 한국의 전통 음식이다", "백록담은 한라산 정상에 있다",
    "query: passage: 질문 답변 문서 무엇 누구 언제 어디 몇",
]


def make_tiny_backbone(folder: Path, hidden: int = 32, layers: int = 2, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    folder.mkdir(parents=True, exist_ok=True)
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.NFKC()
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.decoder = decoders.WordPiece()
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok.train_from_iterator(TEXTS * 5, trainers.WordPieceTrainer(vocab_size=300, special_tokens=specials))
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", mask_token="[MASK]", model_max_length=128)
    fast.save_pretrained(folder)
    torch.manual_seed(seed)
    cfg = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                     num_attention_heads=2, intermediate_size=hidden * 2, max_position_embeddings=128,
                     pad_token_id=tok.token_to_id("[PAD]"))
    BertModel(cfg, add_pooling_layer=False).save_pretrained(folder)
    return folder


def make_reader_checkpoint(backbone: str | Path, folder: Path, max_length: int, stride: int, head: str = "cnn",
                           seed: int = 0) -> Path:
    """A reader checkpoint at `folder`: a random (seeded) head on `backbone`, reading windows of `max_length`
    tokens `stride` apart; deterministic, enough to compare answers."""
    import torch

    from odqa.modeling.checkpoint import build_model, save_model
    from odqa.modeling.heads import HeadConfig
    torch.manual_seed(seed)
    tok, model = build_model(str(backbone), "span", HeadConfig(type=head))
    save_model(model, tok, folder, extra={"reader": {"window": {"max_length": max_length, "stride": stride}}})
    return folder
