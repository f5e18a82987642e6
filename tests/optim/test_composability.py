"""What torch.optim composes with, run for lossopt with torch.optim as the
control: each case first runs with torch's optimizer (the case counts only
where torch passes), then with lossopt's, and the two must agree."""

import copy
import inspect
import io
import pickle

import pytest
import torch

from lossopt import optim

ALL = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]
KWARGS = {
    "SGD": {"lr": 0.05, "momentum": 0.9},
    "Adagrad": {"lr": 0.05},
    "RMSprop": {"lr": 0.01, "momentum": 0.5},
    "Adam": {"lr": 0.01},
    "AdamW": {"lr": 0.01},
}


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 6), torch.nn.Tanh(), torch.nn.Linear(6, 2))


def _batch(step):
    g = torch.Generator().manual_seed(step)
    dtype = torch.get_default_dtype()
    return torch.randn(8, 4, generator=g, dtype=dtype), torch.randn(8, 2, generator=g, dtype=dtype)


def _loss(model, step):
    x, y = _batch(step)
    return torch.nn.functional.mse_loss(model(x), y)


def _train(model, opt, steps, start=0, after_step=None):
    for step in range(start, start + steps):
        opt.zero_grad()
        _loss(model, step).backward()
        opt.step()
        if after_step is not None:
            after_step()
    return [p.detach().clone() for p in model.parameters()]


def _tolerance():
    return 1e-10 if torch.get_default_dtype() == torch.float64 else 1e-5


def _control(case, name):
    """Run ``case(module, name)`` with torch.optim, then lossopt.optim; compare."""
    try:
        theirs = case(torch.optim, name)
    except Exception as error:  # the case says nothing about lossopt then
        pytest.skip(f"torch.optim.{name} fails this case itself: {error!r}")
    ours = case(optim, name)
    tol = _tolerance()
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, rtol=tol, atol=tol)


def _copied_then_stepped(copier):
    def case(module, name):
        model = _model()
        opt = getattr(module, name)(model.parameters(), **KWARGS[name])
        _train(model, opt, 3)
        twin_model, twin_opt = copier((model, opt))
        return _train(twin_model, twin_opt, 3, start=3)

    return case


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "copier",
    [copy.deepcopy, lambda obj: pickle.loads(pickle.dumps(obj))],
    ids=["deepcopy", "pickle"],
)
def test_deepcopy_or_pickle_then_step(name, copier):
    _control(_copied_then_stepped(copier), name)


@pytest.mark.parametrize("name", ALL)
def test_setstate_from_older_state_fills_defaults(name):
    model = _model()
    opt = getattr(optim, name)(model.parameters(), **KWARGS[name], nonfinite="skip")
    _train(model, opt, 2)
    # An optimizer pickled before these attributes and group keys existed.
    old = {"defaults": dict(opt.defaults), "state": opt.state, "param_groups": opt.param_groups}
    for key in ("foreach", "differentiable", "capturable"):
        old["defaults"].pop(key, None)
        for group in old["param_groups"]:
            group.pop(key, None)
    revived = getattr(optim, name).__new__(getattr(optim, name))
    revived.__setstate__(old)
    assert revived.nonfinite == "propagate" and revived.skipped_steps == 0
    assert revived.param_groups[0]["foreach"] is None
    _train(model, revived, 2)


def _ported(module, name):
    """Every keyword of torch's signature, passed with torch's defaults, once
    by keyword and once positionally where torch allows it."""
    signature = inspect.signature(getattr(torch.optim, name))
    keywords = {k: p.default for k, p in signature.parameters.items() if k != "params"} | KWARGS[
        name
    ]
    model = _model()
    opt = getattr(module, name)(model.parameters(), **keywords)
    positional = [
        keywords[k]
        for k, p in signature.parameters.items()
        if k != "params" and p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD
    ]
    getattr(module, name)(_model().parameters(), *positional)
    return _train(model, opt, 4)


@pytest.mark.parametrize("form", ["default"])  # the ported call passes foreach/fused itself
@pytest.mark.parametrize("name", ALL)
def test_ported_call_with_torchs_keywords(name, form):
    _control(_ported, name)


@pytest.mark.parametrize("name", ALL)
def test_signature_equals_torchs(name):
    ours = inspect.signature(getattr(optim, name)).parameters
    theirs = inspect.signature(getattr(torch.optim, name)).parameters
    for key, parameter in theirs.items():
        assert key in ours, key
        assert ours[key].kind == parameter.kind, key
        assert ours[key].default == parameter.default, key
    assert list(ours)[: len(theirs)] == [k for k in ours if k in theirs]
    positional = [k for k, p in theirs.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD]
    assert [k for k, p in ours.items() if p.kind is inspect.Parameter.POSITIONAL_OR_KEYWORD] == (
        positional
    )


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_differentiable_true_is_refused_clearly(name):
    with pytest.raises(ValueError, match="differentiable=True is not supported"):
        getattr(optim, name)(_model().parameters(), differentiable=True)


