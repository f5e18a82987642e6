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
