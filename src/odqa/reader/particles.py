"""`odqa train particles`: learning the trailing morphemes (josa, endings) to strip from a reader's answers."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal, Optional

from pydantic import Field

from odqa.config import Section


class ParticlesTrainRequest(Section):
    """`odqa train particles`: learn the trailing morphemes to strip from a reader's answers."""
    reader: Path                                  # reader checkpoint whose predictions the rules correct
    train_files: list[Path] = Field(min_length=1)      # training questions with contexts
    out: Optional[Path] = None                    # rules file (`odqa.api.train_particles`: READER/particles.json)
    analyzer: Literal["mecab", "kiwi"] = "mecab"
    limit: int = Field(0, ge=0)                   # use only the first N questions (0 = all)


@dataclass
class ParticlesTrainResult:
    out: str
    questions: int
    examples: int
    train_em_before: float
    train_em_after: float
    rules: list[dict]

    def to_json(self) -> dict:
        return asdict(self)


def train(cfg: ParticlesTrainRequest, *, quiet: bool = True) -> ParticlesTrainResult:
    """The reader reads each training question's own passage; a rule is kept only if it fixes more of those
    predictions than it breaks. The rules are saved to `cfg.out` (the application layer names the default)."""
    from odqa.corpus import load_questions
    from odqa.reader.reader import Reader
    from odqa.reader.task import closed_domain_inputs
    from odqa.errors import ConfigError
    from odqa.text.particles import ParticleRules
    from odqa.types import Hit
    if cfg.out is None:
        raise ConfigError("config field 'out': the rules file to write is not set")
    qs = [q for f in cfg.train_files for q in load_questions(f) if q.context and q.answers]
    qs = qs[:cfg.limit] if cfg.limit else qs
    texts, passages = closed_domain_inputs(qs)         # each question's own passage, its only hit
    hits = [[Hit(p, 1.0, 1, "gold") for p in own] for own in passages]
    answers = Reader(cfg.reader, n_best=1, retrieval_weight=0.0).read_batch(texts, hits, quiet=quiet)
    examples = [(q.context, a[0].start, a[0].end, q.answers) for q, a in zip(qs, answers) if a]
    rules = ParticleRules.learn(examples, analyzer=cfg.analyzer)
    target = cfg.out
    rules.save(target)
    before, after = rules.exact_match_rates(examples)
    return ParticlesTrainResult(str(target), len(qs), len(examples), before, after, rules.to_dict()["rules"])
