"""bfloat16 and float16: losses accumulate in float32, optimizers follow torch."""

import warnings

import pytest
import torch
import torch.nn.functional as F

from lossopt import losses, optim

HALF = [torch.bfloat16, torch.float16]


def _close_to_float64(ours, reference, rtol):
    assert ours.dtype in HALF
    torch.testing.assert_close(ours.double(), reference, rtol=rtol, atol=1e-3)


@pytest.mark.parametrize("dtype", HALF)
def test_every_loss_accepts_half_precision(dtype):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 10, generator=g).to(dtype)
    t = torch.randn(16, 10, generator=g).to(dtype)
    y = torch.randint(0, 10, (16,), generator=g)
    x64, t64 = x.double(), t.double()
    for ours, ref in [
        (losses.l1_loss(x, t), F.l1_loss(x64, t64)),
        (losses.mse_loss(x, t), F.mse_loss(x64, t64)),
        (losses.huber_loss(x, t), F.huber_loss(x64, t64)),
        (losses.smooth_l1_loss(x, t), F.smooth_l1_loss(x64, t64)),
        (losses.cross_entropy(x, y), F.cross_entropy(x64, y)),
        (
            losses.nll_loss(torch.log_softmax(x.float(), 1).to(dtype), y),
            F.nll_loss(torch.log_softmax(x.float(), 1).to(dtype).double(), y),
        ),
        (
            losses.kl_div(
                torch.log_softmax(x.float(), 1).to(dtype), torch.softmax(t.float(), 1).to(dtype)
            ),
            F.kl_div(
                torch.log_softmax(x.float(), 1).to(dtype).double(),
                torch.softmax(t.float(), 1).to(dtype).double(),
                reduction="batchmean",
            ),
        ),
        (losses.kl_divergence(x, t), losses.kl_divergence(x64, t64)),
        (losses.triplet_margin_loss(x, t, x.flip(0)), F.triplet_margin_loss(x64, t64, x64.flip(0))),
        (losses.batch_triplet_loss(x, y), losses.batch_triplet_loss(x64, y)),
        (losses.linear_cross_entropy(x, t[:7], y % 7), F.cross_entropy(x64 @ t64[:7].T, y % 7)),
    ]:
        _close_to_float64(ours, ref, rtol=2e-2)


@pytest.mark.parametrize("dtype", HALF)
def test_cross_entropy_at_a_128k_vocabulary_is_accumulated_in_float32(dtype):
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(32, 128256, generator=g)).to(dtype).requires_grad_()
    y = torch.randint(0, 128256, (32,), generator=g)
    loss = losses.cross_entropy(x, y)
    reference = F.cross_entropy(x.detach().double(), y)
    # Accumulated in float32, the value is exact to float32 and rounded once to
    # the half type: within half a unit in the last place of the reference
    # (float16: under 1e-3 relative; bfloat16: its 8-bit mantissa allows 4e-3).
    half_ulp = torch.finfo(dtype).eps / 2 * reference
    assert abs(loss.double() - reference) <= half_ulp * 1.01
    if dtype == torch.float16:
        assert abs(loss.double() - reference) / reference < 1e-3
    # In float32 (the accumulation itself) it is within 1e-6 of float64.
    with torch.no_grad():
        exact = losses.cross_entropy(x.float(), y)
    assert abs(exact.double() - reference) / reference < 1e-6
    loss.backward()
    assert x.grad.dtype == dtype and torch.isfinite(x.grad).all()


def test_cross_entropy_float32_accumulation_beats_naive_half():
    g = torch.Generator().manual_seed(0)
    x = (3 * torch.randn(32, 128256, generator=g)).to(torch.bfloat16)
    y = torch.randint(0, 128256, (32,), generator=g)
    reference = F.cross_entropy(x.double(), y, reduction="none")
    ours = losses.cross_entropy(x, y, reduction="none").double()
    assert ((ours - reference).abs() / reference).max() < 1e-2


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_optimizers_on_bfloat16_follow_torch(name):
    g = torch.Generator().manual_seed(0)
    start = torch.randn(64, generator=g).to(torch.bfloat16)
    target = torch.randn(64, generator=g).to(torch.bfloat16)
    kwargs = {"lr": 0.01, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.01}
    results = []
    for module in (optim, torch.optim):
        p = start.clone().requires_grad_()
        opt = getattr(module, name)([p], **kwargs)
        for _ in range(10):
            opt.zero_grad()
            (p - target).float().square().sum().backward()
            opt.step()
        assert p.dtype == torch.bfloat16
        results.append(p.detach().float())
    torch.testing.assert_close(results[0], results[1], rtol=2e-2, atol=2e-2)
    assert not torch.equal(results[0], start.float())


def test_float16_eps_underflow_is_not_silent():
    p = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    opt = optim.Adam([p], eps=1e-8)
    p.grad = torch.zeros_like(p)
    with pytest.warns(RuntimeWarning, match="eps=1e-08 is 0 in float16") as caught:
        opt.step()
    assert caught[0].filename == __file__  # points at the caller's step(), not at torch
    ok = optim.Adam([torch.zeros(4, dtype=torch.float16, requires_grad=True)], eps=1e-4)
    ok.param_groups[0]["params"][0].grad = torch.zeros(4, dtype=torch.float16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ok.step()
        bf = torch.zeros(4, dtype=torch.bfloat16, requires_grad=True)
        bf.grad = torch.zeros_like(bf)
        optim.Adam([bf], eps=1e-8).step()  # bfloat16 has float32's range: no underflow
