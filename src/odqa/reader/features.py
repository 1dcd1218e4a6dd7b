"""Question/passage windows for extractive QA, with character offsets kept.

A passage longer than the model's window is cut into overlapping windows
(`max_length` tokens, `stride` tokens of overlap). Every context token keeps its
character span in the passage (leading spaces trimmed: SentencePiece `▁` tokens
report the space before the word). For training, the gold answer is mapped to
token positions; a window that does not hold the whole answer is labelled
no-answer (both positions on CLS, index 0).
"""

from __future__ import annotations

import logging
from bisect import bisect_left
from dataclasses import dataclass, field

from odqa.text.normalize import normalize, normalize_with_map
from odqa.text.pieces import token_prefix

log = logging.getLogger(__name__)


@dataclass
class Windows:
    """Parallel lists, one entry per window."""
    input_ids: list[list[int]] = field(default_factory=list)
    token_type_ids: list[list[int]] | None = None
    example: list[int] = field(default_factory=list)          # index of the (question, passage) pair
    offsets: list[list[tuple[int, int] | None]] = field(default_factory=list)   # None = not a context token
    start: list[int] = field(default_factory=list)            # training labels (0 = no answer)
    end: list[int] = field(default_factory=list)
    em_ids: list[list[int]] | None = None                     # EM-token feature per token (when asked for)

    def __len__(self) -> int:
        return len(self.input_ids)


@dataclass
class SkipReport:
    skipped: int = 0
    records: list[str] = field(default_factory=list)

    def add(self, where: str, why: str) -> None:
        self.skipped += 1
        if len(self.records) < 20:
            self.records.append(f"{where}: {why}")
        log.warning("skipping %s: %s", where, why)


def _trim(text: str, s: int, e: int) -> tuple[int, int]:
    while s < e and text[s].isspace():
        s += 1
    while e > s and text[e - 1].isspace():
        e -= 1
    return s, e


def locate_answer(context: str, text: str, start: int | None) -> int | None:
    """Character start of `text` in `context`: the given offset if the text is there,
    None if it is not; with no offset given, the first occurrence."""
    if not text:
        return None
    if start is not None:
        return start if context[start:start + len(text)] == text else None
    i = context.find(text)
    return i if i >= 0 else None


def make_windows(tokenizer, questions: list[str], contexts: list[str], max_length: int = 384, stride: int = 128,
                 max_query_length: int = 64, answers: list[tuple[int, str] | None] | None = None,
                 em: list[list[tuple[int, int]]] | None = None) -> Windows:
    """Tokenise (question, context) pairs into windows; `answers[i]` = (char start, text) or None;
    `em[i]`: the context's character spans marked by the EM-token feature (`odqa.reader.em_feature`).

    `stride` is the number of overlapping tokens between consecutive windows.
    """
    from odqa.reader.em_feature import token_marks
    cut: dict[str, str] = {}             # a question read over k passages is cut once, not k times
    qs = [cut[q] if q in cut else cut.setdefault(q, _truncate_query(tokenizer, q, max_query_length))
          for q in questions]
    enc = tokenizer(qs, contexts, truncation="only_second", max_length=max_length, stride=stride,
                    return_overflowing_tokens=True, return_offsets_mapping=True, padding=False)
    w = Windows(token_type_ids=[] if "token_type_ids" in enc else None, em_ids=[] if em is not None else None)
    for i, ids in enumerate(enc["input_ids"]):
        ex = enc["overflow_to_sample_mapping"][i]
        seq = enc.sequence_ids(i)
        ctx = contexts[ex]
        offs = [(_trim(ctx, s, e) if sid == 1 else None) for sid, (s, e) in zip(seq, enc["offset_mapping"][i])]
        offs = [o if o is None or o[0] < o[1] else None for o in offs]   # pure-space tokens carry no text
        w.input_ids.append(ids)
        if w.token_type_ids is not None:
            w.token_type_ids.append(enc["token_type_ids"][i])
        w.example.append(ex)
        w.offsets.append(offs)
        if em is not None:
            w.em_ids.append(token_marks(offs, em[ex]))
        s_tok = e_tok = 0
        if answers is not None and answers[ex] is not None:
            a_start, a_text = answers[ex]
            s_tok, e_tok = _answer_tokens(offs, a_start, a_start + len(a_text))
        w.start.append(s_tok)
        w.end.append(e_tok)
    return w


def _truncate_query(tokenizer, q: str, max_query_length: int) -> str:
    q = token_prefix(q, max_query_length, lambda s: len(tokenizer(s, add_special_tokens=False)["input_ids"]))
    ids = tokenizer(q, add_special_tokens=False, return_offsets_mapping=True)
    if len(ids["input_ids"]) <= max_query_length:
        return q
    return q[:ids["offset_mapping"][max_query_length - 1][1]]


def _answer_tokens(offs: list[tuple[int, int] | None], a_s: int, a_e: int) -> tuple[int, int]:
    ctx = [(t, o) for t, o in enumerate(offs) if o is not None]
    if not ctx or ctx[0][1][0] > a_s or ctx[-1][1][1] < a_e:
        return 0, 0                      # the answer is not (wholly) inside this window
    s_tok = next((t for t, (s, e) in ctx if e > a_s), None)
    e_tok = next((t for t, (s, e) in reversed(ctx) if s < a_e), None)
    if s_tok is None or e_tok is None or e_tok < s_tok:
        return 0, 0
    return s_tok, e_tok


def normalized_example(question: str, context: str, start: int, answer: str
                       ) -> tuple[str, str, tuple[int, str]]:
    """A training example as the reader reads at inference (`odqa.text.normalize` on question and context), the
    answer moved to its place in the normalised context; the example as given when the answer does not map
    onto a whole normalised span (it then still trains, on the text as it was)."""
    view = normalize_with_map(context)
    if view.starts is None:
        return normalize(question), context, (start, answer)
    n_start, n_answer = bisect_left(view.starts, start), normalize(answer)
    if view.text[n_start:n_start + len(n_answer)] != n_answer or not n_answer:
        return question, context, (start, answer)
    return normalize(question), view.text, (n_start, n_answer)


def training_examples(questions, report: SkipReport, kept: list[int] | None = None
                      ) -> tuple[list[str], list[str], list[tuple[int, str]]]:
    """(questions, contexts, answers) for training, normalised as the reader reads (`normalized_example`);
    records whose answer is not in the context are skipped (`kept`, when given, receives the positions of the
    questions used)."""
    qs, ctxs, ans = [], [], []
    for i, q in enumerate(questions):
        if not q.context or not q.answers:
            report.add(f"question {q.id}", "no context or no answer")
            continue
        start = locate_answer(q.context, q.answers[0], q.answer_starts[0] if q.answer_starts else None)
        if start is None:
            report.add(f"question {q.id}", f"answer {q.answers[0]!r} does not occur at offset "
                       f"{q.answer_starts[0] if q.answer_starts else '-'} of its context")
            continue
        question, context, answer = normalized_example(q.question, q.context, start, q.answers[0])
        qs.append(question)
        ctxs.append(context)
        ans.append(answer)
        if kept is not None:
            kept.append(i)
    return qs, ctxs, ans
