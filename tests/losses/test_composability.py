"""Every loss composes wherever torch's own loss does: torch.func (grad, vmap,
jacrev, jvp), torch.compile(fullgraph=True), torch.export, the meta device,
autocast, double backward, a retained graph, deepcopy and pickle. Each case
runs the torch counterpart as the control: a row counts only where torch
passes, so a new torch feature is a new row here, not a surprise later."""

import copy
import pickle

import pytest
import torch
import torch.nn.functional as F

from lossopt import losses

D = torch.float64


def _gen(seed=0):
    return torch.Generator().manual_seed(seed)


def _regression():
    g = _gen()
    return (torch.randn(6, 4, generator=g, dtype=D),), (torch.randn(6, 4, generator=g, dtype=D),)


def _classes(shape=(6, 5)):
    g = _gen(1)
    x = torch.randn(shape, generator=g, dtype=D)
    y = torch.randint(0, shape[1], shape[:1] + shape[2:], generator=g)
    return (x,), (y,)


def _probabilities():
    g = _gen(2)
    x = torch.randn(6, 5, generator=g, dtype=D)
    return (x,), (torch.softmax(torch.randn(6, 5, generator=g, dtype=D), 1),)


def _log_probabilities():
    (x,), (p,) = _probabilities()
    return (torch.log_softmax(x, 1),), (p,)


def _two_logits():
    g = _gen(3)
    return (torch.randn(6, 5, generator=g, dtype=D), torch.randn(6, 5, generator=g, dtype=D)), ()


def _triplets():
    g = _gen(4)
    return tuple(torch.randn(6, 3, generator=g, dtype=D) for _ in range(3)), ()


def _labelled():
    g = _gen(5)
    return (torch.randn(8, 3, generator=g, dtype=D),), (torch.tensor([0, 0, 1, 1, 2, 2, 0, 1]),)


def _head():
    g = _gen(6)
    h = torch.randn(6, 4, generator=g, dtype=D)
    w = torch.randn(7, 4, generator=g, dtype=D)
    return (h, w), (torch.randint(0, 7, (6,), generator=g),)


def _torch_kl_divergence(p, q):
    lp, lq = torch.log_softmax(p, -1), torch.log_softmax(q, -1)
    return F.kl_div(lq, lp, reduction="batchmean", log_target=True)


def _torch_batch_hard(x, labels, margin=1.0):
    """batch_hard mining written with torch operations only: the control.
    (torch.cdist has neither forward-mode AD nor a double backward.)"""
    sq = (x[:, None, :] - x[None, :, :]).square().sum(-1)
    d = torch.where(sq > 0, sq.clamp_min(1e-300).sqrt(), 0.0)
    same = labels[:, None] == labels[None, :]
    eye = torch.eye(len(labels), dtype=torch.bool, device=x.device)
    hardest_pos = torch.where(same & ~eye, d, -torch.inf).amax(1)
    hardest_neg = torch.where(~same, d, torch.inf).amin(1)
    return torch.clamp_min(hardest_pos - hardest_neg + margin, 0).mean()


def _torch_distances(x, p):
    """||x_i - x_j||_p for all pairs in torch operations; the pairs of a row
    with itself are 0 through stand-in values, so that no 0 * inf reaches a
    second derivative."""
    eye = torch.eye(x.shape[-2], dtype=torch.bool, device=x.device)
    diff = torch.where(eye[..., None], 1.0, x[..., :, None, :] - x[..., None, :, :])
    return torch.where(eye, 0.0, torch.linalg.vector_norm(diff, ord=p, dim=-1))


