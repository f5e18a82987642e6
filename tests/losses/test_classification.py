import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import losses
from tests.conftest import assert_same

D = torch.float64


def _logits(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.randn(shape, generator=g, dtype=D)).requires_grad_()


def _indices(shape, classes, seed=0, ignore=None):
    g = torch.Generator().manual_seed(seed + 1)
    t = torch.randint(0, classes, shape, generator=g)
    if ignore is not None and t.numel():
        t.view(-1)[::3] = ignore
    return t


def _probs(shape, class_dim, seed=0):
    g = torch.Generator().manual_seed(seed + 2)
    return torch.softmax(torch.randn(shape, generator=g, dtype=D), class_dim).requires_grad_()


SHAPES = [(6,), (5, 6), (4, 6, 3), (2, 6, 3, 2)]
OPTIONS = list(
    itertools.product(["none", "mean", "sum"], [False, True], [None, -100, 2], [0.0, 0.25])
)


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction,weighted,ignore,smoothing", OPTIONS)
def test_index_targets_match_torch(shape, reduction, weighted, ignore, smoothing):
    x = _logits(shape)
    target_shape = shape[:0] if len(shape) == 1 else shape[:1] + shape[2:]
    y = _indices(target_shape, shape[-1] if len(shape) == 1 else shape[1], ignore=ignore)
    if len(shape) == 1 and ignore is not None:
        y = torch.tensor(ignore if ignore != 2 else 2)
    classes = shape[0] if len(shape) == 1 else shape[1]
    w = torch.rand(classes, dtype=D) + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    kw["ignore_index"] = -100 if ignore is None else ignore
    ours = losses.cross_entropy(x, y, **kw)
    theirs = F.cross_entropy(x, y, **kw)
    if reduction == "mean" and torch.isnan(theirs):
        assert ours.item() == 0.0  # documented deviation: every target ignored
        return
    assert_same(ours, theirs, (x,))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("weighted,smoothing", [(False, 0.0), (True, 0.0), (True, 0.3)])
def test_probability_targets_match_torch_with_target_gradients(
    shape, reduction, weighted, smoothing
):
    x = _logits(shape)
    class_dim = 0 if len(shape) == 1 else 1
    t = _probs(shape, class_dim)
    w = torch.rand(shape[class_dim], dtype=D) + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    assert_same(losses.cross_entropy(x, t, **kw), F.cross_entropy(x, t, **kw), (x, t))


@pytest.mark.parametrize("soft", [False, True])
def test_dim_argument_takes_language_model_layout(soft):
    x = _logits((3, 5, 11))  # (B, T, V)
    t = _probs((3, 5, 11), -1) if soft else _indices((3, 5), 11, ignore=-100)
    ours = losses.cross_entropy(x, t, dim=-1, label_smoothing=0.1, reduction="none")
    theirs = F.cross_entropy(
        x.transpose(1, 2), t.transpose(1, 2) if soft else t, label_smoothing=0.1, reduction="none"
    )
    assert ours.shape == (3, 5)
    assert_same(ours, theirs, (x,))


def test_gradcheck_hand_derived_gradients():
    x = _logits((4, 5, 2))
    y = _indices((4, 2), 5, ignore=-100)
    w = torch.rand(5, dtype=D) + 0.1
    assert torch.autograd.gradcheck(
        lambda z: losses.cross_entropy(z, y, weight=w, label_smoothing=0.2), (x,)
    )
    t = _probs((4, 5, 2), 1)
    assert torch.autograd.gradcheck(
        lambda z, p: losses.cross_entropy(z, p, weight=w, label_smoothing=0.2, reduction="sum"),
        (x, t),
    )


def test_lecture_one_hot_cross_entropy_is_negative_log_softmax():
    x = torch.tensor([[2.0, 1.0, 0.1]], dtype=D)
    one_hot = torch.tensor([[1.0, 0.0, 0.0]], dtype=D)
    expected = -torch.log(torch.exp(x[0, 0]) / torch.exp(x[0]).sum())
    torch.testing.assert_close(losses.cross_entropy(x, one_hot), expected)
    torch.testing.assert_close(losses.cross_entropy(x, torch.tensor([0])), expected)


def test_cross_entropy_is_stable_for_huge_logits():
    x = torch.tensor([[1000.0, 0.0], [-1000.0, 1000.0]], dtype=D, requires_grad=True)
    loss = losses.cross_entropy(x, torch.tensor([0, 0]), reduction="none")
    assert loss.tolist() == [0.0, 2000.0]
    loss.sum().backward()
    assert torch.isfinite(x.grad).all()


