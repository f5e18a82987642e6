"""Inputs beyond 2^31 elements and batches of thousands, in bounded memory."""

import torch
import torch.nn.functional as F

from benchmarks.harness import peak_growth_here
from lossopt import losses


def _peak_growth(fn):
    """fn's result and the peak resident-set growth of the call, in bytes."""
    out = []
    peak = peak_growth_here(lambda: out.append(fn()), "cpu", warmup=False)
    return out[0], peak


def test_linear_cross_entropy_beyond_2_to_the_31_logits():
    n, h, v = 65600, 4, 32768
    assert n * v > 2**31
    g = torch.Generator().manual_seed(0)
    hidden = torch.randn(n, h, generator=g, requires_grad=True)
    weight = torch.randn(v, h, generator=g, requires_grad=True)
    target = torch.randint(0, v, (n,), generator=g)

    def run():
        loss = losses.linear_cross_entropy(hidden, weight, target)
        return loss, torch.autograd.grad(loss, (hidden, weight))

    (loss, (grad_h, grad_w)), peak = _peak_growth(run)
    assert peak < 1.5 * 2**30  # the logits alone would be 8.6 GB

    # Reference: torch on slices of rows, summed in float64.
    total, ref_w = (
        torch.zeros((), dtype=torch.float64),
        torch.zeros_like(weight, dtype=torch.float64),
    )
    rows = 4096
    for start in range(0, n, rows):
        hs = hidden.detach()[start : start + rows].requires_grad_()
        ws = weight.detach().requires_grad_()
        part = F.cross_entropy(hs @ ws.T, target[start : start + rows], reduction="sum") / n
        gh, gw = torch.autograd.grad(part, (hs, ws))
        total += part.double()
        ref_w += gw.double()
        torch.testing.assert_close(grad_h[start : start + rows], gh, rtol=1e-4, atol=1e-8)
    torch.testing.assert_close(loss.double(), total, rtol=1e-5, atol=0)
    torch.testing.assert_close(grad_w.double(), ref_w, rtol=1e-3, atol=1e-7)


def test_batch_triplet_loss_at_8192_in_quadratic_memory():
    b = 8192
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(b, 16, generator=g, requires_grad=True)
    labels = torch.randint(0, 100, (b,), generator=g)
    for mining in ("batch_all", "batch_hard", "batch_semi_hard"):

        def run(mining=mining):
            loss = losses.batch_triplet_loss(emb, labels, mining=mining)
            return loss, torch.autograd.grad(loss, emb)[0]

        (loss, grad), peak = _peak_growth(run)
        assert torch.isfinite(loss) and torch.isfinite(grad).all() and loss > 0
        # At most eight B x B float matrices at once (2 GiB; measured: 4 to 6);
        # one B x B x D tensor alone would be 4 GiB.
        assert peak < 8 * 4 * b * b, (mining, peak / 2**30)
