"""`odqa re export-text`: the distinct RE sentences as a pretraining corpus (optionally no_relation-undersampled)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

from pydantic import Field

from odqa.config import Section


class REExportRequest(Section):
    """`odqa re export-text`: the distinct RE sentences as a pretraining corpus."""
    train_files: list[Path] = Field(min_length=1)
    out: Path                                     # JSONL {id, title, text}
    no_relation_keep: float = Field(1.0, ge=0, le=1)   # share of no_relation records kept (1 = all)
    seed: int = Field(42, ge=0)


@dataclass
class REExportResult:
    out: str
    records: int
    sentences: int
    no_relation_keep: float

    def to_json(self) -> dict:
        return asdict(self)


def export(cfg: REExportRequest) -> REExportResult:
    """The distinct RE sentences as a JSONL corpus for `odqa pretrain` (optionally no_relation-undersampled)."""
    from odqa.relation.data import export_text, load_re, report_skipped, undersample_no_relation
    keep = cfg.no_relation_keep
    examples = []
    for f in cfg.train_files:
        ds = load_re(f, require_labels=keep < 1.0)
        report_skipped(ds)
        examples.extend(undersample_no_relation(ds.examples, keep, cfg.seed) if keep < 1.0 else ds.examples)
    return REExportResult(str(cfg.out), len(examples), export_text(examples, cfg.out), keep)
