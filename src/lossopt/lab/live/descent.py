"""The first optimization explorables: the derivative as a slope (finite
differences against autograd), and gradient descent against mini-batch SGD."""

from __future__ import annotations

import functools

import torch

from lossopt import losses
from lossopt.lab import pictures
from lossopt.lab.experiments.descent import gd_and_sgd, slope_data
from lossopt.lab.i18n import N_, _
from lossopt.lab.knobs import Knob
from lossopt.lab.live.explorable import Explorable, View

F64 = torch.float64

# -- the derivative ----------------------------------------------------------------------
DERIVATIVE_KNOBS = (
    Knob("h", N_("the finite-difference step h"), 1e-3, lo=1e-14, hi=1.0, scale="log"),
    Knob("w", N_("the weight w where the slope is taken"), -0.5, lo=-1.5, hi=4.0, step=0.05),
    Knob("seed", N_("which random data (x, y)"), 0, kind="int", lo=0, hi=10_000),
)


def derivative(*, h, w, seed) -> View:
    x, y = slope_data(seed)

    def at(v: float) -> float:
        return losses.mse_loss(torch.tensor(v, dtype=F64) * x, y).item()

    weight = torch.tensor(w, dtype=F64, requires_grad=True)
    losses.mse_loss(weight * x, y).backward()
    exact = weight.grad.item()
    forward = (at(w + h) - at(w)) / h
    central = (at(w + h) - at(w - h)) / (2 * h)
    ws = torch.linspace(-1.5, 4.0, 111, dtype=F64).tolist()
    curve = [at(v) for v in ws]
    slope_fig = pictures.slope(
        ws,
        curve,
        [
            (
                _("autograd slope {value}").format(value=f"{exact:.4g}"),
                w,
                at(w),
                exact,
                "#d62728",
                False,
            ),
            (
                _("forward difference {value}").format(value=f"{forward:.4g}"),
                w,
                at(w),
                forward,
                "#1f77b4",
                True,
            ),
        ],
    )
    hs = torch.logspace(-14, 0, 57, dtype=F64).tolist()
    forward_errors = [abs((at(w + s) - at(w)) / s - exact) for s in hs]
    central_errors = [abs((at(w + s) - at(w - s)) / (2 * s) - exact) for s in hs]
    error_fig = pictures.difference_errors(hs, forward_errors, central_errors, h=h)
    numbers = {"autograd": exact, "forward": forward, "central": central,
               "forward_error": abs(forward - exact), "central_error": abs(central - exact),
               "hs": hs, "forward_errors": forward_errors, "central_errors": central_errors,
               "ws": ws, "loss": curve}  # fmt: skip
    best_f = hs[min(range(len(hs)), key=lambda i: forward_errors[i])]
    best_c = hs[min(range(len(hs)), key=lambda i: central_errors[i])]
    notes = [
        _(
            "At w = {w}: autograd {autograd}, forward {forward} (error {forward_error}), "
            "central {central} (error {central_error})."
        ).format(
            w=f"{w:g}",
            autograd=f"{exact:.10g}",
            forward=f"{forward:.10g}",
            forward_error=f"{abs(forward - exact):.2g}",
            central=f"{central:.10g}",
            central_error=f"{abs(central - exact):.2g}",
        ),
        _(
            "The forward difference is off by about L''(w) h / 2 until rounding, which grows as "
            "1/h, takes over: its error is smallest near h = {best_forward}. L is quadratic, so "
            "the central difference is exact but for rounding: its error only grows as h "
            "shrinks (smallest near h = {best_central})."
        ).format(best_forward=f"{best_f:.0e}", best_central=f"{best_c:.0e}"),
    ]
    return View([slope_fig, error_fig], numbers, notes)


# -- GD against mini-batch SGD -----------------------------------------------------------
GD_KNOBS = (
    Knob("batch-size", N_("examples in one SGD step"), 32, kind="int", lo=1, hi=1024, scale="log"),
    Knob("lr", N_("learning rate η of both"), 0.3, lo=1e-3, hi=3.0, scale="log", label="η"),
    Knob("steps", N_("steps of each"), 60, kind="int", lo=5, hi=300),
    Knob("seed", N_("seed of the weights and the batches"), 0, kind="int", lo=0, hi=10_000),
)


@functools.lru_cache(maxsize=1)
def _digits():
    from lossopt.lab.data import digits

    return digits(0)


def gd_vs_sgd(*, batch_size, lr, steps, seed) -> View:
    data = _digits()
    n = len(data.y_train)
    run = gd_and_sgd(data, lr=lr, steps=steps, batch_size=batch_size, seed=seed)
    curves, noise = run.curves, run.noise
    read = {"gd": n, "sgd": min(batch_size, n)}
    by_read, by_step, noise_fig = pictures.gd_vs_sgd(
        curves["gd"], curves["sgd"], train_size=n, batch_size=batch_size, noise=noise
    )
    mean_noise = sum(noise) / len(noise)
    rises = {k: sum(1 for a, b in zip(c, c[1:], strict=False) if b > a) for k, c in curves.items()}
    notes = [
        _(
            "One GD step reads all {n} examples; one SGD step reads {batch}, {times} times fewer."
        ).format(n=n, batch=read["sgd"], times=f"{n / read['sgd']:.3g}"),
        _(
            "After {steps} steps: GD {gd}, SGD {sgd}; per example read, SGD is far ahead (top "
            "left)."
        ).format(steps=steps, gd=f"{curves['gd'][-1]:.4f}", sgd=f"{curves['sgd'][-1]:.4f}"),
        _(
            "SGD's gradient is off by {noise} of its size on average (falls as 1/√B); the "
            "whole-set loss rose after {sgd_rises} of its steps (GD: {gd_rises})."
        ).format(noise=f"{mean_noise:.3f}", sgd_rises=rises["sgd"], gd_rises=rises["gd"]),
    ]
    numbers = {"gd": curves["gd"], "sgd": curves["sgd"], "noise": noise, "mean_noise": mean_noise,
               "train_size": n, "read_per_step": read, "rises": rises}  # fmt: skip
    return View([by_read, by_step, noise_fig], numbers, notes)


EXPLORABLES = (
    Explorable(
        "derivative",
        N_("The derivative"),
        N_(
            "The slope autograd gives against finite differences: shrink h and the forward "
            "difference gets better, until the computer's rounding makes it worse."
        ),
        DERIVATIVE_KNOBS,
        derivative,
    ),
    Explorable(
        "gd-vs-sgd",
        N_("GD against mini-batch SGD"),
        N_(
            "The batch size: how noisy each step's gradient is, and how much loss each example "
            "read buys."
        ),
        GD_KNOBS,
        gd_vs_sgd,
    ),
)
