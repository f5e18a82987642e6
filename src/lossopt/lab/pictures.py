"""The lecture's pictures, each defined once: the numbers a picture shows in, its
`Figure` spec out.

The live explorables (lossopt.lab.live) build their figures here from what they
compute for the learner's settings; the static report (lossopt.lab.plots) builds
the same pictures here from the experiments' results and draws them with
`figures.draw_matplotlib`. Nothing here computes a loss or a step, and nothing
of the lab but `figures` and the generic `page` (the optimizers' colours) is
imported: the numbers come in as plain lists. Every word a picture shows is wrapped in
`_()` (lossopt.lab.i18n, which imports nothing of the lab either), with its numbers filled in
after translation; names (SGD, Huber) and equations (f − f*, H(P, Q)) stay as they are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from lossopt.lab.figures import Axis, Figure, Series
from lossopt.lab.i18n import N_, _
from lossopt.lab.page import COLORS

Point = tuple[float, float]
BOUNDS = (-10.0, 10.0, -5.0, 5.0)  # x0, x1, y0, y1: the window the surfaces are drawn in
RATE_COLORS = ("#2ca02c", "#1f77b4", "#d62728")  # too small, right, too large
FIT_COLORS = {"L1": "#2ca02c", "L2 (MSE)": "#d62728", "Huber": "#1f77b4"}
DIGIT_COLORS = (
    "#1f77b4",
    "#ff7f0e",
    "#2ca02c",
    "#d62728",
    "#9467bd",
    "#8c564b",
    "#e377c2",
    "#7f7f7f",
    "#bcbd22",
    "#17becf",
)


def _positive(values: Sequence[float]) -> list[float]:
    # A log axis cannot show 0 or less: such a point is left out (nan), not clipped.
    return [v if v > 0 else math.nan for v in values]


# -- surfaces and paths on them -----------------------------------------------------------
def contour(xs: list[float], ys: list[float], height: list[list[float]]) -> Series:
    """The surface's rings: √(f − f*) on the grid (z[row = y][column = x]) at 15
    evenly spaced levels, so that on a bowl the rings are evenly spaced in distance."""
    top = max(max(row) for row in height)
    step = top / 16 if top > 0 else 1.0
    return Series(
        "contour", "√(f − f*)", x=xs, y=ys, z=height, levels=[step * i for i in range(1, 16)]
    )


def bowl_contour(a: float, b: float, bounds=BOUNDS, columns: int = 61, rows: int = 31) -> Series:
    """The rings of the quadratic bowl a x² + b y² a result names by its coefficients."""
    x0, x1, y0, y1 = bounds
    xs = [x0 + (x1 - x0) * i / (columns - 1) for i in range(columns)]
    ys = [y0 + (y1 - y0) * j / (rows - 1) for j in range(rows)]
    return contour(xs, ys, [[math.sqrt(a * x * x + b * y * y) for x in xs] for y in ys])


def surface_board(
    title: str,
    rings: Series,
    paths: Sequence[tuple[str, Sequence[Point], str | None]],
    *,
    start: Point,
    minimum: Point,
    bounds=BOUNDS,
    name: str = "paths",
) -> Figure:
    """Paths (name, points, colour) over a surface's rings, with the start and the minimum."""
    x0, x1, y0, y1 = bounds
    series = [rings]
    for label, points, color in paths:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        series.append(Series("line", label, x=xs, y=ys, color=color, width=1.5))
    series += [
        Series(
            "scatter",
            _("start"),
            x=[start[0]],
            y=[start[1]],
            color="#000000",
            symbol="x",
            size=10,
            legend=False,
            text=[_("start")],
        ),
        Series(
            "scatter",
            _("minimum"),
            x=[minimum[0]],
            y=[minimum[1]],
            color="#000000",
            symbol="star",
            size=12,
            legend=False,
            text=[_("minimum")],
        ),
    ]
    return Figure(
        title,
        Axis("x", range=(x0, x1)),
        Axis("y", range=(y0, y1)),
        series,
        equal_aspect=True,
        name=name,
    )


