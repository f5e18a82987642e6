import itertools

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from lossopt import losses
from tests.conftest import assert_same

D = torch.float64


def _triplet(shape, seed=0):
    g = torch.Generator().manual_seed(seed)
    return tuple(torch.randn(shape, generator=g, dtype=D).requires_grad_() for _ in range(3))


@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("shape", [(8,), (6, 5)])
def test_triplet_margin_loss_matches_torch(p, swap, reduction, shape):
    a, pos, neg = _triplet(shape)
    kw = dict(margin=0.7, p=p, eps=1e-6, swap=swap, reduction=reduction)
    ours = losses.triplet_margin_loss(a, pos, neg, **kw)
    assert_same(ours, F.triplet_margin_loss(a, pos, neg, **kw), (a, pos, neg))
    module = losses.TripletMarginLoss(**kw)(a, pos, neg)
    assert_same(module, torch.nn.TripletMarginLoss(**kw)(a, pos, neg), (a, pos, neg))


@pytest.mark.parametrize("swap", [False, True])
@pytest.mark.parametrize("distance", [None, lambda x, y: 1 - F.cosine_similarity(x, y)])
def test_with_distance_matches_torch(swap, distance):
    a, pos, neg = _triplet((7, 4))
    kw = dict(distance_function=distance, margin=0.5, swap=swap)
    ours = losses.triplet_margin_with_distance_loss(a, pos, neg, **kw)
    theirs = F.triplet_margin_with_distance_loss(a, pos, neg, **kw)
    assert_same(ours, theirs, (a, pos, neg))
    module = losses.TripletMarginWithDistanceLoss(**kw)
    torch.testing.assert_close(module(a, pos, neg), theirs)


def _brute_force(emb, labels, mining, margin, p):
    """Enumerate triplets explicitly, as the definitions state them."""
    n = len(labels)

    def d(i, j):
        return torch.linalg.vector_norm(emb[i] - emb[j], ord=p)

    per_anchor = [emb.sum() * 0 for _ in range(n)]
    count = 0
    for a in range(n):
        positives = [j for j in range(n) if j != a and labels[j] == labels[a]]
        negatives = [j for j in range(n) if labels[j] != labels[a]]
        if not positives or not negatives:
            continue
        if mining == "batch_all":
            for q, m in itertools.product(positives, negatives):
                per_anchor[a] = per_anchor[a] + torch.clamp_min(d(a, q) - d(a, m) + margin, 0)
                count += 1
        elif mining == "batch_hard":
            hardest_pos = max(positives, key=lambda j: d(a, j).item())
            hardest_neg = min(negatives, key=lambda j: d(a, j).item())
            hinge = d(a, hardest_pos) - d(a, hardest_neg) + margin
            per_anchor[a] = torch.clamp_min(hinge, 0)
            count += 1
        else:
            for q in positives:
                farther = [m for m in negatives if d(a, m).item() > d(a, q).item()]
                if farther:
                    m = min(farther, key=lambda j: d(a, j).item())
                else:
                    m = max(negatives, key=lambda j: d(a, j).item())
                per_anchor[a] = per_anchor[a] + torch.clamp_min(d(a, q) - d(a, m) + margin, 0)
                count += 1
    return (torch.stack(per_anchor) if n else emb.sum(dim=1)), count


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "batch_semi_hard"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("margin", [0.2, 1.0, 3.0])
def test_batch_triplet_loss_matches_brute_force(mining, p, reduction, margin):
    g = torch.Generator().manual_seed(int(p * 10 + margin * 7))
    emb = torch.randn(14, 3, generator=g, dtype=D, requires_grad=True)
    labels = torch.randint(0, 4, (14,), generator=g)
    labels[-1] = 9  # an anchor without a positive never counts
    per_anchor, count = _brute_force(emb, labels.tolist(), mining, margin, p)
    expected = {
        "none": per_anchor,
        "sum": per_anchor.sum(),
        "mean": per_anchor.sum() / max(count, 1),
    }[reduction]
    ours = losses.batch_triplet_loss(
        emb, labels, mining=mining, margin=margin, p=p, reduction=reduction
    )
    assert_same(ours, expected, (emb,), rtol=1e-9, atol=1e-10)


