"""TensorList, the multi-tensor form's operand: on CPU lists of one dtype a
number is made a 0-d tensor once per call (foreach would otherwise wrap and
cast it for every tensor), with bitwise the results of the plain number."""

import pytest
import torch

from lossopt.optim.operands import TensorList
from tests.counting import count

OPERATIONS = {
    "mul_": lambda t, v: t.mul_(v),
    "div_": lambda t, v: t.div_(v),
    "add_": lambda t, v: t.add_(v),
    "mul": lambda t, v: t * v,
    "rmul": lambda t, v: v * t,
    "truediv": lambda t, v: t / v,
    "add": lambda t, v: t + v,
    "radd": lambda t, v: v + t,
    "rsub": lambda t, v: v - t,
    "rtruediv": lambda t, v: v / t,
}


def _tensors(dtype):
    g = torch.Generator().manual_seed(0)
    return [torch.randn(n, generator=g, dtype=dtype) + 3 for n in (5, 1, 17)]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", list(OPERATIONS))
@pytest.mark.parametrize("value", [0.9, 1e-8, 3])
def test_a_number_as_a_0d_tensor_gives_bitwise_the_same(name, dtype, value):
    results = []
    for number_dtype in (None, dtype):
        tensors = _tensors(dtype)
        out = OPERATIONS[name](TensorList(tensors, number_dtype), value)
        results.append((out.tensors, out.number_dtype))
    (plain, _), (fast, kept) = results
    assert kept == dtype  # results keep converting numbers
    for a, b in zip(plain, fast, strict=True):
        assert torch.equal(a, b)


def test_the_number_is_made_a_tensor_once_per_call():
    tensors = [torch.ones(3) for _ in range(50)]
    _, plain = count(lambda: TensorList(tensors).mul_(0.5).add_(0.5))
    _, fast = count(lambda: TensorList(tensors, torch.float32).mul_(0.5).add_(0.5))
    assert set(plain.ops) == {"aten._foreach_mul_.Scalar", "aten._foreach_add_.Scalar"}
    assert fast.ops == {
        "aten.lift_fresh.default": 2,  # one 0-d tensor per call, whatever the list's length
        "aten._foreach_mul_.Tensor": 1,
        "aten._foreach_add_.List": 1,
    }
