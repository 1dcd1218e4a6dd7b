"""Corpus readers: Boostcamp/KLUE-MRC wiki JSON, JSONL, SQuAD/KorQuAD JSON, folders of .txt, Parquet, CSV,
TSV and `datasets.save_to_disk` folders (`tables`), with metadata fields per passage.

Every reader yields `Passage` objects; `load_corpus` then merges exact-duplicate
texts (keeping every original id as an alias of the kept passage), counts and drops
passages without text, and optionally chunks long documents into overlapping passages.

Files are UTF-8 (a BOM is skipped) unless an `encoding` is given (`--encoding cp949`);
text that does not decode is one `CorpusError` naming the file, the byte offset and the flag.

Modules: `files` (decoding, JSON/JSONL), `formats` (the readers), `chunking`, `stream` (loading,
de-duplication), `questions` (question files).
"""

from odqa.corpus.chunking import chunk_passages, chunk_text
from odqa.corpus.files import codec, file_sha256, iter_jsonl, read_text, text_lines, write_jsonl
from odqa.corpus.formats import FORMATS, READERS, Fields, detect_format, read_jsonl, read_squad, read_table, \
    read_txt, read_wiki, squad_passage_id
from odqa.corpus.questions import load_questions
from odqa.corpus.stream import Corpus, CorpusStream, load_corpus

__all__ = ["FORMATS", "READERS", "Fields", "read_table", "Corpus", "CorpusStream", "chunk_passages", "chunk_text", "codec", "detect_format",
           "file_sha256", "iter_jsonl", "load_corpus", "load_questions", "read_jsonl", "read_squad", "read_text",
           "read_txt", "read_wiki", "squad_passage_id", "text_lines", "write_jsonl"]
