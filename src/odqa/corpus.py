"""Corpus readers: Boostcamp/KLUE-MRC wiki JSON, JSONL, SQuAD/KorQuAD JSON, folders of .txt.

Every reader yields `Passage` objects; `load_corpus` then merges exact-duplicate
texts (keeping every original id as an alias of the kept passage), counts and drops
passages without text, and optionally chunks long documents into overlapping passages.

Files are UTF-8 (a BOM is skipped) unless an `encoding` is given (`--encoding cp949`);
text that does not decode is one `CorpusError` naming the file, the byte offset and the flag.
"""

from __future__ import annotations

import array
import codecs
import hashlib
import itertools
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from odqa.errors import ConfigError, CorpusError
from odqa.text.pieces import clean
from odqa.types import Passage, Question

log = logging.getLogger(__name__)

FORMATS = ("auto", "wiki", "jsonl", "squad", "txt")


@dataclass
class Corpus:
    passages: list[Passage]
    aliases: dict[str, str] = field(default_factory=dict)  # original id -> kept id
    n_duplicates: int = 0
    n_empty: int = 0          # rows skipped because their text is empty or whitespace
    sha256: str = ""
    source: str = ""
    fmt: str = ""

    @property
    def n_passages(self) -> int:
        return len(self.passages)

    def canonical(self, pid: str) -> str:
        return self.aliases.get(pid, pid)


# ----------------------------------------------------------------- helpers
def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    for f in files:
        if path.is_dir():
            h.update(str(f.relative_to(path)).encode())
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()


def squad_passage_id(context: str) -> str:
    """Content-derived id of a SQuAD paragraph, so questions from any file find it."""
    return "sq-" + hashlib.sha1(context.encode("utf-8")).hexdigest()[:12]


def codec(encoding: str | None) -> str:
    """The codec that reads files in `encoding`: None or UTF-8 -> utf-8-sig (a BOM is skipped)."""
    if encoding is None:
        return "utf-8-sig"
    try:
        name = codecs.lookup(encoding).name
    except LookupError:
        raise ConfigError(f"unknown encoding '{encoding}' (e.g. utf-8, cp949, euc-kr)") from None
    return "utf-8-sig" if name == "utf-8" else encoding


def _decode_error(path: Path, e: UnicodeDecodeError, encoding: str | None, offset: int = 0) -> CorpusError:
    hint = ("pass its encoding, e.g. --encoding cp949 (Korean Windows files)" if encoding is None
            else f"is --encoding {encoding} right?")
    return CorpusError(f"{path}: not {encoding or 'UTF-8'} text at byte {offset + e.start} ({e.reason}); {hint}")


def read_text(path: Path, encoding: str | None = None) -> str:
    """The whole file as text (UTF-8 with an optional BOM unless `encoding` says otherwise)."""
    data = path.read_bytes()
    try:
        return data.decode(codec(encoding))
    except UnicodeDecodeError as e:
        raise _decode_error(path, e, encoding) from None


def text_lines(path: Path, encoding: str | None = None) -> Iterator[str]:
    """The file's lines (split at "\n"), decoded as they are read, for files of any size."""
    decoder = codecs.getincrementaldecoder(codec(encoding))()
    offset, pending = 0, ""
    with open(path, "rb") as fh:
        for raw in itertools.chain(fh, [b""]):
            buffered = len(decoder.getstate()[0])
            try:
                pending += decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as e:
                raise _decode_error(path, e, encoding, offset - buffered) from None
            offset += len(raw)
            *lines, pending = pending.split("\n")
            yield from lines
    if pending:
        yield pending