def value_curves(
    curves: Sequence[tuple[str, Sequence[float], str | None]],
    *,
    title: str | None = None,
    least: float = 0.0,
    label: str = "f − f*",
    dashed: Sequence[str] = (),
    name: str = "loss",
) -> Figure:
    """f − f* along each path (name, values, colour), step 0 the start, on a log axis;
    floored at 1e-16 so that a path that reaches the minimum stays on the axis."""
    series = []
    for curve_name, values, color in curves:
        gap = [max(v - least, 1e-16) for v in values]
        series.append(
            Series(
                "line",
                curve_name,
                x=list(range(len(gap))),
                y=gap,
                color=color,
                dash=curve_name in dashed,
            )
        )
    title = _("f − f* at each step") if title is None else title
    return Figure(title, Axis(_("step")), Axis(label, scale="log"), series, name=name)


def rate_sweep(lrs: list[float], final: list[float], limit: float, marks, *, steps: int) -> Figure:
    """The final f − f* over a sweep of learning rates, with 2/λ and the runs marked
    (marks: (name, lr, final f − f*, colour))."""
    return Figure(
        _("f − f* after {steps} steps, by learning rate").format(steps=steps),
        Axis(_("learning rate η"), scale="log"),
        Axis("f − f*", scale="log"),
        [
            Series("line", "SGD", x=lrs, y=final, color="#444444"),
            Series("vline", f"2/λ = {limit:.4g}", x=[limit], color="#d62728", dash=True),
            *[
                Series("scatter", label, x=[lr], y=[max(value, 1e-16)], color=color, size=10)
                for label, lr, value, color in marks
            ],
        ],
        name="sweep",
    )


def range_test(lrs: list[float], loss: list[float], suggested: float) -> Figure:
    return Figure(
        _("Range test on the digits network"),
        Axis(_("learning rate"), scale="log"),
        Axis(_("smoothed loss")),
        [
            Series("line", _("smoothed loss"), x=lrs, y=loss, color="#1f77b4", legend=False),
            Series(
                "vline",
                _("suggested {lr}").format(lr=f"{suggested:.2g}"),
                x=[suggested],
                color="#d62728",
                dash=True,
            ),
        ],
        name="range-test",
    )


def step_lengths(
    curves: Sequence[tuple[str, Sequence[Point], str]], *, mark: int | None = None
) -> Figure:
    """|ΔW| at each step of each path (name, points, colour); mark: a step to mark."""
    series = []
    for label, points, color in curves:
        lengths = [math.dist(p, q) for p, q in zip(points, points[1:], strict=False)]
        series.append(
            Series(
                "line", label, x=list(range(1, len(lengths) + 1)), y=_positive(lengths), color=color
            )
        )
    if mark is not None:
        label = _("step {step}").format(step=mark)
        series.append(Series("vline", label, x=[mark], color="#aaaaaa", dash=True))
    return Figure(
        _("After the rate drops"),
        Axis(_("step")),
        Axis(_("step length |ΔW|"), scale="log"),
        series,
        name="step-lengths",
    )


# -- the learning rate on adaptive optimizers -----------------------------------------------
def adaptive_stream(
    t: list[int],
    curves: Sequence[tuple[str, Sequence[float], str]],
    *,
    title: str | None = None,
    label: str = "|Δθ|",
    lr: float | None = None,
    log_steps: bool = True,
) -> Figure:
    """Each optimizer's step (name, values, colour) on the same gradient stream; lr: η marked."""
    series = [Series("line", n, x=t, y=list(v), color=c) for n, v, c in curves]
    if lr is not None:
        series.append(Series("hline", f"η = {lr:g}", y=[lr], color="#888888", dash=True))
    scale = "log" if log_steps else "linear"
    if title is None:
        title = _("step length |Δθ| on a noisy gradient stream around 1")
    return Figure(
        title, Axis(_("step t"), scale=scale), Axis(label, scale="log"), series, name="stream"
    )


