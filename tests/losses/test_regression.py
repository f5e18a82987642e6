import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import losses
from tests.conftest import assert_same

REDUCTIONS = ["none", "mean", "sum"]
CASES = [
    (losses.l1_loss, F.l1_loss, {}),
    (losses.mse_loss, F.mse_loss, {}),
    (losses.huber_loss, F.huber_loss, {"delta": 0.7}),
    (losses.huber_loss, F.huber_loss, {"delta": 2.5}),
    (losses.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.5}),
    (losses.smooth_l1_loss, F.smooth_l1_loss, {"beta": 0.0}),
]


def _pair(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).requires_grad_()
    y = (3 * torch.randn(shape, generator=g, dtype=torch.float64)).requires_grad_()
    return x, y


@pytest.mark.parametrize("ours,theirs,kwargs", CASES)
@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("shape", [(), (7,), (4, 5), (2, 3, 4)])
def test_matches_torch(ours, theirs, kwargs, reduction, shape):
    x, y = _pair(shape)
    assert_same(
        ours(x, y, reduction, **kwargs), theirs(x, y, reduction=reduction, **kwargs), (x, y)
    )


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(0, 5), min_size=0, max_size=3),
    case=st.sampled_from(CASES),
    reduction=st.sampled_from(REDUCTIONS),
    seed=st.integers(0, 2**16),
)
def test_matches_torch_on_random_shapes(shape, case, reduction, seed):
    ours, theirs, kwargs = case
    x, y = _pair(tuple(shape), seed)
    out = ours(x, y, reduction, **kwargs)
    if reduction == "mean" and x.numel() == 0:
        # Documented deviation: an empty mean is 0, not NaN.
        assert out.item() == 0.0
        return
    assert_same(out, theirs(x, y, reduction=reduction, **kwargs), (x, y))


def test_lecture_examples():
    x = torch.tensor([3.0, 11.0])
    y = torch.tensor([1.0, 1.0])
    assert losses.l1_loss(x, y, reduction="none").tolist() == [2.0, 10.0]
    assert losses.mse_loss(x, y, reduction="none").tolist() == [4.0, 100.0]


def test_smooth_l1_is_scaled_huber():
    x, y = _pair((50,))
    torch.testing.assert_close(
        losses.smooth_l1_loss(x, y, beta=0.8), losses.huber_loss(x, y, delta=0.8) / 0.8
    )


def test_no_silent_broadcasting():
    with pytest.raises(ValueError, match=r"target shape \(3, 1\).*\(3,\)"):
        losses.mse_loss(torch.zeros(3), torch.zeros(3, 1))


@pytest.mark.parametrize("fn", [losses.l1_loss, losses.mse_loss, losses.huber_loss])
def test_bad_input(fn):
    with pytest.raises(TypeError, match="input.*torch.int64"):
        fn(torch.zeros(3, dtype=torch.long), torch.zeros(3))
    with pytest.raises(TypeError, match="target must be a torch.Tensor, got list"):
        fn(torch.zeros(3), [0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="reduction.*'avg'"):
        fn(torch.zeros(3), torch.zeros(3), reduction="avg")


def test_bad_thresholds():
    with pytest.raises(ValueError, match=r"delta must lie in \(0.0, inf\), got 0"):
        losses.huber_loss(torch.zeros(2), torch.zeros(2), delta=0)
    with pytest.raises(ValueError, match="beta.*-1"):
        losses.smooth_l1_loss(torch.zeros(2), torch.zeros(2), beta=-1)


@pytest.mark.parametrize("name", ["l1_loss", "mse_loss", "huber_loss", "smooth_l1_loss"])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
def test_reference_equations_equal_torch_and_the_public_function(name, reduction):
    from lossopt.losses import reference

    g = torch.Generator().manual_seed(3)
    x = (3 * torch.randn(7, 5, generator=g, dtype=torch.float64)).requires_grad_()
    y = torch.randn(7, 5, generator=g, dtype=torch.float64)
    for fn in (getattr(reference, name), getattr(losses, name)):
        expected = getattr(F, name)(x, y, reduction=reduction)
        assert_same(fn(x, y, reduction=reduction), expected, (x,))
