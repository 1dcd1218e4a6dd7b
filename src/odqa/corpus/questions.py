"""Question files: SQuAD/KorQuAD JSON, JSONL, Parquet, CSV, TSV or a `datasets.save_to_disk` folder, read into
`Question`s.

A flat record (JSONL line, table row) has `question` (or `query`), optional `id` (or `qid`), `answers` (or
`generation_gt`), `gold_ids` (or `retrieval_gt`: AutoRAG's list of lists of corpus ids, flattened: any of them
is gold), `context`, `document_id`, `title`."""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from odqa.corpus.files import iter_jsonl, record_field
from odqa.corpus.formats import detect_format, squad_articles, squad_passage_id
from odqa.corpus.tables import as_list, dataset_folder, iter_rows, table_kind
from odqa.errors import CorpusError
from odqa.text.pieces import clean
from odqa.types import Question


def _start(value, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise CorpusError(f"{where}: field 'answer_start' must be an integer, got {value!r}") from None


def _answers_of(qa: dict, where: str) -> tuple[list[str], list[int]]:
    answers = qa.get("answers", None)
    if answers is None and "generation_gt" in qa:       # AutoRAG: a list of answer texts (or one text)
        answers = as_list(qa["generation_gt"])
        answers = [answers] if isinstance(answers, str) else answers
    answers = [] if answers is None else as_list(answers)
    if isinstance(answers, str):                         # one answer text (a CSV cell)
        answers = [answers]
    if isinstance(answers, dict):  # HF datasets shape {text: [...], answer_start: [...]}
        texts, starts = answers.get("text", []), answers.get("answer_start", [])
        if not isinstance(texts, list) or not isinstance(starts, list):
            raise CorpusError(f"{where}: fields 'answers.text' and 'answers.answer_start' must be lists")
        return [str(t) for t in texts], [_start(s, where) for s in starts]
    if not isinstance(answers, list):
        raise CorpusError(f"{where}: field 'answers' must be a list")
    texts, starts = [], []
    for a in answers:
        if isinstance(a, str):
            texts.append(a)
        elif isinstance(a, dict) and "text" in a:
            texts.append(str(a["text"]))
            if "answer_start" in a:
                starts.append(_start(a["answer_start"], where))
        else:
            raise CorpusError(f"{where}: each answer needs a 'text' field")
    return texts, starts


def _question_text(rec: dict, where: str) -> str:
    text = record_field(rec, "query" if "question" not in rec and "query" in rec else "question", where)
    if not text.strip():
        raise CorpusError(f"{where}: empty question")
    return text


def _record_question(rec: dict, where: str, default_id: int) -> Question:
    """A flat record (JSONL line, datasets row): `question`, optional `id`, `answers`,
    `gold_ids`, `context`, `document_id`; with a context and no gold ids, the gold is
    the context itself (as for SQuAD)."""
    question = _question_text(rec, where)
    texts, starts = _answers_of(rec, where)
    gold = as_list(rec.get("gold_ids", rec.get("retrieval_gt", [])))
    gold_field = "gold_ids" if "gold_ids" in rec else "retrieval_gt"
    if gold is None:
        gold = []
    if isinstance(gold, str) and gold_field == "retrieval_gt":
        gold = [gold]
    if not isinstance(gold, list):
        raise CorpusError(f"{where}: field '{gold_field}' must be a list")
    gold = [g for group in gold for g in (group if isinstance(group, list) else [group])]   # AutoRAG: list of lists
    context = clean(str(rec.get("context") or ""))
    gold = [str(g) for g in gold]
    if not gold and context:
        gold = [squad_passage_id(context)] + ([str(rec["document_id"])] if rec.get("document_id") is not None else [])
    qid = rec.get("id", rec.get("qid", default_id))
    return Question(id=str(default_id if qid is None else qid), question=question, answers=texts,
                    gold_ids=gold, context=context, answer_starts=starts, title=str(rec.get("title") or ""))


def _arrow_rows(path: Path) -> Iterator[dict]:
    """Rows of a `datasets.save_to_disk` folder (Boostcamp/KLUE-MRC shape); a DatasetDict
    folder needs its split sub-folder unless it holds one split."""
    yield from dataset_folder(path, "not a questions file nor a datasets.save_to_disk folder")


def _is_squad(path: Path, encoding: str | None) -> bool:
    if table_kind(path) is not None:
        return False
    try:
        return detect_format(path, encoding) == "squad"
    except CorpusError:        # not JSON-looking at all: read as JSONL, which names the bad line
        return False


def load_questions(path: str | Path, encoding: str | None = None, skipped: list[str] | None = None) -> list[Question]:
    """SQuAD/KorQuAD JSON (gold = the question's own paragraph), JSONL with `question`,
    optional `id`, `answers`, `gold_ids`, `context`, or a `datasets.save_to_disk` folder.
    Files are decoded as `encoding` (default UTF-8, a BOM skipped). With `skipped` given (training data),
    a SQuAD question with an empty text is left out and its place appended there instead of refused."""
    path = Path(path)
    if not path.exists():
        raise CorpusError(f"{path}: questions file not found")
    out: list[Question] = []
    if _is_squad(path, encoding):
        for ai, article in enumerate(squad_articles(path, encoding)):
            paragraphs = record_field(article, "paragraphs", f"{path}: data[{ai}]", list)
            title = str(article.get("title", ""))
            for pi, para in enumerate(paragraphs):
                where = f"{path}: data[{ai}].paragraphs[{pi}]"
                context = record_field(para, "context", where)
                gold = [squad_passage_id(context)]
                if "document_id" in para:
                    gold.append(str(para["document_id"]))
                for qi, qa in enumerate(record_field(para, "qas", where, list)):
                    qwhere = f"{where}.qas[{qi}]"
                    if skipped is not None and not str(qa.get("question", "")).strip():
                        skipped.append(qwhere)
                        continue
                    question = _question_text(qa, qwhere)
                    texts, starts = _answers_of(qa, qwhere)
                    out.append(Question(id=str(qa.get("id", f"{ai}-{pi}-{qi}")), question=question, answers=texts,
                                        gold_ids=gold, context=context, answer_starts=starts, title=title))
    elif path.is_dir():
        out = [_record_question(rec, f"{path}: row {i}", i) for i, rec in enumerate(_arrow_rows(path))]
    elif table_kind(path) is not None:
        out = [_record_question(rec, where, i) for i, (where, rec) in enumerate(iter_rows(path, table_kind(path),
                                                                                          encoding))]
    else:
        out = [_record_question(rec, f"{path}:{lineno}", lineno) for lineno, rec in iter_jsonl(path, encoding)]
    if not out:
        raise CorpusError(f"{path}: no questions found")
    return out