def adagrad_elements(per_x: list[float], per_y: list[float], lr: float) -> Figure:
    """AdaGrad's step η/(√h + ε) per coordinate on the lecture's bowl x²/20 + y²."""
    t = list(range(1, len(per_x) + 1))
    return Figure(
        _("AdaGrad's per-element step η/(√h + ε) on x²/20 + y² (η = {lr})").format(lr=f"{lr:g}"),
        Axis(_("step t")),
        Axis("η/(√h + ε)", scale="log"),
        [
            Series("line", _("x (flat direction)"), x=t, y=per_x, color="#1f77b4"),
            Series("line", _("y (steep direction)"), x=t, y=per_y, color="#d62728"),
        ],
        name="elements",
    )


# -- the derivative, GD against SGD ---------------------------------------------------------
def slope(
    ws: list[float],
    loss: list[float],
    lines: Sequence[tuple[str, float, float, float, str, bool]],
    *,
    half_width: float = 1.0,
    title: str | None = None,
) -> Figure:
    """L(w) and straight lines through it (name, w, L(w), slope, colour, dashed)."""
    series = [Series("line", "L(w)", x=ws, y=loss, color="#444444")]
    for label, w, at, rise, color, dash in lines:
        ends = [w - half_width, w + half_width]
        series.append(
            Series(
                "line", label, x=ends, y=[at + rise * (e - w) for e in ends], color=color, dash=dash
            )
        )
    points = sorted({(w, at) for _, w, at, _, _, _ in lines})
    series.append(
        Series(
            "scatter",
            "w",
            x=[p[0] for p in points],
            y=[p[1] for p in points],
            color="#000000",
            size=9,
            legend=False,
        )
    )
    title = _("L(w) = mean (w x − y)²") if title is None else title
    return Figure(title, Axis("w"), Axis("L(w)"), series, name="slope")


def difference_errors(
    hs: list[float],
    forward: list[float],
    central: list[float],
    *,
    h: float | None = None,
    title: str | None = None,
) -> Figure:
    series = [
        Series("line", _("forward (L(w+h) − L(w))/h"), x=hs, y=_positive(forward), color="#1f77b4"),
        Series(
            "line", _("central (L(w+h) − L(w−h))/2h"), x=hs, y=_positive(central), color="#2ca02c"
        ),
    ]
    if h is not None:
        series.append(Series("vline", f"h = {h:g}", x=[h], color="#888888", dash=True))
    title = _("|finite difference − autograd| by step h") if title is None else title
    return Figure(
        title, Axis("h", scale="log"), Axis(_("error"), scale="log"), series, name="errors"
    )


def gd_vs_sgd(
    gd: list[float], sgd: list[float], *, train_size: int, batch_size: int, noise: list[float]
) -> list[Figure]:
    """The whole-set loss of GD and mini-batch SGD by examples read and by step (before
    step 1, then after each), and the batch gradient's noise at each SGD step."""
    read = {"GD": train_size, "SGD": min(batch_size, train_size)}
    curves = {"GD": (gd, COLORS["sgd"]), "SGD": (sgd, COLORS["adam"])}
    # From step 1: a log axis has no place for the 0 examples read before it.
    by_read = Figure(
        _("whole-set loss by examples read"),
        Axis(_("examples read"), scale="log"),
        Axis(_("loss")),
        [
            Series(
                "line",
                _("{name} ({count} a step)").format(name=k, count=read[k]),
                x=[read[k] * t for t in range(1, len(c))],
                y=c[1:],
                color=color,
            )
            for k, (c, color) in curves.items()
        ],
        name="read",
    )
    by_step = Figure(
        _("whole-set loss by step"),
        Axis(_("step")),
        Axis(_("loss")),
        [
            Series("line", k, x=list(range(len(c))), y=c, color=color)
            for k, (c, color) in curves.items()
        ],
        name="steps",
    )
    mean = sum(noise) / len(noise) if noise else math.nan
    noise_fig = Figure(
        _("gradient noise |g_B − g| / |g| at B = {batch}").format(batch=batch_size),
        Axis(_("step")),
        Axis(_("relative noise")),
        [
            Series("line", _("noise"), x=list(range(1, len(noise) + 1)), y=noise, color="#d62728"),
            Series(
                "hline",
                _("mean {value}").format(value=f"{mean:.3f}"),
                y=[mean],
                color="#000000",
                dash=True,
            ),
        ],
        name="noise",
    )
    return [by_read, by_step, noise_fig]


