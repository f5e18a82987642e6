"""Triplet margin losses: relative to an anchor, pull the positive close and push
the negative away in the embedding,

    l = max(d(a, p) - d(a, n) + margin, 0).

:func:`triplet_margin_loss` takes the triplets it is given, as torch does;
:func:`batch_triplet_loss` mines them inside a batch of labelled embeddings,
which torch lacks, in O(B^2) memory and with a hand-derived gradient.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import NamedTuple

import torch
import torch.nn.functional as F

from lossopt import _compat, _policy
from lossopt._checks import (
    INTEGER_DTYPES,
    check_choice,
    check_floating,
    check_integer,
    check_number,
    check_same_shape,
    floating_of_one_shape,
)
from lossopt.losses._reduction import (
    REDUCTIONS,
    TORCH_REDUCTION,
    check_reduction,
    compute_dtype,
    reduce,
)
from lossopt.losses._route import autocast_on, traced
from lossopt.losses.reference import plain_norm

MININGS = ("batch_all", "batch_hard", "batch_semi_hard")


def pairwise_distance(
    x1: torch.Tensor, x2: torch.Tensor, p: float = 2.0, eps: float = 1e-6, keepdim: bool = False
) -> torch.Tensor:
    """d(x1, x2) = || x1 - x2 + eps ||_p along the last dimension, as torch.

    The eps inside the norm keeps the gradient finite where x1 = x2. It is
    torch's own ``pairwise_distance`` (the same three operations, in C++).
    """
    return torch.pairwise_distance(x1, x2, p, eps, keepdim)


_NUMBERS = (float, int)  # bool is an int but never a margin or a norm


# Each loss's arguments pass a one-expression guard (the common call, from
# metadata) or else its named checks; the guard sits beside the checks and
# never lets through what they refuse (tests/losses/test_guards.py).
def _plain_triplet(anchor, positive, negative, margin, reduction) -> bool:
    """Whether the arguments pass :func:`_check_triplet`, in one expression."""
    return (
        type(reduction) is str
        and reduction in TORCH_REDUCTION
        and type(margin) in _NUMBERS
        and margin > 0.0
        and floating_of_one_shape(anchor, positive)
        and floating_of_one_shape(anchor, negative)
        and 0 < anchor.dim() < 3
    )


def _check_triplet(anchor, positive, negative, margin, reduction) -> None:
    check_reduction(reduction)
    check_number("margin", margin, low=0.0, low_open=True)  # as torch: margin > 0
    check_floating("anchor", anchor)
    check_floating("positive", positive)
    check_floating("negative", negative)
    if anchor.dim() not in (1, 2):
        raise ValueError(
            f"anchor must be (D) or (N, D) embeddings, got shape {tuple(anchor.shape)}"
        )
    check_same_shape("anchor", anchor, "positive", positive)
    check_same_shape("anchor", anchor, "negative", negative)


def _plain_norm_args(p, eps, swap) -> bool:
    """Whether p, eps and swap pass :func:`_check_norm_args`, in one expression."""
    return (
        type(p) in _NUMBERS
        and p > 0.0
        and type(eps) in _NUMBERS
        and eps >= 0.0
        and type(swap) is bool
    )


def _check_norm_args(p, eps, swap) -> None:
    check_number("p", p, low=0.0, low_open=True)
    check_number("eps", eps, low=0.0)
    if not isinstance(swap, bool):
        raise TypeError(f"swap must be a bool, got {type(swap).__name__} {swap!r}")


def triplet_margin_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """l_n = max(d(a_n, p_n) - d(a_n, n_n) + margin, 0) with d = ||x - y + eps||_p.

    With ``swap`` the negative distance is min(d(a, n), d(p, n)) (Balntas et
    al., 2016). Same as ``torch.nn.functional.triplet_margin_loss``, except that
    the three inputs must share one shape.
    """
    plain = _plain_triplet(anchor, positive, negative, margin, reduction)
    if plain and _plain_norm_args(p, eps, swap) and (anchor.numel() or reduction != "mean"):
        # torch's kernel, without its functional wrapper
        return torch.triplet_margin_loss(
            anchor, positive, negative, margin, p, eps, swap, TORCH_REDUCTION[reduction]
        )
    if not plain:
        _check_triplet(anchor, positive, negative, margin, reduction)
    _check_norm_args(p, eps, swap)
    if anchor.numel() or reduction != "mean":  # torch's kernel; its mean of nothing is NaN
        return F.triplet_margin_loss(
            anchor, positive, negative, margin, p, eps, swap, reduction=reduction
        )

    def distance(x, y):
        return pairwise_distance(x, y, p=p, eps=eps)

    return _triplet_hinge(anchor, positive, negative, distance, margin, swap, reduction)


def triplet_margin_with_distance_loss(
    anchor: torch.Tensor,
    positive: torch.Tensor,
    negative: torch.Tensor,
    *,
    distance_function: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
    margin: float = 1.0,
    swap: bool = False,
    reduction: str = "mean",
) -> torch.Tensor:
    """The triplet margin loss under any distance (default: :func:`pairwise_distance`),
    as ``torch.nn.functional.triplet_margin_with_distance_loss``; margin > 0."""
    if not _plain_triplet(anchor, positive, negative, margin, reduction):
        _check_triplet(anchor, positive, negative, margin, reduction)
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            f"distance_function must be callable, got {type(distance_function).__name__}"
        )
    distance = distance_function if distance_function is not None else pairwise_distance
    return _triplet_hinge(anchor, positive, negative, distance, margin, swap, reduction)


def _triplet_hinge(anchor, positive, negative, distance, margin, swap, reduction):
    d_pos = distance(anchor, positive)
    d_neg = distance(anchor, negative)
    if swap:
        d_neg = torch.minimum(d_neg, distance(positive, negative))
    return reduce(torch.clamp_min(d_pos - d_neg + margin, 0), reduction)


def _pairwise(x: torch.Tensor, p: float) -> torch.Tensor:
    """D_ij = ||x_i - x_j||_p for all pairs of rows (p = 2 by matrix product)."""
    if p == 2:  # ||x_i||^2 + ||x_j||^2 - 2 x_i . x_j, one matrix product
        sq = x.square().sum(dim=1)
        dist = torch.addmm(sq[:, None] + sq[None, :], x, x.T, alpha=-2.0).clamp_min_(0.0)
        return dist.fill_diagonal_(0.0).sqrt_()
    return torch.cdist(x[None], x[None], p=p)[0]


def _norm_slope(u: torch.Tensor, d: torch.Tensor, p: float) -> torch.Tensor:
    """d||u||_p / du = sign(u)|u|^(p-1) / ||u||_p^(p-1), and 0 where ||u|| = 0 (the
    subgradient of least norm), so the gradient is finite everywhere.

    Where ||u|| = 0 the formula runs on stand-in values that are then masked:
    a second derivative (double backward) of |u|^(p-1) at u = 0 would be
    0 * inf = NaN even where masked (every pair of a row with itself)."""
    zero = d == 0
    safe = torch.where(zero, 1.0, d)
    if p == 2:
        return torch.where(zero, 0.0, u / safe)
    u = torch.where(zero, 1.0, u)
    return torch.where(zero, 0.0, u.sign() * u.abs().pow(p - 1) / safe.pow(p - 1))


class _PairwiseDistances(torch.autograd.Function):
    """D_ij = ||x_i - x_j||_p for all pairs of rows, p >= 1, with no eps, and
    the gradient of :func:`_norm_slope`. For p = 2 both directions are matrix
    products; otherwise the backward runs over blocks of rows."""

    @staticmethod
    def forward(x, p):
        return _pairwise(x, p)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], output)
        ctx.p = inputs[1]

    @staticmethod
    def backward(ctx, grad):
        x, dist = ctx.saved_tensors
        p = ctx.p
        # D is symmetric, so row i collects the gradient of D_ij and D_ji.
        both = grad + grad.T
        if p == 2:  # sum_j both_ij (x_i - x_j) / D_ij, as matrix products
            coef = both / dist.masked_fill(dist == 0, torch.inf)  # 0 at D = 0, as _norm_slope
            return torch.addmm(x * coef.sum(dim=1, keepdim=True), coef, x, alpha=-1.0), None
        out = torch.empty_like(x)
        rows = max(1, (1 << 24) // max(1, x.shape[0] * x.shape[1]))
        for start in range(0, x.shape[0], rows):
            part = slice(start, start + rows)
            diff = x[part, None, :] - x[None, :, :]
            slope = _norm_slope(diff, dist[part, :, None], p)
            out[part] = (both[part, :, None] * slope).sum(dim=1)
        return out, None


class _RowDistances(torch.autograd.Function):
    """||x_n - y_n||_p row by row, with the gradient of :func:`_norm_slope`."""

    @staticmethod
    def forward(x, y, p):
        return torch.linalg.vector_norm(x - y, ord=p, dim=1)

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.save_for_backward(inputs[0], inputs[1], output)
        ctx.p = inputs[2]

    @staticmethod
    def backward(ctx, grad):
        x, y, d = ctx.saved_tensors
        u = x - y
        g = grad[:, None] * _norm_slope(u, d[:, None], ctx.p)
        return g, -g, None


def _row_distances(x: torch.Tensor, y: torch.Tensor, p: float) -> torch.Tensor:
    """||x_n - y_n||_p; under torch.func or a tracer, torch's own norm, whose
    gradient at 0 is also 0."""
    if traced(x, y):
        return plain_norm(x - y, p)
    return _compat.apply_function(_RowDistances, x, y, p)


def _pairwise_distances(x: torch.Tensor, p: float) -> torch.Tensor:
    """D_ij = ||x_i - x_j||_p; under torch.func or a tracer, torch.cdist."""
    if traced(x):
        return plain_norm(x[:, None, :] - x[None, :, :], p)
    return _compat.apply_function(_PairwiseDistances, x, p)


def _label_masks(labels: torch.Tensor, rows: slice):
    """The one mask helper of mining: for the anchors in ``rows``, which
    columns are their positives (the same label, another index) and which
    their negatives (another label)."""
    same = labels[rows, None] == labels[None, :]
    neg = ~same
    same.diagonal(rows.start or 0).fill_(False)  # each anchor's own column
    return same, neg


class Triplets(NamedTuple):
    """The triplets a mining chose, in the two forms its loss needs.

    batch_hard chooses one triplet per anchor a: (a, positive[a], negative[a])
    where valid[a] (the anchor has a positive and a negative). The other
    minings choose many per anchor; every mined hinge is linear in the
    distances once its triplet is chosen and found active, so they are given
    as coefficients: the anchor's loss is sum_j weights[a, j] D[a, j] +
    offset[a], exactly, and its gradient (and second derivative) flows
    through D alone. count is what 'mean' divides by: valid anchors, mined
    triplets, or positive pairs.
    """

    count: torch.Tensor
    positive: torch.Tensor | None = None
    negative: torch.Tensor | None = None
    valid: torch.Tensor | None = None
    weights: torch.Tensor | None = None
    offset: torch.Tensor | None = None


def mine(dist: torch.Tensor, labels: torch.Tensor, mining: str, margin: float) -> Triplets:
    """The triplets ``mining`` chooses from a distance matrix (no graph), over
    blocks of anchors (:data:`lossopt._policy.MINE_BLOCK_ELEMENTS`): the sorts
    and searches of a block need a few times block x B memory. Blocks are
    joined, not written in place, so the mining runs under ``vmap`` too."""
    n = dist.shape[-1]
    step = max(1, _policy.MINE_BLOCK_ELEMENTS // max(1, n))
    blocks = [
        _mine_rows(dist[start : start + step], slice(start, start + step), labels, mining, margin)
        for start in range(0, n, step)
    ]
    if len(blocks) == 1:
        return blocks[0]
    joined = {
        name: torch.cat(parts) if name != "count" else torch.stack(parts).sum(dim=0)
        for name, parts in zip(Triplets._fields, zip(*blocks, strict=True), strict=True)
        if parts[0] is not None
    }
    return Triplets(**joined)


def _mine_rows(dist, rows: slice, labels, mining: str, margin: float) -> Triplets:
    """:func:`mine` for the anchors in ``rows`` (dist: their distances to all)."""
    n = dist.shape[1]
    pos, neg = _label_masks(labels, rows)
    inf = math.inf

    if mining == "batch_hard":  # Hermans et al. (2017)
        valid = pos.any(dim=1) & neg.any(dim=1)
        positive = torch.where(pos, dist, -inf).argmax(dim=1)
        negative = torch.where(neg, dist, inf).argmin(dim=1)
        return Triplets(valid.sum(), positive, negative, valid)

    n_neg = neg.sum(dim=1)
    valid = pos.any(dim=1) & (n_neg > 0)

    # Each anchor's negative distances in ascending order (non-negatives last).
    neg_sorted, neg_order = torch.where(neg, dist, inf).sort(dim=1)
    pos = pos & valid[:, None]

    if mining == "batch_all":
        # Triplet (a, p, n) is active iff d_an < d_ap + margin. For each (a, p)
        # count the active negatives k by binary search and sum them from a
        # prefix sum; for each (a, n) count the active positives the same way.
        threshold = dist + margin
        k = torch.searchsorted(neg_sorted, threshold.contiguous())
        k = torch.where(pos, k, 0)
        sorted_thresholds = torch.where(pos, threshold, -inf).sort(dim=1).values
        k_neg = n - torch.searchsorted(sorted_thresholds, dist.contiguous(), right=True)
        weights = torch.where(pos, k.to(dist.dtype), 0) - torch.where(neg, k_neg.to(dist.dtype), 0)
        count = (pos.sum(dim=1) * n_neg).sum()
        return Triplets(count, weights=weights, offset=margin * k.sum(dim=1).to(dist.dtype))

    # batch_semi_hard (Schroff et al., 2015): for each positive pair, the
    # nearest negative farther than the positive; if none is, the farthest.
    first_farther = torch.searchsorted(neg_sorted, dist.contiguous(), right=True)
    slot = torch.minimum(first_farther, (n_neg - 1).clamp_min(0)[:, None])
    chosen = neg_order.gather(1, slot)
    hinge = dist - dist.gather(1, chosen) + margin
    active = (pos & (hinge > 0)).to(dist.dtype)
    weights = active.scatter_add(1, chosen, -active)
    return Triplets(pos.sum(), weights=weights, offset=margin * active.sum(dim=1))


def batch_triplet_loss(
    embeddings: torch.Tensor,
    labels: torch.Tensor,
    *,
    mining: str = "batch_hard",
    margin: float = 1.0,
    p: float = 2.0,
    reduction: str = "mean",
) -> torch.Tensor:
    """Triplet margin loss over triplets mined inside a labelled batch.

    d(a, b) = ||a - b||_p (no eps; the gradient is finite at d = 0). An anchor
    counts only if the batch holds a positive for it (same label, another
    index) and a negative (another label).

    - 'batch_all': every valid (a, p, n); 'mean' averages over all of them.
    - 'batch_hard' (Hermans et al., 2017): per anchor, the farthest positive and
      the nearest negative; 'mean' averages over valid anchors.
    - 'batch_semi_hard' (Schroff et al., 2015, FaceNet): per positive pair
      (a, p), the nearest negative farther than d(a, p), or the farthest
      negative if none is; 'mean' averages over positive pairs.

    'none' returns each anchor's summed hinge losses, shape (B,). With no valid
    triplet the loss is 0 with zero gradients. Memory is O(B^2) for every mining.

    The triplets are chosen by :func:`mine` on distances without a graph, and
    the loss differentiates only the distances it chose, so second
    derivatives (a gradient penalty's double backward) are those of the
    chosen hinges, and ``torch.func.vmap`` over a stack of batches gives each
    batch's gradient.
    """
    if not _plain_batch(embeddings, labels, mining, margin, p, reduction):
        _check_batch(embeddings, labels, mining, margin, p, reduction)
    if embeddings.shape[0] == 0:
        return reduce(embeddings.sum(dim=1), reduction)  # a mean over nothing is 0
    if autocast_on(embeddings.device):
        # torch's distance kernels (cdist) are on autocast's float32 list: the
        # whole mined loss runs in float32, its matrix products included.
        with torch.autocast(embeddings.device.type, enabled=False):
            return batch_triplet_loss(
                embeddings.float(), labels, mining=mining, margin=margin, p=p, reduction=reduction
            )
    x = embeddings.to(compute_dtype(embeddings))
    p = float(p)
    if mining == "batch_hard" and x.shape[0] > _policy.HARD_MATRIX_MAX_BATCH:
        # Two pairs per anchor: mine on distances without a graph, then
        # differentiate only the 2B mined distances, in O(B D) memory.
        with torch.no_grad():
            chosen = mine(_pairwise(x.detach(), p), labels, mining, 0.0)
        d_pos = _row_distances(x, x[chosen.positive], p)
        d_neg = _row_distances(x, x[chosen.negative], p)
    else:
        dist = _pairwise_distances(x, p)
        with torch.no_grad():
            chosen = mine(dist.detach(), labels, mining, float(margin))
        if mining != "batch_hard":
            per_anchor = (chosen.weights * dist).sum(dim=1) + chosen.offset
            return _result(reduce(per_anchor, reduction, count=chosen.count), embeddings)
        # One distance matrix while B^2 is small: fewest operations.
        d_pos = dist.gather(1, chosen.positive[:, None]).squeeze(1)
        d_neg = dist.gather(1, chosen.negative[:, None]).squeeze(1)
    per_anchor = torch.where(chosen.valid, torch.clamp_min(d_pos - d_neg + margin, 0), 0.0)
    return _result(reduce(per_anchor, reduction, count=chosen.count), embeddings)


def _plain_batch(embeddings, labels, mining, margin, p, reduction) -> bool:
    """Whether the arguments pass :func:`_check_batch`, in one expression."""
    return (
        type(mining) is str
        and mining in MININGS
        and type(reduction) is str
        and reduction in REDUCTIONS
        and type(margin) in _NUMBERS
        and margin >= 0.0
        and type(p) in _NUMBERS
        and p >= 1.0
        and isinstance(embeddings, torch.Tensor)
        and isinstance(labels, torch.Tensor)
        and embeddings.is_floating_point()
        and labels.dtype in INTEGER_DTYPES
        and embeddings.dim() == 2
        and labels.shape == embeddings.shape[:1]
    )


def _check_batch(embeddings, labels, mining, margin, p, reduction) -> None:
    """batch_triplet_loss's checks, each naming its argument."""
    check_choice("mining", mining, MININGS)
    check_reduction(reduction)
    check_number("margin", margin, low=0.0)
    check_number("p", p, low=1.0)
    check_floating("embeddings", embeddings)
    check_integer("labels", labels)
    if embeddings.dim() != 2:
        raise ValueError(f"embeddings must be (B, D), got shape {tuple(embeddings.shape)}")
    if labels.shape != embeddings.shape[:1]:
        raise ValueError(
            f"labels must have shape ({embeddings.shape[0]},) to match embeddings, "
            f"got {tuple(labels.shape)}"
        )


def _result(loss: torch.Tensor, embeddings: torch.Tensor) -> torch.Tensor:
    """The loss in the embeddings' dtype."""
    return loss.to(embeddings.dtype)