def _load_json(path: Path, encoding: str | None = None):
    try:
        return json.loads(read_text(path, encoding))
    except json.JSONDecodeError as e:
        raise CorpusError(f"{path}:{e.lineno}: malformed JSON ({e.msg})") from None
    except RecursionError:
        raise CorpusError(f"{path}: JSON nested too deeply") from None


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> int:
    """Write one JSON object per line (UTF-8, Korean kept as is); returns the number of rows."""
    n = 0
    with open(path, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    return n


def iter_jsonl(path: Path, encoding: str | None = None) -> Iterator[tuple[int, dict]]:
    for lineno, line in enumerate(text_lines(path, encoding), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise CorpusError(f"{path}:{lineno}: malformed JSON line ({e.msg})") from None
        except RecursionError:
            raise CorpusError(f"{path}:{lineno}: JSON nested too deeply") from None
        if not isinstance(rec, dict):
            raise CorpusError(f"{path}:{lineno}: expected a JSON object, got {type(rec).__name__}")
        yield lineno, rec


def _obj(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise CorpusError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def _field(rec: dict, name: str, where: str, kind=str):
    if name not in _obj(rec, where):
        raise CorpusError(f"{where}: missing field '{name}'")
    value = rec[name]
    if not isinstance(value, kind):
        raise CorpusError(f"{where}: field '{name}' must be {kind.__name__}, got {type(value).__name__}")
    return clean(value) if kind is str else value


def detect_format(path: Path, encoding: str | None = None) -> str:
    if path.is_dir():
        return "txt"
    if path.suffix in (".jsonl", ".ndjson"):
        return "jsonl"
    if path.suffix == ".txt":
        return "txt"
    with open(path, encoding=codec(encoding), errors="replace") as fh:
        head = fh.read(4096).lstrip()
    if head.startswith("{") and '"data"' in head[:2000] and ('"paragraphs"' in head or '"version"' in head):
        return "squad"
    if head.startswith("{"):
        first_line = head.split("\n", 1)[0].strip()
        if first_line.endswith("}") and len(head.split("\n")) > 1:
            return "jsonl"
        return "wiki"
    raise CorpusError(f"{path}: cannot tell the corpus format; pass --format wiki|jsonl|squad|txt")


# ----------------------------------------------------------------- readers
def read_wiki(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    """Boostcamp `wikipedia_documents.json`: {key: {text, title, document_id, ...}}."""
    data = _load_json(path, encoding)
    if not isinstance(data, dict):
        raise CorpusError(f"{path}: expected an object keyed by document id")
    for key, rec in data.items():
        where = f"{path}: record '{key}'"
        text = _field(rec, "text", where)
        doc_id = str(rec.get("document_id", key))
        yield Passage(id=doc_id, title=str(rec.get("title", "")), text=text, doc_id=doc_id)


def read_jsonl(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    for lineno, rec in iter_jsonl(path, encoding):
        where = f"{path}:{lineno}"
        pid = rec.get("id", rec.get("document_id"))
        if pid is None:
            raise CorpusError(f"{where}: missing field 'id'")
        text = _field(rec, "text", where)
        doc_id = str(rec.get("doc_id", rec.get("document_id", pid)))
        yield Passage(id=str(pid), title=str(rec.get("title", "")), text=text, doc_id=doc_id)


def _squad_articles(path: Path, encoding: str | None = None) -> list[dict]:
    data = _load_json(path, encoding)
    if not isinstance(data, dict) or not isinstance(data.get("data"), list):
        raise CorpusError(f"{path}: not SQuAD/KorQuAD JSON (missing field 'data')")
    return data["data"]


def read_squad(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    for ai, article in enumerate(_squad_articles(path, encoding)):
        paragraphs = _field(article, "paragraphs", f"{path}: data[{ai}]", list)
        title = str(article.get("title", ""))
        for pi, para in enumerate(paragraphs):
            context = _field(para, "context", f"{path}: data[{ai}].paragraphs[{pi}]")
            doc_id = str(para.get("document_id", title))
            yield Passage(id=squad_passage_id(context), title=title, text=context, doc_id=doc_id)


def read_txt(path: Path, encoding: str | None = None) -> Iterator[Passage]:
    files = sorted(path.rglob("*.txt")) if path.is_dir() else [path]
    if not files:
        raise CorpusError(f"{path}: no .txt files found")
    for f in files:
        text = read_text(f, encoding)
        rel = str(f.relative_to(path)) if path.is_dir() else f.name
        yield Passage(id=rel, title=f.stem, text=text, doc_id=rel)


READERS = {"wiki": read_wiki, "jsonl": read_jsonl, "squad": read_squad, "txt": read_txt}


# ----------------------------------------------------------------- chunking
def chunk_text(text: str, size: int, overlap: int) -> list[tuple[int, str]]:
    """Split into windows of at most `size` characters overlapping by about `overlap`,
    cutting at whitespace where possible. Returns (start offset, piece)."""
    if size <= 0 or len(text) <= size:
        return [(0, text)]
    if not 0 <= overlap < size:
        raise CorpusError(f"chunk overlap ({overlap}) must be >= 0 and < chunk size ({size})")
    pieces, start = [], 0
    while start < len(text):
        end = min(start + size, len(text))
        if end < len(text):
            cut = text.rfind(" ", start + size // 2, end)
            end = cut if cut > start else end
        pieces.append((start, text[start:end]))
        if end >= len(text):
            break
        nxt = max(end - overlap, start + 1)
        space = text.find(" ", nxt, end)
        start = space + 1 if space != -1 else nxt
    return pieces


def chunk_passages(passages: Iterable[Passage], size: int, overlap: int) -> Iterator[Passage]:
    for p in passages:
        pieces = chunk_text(p.text, size, overlap)
        if len(pieces) == 1:
            yield p
            continue
        for i, (_, piece) in enumerate(pieces):
            yield Passage(id=f"{p.id}#{i}", title=p.title, text=piece, doc_id=p.doc_id)


# ----------------------------------------------------------------- entry point
LONG_PASSAGE_CHARS = 100_000   # a passage longer than this and than LONG_PASSAGE_RATIO x the median is warned about
LONG_PASSAGE_RATIO = 20


def warn_long_passages(path: Path, lengths, long: list[tuple[str, int]]) -> None:
    """One warning when some passages are far longer than the rest: they are analysed in pieces, but
    retrieval scores each as a whole and a reader reads all of it. `lengths`: every passage's length;
    `long`: (id, length) of those over LONG_PASSAGE_CHARS (the only ones that can be warned about)."""
    median = sorted(lengths)[len(lengths) // 2]
    limit = max(LONG_PASSAGE_CHARS, LONG_PASSAGE_RATIO * median)
    over = [(pid, n) for pid, n in long if n > limit]
    if over:
        top, most = max(over, key=lambda x: x[1])
        log.warning(f"{path}: {len(over)} passage(s) far longer than the rest (the longest, '{top}', has "
                    f"{most:,} characters; the median {median:,}): split them with "
                    f"--set corpus.chunk_size=1000")


def _text_key(text: str) -> bytes:
    """What de-duplication compares: a 128-bit digest of the stripped text (not the text itself, so
    memory stays a few dozen bytes per passage however long the passages are)."""
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


class CorpusStream:
    """The corpus at `path`, read one passage at a time: iterate it once for the kept passages
    (cleaned, empty ones skipped, exact-duplicate texts merged into aliases); the counts
    (`n_passages`, `n_duplicates`, `n_empty`, `aliases`) are complete when the iteration ends.

    Memory holds a 16-byte digest and the id of each kept passage, never the corpus's texts."""

    def __init__(self, path: str | Path, fmt: str = "auto", chunk_size: int = 0, chunk_overlap: int = 0,
                 dedup: bool = True, encoding: str | None = None):
        path = Path(path)
        if not path.exists():
            raise CorpusError(f"{path}: corpus not found")
        if fmt not in FORMATS:
            raise CorpusError(f"unknown corpus format '{fmt}' (choose from {', '.join(FORMATS)})")
        self.path, self.encoding = path, encoding
        self.fmt = detect_format(path, encoding) if fmt == "auto" else fmt
        self.chunk_size, self.chunk_overlap, self.dedup = chunk_size, chunk_overlap, dedup
        self.sha256, self.source = file_sha256(path), str(path.resolve())
        self.aliases: dict[str, str] = {}
        self.n_passages = self.n_duplicates = self.n_empty = 0
        self._used = False

    def __iter__(self) -> Iterator[Passage]:
        if self._used:
            raise RuntimeError("a CorpusStream is read once")
        self._used = True
        path = self.path
        stream: Iterable[Passage] = READERS[self.fmt](path, self.encoding)
        if self.chunk_size:
            stream = chunk_passages(stream, self.chunk_size, self.chunk_overlap)
        by_text: dict[bytes, str] = {}
        seen_ids: set[str] = set()
        lengths = array.array("q")
        long: list[tuple[str, int]] = []
        for p in stream:
            p = Passage(clean(p.id), clean(p.title), clean(p.text), clean(p.doc_id))   # lone surrogates out
            key = p.text.strip()
            if not key:
                self.n_empty += 1
                continue
            digest = _text_key(key) if self.dedup else b""
            if self.dedup and digest in by_text:
                self.n_duplicates += 1
                if p.id != by_text[digest]:
                    self.aliases[p.id] = by_text[digest]
                continue
            if p.id in seen_ids:
                raise CorpusError(f"{path}: duplicate passage id '{p.id}' with different text")
            seen_ids.add(p.id)
            if self.dedup:
                by_text[digest] = p.id
            lengths.append(len(p.text))
            if len(p.text) > LONG_PASSAGE_CHARS:
                long.append((p.id, len(p.text)))
            self.n_passages += 1
            yield p
        if not self.n_passages:
            raise CorpusError(f"{path}: corpus has no passages with text ({self.n_empty} empty skipped)")
        if not self.chunk_size:
            warn_long_passages(path, lengths, long)


def load_corpus(path: str | Path, fmt: str = "auto", chunk_size: int = 0, chunk_overlap: int = 0,
                dedup: bool = True, encoding: str | None = None) -> Corpus:
    """The corpus at `path` (`fmt` auto-detected by default; files decoded as `encoding`, else UTF-8),
    all in memory; `CorpusStream` reads the same passages one at a time."""
    stream = CorpusStream(path, fmt, chunk_size, chunk_overlap, dedup, encoding)
    kept = list(stream)
    return Corpus(kept, stream.aliases, stream.n_duplicates, stream.n_empty, stream.sha256, stream.source,
                  stream.fmt)


# ----------------------------------------------------------------- questions
def _start(value, where: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise CorpusError(f"{where}: field 'answer_start' must be an integer, got {value!r}") from None


def _answers_of(qa: dict, where: str) -> tuple[list[str], list[int]]:
    answers = qa.get("answers", [])
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
    text = _field(rec, "question", where)
    if not text.strip():
        raise CorpusError(f"{where}: empty question")
    return text


def _record_question(rec: dict, where: str, default_id: int) -> Question:
    """A flat record (JSONL line, datasets row): `question`, optional `id`, `answers`,
    `gold_ids`, `context`, `document_id`; with a context and no gold ids, the gold is
    the context itself (as for SQuAD)."""
    question = _question_text(rec, where)
    texts, starts = _answers_of(rec, where)
    gold = rec.get("gold_ids", [])
    if not isinstance(gold, list):
        raise CorpusError(f"{where}: field 'gold_ids' must be a list")
    context = clean(str(rec.get("context") or ""))
    gold = [str(g) for g in gold]
    if not gold and context:
        gold = [squad_passage_id(context)] + ([str(rec["document_id"])] if rec.get("document_id") is not None else [])
    return Question(id=str(rec.get("id", default_id)), question=question, answers=texts,
                    gold_ids=gold, context=context, answer_starts=starts, title=str(rec.get("title") or ""))


def _arrow_rows(path: Path) -> Iterator[dict]:
    """Rows of a `datasets.save_to_disk` folder (Boostcamp/KLUE-MRC shape); a DatasetDict
    folder needs its split sub-folder unless it holds one split."""
    try:
        from datasets import DatasetDict, load_from_disk
    except ImportError:
        raise CorpusError(f"{path}: reading a datasets folder needs the `datasets` package (pip install odqa[ml])") from None
    try:
        ds = load_from_disk(str(path))
    except FileNotFoundError:
        raise CorpusError(f"{path}: not a questions file nor a datasets.save_to_disk folder") from None
    if isinstance(ds, DatasetDict):
        if len(ds) != 1:
            raise CorpusError(f"{path}: holds splits {', '.join(ds)}; pass one of them, e.g. {path / next(iter(ds))}")
        ds = next(iter(ds.values()))
    yield from ds


def _is_squad(path: Path, encoding: str | None) -> bool:
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
        for ai, article in enumerate(_squad_articles(path, encoding)):
            paragraphs = _field(article, "paragraphs", f"{path}: data[{ai}]", list)
            title = str(article.get("title", ""))
            for pi, para in enumerate(paragraphs):
                where = f"{path}: data[{ai}].paragraphs[{pi}]"
                context = _field(para, "context", where)
                gold = [squad_passage_id(context)]
                if "document_id" in para:
                    gold.append(str(para["document_id"]))
                for qi, qa in enumerate(_field(para, "qas", where, list)):
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
    else:
        out = [_record_question(rec, f"{path}:{lineno}", lineno) for lineno, rec in iter_jsonl(path, encoding)]
    if not out:
        raise CorpusError(f"{path}: no questions found")
    return out