@settings(max_examples=30, deadline=None)
@given(
    n=st.integers(0, 10),
    classes=st.integers(1, 4),
    mining=st.sampled_from(["batch_all", "batch_hard", "batch_semi_hard"]),
    seed=st.integers(0, 1000),
)
def test_batch_triplet_loss_random_batches(n, classes, mining, seed):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, 2, generator=g, dtype=D, requires_grad=True)
    labels = torch.randint(0, classes, (n,), generator=g)
    per_anchor, count = _brute_force(emb, labels.tolist(), mining, 1.0, 2.0)
    expected = per_anchor.sum() / max(count, 1) if n else emb.sum() * 0
    assert_same(
        losses.batch_triplet_loss(emb, labels, mining=mining),
        expected,
        (emb,),
        rtol=1e-9,
        atol=1e-10,
    )


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "batch_semi_hard"])
@pytest.mark.parametrize("p", [1.0, 2.0, 3.0])
def test_gradient_is_finite_at_zero_distance(mining, p):
    emb = torch.tensor(
        [[0.0, 0.0], [0.0, 0.0], [0.1, 0.0], [0.0, 0.1]], dtype=D, requires_grad=True
    )
    labels = torch.tensor([0, 0, 1, 1])
    loss = losses.batch_triplet_loss(emb, labels, mining=mining, p=p)
    loss.backward()
    assert loss.item() > 0 and torch.isfinite(emb.grad).all()


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "batch_semi_hard"])
def test_no_valid_triplet_gives_zero_loss_and_zero_gradients(mining):
    emb = torch.randn(5, 3, dtype=D, requires_grad=True)
    for labels in (torch.zeros(5, dtype=torch.long), torch.arange(5)):
        loss = losses.batch_triplet_loss(emb, labels, mining=mining)
        (grad,) = torch.autograd.grad(loss, emb)
        assert loss.item() == 0.0 and (grad == 0).all()


def test_gradcheck_and_module():
    emb = torch.randn(10, 3, dtype=D, requires_grad=True)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 3, 3])
    for mining in ("batch_all", "batch_hard", "batch_semi_hard"):
        module = losses.BatchTripletLoss(mining=mining, margin=0.5)
        assert torch.autograd.gradcheck(lambda e, m=module: m(e, labels), (emb,))
        torch.testing.assert_close(
            module(emb, labels), losses.batch_triplet_loss(emb, labels, mining=mining, margin=0.5)
        )


def test_memory_is_quadratic_not_cubic():
    # B^3 float32 elements at B=1024 would be 4 GiB; the mined loss must not need them.
    emb = torch.randn(1024, 8, requires_grad=True)
    labels = torch.randint(0, 16, (1024,))
    for mining in ("batch_all", "batch_hard", "batch_semi_hard"):
        losses.batch_triplet_loss(emb, labels, mining=mining).backward()
    assert torch.isfinite(emb.grad).all()


class TestBadInput:
    def test_unknown_mining(self):
        with pytest.raises(ValueError, match="mining must be one of.*'hardest'"):
            losses.batch_triplet_loss(
                torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), mining="hardest"
            )

    def test_shapes_and_types(self):
        with pytest.raises(ValueError, match=r"labels must have shape \(4,\).*\(3,\)"):
            losses.batch_triplet_loss(torch.zeros(4, 2), torch.zeros(3, dtype=torch.long))
        with pytest.raises(TypeError, match="labels must hold integer.*float32"):
            losses.batch_triplet_loss(torch.zeros(4, 2), torch.zeros(4))
        with pytest.raises(ValueError, match=r"embeddings must be \(B, D\).*\(4,\)"):
            losses.batch_triplet_loss(torch.zeros(4), torch.zeros(4, dtype=torch.long))
        with pytest.raises(
            ValueError, match=r"negative shape \(3, 2\) must equal anchor shape \(4, 2\)"
        ):
            losses.triplet_margin_loss(torch.zeros(4, 2), torch.zeros(4, 2), torch.zeros(3, 2))
        with pytest.raises(ValueError, match=r"p must lie in \[1.0, inf\), got 0.5"):
            losses.batch_triplet_loss(torch.zeros(4, 2), torch.zeros(4, dtype=torch.long), p=0.5)
        with pytest.raises(ValueError, match="margin.*-1"):
            losses.triplet_margin_with_distance_loss(
                torch.zeros(2), torch.zeros(2), torch.zeros(2), margin=-1
            )
        with pytest.raises(TypeError, match="distance_function must be callable, got int"):
            losses.triplet_margin_with_distance_loss(
                torch.zeros(2), torch.zeros(2), torch.zeros(2), distance_function=3
            )


@pytest.mark.parametrize("mining", ["batch_all", "batch_hard", "batch_semi_hard"])
def test_mining_in_blocks_of_anchors_matches_brute_force(monkeypatch, mining):
    from lossopt import _policy

    monkeypatch.setattr(_policy, "MINE_BLOCK_ELEMENTS", 30)  # 2 anchors per block
    g = torch.Generator().manual_seed(5)
    emb = torch.randn(15, 3, generator=g, dtype=D, requires_grad=True)
    labels = torch.randint(0, 3, (15,), generator=g)
    per_anchor, count = _brute_force(emb, labels.tolist(), mining, 0.7, 2.0)
    ours = losses.batch_triplet_loss(emb, labels, mining=mining, margin=0.7)
    assert_same(ours, per_anchor.sum() / count, (emb,), rtol=1e-9, atol=1e-10)