# -- losses -------------------------------------------------------------------------------
def loss_shapes(
    errors: list[float],
    l1: list[float],
    l2: list[float],
    huber: list[float],
    delta: float,
    top: float = 8.0,
) -> Figure:
    colors = list(FIT_COLORS.values())
    shapes = {"L1 |e|": l1, "L2 e²": l2, f"Huber δ = {delta:g}": huber}
    return Figure(
        _("each loss of one error e"),
        Axis(_("error e = prediction − target")),
        Axis(_("loss"), range=(0, top)),
        [
            Series("line", n, x=errors, y=v, color=c)
            for (n, v), c in zip(shapes.items(), colors, strict=True)
        ],
        name="shapes",
    )


def line_fits(
    x: list[float],
    y: list[float],
    outlier: list[bool],
    true_line: Point,
    fits: Sequence[tuple[str, float, float]],
    ends: Point = (-5.0, 5.0),
    placed: Point | None = None,
) -> Figure:
    """The points (outliers apart), the true line and each loss's fit (name, slope,
    intercept); placed: a point the learner put there, fitted with the others."""
    kept = [(a, b) for a, b, off in zip(x, y, outlier, strict=True) if not off]
    off = [(a, b) for a, b, o in zip(x, y, outlier, strict=True) if o]
    ends = list(ends)
    series = [
        Series(
            "scatter",
            _("points"),
            x=[a for a, _ in kept],
            y=[b for _, b in kept],
            color="#555555",
            size=5,
        ),
        Series(
            "scatter",
            _("outliers"),
            x=[a for a, _ in off],
            y=[b for _, b in off],
            color="#ff7f0e",
            size=7,
        ),
        Series(
            "line",
            _("true line"),
            x=ends,
            y=[true_line[0] * e + true_line[1] for e in ends],
            color="#000000",
            dash=True,
            width=1,
        ),
    ]
    if placed is not None:
        series.append(
            Series("scatter", _("your point"), x=[placed[0]], y=[placed[1]], color="#9467bd",
                   size=11, symbol="diamond")
        )  # fmt: skip
    for name, s, b in fits:
        series.append(
            Series("line", name, x=ends, y=[s * e + b for e in ends], color=FIT_COLORS.get(name))
        )
    return Figure(_("three fits to the same points"), Axis("x"), Axis("y"), series, name="fits")


def softmax_bars(probs: list[float], losses: list[float] | None = None) -> Figure:
    """The softmax of the logits, a bar per class; with losses, each bar names −log p,
    the cross-entropy if that class were the true one."""
    text = None
    if losses is not None:
        text = [f"p = {p:.3f}\n−log p = {v:.3f}" for p, v in zip(probs, losses, strict=True)]
    return Figure(
        _("softmax of the logits"),
        Axis(_("class")),
        Axis(_("probability"), range=(0, 1.2 if text else 1)),
        [
            Series(
                "bar",
                "softmax",
                x=class_names(len(probs)),
                y=probs,
                color="#1f77b4",
                text=text,
            )
        ],
        name="softmax",
    )


def distributions(
    x: list[float],
    shown: Sequence[tuple[str, list[float], str, bool]],
    *,
    title: str | None = None,
) -> Figure:
    """Distributions on a grid (name, probabilities, colour, dashed)."""
    return Figure(
        _("P (two modes) and Q") if title is None else title,
        Axis("x"),
        Axis(_("probability on the grid")),
        [Series("line", n, x=x, y=v, color=c, dash=d) for n, v, c, d in shown],
        name="distributions",
    )


