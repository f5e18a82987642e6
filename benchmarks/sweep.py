"""`python -m benchmarks --sweep`: every public loss (forward and backward) and
every optimizer's default step beside torch, at every size.

Each row is checked before it is timed: lossopt and every torch reference give
the same values and gradients (losses) or the same parameters after a few steps
(optimizers) in float64 at a tiny size, so a wrong fast path can never look
fast. A row whose check fails is reported as such and not timed. The timed
variants then run in interleaved rounds (``harness.time_variants``), and the
ratio is lossopt's median over the fastest torch variant's median.

Timed inputs are float32. Loss sizes come in tiers, tiny (N, C) = 64x10 to
large 4096x32768; a loss whose input is not (N, C) takes an analogous shape
in each tier (see ``LOSSES``). The large tier takes most of a sweep's time:
``--sweep-sizes tiny,small,medium`` leaves it out, ``--cases`` picks rows (to
rerun a near miss), and the results go to benchmarks/results/sweep-DEVICE-full.md
and .json.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F

from benchmarks.harness import time_variants
from lossopt import losses, optim

TARGET = 1.05  # the sweep's bar: lossopt at most 5% slower than torch's fastest

# The loss tiers: (N, C) of the classification and elementwise losses.
TIERS = {
    "tiny": (64, 10),
    "small": (256, 100),
    "medium": (1024, 1000),
    "large": (4096, 32768),
}

# float64 at a tiny size, tight enough that a path computing in float32 fails.
PARITY_TOLERANCE = {"rtol": 1e-9, "atol": 1e-12}


class Inputs(NamedTuple):
    """One loss at one size: the tensors gradients are taken of, lossopt's
    loss and torch's, each a call that computes the loss from those tensors."""

    leaves: tuple[torch.Tensor, ...]
    ours: Callable[[], torch.Tensor]
    references: dict[str, Callable[[], torch.Tensor]]


@dataclass(frozen=True)
class LossCase:
    make: Callable[[tuple[int, ...], torch.dtype, str], Inputs]
    dims: dict[str, tuple[int, ...]]  # per tier; a tier not named is not run
    parity_dims: tuple[int, ...]  # tiny: the float64 check, and the smoke run's timing


@dataclass(frozen=True)
class OptimizerCase:
    ours: type[torch.optim.Optimizer]
    theirs: type[torch.optim.Optimizer]
    kwargs: dict


class Row(NamedTuple):
    case: str
    tier: str
    shape: str
    parity: Callable[[], None]
    variants: Callable[[], tuple[dict[str, Callable[[], object]], dict[str, Callable[[], object]]]]


def _randn(g: torch.Generator, dims, dtype, device) -> torch.Tensor:
    return torch.randn(dims, generator=g, dtype=dtype).to(device)


def _index_target(g, shape, classes, device) -> torch.Tensor:
    return torch.randint(0, classes, shape, generator=g).to(device)


def _regression(ours, theirs):
    def make(dims, dtype, device):
        g = torch.Generator().manual_seed(0)
        x = _randn(g, dims, dtype, device).requires_grad_()
        y = _randn(g, dims, dtype, device)
        return Inputs((x,), lambda: ours(x, y), {f"F.{theirs.__name__}": lambda: theirs(x, y)})

    return make


def _cross_entropy(target: str, **options):
    """cross_entropy with class-index ('index') or probability ('probs') targets;
    ``weight=True`` draws a positive class weight."""

    def make(dims, dtype, device):
        g = torch.Generator().manual_seed(0)
        x = _randn(g, dims, dtype, device).requires_grad_()
        classes = dims[1]
        if target == "index":
            y = _index_target(g, (dims[0], *dims[2:]), classes, device)
        else:
            y = torch.softmax(_randn(g, dims, dtype, device), dim=1)
        kwargs = dict(options)
        if kwargs.pop("weight", False):
            kwargs["weight"] = (0.5 + torch.rand(classes, generator=g, dtype=dtype)).to(device)
        return Inputs(
            (x,),
            lambda: losses.cross_entropy(x, y, **kwargs),
            {"F.cross_entropy": lambda: F.cross_entropy(x, y, **kwargs)},
        )

    return make