def _migrating_hook(opt, state_dict):
    """An old checkpoint kept the first moment flattened: reshape it."""
    params = opt.param_groups[0]["params"]
    for key, slots in state_dict["state"].items():
        for slot, value in slots.items():
            if value.dim() == 1 and value.numel() != params[key].shape[0]:
                slots[slot] = value.reshape(params[key].shape)


def _migrated(module, name):
    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])
    _train(model, opt, 3)
    old = copy.deepcopy(opt.state_dict())
    for slots in old["state"].values():
        for slot, value in slots.items():
            if value.dim() > 1:
                slots[slot] = value.flatten()
    fresh = getattr(module, name)(model.parameters(), **KWARGS[name])
    fresh.register_load_state_dict_pre_hook(_migrating_hook)
    fresh.load_state_dict(old)
    return _train(model, fresh, 3, start=3)


@pytest.mark.parametrize("name", ALL)
def test_load_pre_hook_migrates_an_old_checkpoint(name):
    _control(_migrated, name)


def _both_ways(module, name):
    other = optim if module is torch.optim else torch.optim
    model = _model()
    first = getattr(module, name)(model.parameters(), **KWARGS[name])
    _train(model, first, 3)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    second = getattr(other, name)(model.parameters(), **KWARGS[name])
    second.load_state_dict(torch.load(buffer, weights_only=True))
    return _train(model, second, 3, start=3)


@pytest.mark.parametrize("name", ALL)
def test_state_dict_both_ways_with_weights_only(name):
    _control(_both_ways, name)


def _compiled_step(module, name):
    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])
    step = torch.compile(opt.step)
    for i in range(3):
        opt.zero_grad()
        _loss(model, i).backward()
        step()
    return [p.detach().clone() for p in model.parameters()]


def _compiled_train_step(module, name):
    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])

    @torch.compile
    def train_step(x, y):
        opt.zero_grad()
        torch.nn.functional.mse_loss(model(x), y).backward()
        opt.step()

    for i in range(3):
        train_step(*_batch(i))
    return [p.detach().clone() for p in model.parameters()]


@pytest.mark.parametrize("form", ["default"])  # compiling is slow: one form
@pytest.mark.parametrize("name", ["SGD", "Adam"])
@pytest.mark.parametrize("case", [_compiled_step, _compiled_train_step], ids=["step", "train"])
def test_torch_compile(name, case, form):
    torch._dynamo.reset()
    _control(case, name)


def _one_cycle(module, name):
    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])
    scheduler = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=0.05, total_steps=8, cycle_momentum=name in ("SGD", "Adam", "AdamW")
    )
    seen = []

    def after():
        scheduler.step()
        group = opt.param_groups[0]
        seen.append(torch.tensor([group["lr"], *group.get("betas", (group.get("momentum", 0),))]))

    params = _train(model, opt, 8, after_step=after)
    return [*params, torch.stack(seen)]


def _swa(module, name):
    from torch.optim.swa_utils import SWALR, AveragedModel

    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])
    averaged = AveragedModel(model)
    swa = SWALR(opt, swa_lr=0.01, anneal_epochs=2)

    def after():
        averaged.update_parameters(model)
        swa.step()

    _train(model, opt, 6, after_step=after)
    return [p.detach().clone() for p in averaged.parameters()]


def _grad_scaler(module, name):
    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])
    scaler = torch.amp.GradScaler("cpu", init_scale=256.0)
    for step in range(4):
        opt.zero_grad()
        scaler.scale(_loss(model, step)).backward()
        if step == 2:
            next(iter(model.parameters())).grad[0, 0] = float("inf")
        scaler.step(opt)
        scaler.update()
    return [*(p.detach().clone() for p in model.parameters()), torch.tensor(scaler.get_scale())]


def _hooks(module, name):
    model = _model()
    opt = getattr(module, name)(model.parameters(), **KWARGS[name])
    calls = []

    def clip(o, args, kwargs):
        calls.append("pre")
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.1)

    opt.register_step_pre_hook(clip)
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))
    params = _train(model, opt, 3)
    assert calls == ["pre", "post"] * 3
    return params


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize(
    "case", [_one_cycle, _swa, _grad_scaler, _hooks], ids=["onecycle", "swa", "scaler", "hooks"]
)
def test_training_utilities(name, case):
    _control(case, name)


