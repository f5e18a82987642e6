"""Every optimizer against torch.optim in float64: same model, same data, same steps."""

import inspect
import itertools

import pytest
import torch

from lossopt import optim

D = torch.float64


def _grid(**options):
    keys = list(options)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*options.values())]


GRIDS = {
    "SGD": [dict(lr=0.05)]
    + _grid(
        lr=[0.03],
        momentum=[0.9],
        dampening=[0.0, 0.3],
        weight_decay=[0.0, 0.01],
        maximize=[False, True],
    )
    + _grid(lr=[0.03], momentum=[0.5, 0.9], nesterov=[True], weight_decay=[0.0, 0.1]),
    "Adagrad": _grid(
        lr=[0.1],
        lr_decay=[0.0, 0.05],
        weight_decay=[0.0, 0.01],
        initial_accumulator_value=[0.0, 0.3],
        maximize=[False, True],
    )
    + [dict(lr=0.2, eps=1e-3)],
    "RMSprop": _grid(
        lr=[0.01],
        alpha=[0.9, 0.99],
        momentum=[0.0, 0.8],
        centered=[False, True],
        weight_decay=[0.0, 0.01],
        maximize=[False, True],
    )
    + [dict(lr=0.01, eps=1e-3)],
    "Adam": _grid(
        lr=[0.01],
        betas=[(0.9, 0.999), (0.5, 0.9)],
        weight_decay=[0.0, 0.05],
        amsgrad=[False, True],
        maximize=[False, True],
        decoupled_weight_decay=[False, True],
    )
    + [dict(lr=0.01, eps=1e-3)],
    "AdamW": _grid(lr=[0.01], weight_decay=[0.0, 0.1], amsgrad=[False, True]) + [dict(lr=0.003)],
}
CASES = [(name, kw) for name, grid in GRIDS.items() for kw in grid]
# Compiling costs seconds per option set, so the compiled form runs the cases
# that between them turn every option on and off, not the whole product.
FUSED_CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.03, momentum=0.9, dampening=0.3, weight_decay=0.01, maximize=True)),
    ("SGD", dict(lr=0.03, momentum=0.9, nesterov=True, weight_decay=0.1)),
    (
        "Adagrad",
        dict(
            lr=0.1, lr_decay=0.05, weight_decay=0.01, initial_accumulator_value=0.3, maximize=True
        ),
    ),
    ("Adagrad", dict(lr=0.2, eps=1e-3)),
    (
        "RMSprop",
        dict(lr=0.01, alpha=0.9, momentum=0.8, centered=True, weight_decay=0.01, maximize=True),
    ),
    (
        "RMSprop",
        dict(lr=0.01, alpha=0.99, momentum=0.0, centered=False, weight_decay=0.0, maximize=False),
    ),
    (
        "Adam",
        dict(
            lr=0.01,
            betas=(0.5, 0.9),
            weight_decay=0.05,
            amsgrad=True,
            maximize=True,
            decoupled_weight_decay=False,
        ),
    ),
    (
        "Adam",
        dict(
            lr=0.01,
            betas=(0.9, 0.999),
            weight_decay=0.05,
            amsgrad=False,
            maximize=False,
            decoupled_weight_decay=True,
        ),
    ),
    ("Adam", dict(lr=0.01, eps=1e-3)),
    ("AdamW", dict(lr=0.01, weight_decay=0.1, amsgrad=True)),
    ("AdamW", dict(lr=0.003)),
]
assert all(case in CASES for case in FUSED_CASES)
FORM_CASES = [(form, n, kw) for form in ("for-loop", "foreach") for n, kw in CASES] + [
    ("fused", n, kw) for n, kw in FUSED_CASES
]


def _model(seed=0):
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(), torch.nn.Linear(8, 3)).to(D)


def _data(step):
    g = torch.Generator().manual_seed(1000 + step)
    return torch.randn(16, 5, generator=g, dtype=D), torch.randint(0, 3, (16,), generator=g)


def _train(model, opt, steps, scheduler=None):
    for step in range(steps):
        x, y = _data(step)
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        if scheduler is not None:
            scheduler.step()
    return [p.detach().clone() for p in model.parameters()]


def _assert_params_close(a, b):
    for pa, pb in zip(a, b, strict=True):
        torch.testing.assert_close(pa, pb, rtol=0, atol=1e-10)