@pytest.mark.parametrize("target", [torch.full((4,), -100), torch.zeros(0, dtype=torch.long)])
def test_mean_over_no_target_is_zero_with_zero_gradients(target):
    x = _logits((target.shape[0], 3))
    loss = losses.cross_entropy(x, target)
    assert loss.item() == 0.0
    loss.backward()
    assert x.grad is not None and (x.grad == 0).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_precision_accumulates_in_float32(dtype):
    x64 = torch.randn(64, 1000, dtype=D)
    y = torch.randint(0, 1000, (64,))
    x = x64.to(dtype).requires_grad_()
    loss = losses.cross_entropy(x, y)
    assert loss.dtype == dtype
    reference = F.cross_entropy(x.detach().to(D), y)
    torch.testing.assert_close(loss.to(D), reference, rtol=1e-2, atol=0)
    loss.backward()
    assert x.grad.dtype == dtype


@settings(max_examples=60, deadline=None)
@given(
    batch=st.integers(0, 4),
    classes=st.integers(1, 6),
    extra=st.lists(st.integers(1, 3), max_size=2),
    reduction=st.sampled_from(["none", "mean", "sum"]),
    smoothing=st.sampled_from([0.0, 0.1, 1.0]),
    weighted=st.booleans(),
    soft=st.booleans(),
    seed=st.integers(0, 1000),
)
def test_random_shapes_and_options(
    batch, classes, extra, reduction, smoothing, weighted, soft, seed
):
    shape = (batch, classes, *extra)
    x = _logits(shape, seed)
    t = _probs(shape, 1, seed) if soft else _indices((batch, *extra), classes, seed, ignore=-1)
    w = torch.rand(classes, dtype=D) + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing, ignore_index=-1)
    ours = losses.cross_entropy(x, t, **kw)
    theirs = F.cross_entropy(x, t, **kw)
    if torch.isnan(theirs).any():
        assert reduction == "mean" and ours.item() == 0.0
        return
    assert_same(ours, theirs, (x,))


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(6,), (5, 6), (4, 6, 3)])
@pytest.mark.parametrize("weighted", [False, True])
def test_nll_loss_matches_torch(reduction, shape, weighted):
    x = torch.log_softmax(_logits(shape).detach(), 0 if len(shape) == 1 else 1).requires_grad_()
    classes = shape[0] if len(shape) == 1 else shape[1]
    y = (
        torch.tensor(3)
        if len(shape) == 1
        else _indices(shape[:1] + shape[2:], classes, ignore=-100)
    )
    w = torch.rand(classes, dtype=D) + 0.1 if weighted else None
    kw = dict(weight=w, reduction=reduction)
    assert_same(losses.nll_loss(x, y, **kw), F.nll_loss(x, y, **kw), (x,))


def test_modules_wrap_functions():
    x = _logits((5, 4))
    y = _indices((5,), 4)
    w = torch.rand(4, dtype=D)
    module = losses.CrossEntropyLoss(weight=w, label_smoothing=0.1)
    assert_same(module(x, y), torch.nn.CrossEntropyLoss(weight=w, label_smoothing=0.1)(x, y), (x,))
    lp = torch.log_softmax(x.detach(), 1).requires_grad_()
    assert_same(losses.NLLLoss(weight=w)(lp, y), torch.nn.NLLLoss(weight=w)(lp, y), (lp,))
    assert "weight" in dict(module.named_buffers())


@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_double_backward_gives_torchs_second_derivatives(reduction, smoothing):
    x = _logits((5, 4))
    y = _indices((5,), 4, ignore=-100)
    w = torch.rand(4, dtype=D) + 0.1
    kw = dict(weight=w, reduction=reduction, label_smoothing=smoothing)
    v = torch.randn(5, 4, dtype=D)
    hvps = []
    for loss_fn in (losses.cross_entropy, F.cross_entropy):
        (g,) = torch.autograd.grad(loss_fn(x, y, **kw).sum(), x, create_graph=True)
        hvps.append(torch.autograd.grad((g * v).sum(), x)[0])
    torch.testing.assert_close(*hvps, rtol=1e-10, atol=1e-12)
    torch.autograd.gradgradcheck(lambda t: losses.cross_entropy(t, y, **kw), (x,))


