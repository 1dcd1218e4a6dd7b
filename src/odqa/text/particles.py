"""Learned particle (josa) stripping for predicted answer spans.

A reader often predicts `세종대왕이` where the gold answer is `세종대왕`. The rules
here are learned, not hand-written: a rule is one trailing morpheme, keyed by its
POS tag and surface form (`("JKS", "이")`), that predicted spans carry and gold
answers do not. A rule is kept only if, on the learning data, stripping it fixes
more examples than it breaks (counts are stored per rule).

    examples = ParticleRules.from_gold(train_questions)      # or real reader predictions
    rules = ParticleRules.learn(examples, analyzer="mecab")
    rules.save("reader/particles.json")
    start, end = ParticleRules.load(path).apply(context, start, end)

`apply` tags the whole passage (so `이` after a noun is JKS, and `이` in `m이며`
is VCP), then strips matching morphemes from the end of the span, repeatedly (up
to `max_strip`), never down to an empty span. No torch here.
"""

from __future__ import annotations

import bisect
import json
import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, NamedTuple, Sequence

from odqa.atomic import atomic_write_text
from odqa.errors import ModelError, OdqaError
from odqa.metrics import exact_match
from odqa.text.morphs import Morph, analyse, analyzer_version, check_analyzer

log = logging.getLogger(__name__)

FORMAT = "odqa-particle-rules"
VERSION = 1
# Tags (first component of a possibly compound tag) that may become rules:
# particles, endings, the copula and punctuation. Content morphemes never do.
DEFAULT_TAGS = ("J", "E", "VCP", "SF", "SP", "SC", "SE", "SSC", "SY", "SO", "SW")
DEFAULT_MAX_STRIP = 3

Key = tuple[str, str]   # (POS tag, surface form)


class Example(NamedTuple):
    """A predicted span (character offsets into `context`, end exclusive) and the gold answers."""
    context: str
    pred_start: int
    pred_end: int
    gold_texts: list[str]


@dataclass
class Rule:
    tag: str
    form: str
    fixes: int = 0    # learning examples right with the rule set, wrong without this rule
    breaks: int = 0   # learning examples wrong with the rule set, right without this rule
    seen: int = 0     # learning spans that ended (after earlier strips) with this morpheme

    @property
    def key(self) -> Key:
        return (self.tag, self.form)


def _rstrip_end(context: str, start: int, end: int) -> int:
    while end > start and context[end - 1].isspace():
        end -= 1
    return end


def _trailing(morphs: Sequence[Morph], ends: list[int], context: str, start: int, end: int,
              limit: int) -> list[tuple[Morph, int]]:
    """Up to `limit` trailing morphemes of the span, last first, each with the span end left after
    stripping it. Stops at a span end inside a morpheme and before the span would become empty."""
    out: list[tuple[Morph, int]] = []
    cur = _rstrip_end(context, start, end)
    while len(out) < limit:
        i = bisect.bisect_left(ends, cur)
        if i >= len(ends) or ends[i] != cur:
            break
        m = morphs[i]
        new_end = _rstrip_end(context, start, m.start)
        if m.start <= start or new_end <= start:
            break
        out.append((m, new_end))
        cur = new_end
    return out


def _analysis(context: str, end: int, analyzer: str) -> tuple[Sequence[Morph], list[int]]:
    """Morphemes of the whole context; if none ends at the span end, of the context cut at the span end."""
    morphs = analyse(context, analyzer)
    ends = [m.end for m in morphs]
    cut = _rstrip_end(context, 0, end)
    i = bisect.bisect_left(ends, cut)
    if i >= len(ends) or ends[i] != cut:
        morphs = analyse(context[:cut], analyzer)
        ends = [m.end for m in morphs]
    return morphs, ends


def _candidate_tag(tag: str, tags: Sequence[str]) -> bool:
    return tag.split("+", 1)[0].startswith(tuple(tags))


@dataclass
class _Prepared:
    chain: list[Key]      # trailing morpheme keys, last first
    correct: list[bool]   # correct[k]: right after stripping the first k of the chain


