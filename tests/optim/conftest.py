"""Every optimizer test runs under both default dtypes and in each of the
three forms a step takes (per parameter, multi-tensor, compiled)."""

import pytest
import torch

from lossopt.optim import optimizer

FORMS = {"for-loop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}


@pytest.fixture(autouse=True)
def _one_thread():
    # These tensors are tiny: a second thread only adds hand-off latency, which
    # on a busy machine costs more than the step itself.
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(autouse=True, params=[torch.float32, torch.float64], ids=["f32", "f64"])
def default_dtype(request):
    """torch.set_default_dtype for the test, restored after it: optimizers keep
    their 'step' counters in the default dtype's precision."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(request.param)
    yield request.param
    torch.set_default_dtype(previous)


@pytest.fixture(autouse=True, params=list(FORMS))
def form(request, monkeypatch):
    """lossopt optimizers built in the test take this form, unless the test
    passes ``foreach`` or ``fused`` itself."""
    extra = FORMS.get(request.param, {})  # "default": as the test builds it
    original = optimizer.Optimizer.__init__

    def init(self, params, defaults, **kwargs):
        if kwargs.get("foreach") is None and kwargs.get("fused") is None:
            kwargs.update(extra)
        original(self, params, defaults, **kwargs)

    monkeypatch.setattr(optimizer.Optimizer, "__init__", init)
    return request.param
