"""Every tensor lossopt's autograd Functions keep for the backward goes
through ``ctx.save_for_backward``, so saved-tensor hooks see it: the
gradients formed during the forward (N x C for cross_entropy; those of h, W
and b for linear_cross_entropy) included. torch's own losses are the
control."""

import pytest
import torch
import torch.nn.functional as F

from lossopt import _policy, losses

D = torch.float64


@pytest.fixture
def own_kernel(monkeypatch):
    """lossopt's one-pass Functions at every size."""
    patched = {name: {"cpu": 0} for name in _policy.LOSS_CROSSOVER}
    monkeypatch.setattr(_policy, "LOSS_CROSSOVER", patched)


def _cross_entropy_case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(12, 7, generator=g, dtype=D, requires_grad=True)
    y = torch.randint(0, 7, (12,), generator=g)
    return (x,), (y,), losses.cross_entropy, F.cross_entropy


def _linear_case():
    g = torch.Generator().manual_seed(1)
    h = torch.randn(10, 4, generator=g, dtype=D, requires_grad=True)
    w = torch.randn(9, 4, generator=g, dtype=D, requires_grad=True)
    b = torch.randn(9, generator=g, dtype=D, requires_grad=True)
    y = torch.randint(0, 9, (10,), generator=g)

    def ours(h, w, b, y):
        return losses.linear_cross_entropy(h, w, y, linear_bias=b, label_smoothing=0.1)

    def theirs(h, w, b, y):
        return F.cross_entropy(F.linear(h, w, b), y, label_smoothing=0.1)

    return (h, w, b), (y,), ours, theirs


CASES = {"cross_entropy": _cross_entropy_case, "linear_cross_entropy": _linear_case}


def _loss_and_grads(fn, diff, other):
    loss = fn(*diff, *other)
    return loss.detach(), torch.autograd.grad(loss, diff)


@pytest.mark.parametrize("name", list(CASES))
def test_results_equal_torch_under_save_on_cpu(name, own_kernel):
    diff, other, ours, theirs = CASES[name]()
    expected = _loss_and_grads(theirs, diff, other)
    with torch.autograd.graph.save_on_cpu():
        loss = ours(*diff, *other)
    grads = torch.autograd.grad(loss, diff)
    torch.testing.assert_close((loss.detach(), grads), expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", list(CASES))
def test_the_formed_gradients_are_packed_by_saved_tensor_hooks(name, own_kernel):
    diff, other, ours, theirs = CASES[name]()
    packed = []

    def pack(t):
        packed.append(t.detach().clone())  # the value when packed
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = ours(*diff, *other)
    # The gradients were formed in the forward: every one of them was packed.
    _, expected = _loss_and_grads(theirs, diff, other)
    for name_of, grad in zip("hwb" if len(diff) == 3 else "x", expected, strict=True):
        assert any(t.shape == grad.shape and torch.allclose(t, grad) for t in packed), name_of
    torch.testing.assert_close(torch.autograd.grad(loss, diff), expected)