def _nll_loss(dims, dtype, device):
    g = torch.Generator().manual_seed(0)
    log_p = torch.log_softmax(_randn(g, dims, dtype, device), dim=1).requires_grad_()
    y = _index_target(g, dims[:1], dims[1], device)
    return Inputs(
        (log_p,), lambda: losses.nll_loss(log_p, y), {"F.nll_loss": lambda: F.nll_loss(log_p, y)}
    )


def _kl_div(dims, dtype, device):
    # lossopt's default reduction is 'batchmean' (the true KL); torch's must be asked for.
    g = torch.Generator().manual_seed(0)
    log_q = torch.log_softmax(_randn(g, dims, dtype, device), dim=1).requires_grad_()
    p = torch.softmax(_randn(g, dims, dtype, device), dim=1)
    return Inputs(
        (log_q,),
        lambda: losses.kl_div(log_q, p),
        {"F.kl_div batchmean": lambda: F.kl_div(log_q, p, reduction="batchmean")},
    )


def _kl_divergence(dims, dtype, device):
    # D_KL(P || Q) from logits, gradients to both; torch's is kl_div of the two
    # log-softmaxes with log_target=True.
    g = torch.Generator().manual_seed(0)
    p_logits = _randn(g, dims, dtype, device).requires_grad_()
    q_logits = _randn(g, dims, dtype, device).requires_grad_()

    def theirs():
        log_p, log_q = F.log_softmax(p_logits, dim=-1), F.log_softmax(q_logits, dim=-1)
        return F.kl_div(log_q, log_p, reduction="batchmean", log_target=True)

    return Inputs(
        (p_logits, q_logits),
        lambda: losses.kl_divergence(p_logits, q_logits),
        {"F.kl_div(log_softmax)": theirs},
    )


def _triplet(ours, theirs):
    def make(dims, dtype, device):
        g = torch.Generator().manual_seed(0)
        a, p, n = (_randn(g, dims, dtype, device).requires_grad_() for _ in range(3))
        return Inputs(
            (a, p, n), lambda: ours(a, p, n), {f"F.{theirs.__name__}": lambda: theirs(a, p, n)}
        )

    return make


# Anchors per block of the brute-force batch_all and semi-hard formulas: a
# block holds block x B x B triplets, so memory stays bounded at any B.
_TRIPLETS_PER_BLOCK = 1 << 24


