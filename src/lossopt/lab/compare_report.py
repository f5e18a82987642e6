"""The compare page's section, its warnings and the code it hands over (a few
lines to paste, a whole training script to export). Every sentence takes its
numbers from the Comparison; nothing here computes a result."""

from __future__ import annotations

import html
import math
from collections import Counter

from lossopt.lab.optimizers import OPTIMIZERS
from lossopt.lab.page import Section, p, table

WARN = "background:#fff4e0;border-left:4px solid #e69500;padding:.4em .8em"
CODE = "background:#f6f6f6;padding:.6em .8em;border-radius:4px;overflow-x:auto"
LABELS = {**{name: spec.label for name, spec in OPTIMIZERS.items()}, "adamw": "AdamW"}
# Each optimizer written with torch.optim (the same update rules as lossopt.optim).
TORCH_CODE = {
    "sgd": "torch.optim.SGD(model.parameters(), lr={lr:g})",
    "momentum": "torch.optim.SGD(model.parameters(), lr={lr:g}, momentum=0.9)",
    "adagrad": "torch.optim.Adagrad(model.parameters(), lr={lr:g})",
    "rmsprop": "torch.optim.RMSprop(model.parameters(), lr={lr:g})",
    "adam": "torch.optim.Adam(model.parameters(), lr={lr:g})",
    "adamw": "torch.optim.AdamW(model.parameters(), lr={lr:g}, weight_decay={wd:g})",
}
SKLEARN_NAMES = {
    "accuracy": "accuracy_score",
    "balanced_accuracy": "balanced_accuracy_score",
    "f1": "f1_score",
    "roc_auc": "roc_auc_score",
    "log_loss": "log_loss",
    "rmse": "mean_squared_error, square-rooted",
    "mae": "mean_absolute_error",
    "r2": "r2_score",
}
TIE_RULE = (
    "Tie rule: among the optimizers whose validation score (each at its own chosen rate) "
    "lies within one standard error of the best, the one whose score falls least when its "
    "rate is one grid step (about 3 times) higher or lower is used, so that a rate a little "
    "off still works; equal falls go to the higher score."
)


def label(name: str) -> str:
    return LABELS.get(name, name)


def _num(value: float | None) -> str:
    return "diverged" if value is None or not math.isfinite(value) else f"{value:.3f}"


def _pair(a: float, b: float) -> str:
    """'0.955 against 0.969', with a fourth digit where three do not tell them apart."""
    digits = 4 if _num(a) == _num(b) else 3
    return f"{a:.{digits}f} against {b:.{digits}f}"


def _interval(i) -> str:
    if i is None or not math.isfinite(i.mean):
        return "diverged"
    return f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _setup(name: str, lr: float, weight_decay: float) -> str:
    decay = f" and weight decay {weight_decay:g}" if name == "adamw" else ""
    return f"{label(name)} with lr={lr:g}{decay}"


def _verdict(difference, higher_label: str) -> str:
    """A baseline against the rule, as the numbers say (difference > 0: baseline better)."""
    if difference.low > 0:
        return f"better than the {higher_label} beyond the noise"
    if difference.high < 0:
        return f"worse than the {higher_label} beyond the noise"
    if difference.mean > 0:
        return f"better on average than the {higher_label}, within the noise"
    if difference.mean < 0:
        return f"as good as the {higher_label} within the noise, worse on average"
    return f"as good as the {higher_label}"


def _metric(r) -> str:
    name = f"{r.metric_label} (scikit-learn's {SKLEARN_NAMES[r.metric]}"
    if r.metric == "f1":
        name += ", of class '" + r.classes[1] + "'" if len(r.classes) == 2 else ", macro mean"
    name += ")"
    direction = "higher is better" if r.higher_is_better else "lower is better"
    if not r.metric_by_default:
        return f"Metric: {name}, as asked with --metric; {direction}."
    if r.task == "regression":
        return (
            f"Metric: {name} in the units of '{r.target}', the default for regression; "
            f"{direction}; --metric mae or r2 changes it."
        )
    ratio = max(r.class_counts) / min(r.class_counts)
    if r.metric == "balanced_accuracy":
        why = (
            f"the default here because the classes are imbalanced: the largest has {ratio:.2f} "
            "times the rows of the smallest, and plain accuracy would reward the majority"
        )
    else:
        why = (
            f"the default here because the classes are about balanced (the largest has "
            f"{ratio:.2f} times the rows of the smallest)"
        )
    return f"Metric: {name}, {why}; {direction}; --metric changes it."


