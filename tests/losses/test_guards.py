"""A loss's one-expression guard (its common call, told from metadata) and
its named checks are two ways to the same rule: whatever the guard lets
through, the checks accept. Generated arguments, valid and not, test it."""

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import losses
from lossopt.losses import triplet

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
