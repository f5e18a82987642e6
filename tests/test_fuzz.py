"""Property tests over every public loss and optimizer with hostile input:
random shapes (empty too), dtypes, NaN/Inf, out-of-range indices, wrong types.

Each call either returns what torch returns (where torch defines a result) or
raises ValueError / TypeError / IndexError whose message names an argument;
never a crash, a C++ assertion or a silently different number."""

import copy
import inspect
import math

import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lossopt import losses, optim

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
DTYPES = [torch.float64, torch.float32, torch.bfloat16, torch.int64, torch.bool]
SPECIAL = [0.0, 1.0, -1.0, float("nan"), float("inf"), float("-inf"), 1e30]


@st.composite
def tensors(draw, shape=None, dtype=None):
    shape = shape if shape is not None else tuple(draw(st.lists(st.integers(0, 4), max_size=3)))
    dtype = dtype or draw(st.sampled_from(DTYPES))
    numel = math.prod(shape)
    g = torch.Generator().manual_seed(draw(st.integers(0, 10_000)))
    if dtype in (torch.int64, torch.bool):
        t = torch.randint(-2, 6, shape, generator=g)
        return t.bool() if dtype == torch.bool else t
    t = torch.randn(shape, generator=g, dtype=torch.float64)
    if numel and draw(st.booleans()):
        t.view(-1)[draw(st.integers(0, numel - 1))] = draw(st.sampled_from(SPECIAL))
    return t.to(dtype)


def oddities():
    return st.sampled_from([None, [1.0, 2.0], "x", 3, 2.5])


def _names(fn):
    return set(inspect.signature(fn).parameters) | {"target", "input", "dim", "labels"}


def _check(ours_fn, theirs_fn, args, kwargs):
    try:
        ours = ours_fn(*args, **kwargs)
    except (ValueError, TypeError, IndexError) as error:
        message = str(error)
        assert any(name in message for name in _names(ours_fn)), message
        assert "Exception raised from" not in message and "INTERNAL ASSERT" not in message
        return
    assert isinstance(ours, torch.Tensor)
    if theirs_fn is None:
        return
    try:
        theirs = theirs_fn(*args, **kwargs)
    except Exception:  # torch rejects what lossopt defines (e.g. int32 indices): no reference
        return
    if ours.shape == () and torch.isnan(theirs).all() and ours.item() == 0:
        return  # the documented deviation: a mean over nothing is 0, not NaN
    ours = ours.double()
    theirs = theirs.double()
    # Where torch's answer is not finite (NaN or Inf from invalid input such
    # as infinite logits), lossopt's must not be a finite, plausible number;
    # which of NaN and Inf it is may differ with the order of operations.
    bad = ~torch.isfinite(theirs)
    assert not torch.isfinite(ours[bad]).any()
    torch.testing.assert_close(ours[~bad], theirs[~bad], rtol=2e-2, atol=1e-2)


REDUCTION = st.sampled_from(["mean", "sum", "none", "batchmean", "avg"])


@FUZZ
@given(data=st.data(), case=st.sampled_from(["l1", "mse", "huber", "smooth_l1"]))
def test_regression_losses(data, case):
    ours = {
        "l1": losses.l1_loss,
        "mse": losses.mse_loss,
        "huber": losses.huber_loss,
        "smooth_l1": losses.smooth_l1_loss,
    }[case]
    theirs = {
        "l1": F.l1_loss,
        "mse": F.mse_loss,
        "huber": F.huber_loss,
        "smooth_l1": F.smooth_l1_loss,
    }[case]
    x = data.draw(st.one_of(tensors(), oddities()))
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) and data.draw(st.booleans()) else None
    y = data.draw(st.one_of(tensors(shape=shape), oddities()))
    kwargs = {"reduction": data.draw(REDUCTION)}
    if case == "huber":
        kwargs["delta"] = data.draw(st.sampled_from([1.0, 0.5, 0.0, -1.0, float("nan")]))
    if case == "smooth_l1":
        kwargs["beta"] = data.draw(st.sampled_from([1.0, 0.0, -1.0]))
    _check(ours, theirs, (x, y), kwargs)


@FUZZ
@given(data=st.data())
def test_cross_entropy_and_nll(data):
    n, c = data.draw(st.integers(0, 4)), data.draw(st.integers(0, 5))
    x = data.draw(st.one_of(tensors(shape=(n, c)), tensors(), oddities()))
    y = data.draw(
        st.one_of(
            tensors(shape=(n,), dtype=torch.int64), tensors(shape=(n, c)), tensors(), oddities()
        )
    )
    kwargs = {
        "reduction": data.draw(REDUCTION),
        "ignore_index": data.draw(st.sampled_from([-100, -2, 0])),
    }
    if data.draw(st.booleans()):
        kwargs["weight"] = data.draw(
            st.one_of(tensors(shape=(c,), dtype=torch.float64), tensors(), oddities())
        )
    fn, ref = data.draw(
        st.sampled_from([(losses.cross_entropy, F.cross_entropy), (losses.nll_loss, F.nll_loss)])
    )
    if fn is losses.cross_entropy:
        kwargs["label_smoothing"] = data.draw(st.sampled_from([0.0, 0.2, 1.0, -0.1, 2.0]))
    _check(fn, ref, (x, y), kwargs)


