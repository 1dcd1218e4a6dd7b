"""Korean analyzers that turn texts into index terms.

`kiwi` (kiwipiepy) and `mecab` (python-mecab-ko with its bundled dictionary) keep
morphemes whose POS tag starts with one of the configured prefixes; `whitespace`
and `char-ngram` exist for comparison. Every analyzer works on batches and can
use several workers; `spec()` is what the index manifest records. Long texts are analysed in
pieces of bounded length (`odqa.text.pieces`), so time stays linear in a text's length and
`progress` (counted in texts) moves by fractions of a text while a long one is analysed.
MeCab can also index the parts of compound and inflected entries (`decompound`: none | mixed |
discard, as nori's modes; recorded in `spec()`).

Every analyzer reads texts through `odqa.text.normalize` (NFC/NFD, compatibility jamo, full-width
forms and odd spaces fold to one form) before it analyses them: `tokenize` normalises, each
analyzer's `_tokenize` analyses; `spec()` records the normalisation.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import threading
import unicodedata
from functools import partial
from typing import Callable, Sequence

from odqa.errors import OdqaError
from odqa.text.normalize import NORMALIZATION, normalize
from odqa.text.pieces import map_pieces
from odqa.workers import worker_pool

# Content morphemes: nouns, numerals, pronouns, verb/adjective stems, adverbs,
# determiners, roots, foreign words, hanja and numbers.
DEFAULT_POS = ("NN", "NR", "NP", "VV", "VA", "MAG", "MM", "XR", "SL", "SH", "SN")

_PUNCT = re.compile(r"[^\w]+", re.UNICODE)


def _norm(form: str) -> str:
    return unicodedata.normalize("NFKC", form).lower()


def _version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "missing"


def _dists_version(dists: Sequence[str]) -> str:
    return "+".join(f"{d}-{_version(d)}" for d in dists) or "builtin"


class Analyzer:
    name = "base"
    dists: tuple[str, ...] = ()

    def __init__(self, pos: Sequence[str] = DEFAULT_POS, workers: int = 0):
        self.pos = tuple(pos)
        self.workers = workers or min(os.cpu_count() or 1, 4)

    @property
    def version(self) -> str:
        return _dists_version(self.dists)

    def spec(self) -> dict:
        return {"name": self.name, "version": self.version, "pos": list(self.pos), "normalization": NORMALIZATION}

    def tokenize(self, texts: Sequence[str], progress: Callable[[float], None] | None = None) -> list[list[str]]:
        """Index terms of each text, read through `normalize` (the same for passages and questions)."""
        return self._tokenize([normalize(t) for t in texts], progress)

    def _tokenize(self, texts: list[str], progress: Callable[[float], None] | None = None) -> list[list[str]]:
        raise NotImplementedError

    def __call__(self, text: str) -> list[str]:
        return self.tokenize([text])[0]

    def keep(self, tag: str) -> bool:
        return not self.pos or tag.startswith(self.pos)


class WhitespaceAnalyzer(Analyzer):
    name = "whitespace"

    def spec(self) -> dict:
        return {**super().spec(), "pos": []}

    def _tokenize(self, texts, progress=None):
        out = [[t for t in _PUNCT.sub(" ", _norm(x)).split() if t] for x in texts]
        if progress:
            progress(len(texts))
        return out


class CharNgramAnalyzer(Analyzer):
    """Character bigrams inside each whitespace word (single-character words kept)."""
    name = "char-ngram"
    n = 2

    def spec(self) -> dict:
        return {**super().spec(), "pos": [], "n": self.n}

    def _tokenize(self, texts, progress=None):
        out = []
        for x in texts:
            toks = []
            for w in _PUNCT.sub(" ", _norm(x)).split():
                toks.extend([w] if len(w) <= self.n else [w[i:i + self.n] for i in range(len(w) - self.n + 1)])
            out.append(toks)
        if progress:
            progress(len(texts))
        return out


class KiwiAnalyzer(Analyzer):
    name = "kiwi"
    dists = ("kiwipiepy", "kiwipiepy_model")

    def __init__(self, pos=DEFAULT_POS, workers=0):
        super().__init__(pos, workers)
        try:
            from kiwipiepy import Kiwi
        except ImportError:
            raise OdqaError("analyzer 'kiwi' needs kiwipiepy: pip install kiwipiepy") from None
        self._kiwi = Kiwi(num_workers=self.workers, load_typo_dict=False, load_multi_dict=False)
        self._lock = threading.Lock()     # one Kiwi object, callers from several threads take turns

    def _terms(self, batch: list[str]) -> list[list[str]]:
        with self._lock:
            analysed = list(self._kiwi.tokenize(batch))
        return [[_norm(t.form) for t in toks if self.keep(t.tag)] for toks in analysed]

    def _tokenize(self, texts, progress=None):
        return map_pieces(list(texts), self._terms, progress, max_pieces=256)


_LOCAL = threading.local()     # one MeCab tagger per thread (a tagger is not safe to share)


def mecab_tagger():
    """This thread's MeCab tagger (made on first use)."""
    tagger = getattr(_LOCAL, "mecab", None)
    if tagger is None:
        import mecab
        tagger = _LOCAL.mecab = mecab.MeCab()
    return tagger


DECOMPOUND_MODES = ("none", "mixed", "discard")
_SPLIT_TYPES = ("Compound", "Inflect", "Preanalysis")   # MeCab-ko entries that list their parts