def _pair(name, kwargs, groups=None):
    ours_model, torch_model = _model(), _model()
    make = groups or (lambda m: m.parameters())
    ours = getattr(optim, name)(make(ours_model), **kwargs)
    theirs = _torch_optimizer(name, kwargs)(make(torch_model), **_torch_kwargs(name, kwargs))
    return ours_model, ours, torch_model, theirs


def _torch_optimizer(name, kwargs):
    """The control: torch.optim's class; before torch 2.7, whose Adam has no
    decoupled_weight_decay, AdamW for Adam's decoupled form (the same rule)."""
    if name == "Adam" and kwargs.get("decoupled_weight_decay") and not _TORCH_DECOUPLED:
        return torch.optim.AdamW
    return getattr(torch.optim, name)


def _torch_kwargs(name, kwargs):
    if name == "Adam" and not _TORCH_DECOUPLED:
        return {k: v for k, v in kwargs.items() if k != "decoupled_weight_decay"}
    return kwargs


_TORCH_DECOUPLED = "decoupled_weight_decay" in inspect.signature(torch.optim.Adam).parameters


@pytest.mark.parametrize("steps", [1, 10, 50])
@pytest.mark.parametrize(
    "form,name,kwargs",
    FORM_CASES,
    ids=[f"{f}-{n}-{kw}" for f, n, kw in FORM_CASES],
    indirect=["form"],
)
def test_trajectory_matches_torch(name, kwargs, steps, form):
    ours_model, ours, torch_model, theirs = _pair(name, kwargs)
    _assert_params_close(_train(ours_model, ours, steps), _train(torch_model, theirs, steps))


@pytest.mark.parametrize("form", ["default"])  # foreach/fused not given, as torch's defaults
@pytest.mark.parametrize("name", list(GRIDS))
def test_defaults_equal_torch(name, form):
    p = torch.zeros(2, requires_grad=True)
    ours = getattr(optim, name)([p]).defaults
    theirs = getattr(torch.optim, name)([p]).defaults
    assert {k: ours[k] for k in ours if k in theirs} == {k: theirs[k] for k in ours if k in theirs}
    newer = set() if _TORCH_DECOUPLED else {"decoupled_weight_decay"}  # torch 2.7 added it
    assert set(ours) - set(theirs) <= newer
    assert all(ours[k] is (name == "AdamW") for k in newer & set(ours))  # as torch 2.7's


GROUP_OPTIONS = {
    "SGD": ({"momentum": 0.9, "nesterov": True}, {"lr": 0.01, "weight_decay": 0.1}),
    "Adagrad": ({"lr_decay": 0.1}, {"lr": 0.3, "eps": 1e-3}),
    "RMSprop": ({"centered": True}, {"lr": 0.003, "momentum": 0.9}),
    "Adam": ({"amsgrad": True}, {"lr": 0.02, "betas": (0.8, 0.99), "weight_decay": 0.1}),
    "AdamW": ({"weight_decay": 0.3}, {"lr": 0.02, "amsgrad": True}),
}


@pytest.mark.parametrize("name", list(GROUP_OPTIONS))
def test_two_param_groups_with_different_options(name):
    first, second = GROUP_OPTIONS[name]

    def groups(model):
        return [
            {"params": model[0].parameters(), **first},
            {"params": model[2].parameters(), **second},
        ]

    ours_model, ours, torch_model, theirs = _pair(name, {"lr": 0.05}, groups)
    _assert_params_close(_train(ours_model, ours, 20), _train(torch_model, theirs, 20))


SCHEDULERS = [
    lambda opt: torch.optim.lr_scheduler.StepLR(opt, step_size=3, gamma=0.5),
    lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=10),
    lambda opt: torch.optim.lr_scheduler.OneCycleLR(
        opt,
        max_lr=0.1,
        total_steps=30,
        cycle_momentum="momentum" in opt.defaults or "betas" in opt.defaults,
    ),
]


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize("make_scheduler", SCHEDULERS, ids=["step", "cosine", "onecycle"])
def test_with_lr_schedulers(name, make_scheduler):
    kwargs = {"lr": 0.05, "momentum": 0.9} if name in ("SGD", "RMSprop") else {"lr": 0.05}
    ours_model, ours, torch_model, theirs = _pair(name, kwargs)
    a = _train(ours_model, ours, 30, make_scheduler(ours))
    b = _train(torch_model, theirs, 30, make_scheduler(theirs))
    _assert_params_close(a, b)
    if make_scheduler is SCHEDULERS[2] and name not in ("RMSprop", "Adagrad"):
        key = "betas" if "betas" in ours.defaults else "momentum"
        assert ours.param_groups[0][key] == theirs.param_groups[0][key]


