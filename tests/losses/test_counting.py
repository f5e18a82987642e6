"""On an accelerator every dispatched operation is a kernel launch and every
read of a device value stalls the host. With the accelerator path forced on
CPU tensors, the counts are exact: no loss forward or backward reads a device
value, and none dispatches more than a few operations beyond torch's own."""

import pytest
import torch
import torch.nn.functional as F

from lossopt import _policy, losses
from tests.counting import count
from tests.losses.test_composability import CASES

# Extra kernels lossopt may launch over torch's counterpart: the mask that
# makes a mean over no kept target 0 (eq, all, where, and where's backward;
# with class weights, their sum over the kept targets too).
ALLOWANCE = 8


def _run(fn, diff, other):
    diff = tuple(d.float().requires_grad_() for d in diff)
    other = tuple(o.float() if o.is_floating_point() else o for o in other)
    with _policy.accelerator_path():
        _, counter = count(lambda: fn(*diff, *other).backward())
    return counter


@pytest.mark.parametrize("name", list(CASES))
def test_forward_and_backward_never_read_a_device_value(name):
    ours, theirs, make = CASES[name]
    mine = _run(ours, *make())
    control = _run(theirs, *make())
    assert mine.syncs == 0, mine.ops
    if name != "batch_triplet_loss":  # whose control is a brute-force formula, not torch's loss
        assert mine.kernels <= control.kernels + ALLOWANCE, (mine.ops, control.ops)


def test_the_cpu_path_reads_a_value_only_where_it_is_free(kernel):
    """On the CPU a read costs nothing: torch's kernel path reads the mean
    once (to tell no kept target from a NaN), lossopt's path reads the class
    check and the incoming gradient."""
    x = torch.randn(6, 5, requires_grad=True)
    y = torch.randint(0, 5, (6,))
    _, counter = count(lambda: losses.cross_entropy(x, y).backward())
    assert counter.syncs <= (1 if kernel == "torch kernel" else 2)


def test_sync_checks_switch_names_a_bad_class_index_on_the_accelerator_path():
    x = torch.randn(3, 4)
    y = torch.tensor([0, 9, 1])
    with _policy.accelerator_path():
        previous = _policy.sync_checks()
        try:
            _policy.sync_checks(True)
            with pytest.raises(IndexError, match="class index 9, outside \\[0, 4\\)"):
                losses.cross_entropy(x, y)
        finally:
            _policy.sync_checks(previous)
        # Off, the accelerator path leaves the check to torch's kernel (an
        # assertion on the device, an IndexError on the CPU), with no read.
        with pytest.raises(IndexError):
            losses.cross_entropy(x, y)


def test_every_ignored_target_gives_zero_on_the_accelerator_path_without_a_read():
    x = torch.randn(4, 3, requires_grad=True)
    y = torch.full((4,), -100)
    with _policy.accelerator_path():
        loss, counter = count(lambda: losses.cross_entropy(x, y))
        loss.backward()
    assert counter.syncs == 0
    assert loss.item() == 0.0 and torch.equal(x.grad, torch.zeros_like(x))
    assert torch.isnan(F.cross_entropy(x, y))  # torch's answer, for contrast


def _small_calls():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 10, generator=g)
    y = torch.randint(0, 10, (64,), generator=g)
    p = torch.softmax(torch.randn(64, 10, generator=g), dim=1)
    h, w = torch.randn(64, 16, generator=g), torch.randn(10, 16, generator=g)
    return {
        "cross_entropy": (
            (x,),
            lambda x: losses.cross_entropy(x, y),
            lambda x: F.cross_entropy(x, y),
        ),
        "cross_entropy/probs": (
            (x,),
            lambda x: losses.cross_entropy(x, p),
            lambda x: F.cross_entropy(x, p),
        ),
        "nll_loss": ((x,), lambda x: losses.nll_loss(x, y), lambda x: F.nll_loss(x, y)),
        "kl_div": (
            (x,),
            lambda x: losses.kl_div(x, p),
            lambda x: F.kl_div(x, p, reduction="batchmean"),
        ),
        "kl_divergence": (
            (x, h[:, :10]),
            lambda a, b: losses.kl_divergence(a, b),
            lambda a, b: F.kl_div(
                F.log_softmax(b, -1), F.log_softmax(a, -1), reduction="batchmean", log_target=True
            ),
        ),
        "linear_cross_entropy": (
            (h, w),
            lambda h, w: losses.linear_cross_entropy(h, w, y),
            lambda h, w: F.cross_entropy(F.linear(h, w), y),
        ),
    }


@pytest.mark.parametrize("name", list(_small_calls()))
def test_a_small_cpu_call_dispatches_exactly_torchs_operations(name, monkeypatch):
    """Below the crossovers a CPU call is torch's kernel and nothing else: the
    same operations forward and backward, the same result, and no check of
    lossopt's own (those run only when torch refuses the input)."""
    # Small, as the sizes below every measured crossover (whatever the fixture forces).
    small = {loss: {"cpu": float("inf")} for loss in _policy.LOSS_CROSSOVER}
    monkeypatch.setattr(_policy, "LOSS_CROSSOVER", small)
    leaves, ours, theirs = _small_calls()[name]
    counted = []
    for fn in (ours, theirs):
        inputs = tuple(t.clone().requires_grad_() for t in leaves)

        def step(fn=fn, inputs=inputs):
            loss = fn(*inputs)
            loss.backward()
            return loss

        loss, counter = count(step)
        counted.append((counter.ops, loss, [t.grad for t in inputs]))
    (mine, my_loss, my_grads), (control, loss, grads) = counted
    assert mine == control
    assert torch.equal(my_loss, loss)
    for a, b in zip(my_grads, grads, strict=True):
        assert torch.equal(a, b)