def cross_entropy_bound(
    along: list[float],
    cross_entropy: list[float],
    entropy: float,
    kl: Sequence[tuple[str, list[float], str]],
    *,
    axis: Axis,
    title: str,
    mark: float | None = None,
    mark_name: str = "",
    top: float | None = None,
) -> Figure:
    """H(P, Q) along a family of Q, never below the line H(P), and KL curves beside it."""
    series = [
        Series("line", "H(P, Q)", x=along, y=cross_entropy, color="#d62728"),
        Series("hline", f"H(P) = {entropy:.3f}", y=[entropy], color="#000000", dash=True),
        *[Series("line", n, x=along, y=v, color=c) for n, v, c in kl],
    ]
    if mark is not None:
        series.append(Series("vline", mark_name, x=[mark], color="#888888"))
    y = Axis(_("nats"), range=(0, top) if top is not None else None)
    return Figure(title, axis, y, series, name="scan")


KIND_COLORS = {"easy": "#2ca02c", "semi-hard": "#ff7f0e", "hard": "#d62728"}
# a kind is a key (the API's numbers name it so); the legend says it in the page's language
KIND_NEGATIVES = {
    "easy": N_("easy negatives"),
    "semi-hard": N_("semi-hard negatives"),
    "hard": N_("hard negatives"),
}


def class_names(count: int) -> list[str]:
    """The classes' names on a bar chart's axis: class 0, class 1, ..."""
    return [_("class {index}").format(index=c) for c in range(count)]


def negative_kind(d_ap: float, d_an: float, margin: float) -> str:
    """Hard: nearer the anchor than the positive; semi-hard: farther, but within the
    margin (loss > 0); easy: beyond d(a, p) + margin (loss 0)."""
    if d_an < d_ap:
        return "hard"
    return "semi-hard" if d_an < d_ap + margin else "easy"


def triplet_board(
    anchor: Point,
    positive: Point,
    negative: Point,
    *,
    margin: float,
    d_ap: float,
    kind: str,
    others: Sequence[tuple[float, float, str]] = (),
    title: str = "",
    box: tuple[float, float] | None = None,
    angles: int = 121,
) -> Figure:
    """Anchor, positive and negative with the circles d(a, p) and d(a, p) + margin
    around the anchor, and other negatives (x, y, kind) coloured by kind. The anchor
    is drawn last, as a large open ring: a negative right on it stays visible."""
    ax, ay = anchor
    series = []
    circles = ((d_ap, "d(a, p)", False), (d_ap + margin, _("d(a, p) + margin"), True))
    for radius, name, dashed in circles:
        turn = [2 * math.pi * i / (angles - 1) for i in range(angles)]
        series.append(
            Series(
                "line",
                name,
                x=[ax + radius * math.cos(t) for t in turn],
                y=[ay + radius * math.sin(t) for t in turn],
                color="#888888",
                dash=dashed,
                width=1,
            )
        )
    series += [
        Series(
            "line",
            "a–p",
            x=[ax, positive[0]],
            y=[ay, positive[1]],
            color="#1f77b4",
            width=1,
            legend=False,
        ),
        Series(
            "line",
            "a–n",
            x=[ax, negative[0]],
            y=[ay, negative[1]],
            color=KIND_COLORS[kind],
            width=1,
            legend=False,
        ),
    ]
    if others:
        for k, color in KIND_COLORS.items():
            rows = [(x, y) for x, y, kk in others if kk == k]
            series.append(
                Series(
                    "scatter",
                    _(KIND_NEGATIVES[k]),
                    x=[x for x, _ in rows],
                    y=[y for _, y in rows],
                    color=color,
                    size=6,
                )
            )
    series += [
        Series(
            "scatter",
            _("negative"),
            x=[negative[0]],
            y=[negative[1]],
            color=KIND_COLORS[kind],
            size=8,
            symbol="square",
            text=["n"],
        ),
        Series(
            "scatter",
            _("positive"),
            x=[positive[0]],
            y=[positive[1]],
            color="#1f77b4",
            size=8,
            text=["p"],
        ),
        Series(
            "scatter",
            _("anchor"),
            x=[ax],
            y=[ay],
            color="#000000",
            size=18,
            symbol="ring",
            text=["a"],
        ),
    ]
    if box is None:  # around the anchor, far enough for the outer circle and the negative
        reach = 1.15 * max(d_ap + margin, math.dist(anchor, negative))
        xr, yr = (ax - reach, ax + reach), (ay - reach, ay + reach)
    else:
        xr = yr = box
    return Figure(
        title or _("anchor, positive and negatives"),
        Axis("x", range=xr),
        Axis("y", range=yr),
        series,
        equal_aspect=True,
        name="embedding",
    )


