import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import _policy, losses
from tests.conftest import assert_same

D = torch.float64


@pytest.fixture
def small_chunks(monkeypatch):
    """Force many chunks on small inputs, so chunk boundaries are exercised."""
    monkeypatch.setattr(_policy, "LINEAR_CHUNK_ELEMENTS", 40)
    monkeypatch.setattr(_policy, "LINEAR_MIN_CHUNK_ROWS", 1)


def _inputs(n=29, hidden=6, classes=11, bias=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, hidden, generator=g, dtype=D, requires_grad=True)
    w = torch.randn(classes, hidden, generator=g, dtype=D, requires_grad=True)
    b = torch.randn(classes, generator=g, dtype=D, requires_grad=True) if bias else None
    y = torch.randint(0, classes, (n,), generator=g)
    return h, w, b, y


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("bias", [False, True])
@pytest.mark.parametrize(
    "weighted,smoothing,ignore", [(False, 0.0, False), (True, 0.2, True), (False, 0.1, True)]
)
def test_matches_cross_entropy_of_the_logits(
    small_chunks, reduction, bias, weighted, smoothing, ignore
):
    h, w, b, y = _inputs(bias=bias)
    if ignore:
        y[::4] = -100
    cw = torch.rand(11, dtype=D) + 0.1 if weighted else None
    kw = dict(weight=cw, reduction=reduction, label_smoothing=smoothing)
    ours = losses.linear_cross_entropy(h, w, y, linear_bias=b, **kw)
    theirs = F.cross_entropy(F.linear(h, w, b), y, **kw)
    leaves = (h, w) + ((b,) if bias else ())
    assert_same(ours, theirs, leaves)
    again = losses.linear_cross_entropy(h, w, y, linear_bias=b, **kw)
    theirs = F.cross_entropy(F.linear(h, w, b), y, **kw)
    assert_same(again * 3.5, theirs * 3.5, leaves)  # the backward scales by the incoming gradient


def test_matches_torch_linear_cross_entropy_and_takes_batch_dims(small_chunks):
    h, w, b, y = _inputs(n=24)
    h3 = h.detach().reshape(2, 12, 6).requires_grad_()
    y3 = y.reshape(2, 12)
    ours = losses.linear_cross_entropy(h3, w, y3, linear_bias=b, reduction="none")
    assert ours.shape == (2, 12)
    if hasattr(F, "linear_cross_entropy"):
        theirs = F.linear_cross_entropy(
            h3.reshape(24, 6), w, y3.reshape(24), linear_bias=b, reduction="none"
        ).reshape(2, 12)
    else:  # a torch before linear_cross_entropy: the formula it computes
        theirs = F.cross_entropy(
            h3.reshape(24, 6) @ w.T + b, y3.reshape(24), reduction="none"
        ).reshape(2, 12)
    assert_same(ours, theirs, (h3, w, b))


def test_gradcheck(small_chunks):
    h, w, b, y = _inputs(n=7, hidden=3, classes=5)
    for reduction in ("mean", "none"):
        assert torch.autograd.gradcheck(
            lambda h_, w_, b_, r=reduction: losses.linear_cross_entropy(
                h_, w_, y, linear_bias=b_, reduction=r, label_smoothing=0.1
            ),
            (h, w, b),
        )


def test_module(small_chunks):
    h, w, b, y = _inputs()
    module = losses.LinearCrossEntropyLoss(label_smoothing=0.05)
    torch.testing.assert_close(
        module(h, w, y, b), F.cross_entropy(F.linear(h, w, b), y, label_smoothing=0.05)
    )


def test_all_ignored_mean_is_zero_with_zero_gradients():
    h, w, b, y = _inputs()
    loss = losses.linear_cross_entropy(h, w, torch.full_like(y, -100), linear_bias=b)
    loss.backward()
    assert (
        loss.item() == 0.0 and (h.grad == 0).all() and (w.grad == 0).all() and (b.grad == 0).all()
    )


def test_no_gradient_needed_skips_the_gradient_work():
    h, w, b, y = _inputs()
    with torch.no_grad():
        value = losses.linear_cross_entropy(h, w, y, linear_bias=b)
    torch.testing.assert_close(value, F.cross_entropy(F.linear(h, w, b), y))


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_second_backward_is_right_or_a_clear_error(reduction):
    h, w, b, y = _inputs()
    loss = losses.linear_cross_entropy(h, w, y, linear_bias=b, reduction=reduction).sum()
    first = torch.autograd.grad(loss, (h, w, b), retain_graph=True)
    second = torch.autograd.grad(loss, (h, w, b))  # retained: the same, correct gradients
    for a, c in zip(first, second, strict=True):
        torch.testing.assert_close(a, c, rtol=0, atol=0)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        torch.autograd.grad(loss, (h, w, b))


@pytest.mark.parametrize("reduction", ["none", "mean"])
def test_double_backward_gives_the_plain_formulas_second_derivatives(reduction):
    h, w, b, y = _inputs()
    vs = [torch.randn_like(t) for t in (h, w, b)]

    def plain(h, w, b):
        return F.cross_entropy(F.linear(h, w, b), y, reduction=reduction, label_smoothing=0.1)

    def ours(h, w, b):
        return losses.linear_cross_entropy(
            h, w, y, linear_bias=b, reduction=reduction, label_smoothing=0.1
        )

    hvps = []
    for fn in (ours, plain):
        gs = torch.autograd.grad(fn(h, w, b).sum(), (h, w, b), create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(gs, vs, strict=True))
        hvps.append(torch.autograd.grad(dot, (h, w, b)))
    for a, c in zip(*hvps, strict=True):
        torch.testing.assert_close(a, c, rtol=1e-10, atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(0, 9),
    classes=st.integers(1, 7),
    chunk=st.integers(1, 30),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    seed=st.integers(0, 100),
)
def test_random_sizes_and_chunks(n, classes, chunk, reduction, seed):
    h, w, b, y = _inputs(n=n, hidden=3, classes=classes, seed=seed)
    original = _policy.LINEAR_CHUNK_ELEMENTS, _policy.LINEAR_MIN_CHUNK_ROWS
    _policy.LINEAR_CHUNK_ELEMENTS, _policy.LINEAR_MIN_CHUNK_ROWS = chunk, 1
    try:
        ours = losses.linear_cross_entropy(h, w, y, linear_bias=b, reduction=reduction)
    finally:
        _policy.LINEAR_CHUNK_ELEMENTS, _policy.LINEAR_MIN_CHUNK_ROWS = original
    theirs = F.cross_entropy(F.linear(h, w, b), y, reduction=reduction)
    if reduction == "mean" and n == 0:
        assert ours.item() == 0.0
        return
    assert_same(ours, theirs, (h, w, b))


def test_bad_input():
    h, w, b, y = _inputs()
    with pytest.raises(ValueError, match=r"must share H.*\(29, 6\) and \(11, 5\)"):
        losses.linear_cross_entropy(h, torch.zeros(11, 5, dtype=D), y)
    with pytest.raises(ValueError, match=r"linear_bias must have shape \(11,\), got \(3,\)"):
        losses.linear_cross_entropy(h, w, y, linear_bias=torch.zeros(3, dtype=D))
    with pytest.raises(IndexError, match="class index 11"):
        losses.linear_cross_entropy(h, w, torch.full_like(y, 11))
    with pytest.raises(ValueError, match=r"target must have shape \(29,\)"):
        losses.linear_cross_entropy(h, w, y[:5])
    with pytest.raises(TypeError, match="target must hold integer"):
        losses.linear_cross_entropy(h, w, y.double())
