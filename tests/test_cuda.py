"""On a GPU, when one is present: the losses and optimizers (fused too) match
torch there as they do on the CPU. Skipped where there is no CUDA device."""

import pytest
import torch
import torch.nn.functional as F

from lossopt import losses, optim

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
D = torch.float64


def test_losses_match_torch_on_cuda():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 1000, generator=g, dtype=D).cuda().requires_grad_()
    y = torch.randint(0, 1000, (64,), generator=g).cuda()
    for ours, theirs in [
        (
            losses.cross_entropy(x, y, label_smoothing=0.1),
            F.cross_entropy(x, y, label_smoothing=0.1),
        ),
        (
            losses.kl_div(torch.log_softmax(x, 1), torch.softmax(x.flip(0), 1)),
            F.kl_div(torch.log_softmax(x, 1), torch.softmax(x.flip(0), 1), reduction="batchmean"),
        ),
        (
            losses.linear_cross_entropy(x[:, :32], x[:50, 32:64], y % 50),
            F.cross_entropy(x[:, :32] @ x[:50, 32:64].T, y % 50),
        ),
        (losses.batch_triplet_loss(x[:, :8], y % 5), None),
    ]:
        if theirs is not None:
            torch.testing.assert_close(ours, theirs)
            (a,) = torch.autograd.grad(ours, x)
            (b,) = torch.autograd.grad(theirs, x)
            torch.testing.assert_close(a, b)
        else:
            ours.backward()


@pytest.mark.parametrize("fused", [False, True])
@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_optimizers_match_torch_on_cuda(name, fused):
    g = torch.Generator().manual_seed(0)
    start = torch.randn(1000, generator=g, dtype=D).cuda()
    kwargs = {"lr": 0.01, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.01}
    results = []
    for module, extra in ((optim, {"fused": fused}), (torch.optim, {})):
        p = start.clone().requires_grad_()
        opt = getattr(module, name)([p], **kwargs, **extra)
        for _ in range(10):
            opt.zero_grad()
            (p.square() * torch.arange(1000, device="cuda")).sum().backward()
            opt.step()
        results.append(p.detach())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-10)
