"""Heads on top of backbone token states, swappable by config.

A head is a *body* (how token states are re-read: `linear` keeps them, `cnn` runs
1D convolutions of several widths and concatenates them, `lstm` runs a BiLSTM)
followed by an output layer: `SpanHead` gives start/end logits per token (reader),
`ClassificationHead` pools the sequence (CLS, mean or entity starts) into label
logits (relation extraction). `HeadConfig` is saved with every checkpoint so
loading needs no flags.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

import torch
from torch import nn

from odqa.errors import OdqaError

HEAD_TYPES = ("linear", "cnn", "lstm")
POOLINGS = ("cls", "mean", "entity_start")


@dataclass
class HeadConfig:
    type: str = "linear"                                   # linear | cnn | lstm
    dropout: float = 0.1
    kernels: list[int] = field(default_factory=lambda: [1, 3, 5])   # cnn: odd widths
    channels: int = 128                                    # cnn: output channels per width
    lstm_hidden: int = 192                                 # lstm: per direction
    lstm_layers: int = 1
    em_feature: bool = False                               # span: a learned EM-token embedding (2 rows, zero-init)

    def __post_init__(self) -> None:
        if self.type not in HEAD_TYPES:
            raise OdqaError(f"head type {self.type!r} unknown: choose one of {', '.join(HEAD_TYPES)}")
        if self.type == "cnn" and (not self.kernels or any(k < 1 or k % 2 == 0 for k in self.kernels)):
            raise OdqaError(f"cnn head kernels must be odd positive widths, got {self.kernels}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "HeadConfig":
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise OdqaError(f"head config: unknown field(s) {', '.join(sorted(unknown))}")
        return cls(**d)


class LinearBody(nn.Module):
    def __init__(self, hidden: int, cfg: HeadConfig):
        super().__init__()
        self.out_dim = hidden

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return states


class CNNBody(nn.Module):
    """Same-length 1D convolutions of several widths over token states, concatenated."""

    def __init__(self, hidden: int, cfg: HeadConfig):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(hidden, cfg.channels, k, padding=k // 2) for k in cfg.kernels)
        self.act = nn.GELU()
        self.out_dim = cfg.channels * len(cfg.kernels)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = (states * mask.unsqueeze(-1).to(states.dtype)).transpose(1, 2)   # padding never leaks in
        return torch.cat([self.act(conv(x)) for conv in self.convs], dim=1).transpose(1, 2)


class LSTMBody(nn.Module):
    """BiLSTM over the real (unpadded) tokens of each sequence."""

    def __init__(self, hidden: int, cfg: HeadConfig):
        super().__init__()
        self.lstm = nn.LSTM(hidden, cfg.lstm_hidden, num_layers=cfg.lstm_layers, batch_first=True,
                            bidirectional=True)
        self.out_dim = 2 * cfg.lstm_hidden

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        lengths = mask.sum(dim=1).clamp(min=1).cpu()
        packed = nn.utils.rnn.pack_padded_sequence(states, lengths, batch_first=True, enforce_sorted=False)
        out, _ = self.lstm(packed)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=True, total_length=states.shape[1])
        return out


_BODIES = {"linear": LinearBody, "cnn": CNNBody, "lstm": LSTMBody}


def make_body(cfg: HeadConfig, hidden: int) -> nn.Module:
    return _BODIES[cfg.type](hidden, cfg)


def make_em_embedding(hidden: int) -> nn.Embedding:
    """The EM-token feature's embedding, added to the token embeddings: zero at first, so a reader that gains
    it reads exactly as before until trained."""
    em = nn.Embedding(2, hidden)
    nn.init.zeros_(em.weight)
    return em


class SpanHead(nn.Module):
    """Start and end logits per token; padded positions get a large negative logit."""

    def __init__(self, hidden: int, cfg: HeadConfig):
        super().__init__()
        self.cfg = cfg
        self.body = make_body(cfg, hidden)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(self.body.out_dim, 2)
        self.em = make_em_embedding(hidden) if cfg.em_feature else None

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logits = self.out(self.dropout(self.body(states, mask)))
        logits = logits.masked_fill(~mask.bool().unsqueeze(-1), -1e4)
        return logits[..., 0], logits[..., 1]


class ClassificationHead(nn.Module):
    """Sequence label logits from CLS, mean or entity-start pooling of the body's states.

    `entity_start` takes `positions` (batch, n) token indices (e.g. subject and object
    start markers) and concatenates the states found there.
    """

    def __init__(self, hidden: int, num_labels: int, cfg: HeadConfig, pooling: str = "cls", n_entities: int = 2):
        super().__init__()
        if pooling not in POOLINGS:
            raise OdqaError(f"pooling {pooling!r} unknown: choose one of {', '.join(POOLINGS)}")
        self.cfg, self.pooling, self.n_entities = cfg, pooling, n_entities
        self.body = make_body(cfg, hidden)
        width = self.body.out_dim * (n_entities if pooling == "entity_start" else 1)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(width, num_labels)

    def pool(self, x: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor | None) -> torch.Tensor:
        if self.pooling == "cls":
            return x[:, 0]
        if self.pooling == "mean":
            m = mask.unsqueeze(-1).to(x.dtype)
            return (x * m).sum(1) / m.sum(1).clamp(min=1.0)
        if positions is None:
            raise OdqaError("entity_start pooling needs entity positions")
        idx = positions.long().unsqueeze(-1).expand(-1, -1, x.shape[-1])
        return torch.gather(x, 1, idx).flatten(1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        x = self.body(states, mask)
        return self.out(self.dropout(self.pool(x, mask, positions)))
