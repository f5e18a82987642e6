"""The lab's report: results.json (every number shown), timings.json (the
machine-dependent ones), the figures as PNG, and index.html tying them together.
The page has no external assets and opens offline."""

from __future__ import annotations

import dataclasses
import html
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lossopt.lab import plots
from lossopt.lab.optimizers import OPTIMIZERS


@dataclass(frozen=True)
class Section:
    title: str
    equation: str
    describe: Callable[[Any], str]  # result -> HTML paragraphs and tables
    draw: Callable[[Any], list]


def _label(name: str) -> str:
    return OPTIMIZERS[name].label if name in OPTIMIZERS else name


def _table(header: list[str], rows: list[list[Any]]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _p(text: str) -> str:
    return f"<p>{html.escape(text)}</p>"


def _describe_l1(r) -> str:
    fits = {f.loss: f for f in r.fits}
    return (
        _p(
            f"lossopt's losses reproduce the slide: |3 − 1| = {r.lecture['|3-1|']:g}, |11 − 1| = "
            f"{r.lecture['|11-1|']:g}, while (3 − 1)² = {r.lecture['(3-1)^2']:g} and (11 − 1)² = "
            f"{r.lecture['(11-1)^2']:g}: squaring makes the large error 25 times as costly instead of 5."
        )
        + _p(
            f"Fitting a line to data with {sum(r.outlier)} outliers, L2 is dragged toward them "
            f"(intercept {fits['L2 (MSE)'].intercept:.2f} against a true {r.true_line[1]:g}); "
            f"L1 ({fits['L1'].intercept:.2f}) and Huber ({fits['Huber'].intercept:.2f}) resist them."
        )
        + _table(
            ["loss", "slope", "intercept", "distance from true line"],
            [[f.loss, f"{f.slope:.3f}", f"{f.intercept:.3f}", f"{f.error:.3f}"] for f in r.fits],
        )
    )


def _describe_entropy(r) -> str:
    return _p(
        f"A coin is hardest to predict at P = 0.5, where its entropy peaks at {max(r.coin_entropy):.3f} nats "
        f"(log 2). A fair die has entropy {r.fair_die:.3f} nats; the die with five faces showing 1 only "
        f"{r.loaded_die:.3f}: it is predictable."
    ) + _p(
        f"For logits {r.logits} the softmax is {[round(v, 3) for v in r.softmax]}, and the cross-entropy is "
        f"{', '.join(f'{v:.3f}' for v in r.cross_entropy)} when the true class is 0, 1, 2: −log of the "
        "softmax at the true class. With label smoothing ε the loss is lowest before certainty: at p = "
        + ", ".join(f"{p:.3f} (ε = {e})" for e, p in r.best_p_true.items())
        + " over 10 classes, i.e. at 1 − ε + ε/C."
    )


def _describe_kl(r) -> str:
    f, b = r.fits
    return _p(
        "Minimising the forward KL(P‖Q) makes Q cover everywhere P has mass, so one Gaussian spreads over "
        f"both peaks (mean {f.mean:.2f}, std {f.std:.2f}). Minimising the reverse KL(Q‖P) punishes Q "
        f"wherever P is small, so it locks onto one peak (mean {b.mean:.2f}, std {b.std:.2f})."
    ) + _table(
        ["fit by", "mean", "std", "KL(P‖Q)", "KL(Q‖P)"],
        [
            [
                x.direction,
                f"{x.mean:.3f}",
                f"{x.std:.3f}",
                f"{x.forward_kl:.4f}",
                f"{x.reverse_kl:.4f}",
            ]
            for x in r.fits
        ],
    )


def _describe_triplet(r) -> str:
    return _p(
        f"A small network maps each 8×8 digit to 2-D and is trained with batch_triplet_loss "
        f"(mining '{r.mining}', margin {r.margin}): same digits are pulled together, others pushed a margin "
        f"away. 1-nearest-neighbour validation accuracy in the embedding goes from {r.knn_before:.1%} "
        f"to {r.knn_after:.1%}; the loss from {r.loss[0]:.3f} to {r.loss[-1]:.3f}."
    )


def _describe_paths(results) -> str:
    out = _p(
        "Each optimizer starts from the same point and takes its best learning rate from the same grid "
        "(fewest steps to within a small distance of a minimum). SGD zig-zags across the narrow valley; "
        "Momentum accelerates along it; the adaptive methods rescale each coordinate."
    )
    for s in results:
        rows = [
            [
                _label(p.optimizer),
                f"{p.lr:g}",
                p.steps_to_minimum if p.steps_to_minimum else "not reached",
                f"{p.values[-1]:.3g}" if p.values else "-",
            ]
            for p in s.paths
        ]
        out += f"<h4>{html.escape(s.formula)} from {s.start}</h4>" + _table(
            ["optimizer", "lr", "steps to minimum", "last f"], rows
        )
    return out


def _describe_lr(r) -> str:
    steps = [p.steps_to_minimum or "not reached" for p in r.paths]
    return _p(
        f"Plain SGD on x²/20 + y² with {', '.join(r.labels)}: steps to the minimum {steps}. Too small "
        "barely moves; too large overshoots further each step and diverges."
    ) + _p(
        f"The range test raises the learning rate exponentially during one short run of the digits network "
        f"and records the loss: it falls, flattens, then explodes. One tenth of the rate at the lowest loss, "
        f"{r.range_test.suggested_lr:.3g}, is a safe start."
    )


def _describe_adaptive(r) -> str:
    return _p(
        f"Fed the same noisy gradients, AdaGrad's effective learning rate falls from {r.adagrad[0]:.3g} "
        f"to {r.adagrad[-1]:.3g} after {len(r.steps)} steps, since h only grows; RMSProp's moving average "
        f"levels off at {r.rmsprop[-1]:.3g}."
    ) + _p(
        f"Adam's moments start at zero. Without bias correction its first step would be "
        f"{r.adam_uncorrected[0] / r.adam_corrected[0]:.2f}× the corrected one (m shrinks by 1 − β1, √v by "
        "√(1 − β2)); with it, the first step is the learning rate itself. The dots, measured on "
        "lossopt's Adam, lie on the corrected curve."
    )


def _describe_training(r) -> str:
    return _p(
        f"A 64-64-10 network on scikit-learn's digits, with each optimizer at its default learning rate and "
        f"several seeds. Ranked by {r.metric}:"
    ) + _ranking_table(r.ranking, r.metric)


def _ranking_table(ranking, metric) -> str:
    rows = [
        [
            i + 1,
            _label(x.optimizer),
            f"{x.lr:g}",
            f"{x.metric_mean:.4f} ± {x.metric_std:.4f}",
            f"{x.seconds_mean:.2f} s",
        ]
        for i, x in enumerate(ranking)
    ]
    return _table(["rank", "optimizer", "lr", metric, "time per run (this machine)"], rows)


SECTIONS: dict[str, Section] = {
    "l1-vs-l2": Section(
        "1. L1 against L2",
        "l<sub>n</sub> = |x<sub>n</sub> − y<sub>n</sub>| &nbsp;·&nbsp; l<sub>n</sub> = (x<sub>n</sub> − y<sub>n</sub>)²",
        _describe_l1,
        plots.l1_vs_l2,
    ),
    "entropy": Section(
        "2. Entropy and cross-entropy",
        "H(p, q) = −Σ<sub>c</sub> p(y<sub>c</sub>) log q(y<sub>c</sub>)",
        _describe_entropy,
        plots.entropy,
    ),
    "kl": Section(
        "3. KL divergence is not symmetric",
        "D<sub>KL</sub>(P‖Q) = Σ P(x) log(P(x)/Q(x)) = H(P, Q) − H(P)",
        _describe_kl,
        plots.kl_asymmetry,
    ),
    "triplet": Section(
        "4. Triplet margin loss",
        "l = max(d(a, p) − d(a, n) + margin, 0)",
        _describe_triplet,
        plots.triplet,
    ),
    "paths": Section(
        "5. Optimizer paths",
        "W ← W − η ∂L/∂W &nbsp;·&nbsp; v ← αv − η ∂L/∂W, W ← W + v",
        _describe_paths,
        plots.optimizer_paths,
    ),
    "learning-rate": Section(
        "6. The learning rate",
        "W ← W − η ∂L/∂W: η decides how far",
        _describe_lr,
        plots.learning_rate,
    ),
    "adaptive": Section(
        "7. Adaptive step sizes",
        "h ← h + g² (AdaGrad) &nbsp;·&nbsp; G ← γG + (1 − γ)g² (RMSProp) &nbsp;·&nbsp; m̂ = m/(1 − β₁ᵗ), v̂ = v/(1 − β₂ᵗ) (Adam)",
        _describe_adaptive,
        plots.adaptive_steps,
    ),
    "training": Section(
        "8. Training a real model",
        "try several optimizers: Adam or RMSProp usually does well",
        _describe_training,
        plots.training,
    ),
}


def _compare_section() -> Section:
    # The compare page's section lives with the compare code (lab/compare_report.py).
    from lossopt.lab.compare_report import SECTION

    return SECTION


STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}
h1{margin-bottom:.2em}section{border-top:1px solid #ddd;padding:1em 0}
.eq{font-family:Georgia,serif;font-size:1.1em;background:#f6f6f6;padding:.4em .8em;display:inline-block;border-radius:4px}
img{max-width:100%;height:auto;display:block;margin:.6em 0}
table{border-collapse:collapse;margin:.6em 0;font-size:.92em}td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f0f0f0}.recommend{font-size:1.15em;font-weight:600;background:#eef6ee;padding:.5em .8em;border-radius:4px}
.meta{color:#666;font-size:.9em}
"""


def _plain(value: Any) -> Any:
    """JSON-ready: dataclasses as dicts, non-finite floats as null."""
    if dataclasses.is_dataclass(value):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def split_timings(value: Any, path: str = "") -> tuple[Any, dict[str, float]]:
    """Remove every wall-clock field (named seconds*) so that the same seed gives
    the same results.json; return them apart, by their path."""
    timings: dict[str, float] = {}
    if isinstance(value, dict):
        kept = {}
        for key, item in value.items():
            if key.startswith("seconds"):
                timings[f"{path}.{key}".lstrip(".")] = item
            else:
                kept[key], inner = split_timings(item, f"{path}.{key}")
                timings.update(inner)
        return kept, timings
    if isinstance(value, list):
        items = []
        for i, item in enumerate(value):
            kept, inner = split_timings(item, f"{path}[{i}]")
            items.append(kept)
            timings.update(inner)
        return items, timings
    return value, timings


def write(
    results: dict[str, Any],
    folder: Path,
    meta: dict[str, Any],
    *,
    title: str = "lossopt lab",
    intro: str = "Every idea of the lecture on losses and optimizers, shown on real runs of "
    "lossopt's own losses and optimizers.",
) -> Path:
    """Write the report of results (section name -> experiment result) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    plain, timings = split_timings(_plain(results))
    (folder / "results.json").write_text(
        json.dumps({"meta": meta, "results": plain}, indent=1, sort_keys=True)
    )
    (folder / "timings.json").write_text(json.dumps(timings, indent=1, sort_keys=True))
    parts = []
    for name, result in results.items():
        section = _compare_section() if name == "compare" else SECTIONS[name]
        images = plots.save(section.draw(result), folder)
        figures = "".join(
            f'<img src="{html.escape(img)}" alt="{html.escape(section.title)}">' for img in images
        )
        parts.append(
            f'<section id="{name}"><h2>{section.title}</h2><div class="eq">{section.equation}</div>'
            f"{figures}{section.describe(result)}</section>"
        )
    options = ", ".join(f"{k}={v}" for k, v in meta.items())
    page = (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p>{html.escape(intro)}</p>"
        f"<p class='meta'>{html.escape(options)}. Every number on this page is in results.json; times, "
        "which depend on the machine, are in timings.json.</p>" + "".join(parts) + "</body></html>"
    )
    index = folder / "index.html"
    index.write_text(page, encoding="utf-8")
    return index