MININGS = ["batch_all", "batch_hard", "batch_semi_hard"]


@pytest.fixture(params=["matrix", "blocked"])
def path(request, monkeypatch):
    """Both ways through batch_triplet_loss: its matrix path, and the blocked
    one it takes at large batches (batch_hard above HARD_MATRIX_MAX_BATCH,
    every mining in blocks of anchors), forced here at small B."""
    from lossopt import _policy

    if request.param == "blocked":
        monkeypatch.setattr(_policy, "HARD_MATRIX_MAX_BATCH", 4)
        monkeypatch.setattr(_policy, "MINE_BLOCK_ELEMENTS", 30)  # 2 anchors per block at B = 15
    return request.param


def _labelled_batch(n=15, seed=3):
    g = torch.Generator().manual_seed(seed)
    emb = torch.randn(n, 3, generator=g, dtype=D, requires_grad=True)
    labels = torch.randint(0, 3, (n,), generator=g)
    labels[-1] = 9  # an anchor without a positive
    return emb, labels


@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_hessian_vector_products_match_brute_force(mining, p, path):
    emb, labels = _labelled_batch()
    v = torch.randn(emb.shape, generator=torch.Generator().manual_seed(4), dtype=D)

    def hvp(loss):
        (g,) = torch.autograd.grad(loss, emb, create_graph=True)
        return torch.autograd.grad((g * v).sum(), emb, materialize_grads=True)[0]

    per_anchor, count = _brute_force(emb, labels.tolist(), mining, 0.7, p)
    expected = hvp(per_anchor.sum() / count)
    ours = hvp(losses.batch_triplet_loss(emb, labels, mining=mining, margin=0.7, p=p))
    assert torch.isfinite(expected).all()
    torch.testing.assert_close(ours, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("mining", MININGS)
@pytest.mark.parametrize("p", [1.5, 2.0, 3.0])
def test_gradgradcheck(mining, p, path):
    emb, labels = _labelled_batch(n=9)
    for reduction in ("mean", "none"):
        assert torch.autograd.gradgradcheck(
            lambda e, r=reduction: losses.batch_triplet_loss(
                e, labels, mining=mining, p=p, reduction=r
            ),
            (emb,),
        )


@pytest.mark.parametrize("mining", MININGS)
def test_blocked_path_matches_brute_force_above_the_block_size(monkeypatch, mining):
    """The path batch_triplet_loss takes above B = HARD_MATRIX_MAX_BATCH (for
    batch_hard: only the 2B mined distances are differentiated), forced at a
    B several times the patched block size and the matrix limit."""
    from lossopt import _policy

    monkeypatch.setattr(_policy, "HARD_MATRIX_MAX_BATCH", 8)
    monkeypatch.setattr(_policy, "MINE_BLOCK_ELEMENTS", 60)  # 3 anchors per block at B = 20
    g = torch.Generator().manual_seed(11)
    emb = torch.randn(20, 4, generator=g, dtype=D, requires_grad=True)
    labels = torch.randint(0, 4, (20,), generator=g)
    labels[0] = 7  # an anchor without a positive, in the first block
    for p in (1.0, 2.0, 3.0):
        for reduction in ("none", "sum", "mean"):
            per_anchor, count = _brute_force(emb, labels.tolist(), mining, 0.5, p)
            expected = {
                "none": per_anchor,
                "sum": per_anchor.sum(),
                "mean": per_anchor.sum() / count,
            }[reduction]
            ours = losses.batch_triplet_loss(
                emb, labels, mining=mining, margin=0.5, p=p, reduction=reduction
            )
            assert_same(ours, expected, (emb,), rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("p", [1.0, 2.0])
def test_batch_hard_above_the_matrix_limit_matches_the_torch_formula(monkeypatch, p):
    """Unpatched: B above HARD_MATRIX_MAX_BATCH takes the blocked path, whose
    value and gradient equal the whole-matrix formula in torch operations."""
    from lossopt import _policy
    from lossopt.losses import triplet
    from tests.losses.test_composability import _torch_mined

    rows = []  # the blocked path's row distances, seen
    row_distances = triplet._row_distances
    monkeypatch.setattr(triplet, "_row_distances", lambda *a: rows.append(1) or row_distances(*a))

    n = _policy.HARD_MATRIX_MAX_BATCH + 76
    g = torch.Generator().manual_seed(12)
    emb = torch.randn(n, 4, generator=g, dtype=D, requires_grad=True)
    labels = torch.randint(0, 40, (n,), generator=g)
    labels[:3] = torch.tensor([1000, 1001, 1002])  # anchors without a positive
    ours = losses.batch_triplet_loss(emb, labels, margin=0.3, p=p)
    expected = _torch_mined(emb, labels, "batch_hard", margin=0.3, p=p)
    assert_same(ours, expected, (emb,), rtol=1e-9, atol=1e-12)
    assert rows  # the blocked path ran
