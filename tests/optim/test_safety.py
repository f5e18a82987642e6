"""What lossopt's optimizers add to torch.optim: validation, non-finite policies,
checked checkpoints, and the plumbing every torch training loop relies on."""

import copy
import linecache
import math

import pytest
import torch

from lossopt import _compat, optim

D = torch.float64
ALL = ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"]


def _snapshot(opt, params):
    return [p.detach().clone() for p in params], copy.deepcopy(opt.state_dict())


def _assert_unchanged(before, opt, params):
    old_params, old_state = before
    for old, new in zip(old_params, params, strict=True):
        assert torch.equal(old, new)
    new_state = opt.state_dict()
    assert old_state["param_groups"] == new_state["param_groups"]
    assert old_state["state"].keys() == new_state["state"].keys()
    for key, slots in old_state["state"].items():
        assert slots.keys() == new_state["state"][key].keys()
        for slot, value in slots.items():
            assert torch.equal(value, new_state["state"][key][slot])


def _params():
    g = torch.Generator().manual_seed(0)
    return [
        torch.randn(3, 2, generator=g, dtype=D, requires_grad=True),
        torch.randn(4, generator=g, dtype=D, requires_grad=True),
    ]


def _step(opt, params, poison=None):
    opt.zero_grad()
    sum(p.square().sum() for p in params).backward()
    if poison is not None:
        params[1].grad[2] = poison
    opt.step()