def _sparse(module, name):
    torch.manual_seed(0)
    emb = torch.nn.Embedding(10, 3, sparse=True)
    opt = getattr(module, name)(emb.parameters(), **KWARGS[name])
    for step in range(4):
        opt.zero_grad()
        emb(torch.tensor([step, step + 1, 1])).square().sum().backward()
        opt.step()
    return [emb.weight.detach().clone()]


@pytest.mark.parametrize("name", ["SGD", "Adagrad"])
def test_sparse_gradients(name):
    _control(_sparse, name)


def _fused(module, name):
    model = _model()
    kwargs = dict(KWARGS[name])
    if module is optim or name != "RMSprop":  # torch has no fused RMSprop
        kwargs["fused"] = True
    opt = getattr(module, name)(model.parameters(), **kwargs)
    params = _train(model, opt, 4)
    steps = [float(s["step"]) for s in opt.state.values() if "step" in s]
    return [*params, torch.tensor(steps)]


@pytest.mark.parametrize("form", ["default"])  # passes fused itself
@pytest.mark.parametrize("name", ALL)
def test_fused_under_both_default_dtypes(name, form):
    _control(_fused, name)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_state_layout_is_torchs(momentum):
    """Without momentum torch's SGD keeps no state at all (its state_dict holds
    no entry per parameter); with momentum, one buffer per parameter."""
    states = {}
    for module in (torch.optim, optim):
        model = _model()
        opt = module.SGD(model.parameters(), lr=0.1, momentum=momentum)
        _train(model, opt, 2)
        states[module] = opt.state_dict()["state"]
    assert states[optim].keys() == states[torch.optim].keys()
    for key, slots in states[torch.optim].items():
        assert slots.keys() == states[optim][key].keys()


# Hyperparameters as 0-d tensors (torch's way to change them inside compiled
# or captured steps without recompiling), with the options whose rules pass
# them to alpha=, value= or a lerp weight.
TENSOR_CASES = [
    ("SGD", {"lr": 0.01}),  # the compiled-optimizer tutorial's case
    ("SGD", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 0.05, "weight_decay": 0.01}),
    ("Adagrad", {"lr": 0.05, "lr_decay": 0.01}),
    ("RMSprop", {"lr": 0.01}),
    ("RMSprop", {"lr": 0.01, "momentum": 0.5, "centered": True}),
    ("Adam", {"lr": 0.01, "betas": (0.8, 0.99), "amsgrad": True}),
    ("AdamW", {"lr": 0.01, "betas": (0.9, 0.999)}),
]
TENSOR_IDS = [
    name + ("".join(f"-{k}={v}" for k, v in kwargs.items() if k != "lr") or "-plain")
    for name, kwargs in TENSOR_CASES
]


def _as_tensors(kwargs):
    kwargs = {**kwargs, "lr": torch.tensor(kwargs["lr"])}
    if "betas" in kwargs:
        kwargs["betas"] = tuple(map(torch.tensor, kwargs["betas"]))
    return kwargs


def _scheduled(kwargs, compiled):
    """Training with tensor hyperparameters and a LinearLR scheduler that
    changes the tensor lr in place at every step; the step and the scheduler's
    step compiled together when ``compiled`` (PyTorch's compiled-optimizer
    tutorial), so that a number frozen at its first value would show."""

    def case(module, name):
        model = _model()
        opt = getattr(module, name)(model.parameters(), **_as_tensors(kwargs))
        scheduler = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.25, total_iters=5)

        def step_then_schedule():
            opt.step()
            scheduler.step()

        if compiled:
            torch._dynamo.reset()
            step_then_schedule = torch.compile(step_then_schedule)
        lrs = []
        for step in range(6):
            opt.zero_grad()
            _loss(model, step).backward()
            step_then_schedule()
            lrs.append(float(opt.param_groups[0]["lr"]))
        assert len(set(lrs)) > 3  # the rate did change
        return [p.detach().clone() for p in model.parameters()]

    return case


@pytest.mark.parametrize(("name", "kwargs"), TENSOR_CASES, ids=TENSOR_IDS)
def test_tensor_lr_and_betas_with_a_scheduler(name, kwargs):
    _control(_scheduled(kwargs, compiled=False), name)


@pytest.mark.parametrize(("name", "kwargs"), TENSOR_CASES, ids=TENSOR_IDS)
def test_compiled_step_and_scheduler_with_tensor_lr_and_betas(name, kwargs):
    _control(_scheduled(kwargs, compiled=True), name)
