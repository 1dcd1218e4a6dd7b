"""A shallower backbone: N of its transformer layers kept, evenly spaced from the first to the last.

A reader on 6 of e5-small's 12 layers reads in about half the time; started from a trained reader's layers
and distilled from it (`odqa train reader --init R --teacher R --layers 6`), it keeps most of its answers.
The kept layers are renumbered 0..N-1 and the config says N, so the checkpoint saves and loads as an ordinary
N-layer model.
"""

from __future__ import annotations

from odqa.errors import ConfigError


def layers_to_keep(total: int, n: int) -> list[int]:
    """Which of `total` layers to keep for `n` (1 <= n <= total): evenly spaced, the last always, the first when
    n > 1 (12 -> 6: 0, 2, 4, 7, 9, 11)."""
    if not 1 <= n <= total:
        raise ConfigError(f"cannot keep {n} of a backbone's {total} layers (choose 1 to {total})")
    if n == 1:
        return [total - 1]
    return sorted({round(i * (total - 1) / (n - 1)) for i in range(n)})


def keep_layers(backbone, n: int) -> list[int]:
    """Keep `n` of `backbone`'s transformer layers (`layers_to_keep`), in place; the indices kept."""
    import torch.nn as nn

    encoder = getattr(backbone, "encoder", None)
    layers = getattr(encoder, "layer", None)
    if not isinstance(layers, nn.ModuleList):
        raise ConfigError(f"cannot drop layers of a {type(backbone).__name__}: no encoder.layer list")
    keep = layers_to_keep(len(layers), n)
    encoder.layer = nn.ModuleList(layers[i] for i in keep)
    backbone.config.num_hidden_layers = n
    return keep
