import torch

torch.set_num_threads(min(2, torch.get_num_threads()))


def grads(output: torch.Tensor, *inputs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gradients of sum(output) with respect to inputs."""
    return torch.autograd.grad(output.sum(), inputs, allow_unused=True)


def assert_same(ours, theirs, inputs, *, rtol=1e-12, atol=1e-12):
    """Values and gradients of two computations over the same leaf inputs agree."""
    torch.testing.assert_close(ours, theirs, rtol=rtol, atol=atol)
    for a, b in zip(grads(ours, *inputs), grads(theirs, *inputs), strict=True):
        torch.testing.assert_close(a, b, rtol=rtol, atol=atol)
