"""The bi-encoder's choices that depend on the backbone: the contrastive temperature and the passage encoder
query-side training scores against."""

from __future__ import annotations


def default_temperature(backbone: str) -> float:
    """e5 models were contrastively trained at 0.01 and keep their similarities in a narrow band;
    at a softer 0.05 the loss pushes that band apart, a likely cause of what was measured here
    (zero-shot dev R@1 0.814 fell to 0.748 on a 1,455-passage slice of the benchmark after 54
    steps at 0.05). Other encoders get the usual 0.05."""
    from odqa.modeling.backbone import wants_e5_prefixes
    return 0.01 if wants_e5_prefixes(backbone) else 0.05


def passage_base(backbone: str) -> str:
    """The encoder whose passage vectors query-side training scores against: the backbone itself, or
    the passage encoder a query-side folder already pairs with (training it further keeps the pair)."""
    from odqa.modeling.backbone import backbone_info
    from odqa.retrieval.dense import passage_encoder_spec
    info = backbone_info(backbone)
    if info.kind != "local":
        return backbone
    return passage_encoder_spec(info.path) or info.path