@dataclass
class ParticleRules:
    rules: dict[Key, Rule] = field(default_factory=dict)
    analyzer: str = "mecab"
    analyzer_version: str = ""
    tags: tuple[str, ...] = DEFAULT_TAGS
    max_strip: int = DEFAULT_MAX_STRIP
    learned_from: dict[str, Any] = field(default_factory=dict)
    stale: str = ""       # set by load() when the analyzer version differs from the one that learned

    def __post_init__(self) -> None:
        check_analyzer(self.analyzer)
        if not self.analyzer_version:
            self.analyzer_version = analyzer_version(self.analyzer)

    def __len__(self) -> int:
        return len(self.rules)

    def __contains__(self, key: Key) -> bool:
        return tuple(key) in self.rules

    # ----------------------------------------------------------- applying
    def apply(self, context: str, start: int, end: int) -> tuple[int, int]:
        """(start, end) of the span with matching trailing morphemes stripped (never empty)."""
        if not self.rules or end <= start:
            return start, end
        morphs, ends = _analysis(context, end, self.analyzer)
        new_end = end
        for m, after in _trailing(morphs, ends, context, start, end, self.max_strip):
            if (m.tag, m.form) not in self.rules:
                break
            new_end = after
        return start, new_end

    def apply_text(self, context: str, start: int, end: int) -> str:
        s, e = self.apply(context, start, end)
        return context[s:e]

    def exact_match_rates(self, examples: Iterable[Example | tuple]) -> tuple[float, float]:
        """Exact match (in %, 2 decimals) of the spans as predicted and after stripping."""
        examples = [Example(*e) for e in examples]
        before = sum(exact_match(e.context[e.pred_start:e.pred_end], e.gold_texts) for e in examples)
        after = sum(exact_match(self.apply_text(e.context, e.pred_start, e.pred_end), e.gold_texts) for e in examples)
        n = max(1, len(examples))
        return round(100 * before / n, 2), round(100 * after / n, 2)

    # ----------------------------------------------------------- learning
    @classmethod
    def learn(cls, examples: Iterable[Example | tuple], analyzer: str = "mecab",
              tags: Sequence[str] = DEFAULT_TAGS, max_strip: int = DEFAULT_MAX_STRIP,
              progress=None) -> "ParticleRules":
        """Learn the rule set from (context, pred_start, pred_end, gold_texts) examples.

        Candidates are trailing morphemes (with a tag in `tags`) whose stripping turns a wrong
        prediction into an exact match. Then, repeatedly, the rule whose removal costs least
        (fixes - breaks, leave-one-out against the current set) is dropped while that balance is
        not positive; what remains fixes more examples than it breaks, rule by rule.
        """
        check_analyzer(analyzer)
        prepared: list[_Prepared] = []
        candidates: set[Key] = set()
        n = exact_other = 0
        for ex in examples:
            context, start, end, golds = ex
            n += 1
            if progress:
                progress(1)
            if not golds or not 0 <= start < end <= len(context):
                continue
            morphs, ends = _analysis(context, end, analyzer)
            trail = _trailing(morphs, ends, context, start, end, max_strip)
            chain = [(m.tag, m.form) for m, _ in trail]
            correct = [bool(exact_match(context[start:end], golds))]
            correct += [bool(exact_match(context[start:e], golds)) for _, e in trail]
            usable = 0
            for key in chain:
                if not _candidate_tag(key[0], tags):
                    break
                usable += 1
            chain, correct = chain[:usable], correct[:usable + 1]
            if not chain:
                exact_other += correct[0]
                continue
            if not correct[0]:
                for k in range(1, len(chain) + 1):
                    if correct[k]:
                        candidates.update(chain[:k])
                        break
            prepared.append(_Prepared(chain, correct))
        rules = cls._prune(prepared, candidates)
        seen = Counter(k for p in prepared for k in p.chain)
        before = sum(p.correct[0] for p in prepared)
        after = sum(_outcome(p, set(rules)) for p in prepared)
        out = cls(analyzer=analyzer, tags=tuple(tags), max_strip=max_strip)
        for key, (fixes, breaks) in sorted(rules.items(), key=lambda kv: (-kv[1][0], kv[0])):
            out.rules[key] = Rule(key[0], key[1], fixes, breaks, seen[key])
        out.learned_from = {"examples": n, "with_candidate_ending": len(prepared),
                            "exact_before": before + exact_other, "exact_after": after + exact_other,
                            "candidates": len(candidates)}
        return out

    @staticmethod
    def _prune(prepared: list[_Prepared], candidates: set[Key]) -> dict[Key, tuple[int, int]]:
        by_key: dict[Key, list[int]] = {}
        for i, p in enumerate(prepared):
            for k in set(p.chain):
                if k in candidates:
                    by_key.setdefault(k, []).append(i)
        active = set(candidates)

        def count(key: Key) -> tuple[int, int]:
            without = active - {key}
            fixes = breaks = 0
            for i in by_key.get(key, []):
                a, b = _outcome(prepared[i], active), _outcome(prepared[i], without)
                fixes += a and not b
                breaks += b and not a
            return fixes, breaks

        counts = {key: count(key) for key in active}
        while counts:
            worst = min(counts, key=lambda k: (counts[k][0] - counts[k][1], counts[k][0], k))
            if counts[worst][0] - counts[worst][1] > 0:
                break
            active.discard(worst)
            del counts[worst]
            touched = {k for i in by_key.get(worst, []) for k in prepared[i].chain} & active
            for key in touched:      # only rules sharing an example with the dropped one change
                counts[key] = count(key)
        return counts

    @staticmethod
    def from_gold(questions: Iterable[Any], analyzer: str = "mecab", max_extra: int = 2) -> list[Example]:
        """Learning examples from gold answers alone (no reader predictions needed).

        For each gold answer found in its context: the gold span itself (a correct prediction:
        stripping it must not hurt) and the gold span extended by the next 1..`max_extra`
        morphemes of the same eojeol (what a reader that overshoots would predict).
        Questions are `odqa.types.Question`s or dicts with context, answers, answer_starts.
        """
        out: list[Example] = []
        for q in questions:
            context, answers, starts = _question_fields(q)
            if not context or not answers:
                continue
            morphs = analyse(context, check_analyzer(analyzer))
            starts_at = {m.start: i for i, m in enumerate(morphs)}
            ends_at = {m.end for m in morphs}
            done = set()
            for j, text in enumerate(answers):
                s = _locate(context, text, starts[j] if j < len(starts) else None)
                if s is None or (s, text) in done:
                    continue
                done.add((s, text))
                e = s + len(text)
                out.append(Example(context, s, e, list(answers)))
                if e not in ends_at or e >= len(context) or context[e].isspace():
                    continue
                i = starts_at.get(e)
                for extra in range(max_extra):
                    if i is None or i + extra >= len(morphs):
                        break
                    m = morphs[i + extra]
                    if extra and m.start != morphs[i + extra - 1].end:   # whitespace: the eojeol ended
                        break
                    out.append(Example(context, s, m.end, list(answers)))
        return out

    # ----------------------------------------------------------- files
    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, "version": VERSION,
                "analyzer": {"name": self.analyzer, "version": self.analyzer_version},
                "tags": list(self.tags), "max_strip": self.max_strip, "learned_from": self.learned_from,
                "rules": [{"tag": r.tag, "form": r.form, "fixes": r.fixes, "breaks": r.breaks, "seen": r.seen}
                          for r in self.rules.values()]}

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n")
        return path

    @classmethod
    def load(cls, path: str | Path) -> "ParticleRules":
        path = Path(path)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ModelError(f"{path}: particle rules file not found") from None
        except (OSError, UnicodeDecodeError, ValueError) as e:
            raise ModelError(f"{path}: not a particle rules file ({_one_line(e)})") from None
        try:
            if data.get("format") != FORMAT:
                raise ValueError(f"format is {data.get('format')!r}, expected {FORMAT!r}")
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r} is not supported (expected {VERSION})")
            an = data["analyzer"]
            rules = {}
            for i, r in enumerate(data["rules"]):
                if not isinstance(r.get("tag"), str) or not isinstance(r.get("form"), str) or not r["form"]:
                    raise ValueError(f"rule {i} needs string fields 'tag' and 'form'")
                rule = Rule(r["tag"], r["form"], int(r.get("fixes", 0)), int(r.get("breaks", 0)), int(r.get("seen", 0)))
                rules[rule.key] = rule
            out = cls(rules=rules, analyzer=str(an["name"]), analyzer_version=str(an.get("version", "")),
                      tags=tuple(data.get("tags", DEFAULT_TAGS)), max_strip=int(data.get("max_strip", DEFAULT_MAX_STRIP)),
                      learned_from=dict(data.get("learned_from", {})))
        except OdqaError as e:
            raise ModelError(f"{path}: {e}") from None
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise ModelError(f"{path}: not a usable particle rules file ({_one_line(e)})") from None
        now = analyzer_version(out.analyzer)
        if now != out.analyzer_version:
            out.stale = f"learned with {out.analyzer} {out.analyzer_version}, installed {now}"
            log.warning("%s: particle rules %s", path, out.stale)
        return out


def _outcome(p: _Prepared, active: set[Key]) -> bool:
    k = 0
    while k < len(p.chain) and p.chain[k] in active:
        k += 1
    return p.correct[k]


def _one_line(e: Exception) -> str:
    if isinstance(e, KeyError):
        return f"missing field {e}"
    return " ".join(str(e).split())


def _question_fields(q: Any) -> tuple[str, list[str], list[int]]:
    get = q.get if isinstance(q, dict) else lambda k, d=None: getattr(q, k, d)
    answers = get("answers", []) or []
    if isinstance(answers, dict):   # HF datasets shape
        return str(get("context", "") or ""), list(answers.get("text", [])), list(answers.get("answer_start", []))
    texts = [a["text"] if isinstance(a, dict) else str(a) for a in answers]
    starts = list(get("answer_starts", []) or [a.get("answer_start") for a in answers if isinstance(a, dict)])
    return str(get("context", "") or ""), texts, starts


def _locate(context: str, text: str, start: int | None) -> int | None:
    if not text:
        return None
    if start is not None and 0 <= start and context[start:start + len(text)] == text:
        return start
    i = context.find(text)
    return i if i >= 0 else None
