import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import losses
from tests.conftest import assert_same

D = torch.float64


def _dists(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    log_q = torch.log_softmax(torch.randn(shape, generator=g, dtype=D), -1).requires_grad_()
    p = torch.softmax(torch.randn(shape, generator=g, dtype=D), -1).requires_grad_()
    return log_q, p


@pytest.mark.parametrize("reduction", ["none", "mean", "sum", "batchmean"])
@pytest.mark.parametrize("log_target", [False, True])
@pytest.mark.parametrize("shape", [(5,), (4, 6), (2, 3, 5)])
def test_kl_div_matches_torch(reduction, log_target, shape):
    log_q, p = _dists(shape)
    target = p.detach().log().requires_grad_() if log_target else p
    ours = losses.kl_div(log_q, target, reduction, log_target)
    theirs = F.kl_div(log_q, target, reduction=reduction, log_target=log_target)
    assert_same(ours, theirs, (log_q, target))


def test_kl_div_default_is_batchmean_the_true_kl():
    log_q, p = _dists((4, 6))
    expected = (p * (p.log() - log_q)).sum() / 4
    torch.testing.assert_close(losses.kl_div(log_q, p), expected)
    torch.testing.assert_close(losses.KLDivLoss()(log_q, p), expected)
    assert losses.KLDivLoss().reduction == "batchmean"


def test_zero_log_zero_is_zero_with_finite_gradients():
    log_q = torch.tensor([[float("-inf"), -0.5, -1.0]], dtype=D, requires_grad=True)
    p = torch.tensor([[0.0, 0.5, 0.5]], dtype=D, requires_grad=True)
    loss = losses.kl_div(log_q, p, reduction="sum")
    expected = 0.5 * (torch.log(torch.tensor(0.5, dtype=D)) + 0.5) + 0.5 * (
        torch.log(torch.tensor(0.5, dtype=D)) + 1.0
    )
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(log_q.grad).all() and torch.isfinite(p.grad[0, 1:]).all()
    assert torch.isnan(F.kl_div(log_q, p, reduction="sum"))  # torch's trap


def test_gradcheck():
    log_q, p = _dists((3, 4))
    assert torch.autograd.gradcheck(lambda a, b: losses.kl_div(a, b), (log_q, p))
    a = torch.randn(3, 4, dtype=D, requires_grad=True)
    b = torch.randn(3, 4, dtype=D, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, y: losses.kl_divergence(x, y), (a, b))


def _reference_kl(p_logits, q_logits, dim):
    log_p = torch.log_softmax(p_logits, dim)
    log_q = torch.log_softmax(q_logits, dim)
    return (log_p.exp() * (log_p - log_q)).sum(dim)


@pytest.mark.parametrize("dim", [-1, 0, 1])
@pytest.mark.parametrize("reduction", ["none", "sum", "mean", "batchmean"])
def test_kl_divergence_from_logits(dim, reduction):
    a = torch.randn(3, 5, 4, dtype=D, requires_grad=True)
    b = torch.randn(3, 5, 4, dtype=D, requires_grad=True)
    per = _reference_kl(a, b, dim)
    expected = {"none": per, "sum": per.sum()}.get(reduction, per.mean())
    assert_same(losses.kl_divergence(a, b, dim=dim, reduction=reduction), expected, (a, b))


def test_kl_divergence_equals_cross_entropy_minus_entropy_and_is_asymmetric():
    a = torch.randn(6, 5, dtype=D)
    b = torch.randn(6, 5, dtype=D)
    p = torch.softmax(a, -1)
    cross = losses.cross_entropy(b, p, reduction="none")
    entropy = losses.cross_entropy(a, p, reduction="none")
    torch.testing.assert_close(losses.kl_divergence(a, b, reduction="none"), cross - entropy)
    assert (cross >= entropy - 1e-12).all()
    forward = losses.kl_divergence(a, b, reduction="none")
    reverse = losses.kl_divergence(b, a, reduction="none")
    assert not torch.allclose(forward, reverse)
    assert losses.kl_divergence(a, a).abs() < 1e-12


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=1, max_size=3),
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]),
    log_target=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_kl_div_random_shapes(shape, reduction, log_target, seed):
    log_q, p = _dists(tuple(shape), seed)
    target = p.detach().log().requires_grad_() if log_target else p
    ours = losses.kl_div(log_q, target, reduction, log_target)
    theirs = F.kl_div(log_q, target, reduction=reduction, log_target=log_target)
    assert_same(ours, theirs, (log_q, target))


def test_bad_input():
    with pytest.raises(ValueError, match=r"target shape \(3,\) must equal input shape \(2, 3\)"):
        losses.kl_div(torch.zeros(2, 3), torch.zeros(3))
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        losses.kl_div(torch.zeros(3), torch.zeros(3), reduction="avg")
    with pytest.raises(TypeError, match="target.*int64"):
        losses.kl_div(torch.zeros(3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(ValueError, match="q_logits shape"):
        losses.kl_divergence(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(IndexError, match="dim 2 is out of range"):
        losses.kl_divergence(torch.zeros(2, 3), torch.zeros(2, 3), dim=2)