def brute_force_batch_triplet(
    embeddings: torch.Tensor, labels: torch.Tensor, mining: str, margin: float = 1.0
) -> torch.Tensor:
    """batch_triplet_loss ('mean', p = 2) from its definition, in plain torch:
    all pairwise distances, label masks, and for batch_all and batch_semi_hard
    every (anchor, positive, negative) at once (O(B^3), by blocks of anchors)."""
    n = embeddings.shape[0]
    d = torch.cdist(embeddings, embeddings)
    same = labels[:, None] == labels[None, :]
    pos = same & ~torch.eye(n, dtype=torch.bool, device=embeddings.device)
    neg = ~same
    has_neg = neg.any(dim=1)
    inf = float("inf")
    if mining == "batch_hard":
        valid = pos.any(dim=1) & has_neg
        hardest_pos = torch.where(pos, d, -inf).amax(dim=1)
        hardest_neg = torch.where(neg, d, inf).amin(dim=1)
        hinge = torch.where(valid, (hardest_pos - hardest_neg + margin).clamp_min(0), 0.0)
        return hinge.sum() / valid.sum().clamp_min(1)
    pairs = pos & has_neg[:, None]  # (a, p) pairs whose anchor has a negative
    total, count = d.new_zeros(()), pairs.new_zeros((), dtype=torch.int64)
    step = max(1, _TRIPLETS_PER_BLOCK // (n * n))
    for start in range(0, n, step):
        a = slice(start, start + step)
        d_ap, d_an = d[a, :, None], d[a, None, :]
        is_neg = neg[a, None, :]
        if mining == "batch_all":
            triplets = pairs[a, :, None] & is_neg
            total = total + torch.where(triplets, (d_ap - d_an + margin).clamp_min(0), 0.0).sum()
            count = count + triplets.sum()
            continue
        # batch_semi_hard: the nearest negative farther than the positive, else the farthest.
        farther = is_neg & (d_an > d_ap)
        nearest_farther = torch.where(farther, d_an, inf).amin(dim=2)
        farthest = torch.where(neg[a], d[a], -inf).amax(dim=1, keepdim=True)
        chosen = torch.where(farther.any(dim=2), nearest_farther, farthest)
        hinge = (d[a] - chosen + margin).clamp_min(0)
        total = total + torch.where(pairs[a], hinge, 0.0).sum()
        count = count + pairs[a].sum()
    return total / count.clamp_min(1)


def _batch_triplet(mining: str):
    def make(dims, dtype, device):
        b, dim = dims
        g = torch.Generator().manual_seed(0)
        emb = _randn(g, dims, dtype, device).requires_grad_()
        labels = _index_target(g, (b,), max(2, b // 8), device)  # about 8 per class
        return Inputs(
            (emb,),
            lambda: losses.batch_triplet_loss(emb, labels, mining=mining),
            {"brute force": lambda: brute_force_batch_triplet(emb, labels, mining)},
        )

    return make


def _linear_cross_entropy(dims, dtype, device):
    n, h, v = dims
    g = torch.Generator().manual_seed(0)
    hidden = _randn(g, (n, h), dtype, device).requires_grad_()
    weight = (_randn(g, (v, h), dtype, device) / h**0.5).requires_grad_()
    y = _index_target(g, (n,), v, device)
    return Inputs(
        (hidden, weight),
        lambda: losses.linear_cross_entropy(hidden, weight, y),
        {"F.linear + F.cross_entropy": lambda: F.cross_entropy(F.linear(hidden, weight), y)},
    )


def _per_tier() -> dict[str, tuple[int, ...]]:
    return dict(TIERS)


# linear_cross_entropy: N x H x V with V the class count and a modest H.
_LINEAR_H = 128
# batch_triplet_loss: (B, D). The brute-force reference is O(B^3) in time and
# autograd keeps several B^3 tensors per block: B = 512 already takes seconds
# a call on a 2-core CPU, so B grows slower than N.
_TRIPLET_BATCH = {"tiny": (64, 10), "small": (128, 64), "medium": (256, 128), "large": (512, 256)}

LOSSES: dict[str, LossCase] = {
    "l1_loss": LossCase(_regression(losses.l1_loss, F.l1_loss), _per_tier(), (6, 5)),
    "mse_loss": LossCase(_regression(losses.mse_loss, F.mse_loss), _per_tier(), (6, 5)),
    "huber_loss": LossCase(_regression(losses.huber_loss, F.huber_loss), _per_tier(), (6, 5)),
    "smooth_l1_loss": LossCase(
        _regression(losses.smooth_l1_loss, F.smooth_l1_loss), _per_tier(), (6, 5)
    ),
    "cross_entropy": LossCase(_cross_entropy("index"), _per_tier(), (6, 5)),
    "cross_entropy/probs": LossCase(_cross_entropy("probs"), _per_tier(), (6, 5)),
    "cross_entropy/label_smoothing": LossCase(
        _cross_entropy("index", label_smoothing=0.1), _per_tier(), (6, 5)
    ),
    "cross_entropy/weight": LossCase(_cross_entropy("index", weight=True), _per_tier(), (6, 5)),
    # Segmentation: (N, C, H, W) logits and (N, H, W) targets, in the medium tier.
    "cross_entropy/K-dim": LossCase(
        _cross_entropy("index"), {"medium": (8, 21, 64, 64)}, (2, 3, 4, 4)
    ),
    "nll_loss": LossCase(_nll_loss, _per_tier(), (6, 5)),
    "kl_div": LossCase(_kl_div, _per_tier(), (6, 5)),
    "kl_divergence": LossCase(_kl_divergence, _per_tier(), (6, 5)),
    # Triplets of (N, D) embeddings, D in the place of C.
    "triplet_margin_loss": LossCase(
        _triplet(losses.triplet_margin_loss, F.triplet_margin_loss), _per_tier(), (6, 5)
    ),
    "triplet_margin_with_distance_loss": LossCase(
        _triplet(losses.triplet_margin_with_distance_loss, F.triplet_margin_with_distance_loss),
        _per_tier(),
        (6, 5),
    ),
    **{
        f"batch_triplet_loss/{mining}": LossCase(_batch_triplet(mining), _TRIPLET_BATCH, (16, 3))
        for mining in ("batch_all", "batch_hard", "batch_semi_hard")
    },
    "linear_cross_entropy": LossCase(
        _linear_cross_entropy,
        {tier: (n, _LINEAR_H, v) for tier, (n, v) in TIERS.items()},
        (6, 4, 5),
    ),
}

# Every default (no `fused`) beside torch's default, foreach and for-loop.
OPTIMIZERS: dict[str, OptimizerCase] = {
    "SGD": OptimizerCase(optim.SGD, torch.optim.SGD, {}),
    "SGD/momentum": OptimizerCase(optim.SGD, torch.optim.SGD, {"momentum": 0.9}),
    "Adam": OptimizerCase(optim.Adam, torch.optim.Adam, {}),
    "AdamW": OptimizerCase(optim.AdamW, torch.optim.AdamW, {}),
    "RMSprop": OptimizerCase(optim.RMSprop, torch.optim.RMSprop, {}),
    "Adagrad": OptimizerCase(optim.Adagrad, torch.optim.Adagrad, {}),
}
TORCH_VARIANTS = {
    "torch default": {},
    "torch foreach=True": {"foreach": True},
    "torch for-loop": {"foreach": False},
}
# (count, elements): many large tensors (bandwidth-bound) and many small ones
# (overhead-bound); the tiny sizes keep the count, so the check sees the same lists.
PARAMS = {"24 x 699050": (24, 699050), "200 x 1000": (200, 1000)}
PARAMS_TINY = {"24 x 699050": (24, 7), "200 x 1000": (200, 3)}
WARM_STEPS = 3
PARITY_STEPS = 5


def _shape(dims: tuple[int, ...]) -> str:
    return "x".join(map(str, dims))


def _forward_backward(inputs: Inputs) -> dict[str, Callable[[], tuple[torch.Tensor, ...]]]:
    def run(loss_fn):
        def call():
            loss = loss_fn()
            return (loss.detach(), *torch.autograd.grad(loss, inputs.leaves))

        return call

    return {
        "lossopt": run(inputs.ours),
        **{f"torch {k}": run(fn) for k, fn in inputs.references.items()},
    }


def _loss_parity(case: LossCase, device: str) -> None:
    calls = _forward_backward(case.make(case.parity_dims, torch.float64, device))
    ours = calls.pop("lossopt")()
    what = ("loss", *(f"gradient {i}" for i in range(len(ours) - 1)))
    for name, ref in calls.items():
        for what_i, a, b in zip(what, ours, ref(), strict=True):
            try:
                torch.testing.assert_close(a, b, **PARITY_TOLERANCE)
            except AssertionError as error:
                raise AssertionError(f"{what_i} differs from {name}: {error}") from None


def _loss_row(name: str, case: LossCase, tier: str, dims: tuple[int, ...], device: str) -> Row:
    def variants():
        calls = _forward_backward(case.make(dims, torch.float32, device))
        return {"lossopt": calls.pop("lossopt")}, calls

    return Row(name, tier, _shape(dims), lambda: _loss_parity(case, device), variants)


def _optimizers(case: OptimizerCase, count: int, elements: int, dtype, device):
    def params():
        g = torch.Generator().manual_seed(0)
        tensors = [_randn(g, (elements,), dtype, device).requires_grad_() for _ in range(count)]
        for p in tensors:
            p.grad = _randn(g, (elements,), dtype, device)
        return tensors

    return {
        "lossopt": case.ours(params(), **case.kwargs),
        **{
            label: case.theirs(params(), **case.kwargs, **extra)
            for label, extra in TORCH_VARIANTS.items()
        },
    }


def _optimizer_parity(case: OptimizerCase, count: int, elements: int, device: str) -> None:
    opts = _optimizers(case, count, elements, torch.float64, device)
    g = torch.Generator().manual_seed(1)
    for _ in range(PARITY_STEPS):
        grads = [_randn(g, (elements,), torch.float64, device) for _ in range(count)]
        for opt in opts.values():
            for p, grad in zip(opt.param_groups[0]["params"], grads, strict=True):
                p.grad = grad.clone()
            opt.step()
    ours = opts.pop("lossopt").param_groups[0]["params"]
    for name, opt in opts.items():
        for i, (a, b) in enumerate(zip(ours, opt.param_groups[0]["params"], strict=True)):
            try:
                torch.testing.assert_close(a, b, **PARITY_TOLERANCE)
            except AssertionError as error:
                raise AssertionError(f"parameter {i} differs from {name}: {error}") from None


def _optimizer_rows(name: str, case: OptimizerCase, device: str, smoke: bool):
    for label, (count, elements) in PARAMS.items():
        tiny = PARAMS_TINY[label]
        sized = tiny if smoke else (count, elements)

        def variants(sized=sized):
            opts = _optimizers(case, *sized, torch.float32, device)
            for opt in opts.values():  # warm state: what a training loop steps with
                for _ in range(WARM_STEPS):
                    opt.step()
            steps = {k: opt.step for k, opt in opts.items()}
            return {"lossopt": steps.pop("lossopt")}, steps

        shape = f"{sized[0]} x {sized[1]}"
        yield Row(
            name,
            "params",
            shape,
            lambda tiny=tiny: _optimizer_parity(case, *tiny, device),
            variants,
        )


def rows(tiers: list[str], names: list[str] | None, device: str, smoke: bool) -> list[Row]:
    """The sweep's rows in order: every loss tier by tier, then the optimizers.
    ``names`` selects cases: a name picks itself and its variants ('cross_entropy'
    picks 'cross_entropy/probs' too). A smoke run times every case once, at
    its tiny size."""

    def picked(case: str) -> bool:
        return names is None or any(case == n or case.startswith(n + "/") for n in names)

    out = []
    for tier in ["smoke"] if smoke else tiers:
        for name, case in LOSSES.items():
            if picked(name) and (smoke or tier in case.dims):
                dims = case.parity_dims if smoke else case.dims[tier]
                out.append(_loss_row(name, case, tier, dims, device))
    for name, case in OPTIMIZERS.items():
        if picked(name):
            out.extend(_optimizer_rows(name, case, device, smoke))
    return out


def case_names() -> list[str]:
    return [*LOSSES, *OPTIMIZERS]


def run_row(row: Row, device: str, reps: int, budget_s: float) -> dict:
    result = {"case": row.case, "tier": row.tier, "shape": row.shape, "target": TARGET}
    start = time.perf_counter()
    try:
        row.parity()
    except Exception as error:  # any failure, a wrong value or a raise, is reported, not timed
        result["parity"] = f"failed: {type(error).__name__}: {str(error).strip()[:500]}"
        return result
    result["parity"] = "passed"
    result["parity_s"] = time.perf_counter() - start
    try:
        ours, references = row.variants()
        seconds, first = time_variants({**ours, **references}, reps, device, budget_s)
    except Exception as error:  # out of memory at the large tier, say: the other rows still run
        result["error"] = f"{type(error).__name__}: {str(error).strip()[:500]}"
        return result
    best = min(references, key=seconds.get)
    result.update(
        ours_ms=1e3 * seconds["lossopt"],
        ours_first_ms=1e3 * first["lossopt"],
        reference=best,
        reference_ms=1e3 * seconds[best],
        references_ms={k: 1e3 * seconds[k] for k in references},
        time_ratio=seconds["lossopt"] / seconds[best],
    )
    result["met"] = result["time_ratio"] <= TARGET
    result["row_s"] = time.perf_counter() - start
    return result


def ok(result: dict) -> bool:
    """The row passed its check and was timed."""
    return result["parity"] == "passed" and "error" not in result


def table(results: list[dict]) -> str:
    lines = [
        "| case | shape | lossopt ms | fastest torch | torch ms | ratio | met (<= 1.05) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        if not ok(r):
            why = "parity failed" if r["parity"] != "passed" else "error, see JSON"
            lines.append(f"| {r['case']} | {r['shape']} | - | - | - | - | {why} |")
            continue
        lines.append(
            f"| {r['case']} | {r['shape']} | {r['ours_ms']:.3f} | {r['reference']} | "
            f"{r['reference_ms']:.3f} | {r['time_ratio']:.2f} | {'yes' if r['met'] else 'no'} |"
        )
    return "\n".join(lines)