def warnings(r) -> list[str]:
    """What the user must know, from the numbers: printed by the CLI and on the page."""
    found = []
    trivial, linear = r.baselines
    if not r.beats_trivial:
        found.append(
            f"the rule's networks do not beat the {trivial.label} baseline beyond the noise "
            f"({r.metric_label} {_num(r.rule.mean)} against {_num(trivial.score.mean)}): the "
            f"inputs may not predict '{r.target}'; no recommendation"
        )
    elif linear.versus_rule.mean > 0:
        found.append(
            f"{linear.label} is {_verdict(linear.versus_rule, 'recommended network')} "
            f"({r.metric_label} {_num(linear.score.mean)} against {_num(r.rule.mean)}): "
            "a linear model may be all this table needs"
        )
    if r.given_lr is None:
        for s in r.scored:
            if 2 * s.at_edge > r.splits:
                found.append(
                    f"{label(s.name)}: the chosen rate sat at the edge of the widest grid "
                    f"(widened by up to {r.widen} step{'s' * (r.widen != 1)} each way) in "
                    f"{s.at_edge} of {r.splits} "
                    "splits; a better one may lie beyond"
                )
    capped = sum(s.capped for s in r.scored)
    runs = sum(s.runs for s in r.scored)
    if capped:
        found.append(
            f"{capped} of {runs} runs at the chosen rates reached the cap of {r.max_epochs} "
            "epochs while their validation loss was still falling; --steps raises the cap"
        )
    return found


def _recommendation(r) -> str:
    rule = r.rule
    if not r.beats_trivial:
        return (
            f"No recommendation: no network of the rule does better than the "
            f"{r.baselines[0].label} ({r.metric_label} {_interval(rule)})."
        )
    return (
        f"Use {_setup(r.final.optimizer, r.final.lr, r.weight_decay)}. The rule that picks it "
        f"scores {r.metric_label} {rule.mean:.3f} (95% interval {rule.low:.3f} to "
        f"{rule.high:.3f}) on test rows it never saw, over {r.splits} splits."
    )


def _what_was_scored(r) -> str:
    picked = Counter((pick.optimizer, pick.lr) for pick in r.picks)
    parts = [
        f"{_setup(name, lr, r.weight_decay)} in {n} of {r.splits}"
        for (name, lr), n in picked.items()
    ]
    return (
        "That score is the rule's: inside each split the whole choice (each optimizer's rate, "
        f"then the optimizer) was made on the training rows alone, and it picked {_join(parts)} "
        f"splits. The setup above is what the same rule picks on all {r.rows} rows; trained on "
        f"the first split's training rows it scores {_num(r.final.test)} on that split's test "
        f"rows (stopped after epoch {r.final.epochs}), which the exported script reproduces."
    )


def _why_pick(r) -> str:
    """Why the pick, when it is not the highest-scoring of the tied optimizers."""
    final = [s for s in r.searches if s.split == r.splits]
    by_name = {s.optimizer: s for s in final}
    pick, best = by_name[r.final.optimizer], by_name[r.final.best]
    if pick is best or pick.optimizer == best.optimizer:
        if len(r.final.tied) > 1:
            others = [label(n) for n in r.final.tied if n != pick.optimizer]
            return (
                f"On all rows {label(pick.optimizer)} has the best validation score "
                f"({_num(pick.score)}); {_join(others)} lie within one standard error of it."
            )
        return (
            f"On all rows {label(pick.optimizer)} has the best validation score "
            f"({_num(pick.score)}), beyond one standard error of every other."
        )
    tied = [by_name[n] for n in r.final.tied]
    sign = 1 if r.higher_is_better else -1
    lowest = min(tied, key=lambda s: sign * s.score) is pick
    if pick.score == best.score:
        return (
            f"{label(pick.optimizer)} is used; {label(best.optimizer)} scored as high on "
            f"validation ({_num(best.score)}), but {label(pick.optimizer)}'s score falls by "
            f"{pick.sensitivity:.3f} a grid step from its rate, against "
            f"{best.sensitivity:.3f} for {label(best.optimizer)}."
        )
    return (
        f"{label(pick.optimizer)} is used though {label(best.optimizer)} scored higher on "
        f"validation ({_pair(pick.score, best.score)}"
        + (f", the lowest of the {len(tied)} tied" if lowest and len(tied) > 2 else "")
        + f"): the two are within one standard error ({best.error:.3f}) and "
        f"{label(pick.optimizer)}'s score falls by {pick.sensitivity:.3f} a grid step from its "
        f"rate, against {best.sensitivity:.3f} for {label(best.optimizer)}."
    )