def _torch_mined(x, labels, mining, margin=1.0, p=2.0):
    """Every mining of batch_triplet_loss ('mean') in torch operations, over
    whole B x B (x B) tensors: the control for transforms and second
    derivatives."""
    d = _torch_distances(x, p)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(len(labels), dtype=torch.bool, device=x.device)
    neg = ~same
    has_neg = neg.any(1)
    if mining == "batch_hard":
        valid = pos.any(1) & has_neg
        hardest_pos = torch.where(pos, d, -torch.inf).amax(1)
        hardest_neg = torch.where(neg, d, torch.inf).amin(1)
        hinge = torch.where(valid, hardest_pos - hardest_neg + margin, 0.0).clamp_min(0)
        return hinge.sum() / valid.sum().clamp_min(1)
    if mining == "batch_all":  # hinge[a, p, n]
        mask = pos[:, :, None] & neg[:, None, :]
        hinge = torch.where(mask, d[:, :, None] - d[:, None, :] + margin, 0.0).clamp_min(0)
        return hinge.sum() / mask.sum().clamp_min(1)
    farther = neg[:, None, :] & (d[:, None, :] > d[:, :, None])  # [a, p, n]
    nearest_farther = torch.where(farther, d[:, None, :], torch.inf).amin(-1)
    farthest = torch.where(neg, d, -torch.inf).amax(1)
    d_neg = torch.where(farther.any(-1), nearest_farther, farthest[:, None])
    mask = pos & has_neg[:, None]
    hinge = torch.where(mask, d - torch.where(mask, d_neg, 0.0) + margin, 0.0).clamp_min(0)
    return hinge.sum() / mask.sum().clamp_min(1)


# name -> (lossopt, torch control, inputs: (differentiable tensors, other arguments))
CASES = {
    "l1_loss": (losses.l1_loss, F.l1_loss, _regression),
    "mse_loss": (losses.mse_loss, F.mse_loss, _regression),
    "huber_loss": (losses.huber_loss, F.huber_loss, _regression),
    "smooth_l1_loss": (losses.smooth_l1_loss, F.smooth_l1_loss, _regression),
    "cross_entropy": (losses.cross_entropy, F.cross_entropy, _classes),
    "cross_entropy_weighted": (
        losses.cross_entropy,
        F.cross_entropy,
        lambda: (_classes()[0], (*_classes()[1], torch.linspace(0.5, 2, 5, dtype=D))),
    ),
    "cross_entropy_smoothed": (
        lambda x, y: losses.cross_entropy(x, y, label_smoothing=0.1),
        lambda x, y: F.cross_entropy(x, y, label_smoothing=0.1),
        _classes,
    ),
    "cross_entropy_probabilities": (losses.cross_entropy, F.cross_entropy, _probabilities),
    "cross_entropy_k_dim": (
        losses.cross_entropy,
        F.cross_entropy,
        lambda: _classes((2, 5, 3, 2)),
    ),
    "nll_loss": (
        losses.nll_loss,
        F.nll_loss,
        lambda: ((torch.log_softmax(_classes()[0][0], 1),), _classes()[1]),
    ),
    "kl_div": (
        losses.kl_div,
        lambda q, p: F.kl_div(q, p, reduction="batchmean"),
        _log_probabilities,
    ),
    "kl_divergence": (losses.kl_divergence, _torch_kl_divergence, _two_logits),
    "triplet_margin_loss": (losses.triplet_margin_loss, F.triplet_margin_loss, _triplets),
    "batch_triplet_loss": (losses.batch_triplet_loss, _torch_batch_hard, _labelled),
    "linear_cross_entropy": (
        losses.linear_cross_entropy,
        lambda h, w, y: F.cross_entropy(F.linear(h, w), y),
        _head,
    ),
}
NAMES = list(CASES)
# Losses whose value is a sum of independent per-sample terms, for vmap's
# per-sample gradients (a mined triplet's loss depends on the whole batch).
# (The class weight is shared by all samples, not mapped.)
PER_SAMPLE = [
    n
    for n in NAMES
    if n not in ("batch_triplet_loss", "cross_entropy_k_dim", "cross_entropy_weighted")
]


def _both(name):
    ours, theirs, make = CASES[name]
    diff, other = make()
    return ours, theirs, diff, other


def _close(a, b):
    torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-11)


@pytest.mark.parametrize("name", NAMES)
def test_torch_func_grad(name):
    ours, theirs, diff, other = _both(name)
    argnums = tuple(range(len(diff)))
    results = [
        torch.func.grad(lambda *d, fn=fn: fn(*d, *other), argnums=argnums)(*diff)
        for fn in (theirs, ours)
    ]
    _close(results[1], results[0])


