"""fused=True runs each optimizer's one update rule through torch.compile; it
must follow torch.optim exactly as the eager path does."""

import copy

import pytest
import torch

from lossopt import optim
from lossopt.optim import forms
from tests.optim.test_parity import _assert_params_close, _data, _model

CASES = [
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.1, "lr_decay": 0.01, "weight_decay": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adam", {"lr": 0.01, "amsgrad": True, "weight_decay": 0.1}),
    ("AdamW", {"lr": 0.01}),
]


@pytest.mark.parametrize("form", ["default"])  # passes fused=True itself
@pytest.mark.parametrize("name,kwargs", CASES, ids=[c[0] for c in CASES])
def test_fused_matches_torch_with_a_changing_learning_rate(name, kwargs, form):
    ours_model, torch_model = _model(), _model()
    ours = getattr(optim, name)(ours_model.parameters(), fused=True, **kwargs)
    theirs = getattr(torch.optim, name)(torch_model.parameters(), **kwargs)
    schedulers = [
        torch.optim.lr_scheduler.StepLR(o, step_size=2, gamma=0.5) for o in (ours, theirs)
    ]
    for step in range(6):
        for model, opt in ((ours_model, ours), (torch_model, theirs)):
            x, y = _data(step)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
        for scheduler in schedulers:
            scheduler.step()
    _assert_params_close(list(ours_model.parameters()), list(torch_model.parameters()))
    assert ours.fused


@pytest.mark.parametrize("form", ["default"])
def test_fused_must_be_a_bool(form):
    with pytest.raises(TypeError, match="fused must be a bool or None, got 'yes'"):
        optim.Adam([torch.zeros(1, requires_grad=True)], fused="yes")


@pytest.mark.parametrize("form", ["default"])
def test_fused_covers_more_parameters_than_one_compiled_call_takes(monkeypatch, form):
    # Chunks of at most 4 here (64 by default, which would compile for long):
    # 10 parameters run as 4 + 4 + 2, and 9 (one without a gradient yet) as
    # 3 + 3 + 3; the late parameter's first step is eager, then compiled.
    monkeypatch.setattr(forms, "OPTIM_FUSED_CHUNK", 4)
    g = torch.Generator().manual_seed(0)
    shapes = [(3,)] * 7 + [(2, 5)] * 3
    start = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
    ours_params = [p.clone().requires_grad_() for p in start]
    torch_params = [p.clone().requires_grad_() for p in start]
    ours = optim.Adam(ours_params, lr=0.01, fused=True)
    theirs = torch.optim.Adam(torch_params, lr=0.01)
    for step in range(4):
        grads = [torch.randn(s, generator=g, dtype=torch.float64) for s in shapes]
        for params, opt in ((ours_params, ours), (torch_params, theirs)):
            for i, (p, grad) in enumerate(zip(params, grads, strict=True)):
                p.grad = None if (step < 2 and i == 7) else grad.clone()
            opt.step()
    _assert_params_close(ours_params, torch_params)
    assert float(ours.state[ours_params[7]]["step"]) == 2
    assert float(ours.state[ours_params[0]]["step"]) == 4


@pytest.mark.parametrize("form", ["default"])
@pytest.mark.parametrize("name", ["Adam", "AdamW", "Adagrad", "RMSprop"])
def test_fused_advances_step_counters_under_either_default_dtype(name, default_dtype, form):
    # Issue 12: under torch.set_default_dtype(torch.float64) a compiled step
    # dropped the in-place update of the 0-d float64 counters.
    kwargs = {"lr": 0.01, "lr_decay": 0.1} if name == "Adagrad" else {"lr": 0.01}
    torch.manual_seed(0)
    ours_model = torch.nn.Linear(4, 2)
    torch_model = copy.deepcopy(ours_model)
    ours = getattr(optim, name)(ours_model.parameters(), fused=True, **kwargs)
    theirs = getattr(torch.optim, name)(torch_model.parameters(), **kwargs)
    for step in range(4):
        x = torch.randn(3, 4, generator=torch.Generator().manual_seed(step))
        for model, opt in ((ours_model, ours), (torch_model, theirs)):
            opt.zero_grad()
            model(x).square().sum().backward()
            opt.step()
    assert ours.state[ours_model.weight]["step"].dtype == default_dtype
    assert float(ours.state[ours_model.weight]["step"]) == 4
    tol = 1e-12 if default_dtype == torch.float64 else 1e-6
    for a, b in zip(ours_model.parameters(), torch_model.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)
