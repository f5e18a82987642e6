"""Helpers for the hand-derived backward passes."""

from __future__ import annotations

import functools

import torch


def single_backward(backward):
    """Mark a hand-derived backward as differentiable once only.

    torch's ``once_differentiable`` returns gradients that silently carry no
    graph when the incoming gradient needs none, so a Hessian-vector product
    would come back as zero. This raises instead whenever a graph of the
    backward is asked for (``create_graph=True``).
    """

    @functools.wraps(backward)
    def wrapper(ctx, *grad_outputs):
        if torch.is_grad_enabled():
            raise RuntimeError(
                f"{backward.__qualname__.split('.')[0].lstrip('_')}: this loss has a hand-derived "
                "gradient that supports one backward only; double backward "
                "(create_graph=True) is not supported"
            )
        return backward(ctx, *grad_outputs)

    return wrapper