def test_retained_graph_backpropagates_twice_with_the_gradient_zeroed_between():
    x = _logits((6, 5))
    y = _indices((6,), 5)
    loss = losses.cross_entropy(x, y)
    loss.backward(retain_graph=True)
    first = x.grad.clone()
    x.grad.zero_()
    loss.backward()
    torch.testing.assert_close(x.grad, first)
    torch.testing.assert_close(first, torch.autograd.grad(F.cross_entropy(x, y), x)[0])


class TestBadInput:
    def test_class_index_out_of_range_names_the_value(self):
        with pytest.raises(IndexError, match="class index 7, outside \\[0, 4\\)"):
            losses.cross_entropy(torch.zeros(3, 4), torch.tensor([0, 7, 1]))
        with pytest.raises(IndexError, match="class index -3"):
            losses.nll_loss(torch.zeros(3, 4), torch.tensor([0, -3, 1]))

    def test_shape_mismatch(self):
        with pytest.raises(ValueError, match=r"shape \(3,\).*got \(4,\)"):
            losses.cross_entropy(torch.zeros(3, 5), torch.zeros(4, dtype=torch.long))
        with pytest.raises(ValueError, match=r"probability target.*\(3, 5\).*\(3, 4\)"):
            losses.cross_entropy(torch.zeros(3, 5), torch.zeros(3, 4))

    def test_weight_length(self):
        with pytest.raises(ValueError, match=r"weight must be a 1-D tensor of 5.*\(4,\)"):
            losses.cross_entropy(torch.zeros(3, 5), torch.zeros(3, dtype=torch.long), torch.ones(4))

    @pytest.mark.parametrize("value", [-0.1, 1.5])
    def test_label_smoothing_range(self, value):
        with pytest.raises(ValueError, match=f"label_smoothing.*{value}"):
            losses.cross_entropy(
                torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), label_smoothing=value
            )

    def test_types_and_names(self):
        with pytest.raises(TypeError, match="input must be a floating-point tensor.*int64"):
            losses.cross_entropy(
                torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, dtype=torch.long)
            )
        with pytest.raises(TypeError, match="target must hold integer class indices.*bool"):
            losses.cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.bool))
        with pytest.raises(ValueError, match="reduction.*'batchmean'"):
            losses.cross_entropy(
                torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), reduction="batchmean"
            )
        with pytest.raises(IndexError, match="dim 3 is out of range"):
            losses.cross_entropy(torch.zeros(2, 3), torch.zeros(2, dtype=torch.long), dim=3)


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_scalar_reductions_without_grad_and_with_scaled_grad(reduction):
    x = _logits((6, 9))
    y = _indices((6,), 9, ignore=-100)
    kw = dict(reduction=reduction, label_smoothing=0.1, weight=torch.rand(9, dtype=D))
    with torch.no_grad():
        torch.testing.assert_close(losses.cross_entropy(x, y, **kw), F.cross_entropy(x, y, **kw))
    assert_same(2.5 * losses.cross_entropy(x, y, **kw), 2.5 * F.cross_entropy(x, y, **kw), (x,))


def test_blocks_of_rows_cover_every_row(monkeypatch):
    from lossopt import _policy

    monkeypatch.setattr(_policy, "LOSS_BLOCK_ELEMENTS", 20)  # many small blocks
    x = _logits((13, 7))
    y = _indices((13,), 7, ignore=-100)
    for reduction in ("none", "mean"):
        kw = dict(reduction=reduction, label_smoothing=0.2)
        assert_same(losses.cross_entropy(x, y, **kw), F.cross_entropy(x, y, **kw), (x,))


def test_ignore_index_with_a_probability_target_is_refused_by_name_as_torch():
    x = torch.randn(3, 4, dtype=torch.float64)
    p = torch.softmax(torch.randn(3, 4, dtype=torch.float64), 1)
    with pytest.raises(RuntimeError, match="ignore_index is not supported"):
        F.cross_entropy(x, p, ignore_index=0)  # the control
    with pytest.raises(ValueError, match="ignore_index=0"):
        losses.cross_entropy(x, p, ignore_index=0)
    # A negative ignore_index never matches a class: torch ignores it, as lossopt.
    torch.testing.assert_close(
        losses.cross_entropy(x, p, ignore_index=-2), F.cross_entropy(x, p, ignore_index=-2)
    )
