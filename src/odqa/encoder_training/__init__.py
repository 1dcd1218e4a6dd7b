"""Contrastive fine-tuning of the dense retriever's bi-encoder (`odqa train retriever`), a task in the shape of
the others: `data` (BM25 hard negatives), `model` (temperature, the passage encoder), `task` (settings and the
loop's task), `query_side` (the query encoder alone), `train` (request, run, result).


Each batch holds B questions with B different gold passages and one BM25 hard negative
per question (a top BM25 passage of the training pool that is not gold). The loss is
cross-entropy over question-passage similarities / temperature against all 2B
passages of the batch (in-batch negatives + hard negatives); a column holding one of
the question's own gold passages (a hard negative of another question that happens
to be this one's gold) is masked, never pushed away. Passages are encoded as the
index encodes them (title, newline, text; longer ones as windows of `max_length` tokens
`window_stride` apart): a question's positive is the window of its gold passage that holds
its answer (a cut passage would teach it to match text without the answer), a hard
negative a random window of the negative passage, and evaluation scores a passage by its
best window. Extra passages (`--negatives`, e.g. the rest of the corpus to be indexed) join the
pool as negatives only: BM25 may pick them as hard negatives and evaluation ranks against them.
The questions of random whole articles (about `holdout` of the passages)
are held out to choose the best checkpoint (recall@1 against the pool), so no held-out
question's article is seen in training (held out by passage, an article's other paragraphs
would be trained on and pull its held-out questions towards them).

`QuerySideTask` (`--side query`) trains the query encoder alone: the passages keep the base
encoder's vectors (computed once; the same ones `odqa index` stores for that encoder), and each
question is scored against every window of the training pool, so all passages are negatives,
BM25's top ones among them. A step runs only short questions through the model, and the space the
passages live in never moves.
"""
