"""lossopt on torch.distributed: DDP, ZeRO and FSDP2 over gloo, two processes
spawned here on loopback, against the same runs with torch.optim."""

import os
import socket
import warnings

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F

from lossopt import losses, optim

D = torch.float64
STEPS = 10
OPTIMIZERS = [
    ("SGD", {"lr": 0.05, "momentum": 0.9}),
    ("Adagrad", {"lr": 0.1}),
    ("RMSprop", {"lr": 0.01, "centered": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True}),
    ("AdamW", {"lr": 0.01}),
]


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(6, 8), torch.nn.Tanh(), torch.nn.Linear(8, 4)).to(D)


def _batch(step, rank=None, world=2):
    g = torch.Generator().manual_seed(100 + step)
    x, y = torch.randn(16, 6, generator=g, dtype=D), torch.randint(0, 4, (16,), generator=g)
    if rank is None:
        return x, y
    return x.chunk(world)[rank], y.chunk(world)[rank]


def _train(model, opt, rank, loss_fn=F.cross_entropy):
    for step in range(STEPS):
        x, y = _batch(step, rank)
        opt.zero_grad()
        loss_fn(model(x), y).backward()
        opt.step()


def _full(params):
    return [
        p.full_tensor() if type(p).__name__ == "DTensor" else p.detach().clone() for p in params
    ]


def _ddp(rank):
    from torch.nn.parallel import DistributedDataParallel as DDP

    out = {}
    for name, kwargs in OPTIMIZERS:
        runs = []
        for module in (optim, torch.optim):
            model = DDP(_model())
            _train(model, getattr(module, name)(model.parameters(), **kwargs), rank)
            runs.append(_full(model.parameters()))
        out[name] = runs
    return out


def _zero(rank):
    from torch.distributed.optim import ZeroRedundancyOptimizer
    from torch.nn.parallel import DistributedDataParallel as DDP

    out = {}
    for name, kwargs in OPTIMIZERS:
        runs = []
        for module in (optim, torch.optim):
            model = DDP(_model())
            opt = ZeroRedundancyOptimizer(
                model.parameters(), optimizer_class=getattr(module, name), **kwargs
            )
            _train(model, opt, rank)
            runs.append(_full(model.parameters()))
        out[name] = runs
    return out


def _fsdp(rank):
    from torch.distributed.fsdp import fully_shard

    out, warned = {}, {}
    for name, kwargs in OPTIMIZERS:
        runs = []
        for module, extra in ((optim, {}), (optim, {"fused": True}), (torch.optim, {})):
            model = _model()
            fully_shard(model[0])
            fully_shard(model)
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                opt = getattr(module, name)(model.parameters(), **kwargs, **extra)
                _train(model, opt, rank)
            if extra:
                warned[name] = any(
                    "eager update path" in str(w.message) and w.filename == __file__ for w in caught
                )
            runs.append(_full(model.parameters()))
        out[name] = runs
    out["fused_fallback_warned"] = warned
    # nonfinite='skip' must agree across ranks when only one shard is bad.
    model = _model()
    fully_shard(model)
    opt = optim.Adam(model.parameters(), lr=0.01, nonfinite="skip")
    x, y = _batch(0, rank)
    F.cross_entropy(model(x), y).backward()
    if rank == 1:
        next(iter(model.parameters())).grad.to_local().view(-1)[0] = float("nan")
    before = _full(model.parameters())
    opt.step()
    out["skip"] = (opt.skipped_steps, before, _full(model.parameters()))
    return out


def _losses_under_ddp(rank):
    from torch.nn.parallel import DistributedDataParallel as DDP

    model = DDP(_model())
    _train(model, optim.SGD(model.parameters(), lr=0.1), rank, losses.cross_entropy)
    return _full(model.parameters())


def _worker(rank, port, folder):
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    torch.set_num_threads(1)
    try:
        results = {
            "ddp": _ddp(rank),
            "zero": _zero(rank),
            "fsdp": _fsdp(rank),
            "losses": _losses_under_ddp(rank),
        }
    finally:
        dist.destroy_process_group()
    torch.save(results, os.path.join(folder, f"rank{rank}.pt"))


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    folder = tmp_path_factory.mktemp("dist")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(port, str(folder)), nprocs=2, join=True, start_method="spawn")
    return [torch.load(folder / f"rank{r}.pt", weights_only=False) for r in range(2)]


def _close(a, b):
    for x, y in zip(a, b, strict=True):
        torch.testing.assert_close(x, y, rtol=0, atol=1e-10)


@pytest.mark.parametrize("kind", ["ddp", "zero"])
@pytest.mark.parametrize("name", [n for n, _ in OPTIMIZERS])
def test_matches_torch_optim(results, kind, name):
    for rank in results:
        ours, theirs = rank[kind][name]
        _close(ours, theirs)
    _close(results[0][kind][name][0], results[1][kind][name][0])  # ranks agree


@pytest.mark.parametrize("name", [n for n, _ in OPTIMIZERS])
def test_fsdp2_matches_torch_optim_fused_falls_back_visibly(results, name):
    for rank in results:
        ours, ours_fused, theirs = rank["fsdp"][name]
        _close(ours, theirs)
        _close(ours_fused, theirs)
        assert rank["fsdp"]["fused_fallback_warned"][name]


def test_fsdp2_skip_is_agreed_across_ranks(results):
    for rank in results:
        skipped, before, after = rank["fsdp"]["skip"]
        assert skipped == 1
        _close(before, after)


def test_losses_under_ddp_match_single_process_full_batch(results):
    model = _model()
    opt = optim.SGD(model.parameters(), lr=0.1)
    _train(model, opt, None, losses.cross_entropy)
    for rank in results:
        _close(rank["losses"], [p.detach() for p in model.parameters()])
