"""The relation classifier: the shared backbone with a classification head, its checkpoint settings and the
hierarchical label composition.

- Model: `modeling.build_model(..., "classification", pooling=cls|mean|entity_start)`.
  With ``entity_start`` pooling the head reads the token states at the subject's and
  object's opening markers (or the first word token when unmarked).
- Hierarchical mode: the head gives F family logits (no_relation / org / per, from
  the label prefix before ``:``) followed by one logit per label; the 30-way
  probabilities are ``P(family) * P(label | family)``, the second a softmax over the
  labels of that family. Losses take these log-probabilities, so cross-entropy is
  exactly CE(family) + CE(label | family).
- Checkpoints (`save_model`) carry the label list and the RE settings in `extra`;
  `load_re_model` needs no flags and refuses a checkpoint with another label set.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from odqa.errors import ModelError
from odqa.modeling.heads import HeadConfig
from odqa.relation.config import RETrainConfig
from odqa.relation.markers import special_tokens

SETTINGS_VERSION = 1
DEFAULT_RE_MODEL = "ko-re"                        # the shipped RE model (`odqa models`)


@dataclass
class RESettings:
    """What a checkpoint must remember to featurise and decode like training did."""
    labels: list[str]
    markers: str = "typed"
    pooling: str = "entity_start"
    hierarchical: bool = False
    max_length: int = 128
    version: int = SETTINGS_VERSION
    train: dict[str, Any] = field(default_factory=dict)   # provenance only

    def to_dict(self) -> dict[str, Any]:
        return {"relation": asdict(self)}

    @classmethod
    def from_extra(cls, extra: dict[str, Any], where: str) -> "RESettings":
        d = (extra or {}).get("relation")
        if not isinstance(d, dict) or not d.get("labels"):
            raise ModelError(f"{where}: not a relation extraction checkpoint (no label list in odqa_head.json)")
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})

    def check(self, other: "RESettings", where: str) -> None:
        """Refuse a checkpoint whose labels or featurisation differ from `other`."""
        if self.labels != other.labels:
            raise ModelError(f"{where}: the checkpoint has another label set ({_label_diff(self.labels, other.labels)})")
        diff = [k for k in ("markers", "pooling", "hierarchical", "max_length") if getattr(self, k) != getattr(other, k)]
        if diff:
            raise ModelError(f"{where}: the checkpoint was made with other settings: " + ", ".join(
                f"{k} {getattr(self, k)!r} (asked {getattr(other, k)!r})" for k in diff))


def check_resumable(last: Path, settings: RESettings, backbone: str) -> None:
    """Refuse to resume from `last` unless it holds a checkpoint of the same labels, featurisation and backbone."""
    from odqa.modeling.checkpoint import read_meta
    if not last.is_dir():
        raise ModelError(f"cannot resume: no checkpoint at {last} (train once without `resume`)")
    prev = RESettings.from_extra(read_meta(last).get("extra", {}), str(last))
    prev.check(settings, str(last))
    if prev.train.get("backbone", backbone) != backbone:
        raise ModelError(f"{last}: the checkpoint started from backbone {prev.train['backbone']!r}, not {backbone!r}")


def _label_diff(have: list[str], want: list[str]) -> str:
    only_have, only_want = [x for x in have if x not in want], [x for x in want if x not in have]
    if not only_have and not only_want:
        return "same labels in another order"
    parts = []
    if only_have:
        parts.append("only in checkpoint: " + ", ".join(only_have[:3]) + ("..." if len(only_have) > 3 else ""))
    if only_want:
        parts.append("only in yours: " + ", ".join(only_want[:3]) + ("..." if len(only_want) > 3 else ""))
    return "; ".join(parts)


class Hierarchy:
    """Families by label prefix (`org:x` -> org, `no_relation` -> no_relation), first-seen order."""

    def __init__(self, labels: list[str]):
        self.families: list[str] = []
        fam_of = []
        for lab in labels:
            fam = lab.split(":", 1)[0] if ":" in lab else lab
            if fam not in self.families:
                self.families.append(fam)
            fam_of.append(self.families.index(fam))
        self.fam_of = torch.tensor(fam_of, dtype=torch.long)
        self.members = torch.zeros(len(self.families), len(labels), dtype=torch.bool)
        self.members[self.fam_of, torch.arange(len(labels))] = True

    @property
    def n_families(self) -> int:
        return len(self.families)

    def log_probs(self, logits: torch.Tensor) -> torch.Tensor:
        """(batch, F + L) head logits -> (batch, L) log P(family) + log P(label | family)."""
        nf = self.n_families
        fam = torch.log_softmax(logits[:, :nf], dim=-1)
        fine = logits[:, nf:]
        members, fam_of = self.members.to(logits.device), self.fam_of.to(logits.device)
        masked = fine.unsqueeze(1).masked_fill(~members, float("-inf"))       # (batch, F, L)
        lse = torch.logsumexp(masked, dim=-1)                                 # (batch, F)
        return fam[:, fam_of] + fine - lse[:, fam_of]


def output_logits(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    return model(batch["input_ids"], batch["attention_mask"], positions=batch["positions"])


def log_probs(logits: torch.Tensor, hierarchy: Hierarchy | None) -> torch.Tensor:
    """Label log-probabilities from head logits (flat softmax or hierarchical composition)."""
    return hierarchy.log_probs(logits) if hierarchy is not None else torch.log_softmax(logits, dim=-1)


def n_outputs(settings: RESettings) -> int:
    return len(settings.labels) + (Hierarchy(settings.labels).n_families if settings.hierarchical else 0)


def build_re_model(cfg: RETrainConfig, labels: list[str]):
    """(tokenizer, model, settings) with a fresh classification head on `cfg.backbone`."""
    from odqa.modeling.checkpoint import build_model
    settings = RESettings(labels=list(labels), markers=cfg.markers, pooling=cfg.pooling,
                          hierarchical=cfg.hierarchical, max_length=cfg.max_length)
    head = HeadConfig(type=cfg.head, dropout=cfg.dropout)
    torch.manual_seed(cfg.train.seed)   # the head's initialisation follows --seed
    tokenizer, model = build_model(cfg.backbone, "classification", head, num_labels=n_outputs(settings),
                                   pooling=cfg.pooling, n_entities=2)
    extra = special_tokens(cfg.markers)
    if extra:
        tokenizer.add_special_tokens({"additional_special_tokens": extra})
        if len(tokenizer) > model.backbone.config.vocab_size:
            model.backbone.resize_token_embeddings(len(tokenizer))
    return tokenizer, model, settings


def load_re_model(folder: str | Path, labels: list[str] | None = None, device: str = "auto"):
    """(tokenizer, model on `device`, settings) from a checkpoint; refuses one trained with another label set."""
    from odqa.modeling.checkpoint import load_model
    tokenizer, model, meta = load_model(folder, "classification", device=device)
    settings = RESettings.from_extra(meta.get("extra", {}), str(folder))
    if labels is not None and list(labels) != settings.labels:
        raise ModelError(f"{folder}: the checkpoint has another label set ({_label_diff(settings.labels, list(labels))})")
    if meta.get("head_kwargs", {}).get("num_labels") != n_outputs(settings):
        raise ModelError(f"{folder}: head has {meta.get('head_kwargs', {}).get('num_labels')} outputs, "
                        f"its settings need {n_outputs(settings)}")
    return tokenizer, model, settings


def load_re_checkpoint(model: str | Path | None, labels: Path | None, device: str = "auto"):
    """(tokenizer, model, settings) of a checkpoint folder or shipped model (None: the shipped ko-re) on
    `device`; refused unless it uses the label list in the file `labels` when one is given."""
    from odqa.device import resolve_device
    from odqa.modeling.shipped import checkpoint_or_shipped
    from odqa.relation.data import load_labels
    resolve_device(device)
    folder = checkpoint_or_shipped(model, "re", DEFAULT_RE_MODEL)
    return load_re_model(folder, load_labels(labels) if labels else None, device)
