"""A loss's one-expression guard (its common call, told from metadata) and
its named checks are two ways to the same rule: whatever the guard lets
through, the checks accept. Generated arguments, valid and not, test it."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import losses
from lossopt.losses import classification, divergence, regression, triplet
from lossopt.losses._reduction import REDUCTIONS, TORCH_REDUCTION, mean_over

_DTYPES = [
    torch.float32,
    torch.float64,
    torch.float16,
    torch.int64,
    torch.int32,
    torch.int16,
    torch.int8,
    torch.uint8,
    torch.bool,
    torch.complex64,
]
_SHAPES = [(), (0,), (3,), (4,), (2, 3), (4, 3), (0, 3), (4, 1), (2, 3, 1)]
tensors = st.one_of(
    st.builds(
        lambda shape, dtype: torch.zeros(shape, dtype=dtype),
        st.sampled_from(_SHAPES),
        st.sampled_from(_DTYPES),
    ),
    st.sampled_from([None, 3, "x", [1.0]]),
)
numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(-3, 3),
    st.booleans(),
    st.sampled_from([None, "1", torch.tensor(0.5), torch.tensor([1.0, 2.0])]),
)
reductions = st.sampled_from(["none", "mean", "sum", "batchmean", "Mean", None, 1])


def _passes(check, *args) -> bool:
    try:
        check(*args)
    except (TypeError, ValueError, IndexError):
        return False
    return True


@settings(max_examples=400, deadline=None)
@given(a=tensors, p=tensors, n=tensors, margin=numbers, reduction=reductions)
def test_triplet_guard_passes_only_what_its_checks_pass(a, p, n, margin, reduction):
    args = (a, p, n, margin, reduction)
    if triplet._plain_triplet(*args):
        assert _passes(triplet._check_triplet, *args)


@settings(max_examples=200, deadline=None)
@given(p=numbers, eps=numbers, swap=st.one_of(st.booleans(), numbers))
def test_norm_guard_passes_only_what_its_checks_pass(p, eps, swap):
    if triplet._plain_norm_args(p, eps, swap):
        assert _passes(triplet._check_norm_args, p, eps, swap)


@settings(max_examples=400, deadline=None)
@given(
    embeddings=tensors,
    labels=tensors,
    mining=st.sampled_from([*triplet.MININGS, "hard", None]),
    margin=numbers,
    p=numbers,
    reduction=reductions,
)
def test_batch_guard_passes_only_what_its_checks_pass(
    embeddings, labels, mining, margin, p, reduction
):
    args = (embeddings, labels, mining, margin, p, reduction)
    if triplet._plain_batch(*args):
        assert _passes(triplet._check_batch, *args)


@settings(max_examples=300, deadline=None)
@given(input=tensors, target=tensors, reduction=reductions)
def test_element_wise_guard_passes_only_what_its_checks_pass(input, target, reduction):
    if regression._plain_pair(input, target, reduction):
        assert _passes(regression._check_pair, input, target, reduction)


@settings(max_examples=300, deadline=None)
@given(
    p=tensors, q=tensors, dim=st.sampled_from([-3, -1, 0, 1, 2, 1.0, True]), reduction=reductions
)
def test_kl_divergence_guard_passes_only_what_its_checks_pass(p, q, dim, reduction):
    if divergence._plain_logits(p, q, dim, reduction):
        assert _passes(divergence._check_logits, p, q, dim, reduction)


@settings(max_examples=300, deadline=None)
@given(input=tensors, target=tensors, dim=st.sampled_from([-1, 0, 1, 2, 1.0, True]))
def test_class_shape_guard_gives_what_its_checks_give(input, target, dim):
    if classification._plain_shapes(input, target, dim):
        assert classification._checked_shapes(input, target, dim) == (1, False)


def test_reduction_codes_are_torchs():
    from torch.nn import _reduction as torch_reduction  # the control: torch's own numbering

    for name in REDUCTIONS:
        assert TORCH_REDUCTION[name] == torch_reduction.get_enum(name)


@pytest.mark.parametrize(
    "count", [0, 4, torch.tensor(0), torch.tensor(4), torch.tensor(0.0), torch.tensor(4.0)]
)
def test_mean_over_nothing_is_zero_with_zero_gradients(count):
    x = torch.arange(1.0, 5.0, dtype=torch.float64, requires_grad=True)
    items = x if int(count) else x[:0]
    mean = mean_over(items.sum(), count)
    (grad,) = torch.autograd.grad(mean, x)
    if int(count):  # torch's mean is the control
        (expected_grad,) = torch.autograd.grad(x.mean(), x)
        torch.testing.assert_close((mean, grad), (x.mean(), expected_grad))
    else:  # torch's mean of nothing is NaN; lossopt's is 0, with zero gradients
        assert torch.isnan(items.mean())
        assert mean.item() == 0.0 and (grad == 0).all()


@pytest.mark.parametrize("margin", [0.0, -1.0, 0])
@pytest.mark.parametrize("shape", [(4, 3), (0, 3)])  # the kernel's path and the empty mean's
def test_triplet_margin_must_be_positive_on_every_path_as_torch(margin, shape):
    a = torch.zeros(shape)
    with pytest.raises(ValueError, match="margin must be greater than 0"):
        torch.nn.functional.triplet_margin_loss(a, a, a, margin=margin)  # the control
    for loss in (losses.triplet_margin_loss, losses.triplet_margin_with_distance_loss):
        with pytest.raises(ValueError, match=r"margin must lie in \(0.0, inf\)"):
            loss(a, a, a, margin=margin)


@pytest.mark.parametrize("dtype", [torch.int8, torch.int16, torch.uint8, torch.int32])
def test_batch_labels_of_any_integer_dtype_take_the_common_path(monkeypatch, dtype):
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(10, 3, generator=g, dtype=torch.float64, requires_grad=True)
    labels = torch.randint(0, 3, (10,), generator=g)
    expected = losses.batch_triplet_loss(emb, labels)

    def refuse(*args):
        raise AssertionError("the common call took the named checks")

    monkeypatch.setattr(triplet, "_check_batch", refuse)
    torch.testing.assert_close(losses.batch_triplet_loss(emb, labels.to(dtype)), expected)


# The losses whose common call goes straight to torch's kernel (`direct`) and
# falls back to the full path only when torch refuses the input or a mean comes
# out NaN: whatever the arguments, the answer (value, or error and message) is
# the full path's own. Checked by calling each loss twice, the second time
# with the straight way closed.
_float = st.sampled_from([torch.float32, torch.float64])
_any_dtype = st.sampled_from([torch.float32, torch.float64, torch.int64, torch.int32])


def _outcome(call):
    try:
        return call()
    except (TypeError, ValueError, IndexError, RuntimeError) as error:
        return error


def _same_on_both_paths(module, call):
    from unittest import mock

    straight = _outcome(call)
    with mock.patch.object(module, "direct", lambda *args: False):
        full = _outcome(call)
    if isinstance(full, Exception):
        assert type(straight) is type(full) and str(straight) == str(full), (straight, full)
    else:
        assert not isinstance(straight, Exception), straight
        torch.testing.assert_close(straight, full, equal_nan=True)


def _target(draw, shape, classes, dtype):
    g = torch.Generator().manual_seed(draw(st.integers(0, 99)))
    return torch.randint(classes, shape, generator=g).to(dtype)


@st.composite
def _classification(draw):
    n, c = draw(st.integers(0, 4)), draw(st.integers(1, 4))
    shape = draw(st.sampled_from([(n, c), (c,), (n, c, 2)]))
    input = torch.randn(shape, generator=torch.Generator().manual_seed(n * 10 + c)).to(draw(_float))
    target_shape = draw(st.sampled_from([(n,), (), (n, 2), shape, (n + 1,)]))
    target = _target(draw, target_shape, c, draw(_any_dtype))
    if draw(st.booleans()) and target.numel():
        target.view(-1)[0] = draw(st.sampled_from([-100, c, -1]))
    weight = draw(st.sampled_from([None, "ones", "short"]))
    weight = None if weight is None else torch.ones(c if weight == "ones" else c + 1)
    return input, target, weight


@settings(max_examples=300, deadline=None)
@given(
    args=_classification(),
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean"]),
    ignore_index=st.sampled_from([-100, 0, 1]),
    smoothing=st.sampled_from([0.0, 0.1, 1.5]),
)
def test_cross_entropy_and_nll_answer_as_their_full_path(args, reduction, ignore_index, smoothing):
    input, target, weight = args
    _same_on_both_paths(
        classification,
        lambda: losses.cross_entropy(
            input,
            target,
            weight,
            ignore_index=ignore_index,
            reduction=reduction,
            label_smoothing=smoothing,
        ),
    )
    _same_on_both_paths(
        classification,
        lambda: losses.nll_loss(input, target, weight, ignore_index, reduction),
    )


@settings(max_examples=300, deadline=None)
@given(
    shape=st.sampled_from([(0, 3), (2, 3), (4,), ()]),
    other=st.sampled_from(["same", "wider", "int"]),
    zeros=st.booleans(),
    reduction=st.sampled_from(["none", "mean", "sum", "batchmean", "max"]),
    log_target=st.sampled_from([False, True, 1]),
    dtype=_float,
)
def test_kl_div_answers_as_its_full_path(shape, other, zeros, reduction, log_target, dtype):
    g = torch.Generator().manual_seed(len(shape))
    input = torch.randn(shape, generator=g, dtype=dtype)
    input = input.log_softmax(-1) if shape else input - 1.0
    target = torch.rand(input.shape, generator=g, dtype=dtype)
    if zeros and target.numel():
        target.view(-1)[0] = 0.0
    if other == "wider":
        target = torch.rand((*shape, 2), generator=g, dtype=dtype)
    elif other == "int":
        target = target.long()
    _same_on_both_paths(
        divergence, lambda: losses.kl_div(input, target, reduction, log_target=log_target)
    )


@settings(max_examples=300, deadline=None)
@given(
    n=st.integers(0, 4),
    h=st.integers(1, 3),
    v=st.integers(0, 4),
    h_weight=st.sampled_from([0, 1]),
    bias=st.sampled_from([None, "right", "short"]),
    target=st.sampled_from(["right", "long-row", "int32", "out-of-range", "ignored"]),
    reduction=st.sampled_from(["none", "mean", "sum", "Mean"]),
    smoothing=st.sampled_from([0.0, 0.2, -0.1]),
    dtype=_float,
)
def test_linear_cross_entropy_answers_as_its_full_path(
    n, h, v, h_weight, bias, target, reduction, smoothing, dtype
):
    from lossopt.losses import linear

    g = torch.Generator().manual_seed(n * 100 + h * 10 + v)
    x = torch.randn(n, h, generator=g, dtype=dtype)
    w = torch.randn(v, h + h_weight, generator=g, dtype=dtype)
    b = None if bias is None else torch.randn(v if bias == "right" else v + 1, dtype=dtype)
    y = torch.randint(max(v, 1), (n + (target == "long-row"),), generator=g)
    if target == "int32":
        y = y.int()
    elif target in ("out-of-range", "ignored") and n:
        y[0] = v if target == "out-of-range" else -100
    _same_on_both_paths(
        linear,
        lambda: losses.linear_cross_entropy(
            x, w, y, linear_bias=b, reduction=reduction, label_smoothing=smoothing
        ),
    )
