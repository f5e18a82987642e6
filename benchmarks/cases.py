"""The benchmark cases of lossopt against torch's best built-in paths.

Each case builds its inputs for a size ('full': the sizes the README reports;
'smoke': tiny, for the test suite) and returns a Bench: callables for our
variants and the references, a parity check run before any timing, and the
minimal bytes a step must move (for memory-bound cases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from lossopt import losses, optim


@dataclass
class Bench:
    ours: dict[str, Callable[[], object]]
    references: dict[str, Callable[[], object]]
    parity: Callable[[], None]
    min_bytes: int | None = None  # memory-bound cases: bytes a call must move at least
    memory: bool = False  # measure peak memory growth too
    targets: dict[str, float] = field(default_factory=dict)  # time, memory, bandwidth
    reps: int = 7

    @property
    def variants(self) -> dict[str, Callable[[], object]]:
        return {**self.ours, **self.references}


def _params(shapes, device, seed=0):
    g = torch.Generator().manual_seed(seed)
    params = [torch.randn(shape, generator=g).to(device).requires_grad_() for shape in shapes]
    for p in params:
        p.grad = torch.randn(p.shape, generator=g).to(device)
    return params


def _optimizer_bench(
    ours_cls, theirs_cls, shapes, kwargs, torch_variants, device, targets, bytes_per
):
    numel = sum(torch.Size(s).numel() for s in shapes)
    opts = {
        "lossopt": ours_cls(_params(shapes, device), **kwargs),
        "lossopt fused=True": ours_cls(_params(shapes, device), fused=True, **kwargs),
    }
    refs = {
        f"torch {label}": theirs_cls(_params(shapes, device), **kwargs, **extra)
        for label, extra in torch_variants.items()
    }

    def parity():
        # One step each from the same start must agree to float32 rounding.
        start = [p.detach().clone() for p in next(iter(refs.values())).param_groups[0]["params"]]
        for opt in (*opts.values(), *refs.values()):
            for p, p0 in zip(opt.param_groups[0]["params"], start, strict=True):
                p.data.copy_(p0)
        results = []
        for opt in (*opts.values(), *refs.values()):
            state = {
                k: {n: (v.clone() if torch.is_tensor(v) else v) for n, v in s.items()}
                for k, s in opt.state.items()
            }
            for _ in range(2):  # the second step exercises fused=True's compiled path
                opt.step()
            results.append([p.detach().clone() for p in opt.param_groups[0]["params"]])
            opt.state.clear()
            opt.state.update(state)
        for other in results[1:]:
            for a, b in zip(results[0], other, strict=True):
                torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)

    return Bench(
        {k: o.step for k, o in opts.items()},
        {k: o.step for k, o in refs.items()},
        parity,
        min_bytes=bytes_per * 4 * numel,
        targets=targets,
        reps=15,  # at least; short steps get more rounds, up to the time budget
    )


LARGE = [(699050,)] * 24  # 16.8M parameters in 24 tensors
MANY = [(4096,)] * 2000
SMALL = [(1000,)] * 200
SMOKE = [(64,)] * 5


def _shapes(size, full):
    return SMOKE if size == "smoke" else full


def adam(size, device, shapes=LARGE, cls=(optim.Adam, torch.optim.Adam), kwargs=None, time=1.10):
    # Adam moves at least 28 bytes per float32 parameter: reads p, g, m, v; writes p, m, v.
    targets = {"time": time, "bandwidth": 0.85} if time == 1.10 else {"time": time}
    return _optimizer_bench(
        cls[0],
        cls[1],
        _shapes(size, shapes),
        kwargs or {},
        {"fused=True": {"fused": True}},
        device,
        targets,
        7,
    )


CASES: dict[str, Callable[[str, str], Bench]] = {
    "adam-24-tensors": adam,
    "adam-2000-tensors": lambda size, device: adam(size, device, MANY),
    "adamw-24-tensors": lambda size, device: adam(
        size, device, cls=(optim.AdamW, torch.optim.AdamW)
    ),
    "adam-200-small-tensors": lambda size, device: adam(size, device, SMALL, time=1.25),
    "sgd-momentum-24-tensors": lambda size, device: _optimizer_bench(
        optim.SGD,
        torch.optim.SGD,
        _shapes(size, LARGE),
        {"lr": 0.01, "momentum": 0.9},
        {"fused=True": {"fused": True}},
        device,
        {"time": 1.10},
        5,
    ),
    "adagrad-24-tensors": lambda size, device: _optimizer_bench(
        optim.Adagrad,
        torch.optim.Adagrad,
        _shapes(size, LARGE),
        {},
        {"fused=True": {"fused": True}},
        device,
        {"time": 1.10},
        5,
    ),
    "rmsprop-24-tensors": lambda size, device: _optimizer_bench(
        optim.RMSprop,
        torch.optim.RMSprop,
        _shapes(size, LARGE),
        {},
        {"foreach=True": {"foreach": True}, "for-loop": {"foreach": False}},
        device,
        {"time": 0.50},
        5,
    ),
}


def cross_entropy(size, device):
    n, v = (4096, 32768) if size == "full" else (64, 128)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, v, generator=g).to(device).requires_grad_()
    y = torch.randint(0, v, (n,), generator=g).to(device)

    def run(fn):
        return lambda: torch.autograd.grad(fn(x, y), x)

    ours, theirs = run(losses.cross_entropy), run(F.cross_entropy)

    def parity():
        torch.testing.assert_close(ours()[0], theirs()[0], rtol=1e-4, atol=1e-7)

    return Bench(
        {"lossopt": ours},
        {"torch F.cross_entropy": theirs},
        parity,
        min_bytes=8 * n * v,
        memory=True,
        targets={"time": 0.60, "memory": 0.50},
    )


def kl_div(size, device):
    n, v = (4096, 32768) if size == "full" else (64, 128)
    g = torch.Generator().manual_seed(0)
    log_q = torch.log_softmax(torch.randn(n, v, generator=g), 1).to(device).requires_grad_()
    p = torch.softmax(torch.randn(n, v, generator=g), 1).to(device)

    def ours():
        return torch.autograd.grad(losses.kl_div(log_q, p, "batchmean"), log_q)

    def theirs():
        return torch.autograd.grad(F.kl_div(log_q, p, reduction="batchmean"), log_q)

    def parity():
        torch.testing.assert_close(ours()[0], theirs()[0], rtol=1e-4, atol=1e-9)

    return Bench(
        {"lossopt": ours},
        {"torch F.kl_div": theirs},
        parity,
        min_bytes=12 * n * v,
        memory=True,
        targets={"time": 0.60},
    )


def linear_ce(n, h, v):
    def make(size, device):
        dims = (n, h, v) if size == "full" else (64, 16, 256)
        g = torch.Generator().manual_seed(0)
        hidden = torch.randn(dims[0], dims[1], generator=g).to(device).requires_grad_()
        weight = (0.02 * torch.randn(dims[2], dims[1], generator=g)).to(device).requires_grad_()
        bias = torch.zeros(dims[2]).to(device).requires_grad_()
        target = torch.randint(0, dims[2], (dims[0],), generator=g).to(device)
        leaves = (hidden, weight, bias)

        def ours():
            loss = losses.linear_cross_entropy(hidden, weight, target, linear_bias=bias)
            return torch.autograd.grad(loss, leaves)

        def plain():
            return torch.autograd.grad(F.cross_entropy(hidden @ weight.T + bias, target), leaves)

        def chunked():
            loss = F.linear_cross_entropy(
                hidden,
                weight,
                target,
                linear_bias=bias,
                options=torch.nn.LinearCrossEntropyOptions(),
            )
            return torch.autograd.grad(loss, leaves)

        def parity():
            for a, b in zip(ours(), plain(), strict=True):
                torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-6)

        return Bench(
            {"lossopt": ours},
            {"torch plain": plain, "torch chunked": chunked},
            parity,
            memory=True,
            targets={"time": 1.0, "memory": 0.8},
            reps=3 if n < 8192 else 1,
        )

    return make


def triplet(size, device):
    b, d = (2048, 128) if size == "full" else (64, 8)
    g = torch.Generator().manual_seed(0)
    emb = torch.randn(b, d, generator=g).to(device).requires_grad_()
    labels = torch.randint(0, 64 if size == "full" else 8, (b,), generator=g).to(device)

    def ours():
        return torch.autograd.grad(losses.batch_triplet_loss(emb, labels, mining="batch_hard"), emb)

    refs = {}
    try:
        from pytorch_metric_learning import losses as pml_losses
        from pytorch_metric_learning import miners

        miner, loss_fn = miners.BatchHardMiner(), pml_losses.TripletMarginLoss(margin=1.0)

        def pml():
            return torch.autograd.grad(loss_fn(emb, labels, miner(emb, labels)), emb)

        refs["pytorch-metric-learning"] = pml
    except ImportError:  # an optional benchmark dependency
        pass

    def parity():
        ours()  # pml's hard mining differs in tie-breaking and distance; lossopt's own
        # brute-force parity lives in the test suite

    return Bench({"lossopt": ours}, refs, parity, targets={"time": 0.50})


CASES.update(
    {
        "cross-entropy": cross_entropy,
        "kl-div": kl_div,
        "linear-cross-entropy-2048x512x32768": linear_ce(2048, 512, 32768),
        "linear-cross-entropy-8192x1024x128256": linear_ce(8192, 1024, 128256),
        "batch-triplet-hard": triplet,
    }
)
