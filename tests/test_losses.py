import pytest
import torch
import torch.nn.functional as F

from odqa.errors import OdqaError
from odqa.modeling.losses import LossConfig, cross_entropy, focal_loss, label_smoothing_loss, make_loss


def _data(seed=0, n=16, c=7):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, c, generator=g) * 3, torch.randint(0, c, (n,), generator=g)


def test_cross_entropy_matches_torch_with_and_without_weights():
    logits, target = _data()
    w = torch.rand(7, generator=torch.Generator().manual_seed(1)) + 0.1
    assert torch.allclose(cross_entropy(logits, target), F.cross_entropy(logits, target), atol=1e-6)
    assert torch.allclose(cross_entropy(logits, target, w), F.cross_entropy(logits, target, weight=w), atol=1e-6)


def test_focal_with_gamma_zero_is_cross_entropy_and_gamma_down_weights_easy_examples():
    logits, target = _data(2)
    w = torch.linspace(0.5, 2.0, 7)
    assert torch.allclose(focal_loss(logits, target, gamma=0.0), F.cross_entropy(logits, target), atol=1e-6)
    assert torch.allclose(focal_loss(logits, target, 0.0, w), F.cross_entropy(logits, target, weight=w), atol=1e-6)
    # by hand for gamma = 2
    p = F.softmax(logits, -1)[torch.arange(16), target]
    assert torch.allclose(focal_loss(logits, target, 2.0), (-(1 - p) ** 2 * p.log()).mean(), atol=1e-6)
    assert focal_loss(logits, target, 2.0) < F.cross_entropy(logits, target)
    with pytest.raises(OdqaError, match="gamma"):
        focal_loss(logits, target, -1.0)


def test_label_smoothing_matches_torch():
    logits, target = _data(3)
    for eps in (0.0, 0.1, 0.3):
        assert torch.allclose(label_smoothing_loss(logits, target, eps),
                              F.cross_entropy(logits, target, label_smoothing=eps), atol=1e-6)


def test_losses_accept_log_probabilities_and_have_gradients():
    logits, target = _data(4)
    logits.requires_grad_(True)
    logp = F.log_softmax(logits, -1)
    for cfg in (LossConfig("ce"), LossConfig("focal", gamma=1.5), LossConfig("label_smoothing", smoothing=0.2)):
        fn = make_loss(cfg)
        assert torch.allclose(fn(logp, target), fn(logits, target), atol=1e-5)
        fn(logits, target).backward()
        assert logits.grad is not None and torch.isfinite(logits.grad).all()
        logits.grad = None


def test_make_loss_rejects_unknown_names():
    with pytest.raises(OdqaError, match="loss 'hinge' unknown"):
        LossConfig("hinge")
    with pytest.raises(OdqaError, match="class weights"):
        make_loss(LossConfig("label_smoothing"), weight=torch.ones(3))