def _optimizers(r) -> str:
    rows = []
    for s in r.scored:
        chosen = Counter(f"{lr:g}" for lr in s.rates)
        rates = ", ".join(f"{lr} ×{n}" if n > 1 else lr for lr, n in chosen.items())
        row = [
            label(s.name),
            _interval(s.score),
            rates,
            f"{s.picked} of {r.splits}",
            f"{s.sensitivity:.3f}",
        ]
        if not r.subsampled:
            row.append(_interval(s.test_score))
        rows.append(row)
    header = [
        "optimizer",
        f"validation {r.metric_label} at its rate, mean [95% interval]",
        "rate chosen per split",
        "picked by the rule",
        "fall a grid step away (median)",
    ]
    if not r.subsampled:
        header.append(f"test {r.metric_label} of its network, mean [95% interval]")
    return table(header, rows)


def _baselines(r) -> str:
    rows = [["the rule (what the recommendation comes from)", _interval(r.rule), "-", "-"]]
    for b in r.baselines:
        d = b.versus_rule
        sign = 1 if r.higher_is_better else -1
        rows.append(
            [
                f"baseline: {b.label}",
                _interval(b.score),
                f"{sign * d.mean:+.3f} [{min(sign * d.low, sign * d.high):+.3f}, "
                f"{max(sign * d.low, sign * d.high):+.3f}]",
                _verdict(d, "rule"),
            ]
        )
    return table(
        [
            "",
            f"test {r.metric_label}, mean [95% interval]",
            "this minus the rule, mean [95% interval]",
            "",
        ],
        rows,
    )


def _data(r) -> str:
    what = r.task
    if r.classes:
        counts = ", ".join(f"'{c}' {n}" for c, n in zip(r.classes, r.class_counts, strict=True))
        what += f", {len(r.classes)} classes ({counts})"
    return p(
        f"{r.data}: {r.rows} rows with a target, {len(r.numeric)} numeric and {len(r.text)} "
        f"text columns, {len(r.features)} network inputs after one-hot encoding, target "
        f"'{r.target}' ({what})."
    ) + "".join(p(f"Data: {w}.", WARN) for w in r.data_warnings)


