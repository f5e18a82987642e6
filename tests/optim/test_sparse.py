"""Sparse gradients (nn.Embedding(sparse=True)) for SGD and Adagrad, against
torch.optim in float64, as torch takes them."""

import pytest
import torch

from lossopt import optim

D = torch.float64
CASES = [
    ("SGD", {"lr": 0.1}),
    ("SGD", {"lr": 0.1, "maximize": True}),
    ("SGD", {"lr": 0.1, "momentum": 0.9}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "dampening": 0.2}),
    ("SGD", {"lr": 0.1, "momentum": 0.9, "nesterov": True}),
    ("Adagrad", {"lr": 0.1}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.05, "initial_accumulator_value": 0.2}),
    ("Adagrad", {"lr": 0.1, "maximize": True, "eps": 1e-3}),
]


def _embedding():
    torch.manual_seed(0)
    return torch.nn.Embedding(12, 3, sparse=True).to(D)


def _train(emb, opt, steps, nonfinite_at=None):
    for step in range(steps):
        g = torch.Generator().manual_seed(step)
        # Repeated indices: the sparse gradient has duplicate rows to coalesce.
        idx = torch.randint(0, 12, (9,), generator=g)
        target = torch.randn(9, 3, generator=g, dtype=D)
        opt.zero_grad()
        (emb(idx) - target).square().sum().backward()
        assert emb.weight.grad.is_sparse
        if step == nonfinite_at:
            emb.weight.grad._values()[0, 0] = float("nan")
        opt.step()


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{kw}" for n, kw in CASES])
def test_sparse_trajectory_matches_torch(name, kwargs):
    ours, theirs = _embedding(), _embedding()
    a = getattr(optim, name)(ours.parameters(), **kwargs)
    b = getattr(torch.optim, name)(theirs.parameters(), **kwargs)
    _train(ours, a, 12)
    _train(theirs, b, 12)
    torch.testing.assert_close(ours.weight, theirs.weight, rtol=0, atol=1e-10)
    for key, value in b.state[theirs.weight].items():
        mine = a.state[ours.weight][key]
        assert mine.is_sparse == value.is_sparse, key
        torch.testing.assert_close(mine.to_dense(), value.to_dense(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_sparse_skip_leaves_the_embedding_untouched(name):
    emb = _embedding()
    opt = getattr(optim, name)(emb.parameters(), lr=0.1, nonfinite="skip")
    _train(emb, opt, 2)
    before = emb.weight.detach().clone()
    _train(emb, opt, 1, nonfinite_at=0)
    assert torch.equal(before, emb.weight) and opt.skipped_steps == 1


def test_sparse_adagrad_with_weight_decay_is_refused_before_any_change():
    emb = _embedding()
    opt = optim.Adagrad(emb.parameters(), weight_decay=0.1)
    emb(torch.tensor([1, 2])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(ValueError, match="weight_decay is not compatible with sparse gradients"):
        opt.step()
    assert torch.equal(before, emb.weight)