@pytest.mark.parametrize("name", PER_SAMPLE)
def test_vmap_per_sample_gradients_equal_a_loop(name):
    ours, theirs, diff, other = _both(name)
    shared = diff[1:] if name == "linear_cross_entropy" else ()
    batched = diff[:1] if name == "linear_cross_entropy" else diff

    def one(fn):
        def loss(*sample):
            n = len(batched)
            xs, rest = sample[:n], sample[n:]
            return fn(*(x[None] for x in xs), *shared, *(r[None] for r in rest))

        return loss

    for fn in (theirs, ours):  # the control first
        per_sample = torch.func.vmap(torch.func.grad(one(fn)))(*batched, *other)
        loop = torch.stack(
            [
                torch.func.grad(one(fn))(*(x[i] for x in batched), *(o[i] for o in other))
                for i in range(len(batched[0]))
            ]
        )
        _close(per_sample, loop)


@pytest.mark.parametrize("name", NAMES)
def test_jacrev_and_jvp(name):
    ours, theirs, diff, other = _both(name)
    tangents = tuple(torch.ones_like(d) for d in diff)
    out = []
    for fn in (theirs, ours):
        f = lambda *d, fn=fn: fn(*d, *other)  # noqa: E731
        out.append((torch.func.jacrev(f)(*diff), torch.func.jvp(f, diff, tangents)))
    _close(out[1], out[0])


@pytest.mark.parametrize("name", NAMES)
def test_compile_fullgraph(name):
    ours, theirs, diff, other = _both(name)
    torch._dynamo.reset()
    expected = theirs(*diff, *other)
    # The control inside a Python function: torch 2.6's compile refuses one of
    # torch's own functions (F.mse_loss, ...) as the callable it compiles.
    control = lambda *args: theirs(*args)  # noqa: E731
    torch.testing.assert_close(
        torch.compile(control, fullgraph=True, backend="aot_eager")(*diff, *other), expected
    )
    _close(torch.compile(ours, fullgraph=True, backend="aot_eager")(*diff, *other), expected)


class _Wrap(torch.nn.Module):
    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def forward(self, *args):
        return self.fn(*args)


@pytest.mark.parametrize("name", NAMES)
def test_export(name):
    ours, theirs, diff, other = _both(name)
    args = (*diff, *other)
    expected = theirs(*args)
    control = torch.export.export(_Wrap(theirs), args).module()(*args)
    torch.testing.assert_close(control, expected)
    _close(torch.export.export(_Wrap(ours), args).module()(*args), expected)


@pytest.mark.parametrize("name", NAMES)
def test_meta_device(name):
    ours, theirs, diff, other = _both(name)
    meta = [t.to("meta") for t in (*diff, *other)]
    expected = theirs(*meta)
    result = ours(*meta)
    assert result.device.type == "meta"
    assert (result.shape, result.dtype) == (expected.shape, expected.dtype)


@pytest.mark.parametrize("name", NAMES)
def test_double_backward(name):
    ours, theirs, diff, other = _both(name)
    diff = tuple(d.requires_grad_() for d in diff)
    vs = tuple(torch.randn(d.shape, generator=_gen(9), dtype=D) for d in diff)
    hvps = []
    for fn in (theirs, ours):
        gs = torch.autograd.grad(fn(*diff, *other), diff, create_graph=True)
        dot = sum((g * v).sum() for g, v in zip(gs, vs, strict=True))
        if dot.requires_grad:
            hvps.append(torch.autograd.grad(dot, diff, allow_unused=True, materialize_grads=True))
        else:  # a gradient that does not depend on the inputs: the Hessian is 0
            hvps.append(tuple(torch.zeros_like(d) for d in diff))
    _close(hvps[1], hvps[0])


@pytest.mark.parametrize("name", NAMES)
def test_retained_graph_twice_with_the_gradient_zeroed_between(name):
    ours, theirs, diff, other = _both(name)
    diff = tuple(d.requires_grad_() for d in diff)
    seen = []
    for fn in (theirs, ours):
        loss = fn(*diff, *other)
        loss.backward(retain_graph=True)
        first = [d.grad.clone() for d in diff]
        for d in diff:
            d.grad.zero_()
        loss.backward()
        for d, f in zip(diff, first, strict=True):
            _close(d.grad, f)
            d.grad = None
        seen.append(first)
    _close(seen[1], seen[0])


