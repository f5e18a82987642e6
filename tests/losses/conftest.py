import pytest

from lossopt import _policy


@pytest.fixture(autouse=True, params=["torch kernel", "lossopt kernel"])
def kernel(request, monkeypatch):
    """Every loss test runs on both implementations: torch's kernel (the
    default at small sizes) and lossopt's own one-pass path (forced here by a
    crossover of 0, so small test inputs take it too)."""
    crossover = 0 if request.param == "lossopt kernel" else float("inf")
    patched = {name: {"cpu": crossover} for name in _policy.LOSS_CROSSOVER}
    monkeypatch.setattr(_policy, "LOSS_CROSSOVER", patched)
    return request.param