@pytest.mark.parametrize("name", list(GRIDS))
@pytest.mark.parametrize("direction", ["torch_to_ours", "ours_to_torch"])
def test_state_dict_round_trip_mid_training(name, direction):
    kwargs = {
        "SGD": {"lr": 0.05, "momentum": 0.9},
        "RMSprop": {"lr": 0.01, "momentum": 0.5, "centered": True},
        "Adam": {"lr": 0.01, "amsgrad": True},
    }.get(name, {"lr": 0.05})
    first_model, reference_model = _model(), _model()
    first_cls, second_cls = getattr(optim, name), getattr(torch.optim, name)
    if direction == "torch_to_ours":
        first_cls, second_cls = second_cls, first_cls
    first = first_cls(first_model.parameters(), **kwargs)
    reference = first_cls(reference_model.parameters(), **kwargs)
    _train(first_model, first, 5)
    _train(reference_model, reference, 5)
    saved = first.state_dict()
    second = second_cls(first_model.parameters(), **kwargs)
    second.load_state_dict(saved)
    assert second.state_dict()["state"].keys() == saved["state"].keys()
    for key, value in saved["state"].items():
        assert second.state_dict()["state"][key].keys() == value.keys()
    # Continue both: the switched optimizer must follow the reference exactly.
    for step in range(5, 12):
        for model, opt in ((first_model, second), (reference_model, reference)):
            x, y = _data(step)
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x), y).backward()
            opt.step()
    _assert_params_close(list(first_model.parameters()), list(reference_model.parameters()))


@pytest.mark.parametrize("name", list(GRIDS))
def test_state_layout_equals_torch(name):
    kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
    ours_model, ours, torch_model, theirs = _pair(name, {"lr": 0.01, **kwargs})
    _train(ours_model, ours, 2)
    _train(torch_model, theirs, 2)
    a, b = ours.state_dict()["state"], theirs.state_dict()["state"]
    assert a.keys() == b.keys()
    for key in a:
        assert a[key].keys() == b[key].keys()
        for slot in a[key]:
            assert a[key][slot].dtype == b[key][slot].dtype
            torch.testing.assert_close(a[key][slot], b[key][slot], rtol=0, atol=1e-12)


@pytest.mark.parametrize("name", list(GRIDS))
def test_complex_parameters_match_torch(name):
    g = torch.Generator().manual_seed(0)
    start = torch.randn(4, 3, generator=g, dtype=torch.complex128)
    target = torch.randn(4, 3, generator=g, dtype=torch.complex128)
    results = []
    for module in (optim, torch.optim):
        p = start.clone().requires_grad_()
        kwargs = {"momentum": 0.9} if name in ("SGD", "RMSprop") else {}
        opt = getattr(module, name)([p], lr=0.05, **kwargs)
        for _ in range(10):
            opt.zero_grad()
            (p - target).abs().square().sum().backward()
            opt.step()
        results.append(p.detach())
    torch.testing.assert_close(results[0], results[1], rtol=0, atol=1e-10)


def test_adagrad_honours_a_groups_initial_accumulator_value():
    a, b = torch.zeros(2, requires_grad=True), torch.zeros(3, requires_grad=True)
    opt = optim.Adagrad([{"params": [a]}, {"params": [b], "initial_accumulator_value": 0.5}])
    assert opt.state[a]["sum"].tolist() == [0.0, 0.0]
    assert opt.state[b]["sum"].tolist() == [0.5, 0.5, 0.5]
    c = torch.zeros(1, requires_grad=True)
    opt.add_param_group({"params": [c], "initial_accumulator_value": 0.25})
    assert opt.state[c]["sum"].tolist() == [0.25]


@pytest.mark.parametrize("name", ["RMSprop", "Adam", "AdamW"])
def test_capturable_counts_on_the_parameters_device_with_the_same_trajectory(name):
    # torch allows capturable=True only on accelerators; on CPU its trajectory
    # is the ordinary one, which lossopt's capturable step must follow.
    ours_model, torch_model = _model(), _model()
    ours = getattr(optim, name)(ours_model.parameters(), lr=0.01, capturable=True)
    theirs = getattr(torch.optim, name)(torch_model.parameters(), lr=0.01)
    _assert_params_close(_train(ours_model, ours, 20), _train(torch_model, theirs, 20))
    step = ours.state[next(ours_model.parameters())]["step"]
    assert step.device == next(ours_model.parameters()).device and float(step) == 20
    assert ours.param_groups[0]["capturable"] is True