@FUZZ
@given(data=st.data())
def test_kl(data):
    x = data.draw(st.one_of(tensors(), oddities()))
    shape = tuple(x.shape) if isinstance(x, torch.Tensor) and data.draw(st.booleans()) else None
    y = data.draw(st.one_of(tensors(shape=shape), oddities()))
    log_target = data.draw(st.booleans())
    reduction = data.draw(REDUCTION)
    _check(losses.kl_div, F.kl_div, (x, y), {"reduction": reduction, "log_target": log_target})
    _check(
        losses.kl_divergence,
        None,
        (x, y),
        {"reduction": reduction, "dim": data.draw(st.integers(-3, 2))},
    )


@FUZZ
@given(data=st.data())
def test_triplets(data):
    shape = tuple(data.draw(st.lists(st.integers(0, 4), min_size=1, max_size=2)))
    a, p, n = (data.draw(st.one_of(tensors(shape=shape), tensors(), oddities())) for _ in range(3))
    kwargs = {
        "margin": data.draw(st.sampled_from([1.0, 0.0, -1.0])),
        "p": data.draw(st.sampled_from([2.0, 1.0, 0.5, 0.0])),
        "swap": data.draw(st.booleans()),
        "reduction": data.draw(REDUCTION),
    }
    _check(losses.triplet_margin_loss, F.triplet_margin_loss, (a, p, n), kwargs)
    labels = data.draw(
        st.one_of(tensors(shape=shape[:1], dtype=torch.int64), tensors(), oddities())
    )
    mined = {
        "mining": data.draw(
            st.sampled_from(["batch_all", "batch_hard", "batch_semi_hard", "hard"])
        ),
        "margin": kwargs["margin"],
        "p": kwargs["p"],
        "reduction": kwargs["reduction"],
    }
    _check(losses.batch_triplet_loss, None, (a, labels), mined)


@FUZZ
@given(data=st.data())
def test_linear_cross_entropy(data):
    n, h, v = (data.draw(st.integers(0, 4)) for _ in range(3))
    x = data.draw(st.one_of(tensors(shape=(n, h)), tensors(), oddities()))
    w = data.draw(st.one_of(tensors(shape=(v, h)), tensors(), oddities()))
    y = data.draw(st.one_of(tensors(shape=(n,), dtype=torch.int64), tensors(), oddities()))
    kwargs = {
        "reduction": data.draw(REDUCTION),
        "label_smoothing": data.draw(st.sampled_from([0.0, 0.3, 5.0])),
    }

    def reference(x, w, y, **kw):
        return F.cross_entropy(x @ w.T, y, ignore_index=-100, **kw)

    _check(losses.linear_cross_entropy, reference, (x, w, y), kwargs)


OPTIMIZERS = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


@FUZZ
@given(
    data=st.data(),
    name=st.sampled_from(OPTIMIZERS),
    policy=st.sampled_from(["propagate", "skip", "raise"]),
)
def test_optimizers(data, name, policy):
    dtype = data.draw(st.sampled_from([torch.float64, torch.float32, torch.bfloat16]))
    shapes = data.draw(st.lists(st.lists(st.integers(0, 3), max_size=2), min_size=1, max_size=3))
    lr = data.draw(st.sampled_from([0.01, 0.0, -0.1, float("nan"), "0.1"]))
    kwargs = {"lr": lr}
    if name in ("SGD", "RMSprop"):
        kwargs["momentum"] = data.draw(st.sampled_from([0.0, 0.9, -0.5]))
    if name in ("Adam", "AdamW"):
        kwargs["betas"] = data.draw(st.sampled_from([(0.9, 0.999), (1.0, 0.9), (0.9,)]))
    params = [
        data.draw(tensors(shape=tuple(s), dtype=dtype)).nan_to_num().requires_grad_()
        for s in shapes
    ]
    try:
        opt = getattr(optim, name)(params, nonfinite=policy, **kwargs)
    except (ValueError, TypeError) as error:
        assert any(k in str(error) for k in (*kwargs, "betas")), str(error)
        return
    twins = [p.detach().clone().requires_grad_() for p in params]
    reference = getattr(torch.optim, name)(twins, **kwargs)
    for _ in range(3):
        for p, t in zip(params, twins, strict=True):
            grad = data.draw(tensors(shape=tuple(p.shape), dtype=dtype))
            p.grad, t.grad = grad.clone(), grad.clone()
        before = ([p.detach().clone() for p in params], copy.deepcopy(opt.state_dict()))
        finite = all(torch.isfinite(p.grad).all() for p in params)
        if not finite and policy == "raise":
            try:
                opt.step()
            except FloatingPointError:
                pass
            else:
                raise AssertionError("a non-finite gradient did not raise")
            assert all(torch.equal(a, b) for a, b in zip(before[0], params, strict=True))
            return
        opt.step()
        if not finite and policy == "skip":
            assert all(torch.equal(a, b) for a, b in zip(before[0], params, strict=True))
            return
        reference.step()
        for p, t in zip(params, twins, strict=True):
            torch.testing.assert_close(p, t, rtol=2e-2, atol=2e-2, equal_nan=True)