@pytest.mark.parametrize(
    "name,kwargs,message",
    [
        ("SGD", {"lr": -0.1}, r"lr must lie in \[0.0, inf\), got -0.1"),
        ("SGD", {"momentum": -0.5}, "momentum.*-0.5"),
        ("SGD", {"weight_decay": -1}, "weight_decay.*-1"),
        ("SGD", {"nesterov": True}, "nesterov.*momentum=0"),
        ("SGD", {"nesterov": True, "momentum": 0.9, "dampening": 0.1}, "nesterov.*dampening=0.1"),
        ("Adam", {"betas": (1.0, 0.999)}, r"betas\[0\] must lie in \[0.0, 1.0\), got 1.0"),
        ("Adam", {"betas": (0.9, -0.1)}, r"betas\[1\].*-0.1"),
        ("Adam", {"betas": (0.9,)}, "betas must be a pair"),
        ("Adam", {"eps": -1e-8}, "eps.*-1e-08"),
        ("AdamW", {"lr": float("nan")}, "lr must not be NaN"),
        ("RMSprop", {"alpha": 1.5}, "alpha.*1.5"),
        ("RMSprop", {"momentum": -1}, "momentum.*-1"),
        ("Adagrad", {"lr_decay": -0.1}, "lr_decay.*-0.1"),
        ("Adagrad", {"initial_accumulator_value": -1}, "initial_accumulator_value.*-1"),
        ("Adam", {"nonfinite": "ignore"}, "nonfinite must be one of.*'ignore'"),
    ],
)
def test_constructor_validates(name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        getattr(optim, name)(_params(), **kwargs)


def test_lr_of_wrong_type():
    with pytest.raises(TypeError, match="lr must be a real number, got str"):
        optim.SGD(_params(), lr="0.1")


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("poison", [float("nan"), float("inf")])
def test_skip_leaves_everything_untouched_then_continues_like_torch(name, poison):
    params = _params()
    twin = [p.detach().clone().requires_grad_() for p in params]
    opt = getattr(optim, name)(params, lr=0.1, nonfinite="skip")
    reference = getattr(torch.optim, name)(twin, lr=0.1)
    _step(opt, params)
    _step(reference, twin)
    before = _snapshot(opt, params)
    _step(opt, params, poison=poison)
    _assert_unchanged(before, opt, params)
    assert opt.skipped_steps == 1
    for _ in range(3):
        _step(opt, params)
        _step(reference, twin)
    for a, b in zip(params, twin, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
    if name != "SGD":  # the skipped step did not count
        assert opt.state[params[0]]["step"].item() == 4


@pytest.mark.parametrize("name", ALL)
def test_raise_names_the_parameter_and_changes_nothing(name):
    model = torch.nn.Linear(2, 2).to(D)
    opt = getattr(optim, name)(model.named_parameters(), lr=0.1, nonfinite="raise")
    params = list(model.parameters())
    model(torch.ones(1, 2, dtype=D)).sum().backward()
    opt.step()
    before = _snapshot(opt, params)
    opt.zero_grad()
    model(torch.ones(1, 2, dtype=D)).sum().backward()
    model.bias.grad[0] = float("inf")
    with pytest.raises(
        FloatingPointError, match=r"parameter 'bias' \(group 0, index 1, shape \(2,\)\)"
    ):
        opt.step()
    _assert_unchanged(before, opt, params)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("count", [2, 200], ids=["2 params", "200 params"])
def test_gradient_of_another_shape_is_refused_before_any_change(name, count):
    """A parameter reshaped through .data after its gradient was made (torch's
    grad setter cannot see it) is refused by name, and nothing changes, also in
    the multi-tensor form of a group of many tensors."""
    g = torch.Generator().manual_seed(0)
    params = [torch.randn(3, 2, generator=g, dtype=D, requires_grad=True) for _ in range(count)]
    opt = getattr(optim, name)(params, lr=0.1)
    for p in params:
        p.grad = torch.randn(3, 2, generator=g, dtype=D)
    opt.step()
    for p in params:
        p.grad = torch.randn(3, 2, generator=g, dtype=D)
    params[-1].data = params[-1].data.reshape(2, 3)
    before = _snapshot(opt, params)
    with pytest.raises(
        ValueError,
        match=rf"gradient of parameter at group 0, index {count - 1}, shape \(2, 3\) "
        r"has shape \(3, 2\), expected \(2, 3\)",
    ):
        opt.step()
    _assert_unchanged(before, opt, params)


def test_raise_without_names_gives_the_position():
    params = _params()
    opt = optim.Adam(params, nonfinite="raise")
    with pytest.raises(FloatingPointError, match=r"group 0, index 1, shape \(4,\)"):
        _step(opt, params, poison=float("nan"))


@pytest.mark.parametrize("name", ALL)
def test_propagate_is_torchs_behaviour(name):
    params, twin = _params(), _params()
    ours = getattr(optim, name)(params, lr=0.1)
    theirs = getattr(torch.optim, name)(twin, lr=0.1)
    _step(ours, params, poison=float("nan"))
    _step(theirs, twin, poison=float("nan"))
    for a, b in zip(params, twin, strict=True):
        torch.testing.assert_close(a, b, equal_nan=True, rtol=0, atol=1e-12)
    assert torch.isnan(params[1]).any()


@pytest.mark.parametrize("name", ALL)
def test_failed_load_is_atomic_and_names_the_mismatch(name):
    params = _params()
    opt = getattr(optim, name)(params, lr=0.1)
    _step(opt, params)
    before = _snapshot(opt, params)

    other = [
        torch.zeros(3, 2, dtype=D, requires_grad=True),
        torch.zeros(5, dtype=D, requires_grad=True),
    ]
    donor = getattr(optim, name)(other, lr=0.1)
    _step(donor, other)
    wrong_shape = donor.state_dict()
    if name == "SGD":
        with pytest.raises(ValueError, match=r"group 0, index 1: state 'momentum_buffer'"):
            getattr(optim, name)(_params(), momentum=0.9).load_state_dict(
                optim.SGD(other, momentum=0.9).state_dict()
                | {"state": {1: {"momentum_buffer": torch.zeros(5)}}}
            )
    else:
        with pytest.raises(
            ValueError,
            match=r"group 0, index 1: state '\w+' has shape \(5,\), the parameter \(4,\)",
        ):
            opt.load_state_dict(wrong_shape)
        _assert_unchanged(before, opt, params)

    too_few = copy.deepcopy(opt.state_dict())
    too_few["param_groups"][0]["params"] = too_few["param_groups"][0]["params"][:1]
    with pytest.raises(
        ValueError, match="group 0 has 1 parameters in the state_dict, 2 in the optimizer"
    ):
        opt.load_state_dict(too_few)
    two_groups = copy.deepcopy(opt.state_dict())
    two_groups["param_groups"].append(copy.deepcopy(two_groups["param_groups"][0]))
    with pytest.raises(ValueError, match="2 parameter groups, the optimizer has 1"):
        opt.load_state_dict(two_groups)
    _assert_unchanged(before, opt, params)


@pytest.mark.parametrize("name", ALL)
def test_closure_skipped_params_hooks_and_param_groups(name):
    params = _params()
    frozen = torch.ones(2, dtype=D, requires_grad=True)
    opt = getattr(optim, name)([params[0], frozen], lr=0.1)
    calls = []
    opt.register_step_pre_hook(lambda o, args, kwargs: calls.append("pre"))
    opt.register_step_post_hook(lambda o, args, kwargs: calls.append("post"))

    def closure():
        opt.zero_grad()
        loss = params[0].square().sum()
        loss.backward()
        return loss

    loss = opt.step(closure)
    assert loss.item() > 0 and calls == ["pre", "post"]
    assert torch.equal(frozen, torch.ones(2, dtype=D))  # no gradient: skipped
    opt.add_param_group({"params": [params[1]], "lr": 0.01})
    opt.step(closure)
    assert len(opt.param_groups) == 2 and opt.param_groups[1]["lr"] == 0.01
    opt.zero_grad(set_to_none=True)
    assert params[0].grad is None


def test_sparse_gradients_are_refused_before_any_change():
    emb = torch.nn.Embedding(5, 2, sparse=True)
    opt = optim.Adam(emb.parameters())
    emb(torch.tensor([1])).sum().backward()
    before = emb.weight.detach().clone()
    with pytest.raises(ValueError, match="does not support sparse gradients"):
        opt.step()
    assert torch.equal(before, emb.weight) and not opt.state


@pytest.mark.parametrize("name", ALL)
def test_grad_scaler(name):
    model = torch.nn.Linear(3, 1)
    opt = getattr(optim, name)(model.parameters(), lr=0.01)
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0)
    before = model.weight.detach().clone()
    scaler.scale(model(torch.ones(4, 3)).sum()).backward()
    scaler.step(opt)
    scaler.update()
    assert not torch.equal(before, model.weight)
    assert scaler.get_scale() == 1024.0


def _steps_to_minimum(make, max_steps=2000, tol=0.1):
    """The lecture's surface f(x, y) = x^2 / 20 + y^2 from (-7, 2)."""
    xy = torch.tensor([-7.0, 2.0], dtype=D, requires_grad=True)
    opt = make([xy])
    for step in range(1, max_steps + 1):
        opt.zero_grad()
        (xy[0] ** 2 / 20 + xy[1] ** 2).backward()
        opt.step()
        if not torch.isfinite(xy).all():
            return math.inf
        if xy.detach().norm() < tol:
            return step
    return math.inf


def test_lecture_picture_adaptive_methods_beat_plain_sgd():
    budget = [0.01, 0.03, 0.1, 0.3, 1.0]  # every optimizer picks its best from the same grid
    best = {
        "SGD": min(_steps_to_minimum(lambda p, lr=lr: optim.SGD(p, lr=lr)) for lr in budget),
        "Momentum": min(
            _steps_to_minimum(lambda p, lr=lr: optim.SGD(p, lr=lr, momentum=0.9)) for lr in budget
        ),
        "AdaGrad": min(
            _steps_to_minimum(lambda p, lr=lr: optim.Adagrad(p, lr=lr)) for lr in budget
        ),
        "RMSProp": min(
            _steps_to_minimum(lambda p, lr=lr: optim.RMSprop(p, lr=lr)) for lr in budget
        ),
        "Adam": min(_steps_to_minimum(lambda p, lr=lr: optim.Adam(p, lr=lr)) for lr in budget),
    }
    assert math.isfinite(best["SGD"])
    for name in ("Momentum", "AdaGrad", "RMSProp", "Adam"):
        assert best[name] * 2 <= best["SGD"], best


def test_lecture_picture_learning_rate_too_large_or_too_small():
    assert _steps_to_minimum(lambda p: optim.SGD(p, lr=1.1), max_steps=200) == math.inf
    xy = torch.tensor([-7.0, 2.0], dtype=D, requires_grad=True)
    opt = optim.SGD([xy], lr=1.1)
    for _ in range(50):
        opt.zero_grad()
        (xy[0] ** 2 / 20 + xy[1] ** 2).backward()
        opt.step()
    assert xy[1].abs() > 1e3  # diverged
    tiny = torch.tensor([-7.0, 2.0], dtype=D, requires_grad=True)
    opt = optim.SGD([tiny], lr=1e-5)
    for _ in range(100):
        opt.zero_grad()
        (tiny[0] ** 2 / 20 + tiny[1] ** 2).backward()
        opt.step()
    assert (tiny.detach() - torch.tensor([-7.0, 2.0], dtype=D)).norm() < 0.01  # barely moved


def test_warnings_name_the_users_line_through_overrides_and_hooks():
    """A warning from inside a step names the first line outside lossopt and
    torch, however many frames (a subclass's step, step hooks, torch's
    wrappers) lie between; so does a fallback warning of the torch adapter."""

    class Stepped(optim.Adam):
        def step(self, closure=None):
            return super().step(closure)  # the user's own line

    p = torch.zeros(4, dtype=torch.float16, requires_grad=True)
    opt = Stepped([p], eps=1e-8)
    opt.register_step_pre_hook(lambda *args: None)
    p.grad = torch.zeros_like(p)
    with pytest.warns(RuntimeWarning, match="is 0 in float16") as caught:
        opt.step()
    assert caught[0].filename == __file__
    assert "super().step(closure)" in linecache.getline(__file__, caught[0].lineno)

    feature = "a feature for this test"
    with pytest.warns(RuntimeWarning, match=feature) as caught:
        _compat._fallback(feature, "nothing changes")
    assert caught[0].filename == __file__
    _compat._warned.discard(feature)
