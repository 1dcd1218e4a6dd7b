"""Masked-LM domain-adaptive pretraining: SpanBERT-style span masking or BERT token masking.

    odqa pretrain --corpus bench/corpus.jsonl --out runs/e5-span --objective span --align morpheme

The task in the shape of the others, a module per job:

* `masking` - the sampler: a pure function of (token ids, special-token mask, optional unit ids,
  seed). 15 % of the maskable tokens (never specials or padding) are chosen; `span` draws span
  lengths, in units, from a geometric distribution with p = 0.2 truncated to 1..10 (SpanBERT; mean
  3.80 units, `mean_span_length`), `token` chooses single units (BERT; whole-word masking when
  aligned). Chosen tokens become [MASK] 80 %, a random token 10 %, unchanged 10 % (decided per span
  for `span`, per token for `token`). Labels are the original ids there and -100 elsewhere.
* `units` (`align`): `none` = each token, `word` = whitespace words, `morpheme` = mecab/kiwi
  morphemes mapped onto the fast tokenizer's offsets. A token that covers parts of two
  words/morphemes joins them into one unit, so masking never splits a word/morpheme.
* `features` - corpus passages split into sentences and packed into chunks of at most
  `max_length` tokens (`build_chunks`).
* `model` - the backbone with an MLM head (`load_mlm`). The offline e5 folder holds an encoder
  only: the missing head is initialised fresh with its output projection tied to the word
  embeddings (`tie_word_embeddings`), and that is reported.
* `task` - `PretrainConfig` and `PretrainTask`, the shared training loop's task (dynamic masking:
  fresh masks every epoch, a pure function of epoch and seed; held-out chunks with fixed masks give
  the evaluation loss).
* `publish` - the result published atomically as a backbone folder (HF model + tokenizer +
  `odqa_pretrain.json`) that `load_backbone(folder)` reads as a plain encoder, checked by
  `verify_backbone_folder` before it is published.
* `train` - all of it: `train(PretrainRequest)` -> `PretrainResult`.
"""