def _method(r) -> str:
    stratified = "stratified by class, " if r.classes else ""
    inner = (
        f"{r.folds}-fold cross-validation on those rows"
        if r.kfold
        else f"one held-out fifth of them (1 of {r.folds} folds)"
    )
    where = (
        f"a random subsample of {r.search_rows} of the {r.train_rows} training rows (for "
        "speed; the pick then trains on all of them)"
        if r.subsampled
        else f"the {r.train_rows} training rows"
    )
    model = (
        f"the network of {r.model} ({r.parameters:,} parameters)"
        if r.model
        else f"a multilayer perceptron: {len(r.features)} inputs → {r.hidden} ReLU units → "
        f"{r.outputs} output{'s' * (r.outputs != 1)} ({r.parameters:,} parameters)"
    )
    loss = "cross-entropy" if r.task == "classification" else "mean squared error"
    return p(
        f"Method: {r.splits} random splits ({stratified}{r.test_rows} test rows each). In "
        f"each, every optimizer's rate is chosen on {where} by {inner}: each rate of the "
        f"grid trains on the fit part and is scored with the metric on the validation part, "
        "averaged over the folds. The rates within one standard error of the best form a "
        "plateau and its middle is chosen, so that a validation loss reaching 0 at a large "
        f"rate does not decide alone; the grid widens (up to {r.widen} "
        f"step{'s' * (r.widen != 1)} each way) while "
        "the choice sits at its edge. Then the tie rule picks the optimizer, and its network "
        f"is scored once on the test rows. Scores are a mean with a 95% interval over the "
        "splits, with Nadeau and Bengio's corrected variance (the splits share training "
        "rows)."
    ) + p(
        f"Model: {model}, trained on {loss} in mini-batches of {r.batch_size}, with early "
        f"stopping on the validation loss (patience {r.patience}, at most {r.max_epochs} "
        f"epochs, the best weights kept); inputs through scikit-learn's ColumnTransformer "
        "(median imputation and standardization of numbers, one-hot encoding of text), "
        "fitted on the fit rows only."
        + (f" AdamW's weight decay: {r.weight_decay:g}." if "adamw" in r.optimizers else "")
        + f" Device: {r.device}; {r.jobs} process{'es' * (r.jobs != 1)}."
    )


def code(r) -> str:
    """The setup in a few lines to paste; the whole loop is in the exported script."""
    if not r.beats_trivial:
        return ""
    optimizer = TORCH_CODE[r.final.optimizer].format(lr=r.final.lr, wd=r.weight_decay)
    loss = "nn.CrossEntropyLoss()" if r.task == "classification" else "nn.MSELoss()"
    if r.model:
        path, _, function = r.model.rpartition(":")
        model = f"model = {function}({len(r.features)}, {r.outputs})  # from {path}"
    else:
        model = (
            f"model = nn.Sequential(nn.Linear({len(r.features)}, {r.hidden}), nn.ReLU(), "
            f"nn.Linear({r.hidden}, {r.outputs}))"
        )
    return "\n".join(
        [
            "import torch",
            "from torch import nn",
            "",
            "# inputs: numbers median-imputed and standardized, text one-hot, fitted on training rows"
            + ("; target standardized too" if r.task == "regression" else ""),
            model,
            f"optimizer = {optimizer}",
            f"loss_fn = {loss}",
            f"# mini-batches of {r.batch_size}, reshuffled every epoch; stop when the validation "
            f"loss has not fallen for {r.patience} epochs and keep the best weights",
        ]
    )


def _describe(r) -> str:
    recommendation = f"<p class='recommend'>{html.escape(_recommendation(r))}</p>"
    body = [recommendation]
    if r.beats_trivial:
        body += [p(_what_was_scored(r)), p(_why_pick(r))]
    body += [p(TIE_RULE), p(_metric(r))]
    body += [p(f"Warning: {w}.", WARN) for w in warnings(r)]
    body += ["<h4>The rule and the baselines, on the test rows</h4>", _baselines(r)]
    body += ["<h4>Each optimizer inside the splits</h4>", _optimizers(r)]
    snippet = code(r)
    if snippet:
        body += [
            "<h4>The setup to paste</h4>",
            f"<pre style='{CODE}'><code>{html.escape(snippet)}</code></pre>",
            p(
                "The whole training script (reading this CSV, the same preprocessing, model, "
                "optimizer and loop with early stopping, scored on the first split's test rows): "
                "lossopt lab compare ... --export train.py"
            ),
        ]
    body += ["<h4>Data and method</h4>", _data(r), _method(r)]
    return "".join(body)


def _draw(r):
    from lossopt.lab import compare_plots  # matplotlib only when a page is drawn

    return compare_plots.comparison(r)


SECTION = Section(
    "Which optimizer for this data?",
    "the whole choice (rate, then optimizer) made inside each split; scored on test rows "
    "never seen",
    _describe,
    _draw,
)


def script(r, name: str = "train.py") -> str:
    """A self-contained training script for the recommended setup (needs numpy,
    pandas, scikit-learn and torch, not lossopt): it reads the CSV as compare
    did, takes the first split, trains with early stopping and prints the test
    score that the page gives for it."""
    from lossopt.lab import compare_script

    return compare_script.render(r, name)