def mecab_features(text: str) -> list[tuple[str, str]]:
    """(surface, MeCab feature CSV) of each morpheme of `text`, in order. The CSV is
    `pos,semantic,jongseong,reading,type,start_pos,end_pos,expression`; `type` Compound/Inflect/Preanalysis
    entries list their parts in `expression` (`대한/NNG/*+민국/NNG/*`). Read straight off MeCab's
    lattice: `MeCab.parse` builds named tuples of every field, most of a short query's analysis time."""
    tagger = mecab_tagger()
    raw = getattr(tagger, "_tagger", None)
    if raw is None:                    # another python-mecab-ko layout: its public API
        return [(m.surface, str(m.feature)) for m in tagger.parse(text)]
    from mecab.utils import create_lattice
    lattice = create_lattice(text)
    if not raw.parse(lattice):
        raise OdqaError(f"MeCab could not analyse a text: {raw.what()}")
    return [(node.surface, node.feature) for _, node in lattice]


def _parts(feature: list[str]) -> list[tuple[str, str]] | None:
    """(form, tag) of each part of a compound or inflected entry; None when it has none."""
    if len(feature) < 8 or feature[4] not in _SPLIT_TYPES or feature[7] in ("*", ""):
        return None
    out = []
    for part in feature[7].split("+"):
        bits = part.split("/")
        if len(bits) < 2 or not bits[0] or not bits[1]:
            return None                # not the form/TAG/semantic shape: keep the entry whole
        out.append((bits[0], bits[1]))
    return out


def _mecab_terms(texts: list[str], pos: tuple[str, ...], decompound: str = "none") -> list[list[str]]:
    """Index terms of each text: kept morphemes' surfaces and, with `decompound` mixed or discard, the
    parts MeCab lists for compound and inflected entries (대한민국 -> 대한 + 민국, 했 -> 하), each part
    kept by its own tag. mixed indexes the parts and the whole (as nori's `mixed`), discard the parts
    alone; an entry without parts is indexed whole in every mode."""
    out = []
    for text in texts:
        terms = []
        for surface, csv in mecab_features(text):
            feature = csv.split(",")
            tag = feature[0]
            whole = not pos or tag.split("+", 1)[0].startswith(pos)
            parts = _parts(feature) if decompound != "none" else None
            if parts is None:
                if whole:
                    terms.append(_norm(surface))
                continue
            form = _norm(surface)
            if whole and decompound == "mixed":
                terms.append(form)
            for part, part_tag in parts:
                if not pos or part_tag.startswith(pos):
                    part = _norm(part)
                    if part != form or decompound == "discard" or not whole:
                        terms.append(part)
        out.append(terms)
    return out


class MecabAnalyzer(Analyzer):
    name = "mecab"
    dists = ("python-mecab-ko", "python-mecab-ko-dic")
    parallel_min = 2000          # below this many texts ...
    parallel_min_chars = 300_000  # ... and this many characters a process pool costs more than it saves
    default_decompound = "discard"    # chosen on the train questions (BENCHMARKS.md, against Lucene nori)

    def __init__(self, pos=DEFAULT_POS, workers=0, decompound: str | None = None):
        super().__init__(pos, workers)
        self.decompound = self.default_decompound if decompound is None else decompound
        if self.decompound not in DECOMPOUND_MODES:
            raise OdqaError(f"unknown decompound mode '{self.decompound}' (choose from {', '.join(DECOMPOUND_MODES)})")
        try:
            import mecab  # noqa: F401
        except ImportError:
            raise OdqaError("analyzer 'mecab' needs python-mecab-ko: pip install python-mecab-ko") from None

    def spec(self) -> dict:
        return {**super().spec(), "decompound": self.decompound}

    def _tokenize(self, texts, progress=None):
        texts = list(texts)
        run = partial(_mecab_terms, pos=self.pos, decompound=self.decompound)
        if self.workers > 1 and (len(texts) >= self.parallel_min or sum(map(len, texts)) >= self.parallel_min_chars):
            import multiprocessing as mp
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
            with worker_pool(self.workers, ctx) as pool:
                return map_pieces(texts, run, progress, mapper=pool.map)
        return map_pieces(texts, run, progress)


ANALYZERS: dict[str, type[Analyzer]] = {
    "mecab": MecabAnalyzer,
    "kiwi": KiwiAnalyzer,
    "whitespace": WhitespaceAnalyzer,
    "char-ngram": CharNgramAnalyzer,
}


def make_analyzer(name: str, pos: Sequence[str] | None = None, workers: int = 0,
                  decompound: str | None = None) -> Analyzer:
    """The analyzer `name`; `decompound` (none | mixed | discard, None = its default) is MeCab's alone."""
    if name not in ANALYZERS:
        raise OdqaError(f"unknown analyzer '{name}' (choose from {', '.join(ANALYZERS)})")
    pos = DEFAULT_POS if pos is None else tuple(pos)
    if name == "mecab":
        return MecabAnalyzer(pos, workers, decompound)
    if decompound not in (None, "none"):
        raise OdqaError(f"decompound '{decompound}' needs the mecab analyzer (analyzer '{name}' reports no "
                        "compound parts)")
    return ANALYZERS[name](pos, workers)


def installed_version(name: str) -> str:
    """Version string the named analyzer would record now (without loading it)."""
    return _dists_version(ANALYZERS[name].dists) if name in ANALYZERS else "unknown"