@pytest.mark.parametrize("name", NAMES)
def test_autocast_follows_torchs_policy(name):
    ours, theirs, diff, other = _both(name)
    low = tuple(d.to(torch.bfloat16) for d in diff)
    if name == "linear_cross_entropy":  # a float32 head, half activations
        low = (low[0], diff[1].float())
    other = tuple(o.float() if o.is_floating_point() else o for o in other)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        if name == "batch_triplet_loss":
            # torch has no mined triplet loss; its distance kernel (cdist) is
            # on autocast's float32 list, so the control is the float32 formula.
            expected = theirs(*(d.float() for d in low), *other)
        else:
            expected = theirs(*low, *other)
        result = ours(*low, *other)
    assert result.dtype == expected.dtype
    torch.testing.assert_close(result, expected, rtol=1e-6, atol=1e-6)


MODULES = [
    losses.L1Loss(),
    losses.MSELoss(),
    losses.HuberLoss(delta=0.5),
    losses.SmoothL1Loss(beta=0.5),
    losses.CrossEntropyLoss(weight=torch.ones(5, dtype=D), label_smoothing=0.1),
    losses.NLLLoss(),
    losses.KLDivLoss(),
    losses.TripletMarginLoss(margin=0.5),
    losses.BatchTripletLoss(mining="batch_all"),
    losses.LinearCrossEntropyLoss(),
]


@pytest.mark.parametrize("module", MODULES, ids=[type(m).__name__ for m in MODULES])
def test_modules_deepcopy_and_pickle(module):
    for clone in (copy.deepcopy(module), pickle.loads(pickle.dumps(module))):
        assert type(clone) is type(module)
        assert clone.extra_repr() == module.extra_repr()
        for (name, a), (_, b) in zip(
            module.state_dict().items(), clone.state_dict().items(), strict=True
        ):
            torch.testing.assert_close(a, b, msg=name)


MININGS = ["batch_all", "batch_hard", "batch_semi_hard"]


@pytest.fixture(params=["matrix", "blocked"])
def mined_path(request, monkeypatch):
    """batch_triplet_loss's matrix path, or the blocked one it takes at large
    batches, forced at small B by a patched crossover and block size."""
    from lossopt import _policy

    if request.param == "blocked":
        monkeypatch.setattr(_policy, "HARD_MATRIX_MAX_BATCH", 4)
        monkeypatch.setattr(_policy, "MINE_BLOCK_ELEMENTS", 16)  # 2 anchors per block at B = 8
    return request.param


def _groups(p_seed=0):
    """Three independent labelled batches of 8 embeddings, one anchor of
    each without a positive."""
    g = _gen(20 + p_seed)
    x = torch.randn(3, 8, 3, generator=g, dtype=D)
    labels = torch.randint(0, 3, (3, 8), generator=g)
    labels[:, -1] = 9
    return x, labels


@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("p", [1.5, 2.0])
def test_vmap_over_batches_of_mined_triplets_equals_a_loop(mining, p, mined_path):
    """A mined loss depends on its whole batch, so its per-sample unit is a
    batch: vmap over a stack of batches equals a loop over them, and both
    equal the control's."""
    x, labels = _groups()

    def ours(e, y):
        return losses.batch_triplet_loss(e, y, mining=mining, margin=0.7, p=p)

    def theirs(e, y):
        return _torch_mined(e, y, mining, margin=0.7, p=p)

    control = torch.func.vmap(torch.func.grad(theirs))(x, labels)
    per_batch = torch.func.vmap(torch.func.grad(ours))(x, labels)
    loop = torch.stack([torch.func.grad(ours)(x[i], labels[i]) for i in range(len(x))])
    _close(per_batch, loop)
    _close(per_batch, control)


@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_double_backward_of_every_mining(mining, p, mined_path):
    """Hessian-vector products (a gradient penalty's double backward) equal
    the control's, on both paths."""
    x, labels = _groups(1)
    x, labels = x[0].requires_grad_(), labels[0]
    v = torch.randn(x.shape, generator=_gen(9), dtype=D)
    hvps = []
    for fn in (_torch_mined, losses.batch_triplet_loss):  # the control first
        loss = fn(x, labels, mining=mining, margin=0.7, p=p)
        (g,) = torch.autograd.grad(loss, x, create_graph=True)
        hvps.append(torch.autograd.grad((g * v).sum(), x, materialize_grads=True)[0])
    assert torch.isfinite(hvps[0]).all()
    _close(hvps[1], hvps[0])
