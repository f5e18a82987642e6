"""Checkpoints with parameter names: state follows the name, not the position."""

import copy

import pytest
import torch

from lossopt import optim

D = torch.float64


class Net(torch.nn.Module):
    def __init__(self, order=("a", "b")):
        super().__init__()
        torch.manual_seed(0)
        layers = {"a": torch.nn.Linear(3, 4).to(D), "b": torch.nn.Linear(4, 2).to(D)}
        for name in order:  # registration order decides named_parameters() order
            setattr(self, name, layers[name])

    def forward(self, x):
        return self.b(torch.tanh(self.a(x)))


def _train(model, opt, steps=3):
    for step in range(steps):
        g = torch.Generator().manual_seed(step)
        opt.zero_grad()
        model(torch.randn(5, 3, generator=g, dtype=D)).square().sum().backward()
        opt.step()


@pytest.mark.parametrize("name", ["SGD", "Adagrad", "RMSprop", "Adam", "AdamW"])
def test_state_follows_names_after_reordering(name):
    kwargs = {"lr": 0.05, "momentum": 0.9} if name == "SGD" else {"lr": 0.05}
    first = Net(("a", "b"))
    opt = getattr(optim, name)(first.named_parameters(), **kwargs)
    _train(first, opt)
    saved = copy.deepcopy(opt.state_dict())
    assert saved["param_groups"][0]["param_names"] == ["a.weight", "a.bias", "b.weight", "b.bias"]

    # The same model with its layers registered the other way round.
    second = Net(("b", "a"))
    second.load_state_dict(first.state_dict())
    reordered = getattr(optim, name)(second.named_parameters(), **kwargs)
    reordered.load_state_dict(saved)
    for pname, p in second.named_parameters():
        original = dict(first.named_parameters())[pname]
        for slot, value in opt.state[original].items():
            torch.testing.assert_close(reordered.state[p][slot], value, rtol=0, atol=0)
    # And both continue identically.
    _train(first, opt)
    _train(second, reordered)
    for pname, p in second.named_parameters():
        torch.testing.assert_close(p, dict(first.named_parameters())[pname], rtol=0, atol=1e-12)


def test_torch_checkpoint_with_names_loads():
    model = Net()
    theirs = torch.optim.Adam(model.named_parameters(), lr=0.01)
    _train(model, theirs)
    ours = optim.Adam(Net().named_parameters(), lr=0.01)
    ours.load_state_dict(theirs.state_dict())
    assert ours.state_dict()["param_groups"][0]["param_names"][0] == "a.weight"


def test_checkpoint_of_another_model_lists_the_mismatch_and_changes_nothing():
    model = Net()
    opt = optim.Adam(model.named_parameters(), lr=0.01)
    _train(model, opt)
    before = copy.deepcopy(opt.state_dict())

    other = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2)).to(D)
    donor = optim.Adam(other.named_parameters(), lr=0.01)
    _train(other, donor, 1)
    with pytest.raises(ValueError) as error:
        opt.load_state_dict(donor.state_dict())
    message = str(error.value)
    assert "missing from the state_dict ['a.weight', 'a.bias', 'b.weight', 'b.bias']" in message
    assert "not in the optimizer ['0.weight', '0.bias', '1.weight', '1.bias']" in message
    after = opt.state_dict()
    assert after["param_groups"] == before["param_groups"]
    for key, slots in before["state"].items():
        for slot, value in slots.items():
            assert torch.equal(after["state"][key][slot], value)