def embedding(
    points: list[list[float]],
    labels: list[int],
    *,
    title: str,
    bounds: tuple[float, float, float, float] | None = None,
) -> Figure:
    """2-D embeddings, one colour per digit."""
    series = []
    for digit in sorted(set(labels)):
        rows = [p for p, y in zip(points, labels, strict=True) if y == digit]
        series.append(
            Series(
                "scatter",
                str(digit),
                x=[p[0] for p in rows],
                y=[p[1] for p in rows],
                color=DIGIT_COLORS[digit % 10],
                size=2.5,
            )
        )
    xr, yr = ((bounds[0], bounds[1]), (bounds[2], bounds[3])) if bounds else (None, None)
    return Figure(title, Axis("", range=xr), Axis("", range=yr), series, name="embedding-map")


def bars(
    title: str,
    x_label: str,
    y_label: str,
    groups: Sequence[tuple[str, Sequence, Sequence[float], str | None]],
    *,
    errors: Sequence[Sequence[float] | None] | None = None,
    text: Sequence[Sequence[str] | None] | None = None,
    y_range: tuple[float, float] | None = None,
    name: str = "",
) -> Figure:
    """Bar series (name, categories, heights, colour) side by side, with optional error
    bars and a text above each bar."""
    series = [
        Series(
            "bar",
            label,
            x=list(x),
            y=list(y),
            color=color,
            legend=bool(label),
            error=list(errors[i]) if errors and errors[i] is not None else None,
            text=list(text[i]) if text and text[i] is not None else None,
        )
        for i, (label, x, y, color) in enumerate(groups)
    ]
    return Figure(title, Axis(x_label), Axis(y_label, range=y_range), series, name=name)


def curve(
    title: str,
    x_label: str,
    y_label: str,
    curves: Sequence[tuple[str, Sequence[float], str | None]],
    *,
    x: Sequence[float] | None = None,
    y_scale: str = "linear",
    x_scale: str = "linear",
    name: str = "",
    lines: Sequence[Series] = (),
) -> Figure:
    """Curves (name, values, colour) over x (1, 2, ... when not given), and reference lines."""
    series = []
    for label, values, color in curves:
        xs = list(x) if x is not None else list(range(1, len(values) + 1))
        ys = _positive(values) if y_scale == "log" else list(values)
        series.append(Series("line", label, x=xs, y=ys, color=color, legend=bool(label)))
    return Figure(
        title,
        Axis(x_label, scale=x_scale),
        Axis(y_label, scale=y_scale),
        [*series, *lines],
        name=name,
    )


def epoch_curves(
    title: str,
    y_label: str,
    curves: Sequence[tuple[str, Sequence[float], str | None]],
    *,
    epochs: int | None = None,
    y_scale: str = "linear",
    y_range: tuple[float, float] | None = None,
    name: str = "",
) -> Figure:
    """Training runs by epoch (name, one value per epoch from epoch 1, colour); with
    epochs, the axis spans every epoch of a run still going."""
    series = [
        Series("line", label, x=list(range(1, len(values) + 1)),
               y=_positive(values) if y_scale == "log" else list(values), color=color,
               legend=bool(label))
        for label, values, color in curves
    ]  # fmt: skip
    x = Axis(_("epoch"), range=(0.5, epochs + 0.5) if epochs else None)
    return Figure(title, x, Axis(y_label, scale=y_scale, range=y_range), series, name=name)
