"""The compare page's section, its warnings and the code it hands over (a few
lines to paste, a whole training script to export). Every sentence takes its
numbers from the Comparison; nothing here computes a result.

Every sentence, heading and table header comes from the lab's catalogs (`_`), the numbers
filled in after translation; the code to paste and the exported script stay in English,
as code does."""

from __future__ import annotations

import html
import math
from collections import Counter

from lossopt.lab.i18n import N_, _, ngettext, term
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
    "rmse": N_("mean_squared_error, square-rooted"),
    "mae": "mean_absolute_error",
    "r2": "r2_score",
}
TASKS = {"classification": N_("classification"), "regression": N_("regression")}
TIE_RULE = N_(
    "Tie rule: among the optimizers whose validation score (each at its own chosen rate) "
    "lies within one standard error of the best, the one whose score falls least when its "
    "rate is one grid step (about 3 times) higher or lower is used, so that a rate a little "
    "off still works; equal falls go to the higher score."
)


def label(name: str) -> str:
    return LABELS.get(name, name)


def metric(r) -> str:
    """The metric's name in the page's language (compare.METRICS marks each for the catalog)."""
    return _(r.metric_label)


def _num(value: float | None) -> str:
    return _("diverged") if value is None or not math.isfinite(value) else f"{value:.3f}"


def _pair(a: float, b: float) -> str:
    """'0.955 against 0.969', with a fourth digit where three do not tell them apart."""
    digits = 4 if _num(a) == _num(b) else 3
    return _("{a} against {b}").format(a=f"{a:.{digits}f}", b=f"{b:.{digits}f}")


def _interval(i) -> str:
    if i is None or not math.isfinite(i.mean):
        return _("diverged")
    return f"{i.mean:.3f} [{i.low:.3f}, {i.high:.3f}]"


def _join(items: list[str]) -> str:
    if len(items) == 1:
        return items[0]
    return _("{items} and {last}").format(items=", ".join(items[:-1]), last=items[-1])


def _setup(name: str, lr: float, weight_decay: float) -> str:
    if name == "adamw":
        return _("{optimizer} with lr={lr} and weight decay {decay}").format(
            optimizer=label(name), lr=f"{lr:g}", decay=f"{weight_decay:g}"
        )
    return _("{optimizer} with lr={lr}").format(optimizer=label(name), lr=f"{lr:g}")


def _verdict(difference, against_rule: bool) -> str:
    """A baseline against the rule, as the numbers say (difference > 0: baseline better);
    against the rule itself, or against the network it recommends."""
    if difference.low > 0:
        return (
            _("better than the rule beyond the noise")
            if against_rule
            else _("better than the recommended network beyond the noise")
        )
    if difference.high < 0:
        return (
            _("worse than the rule beyond the noise")
            if against_rule
            else _("worse than the recommended network beyond the noise")
        )
    if difference.mean > 0:
        return (
            _("better on average than the rule, within the noise")
            if against_rule
            else _("better on average than the recommended network, within the noise")
        )
    if difference.mean < 0:
        return (
            _("as good as the rule within the noise, worse on average")
            if against_rule
            else _("as good as the recommended network within the noise, worse on average")
        )
    return _("as good as the rule") if against_rule else _("as good as the recommended network")


def _metric(r) -> str:
    sklearn = _(SKLEARN_NAMES[r.metric])
    if r.metric == "f1" and len(r.classes) == 2:
        name = _("{metric} (scikit-learn's {function}, of class '{positive}')").format(
            metric=metric(r), function=sklearn, positive=r.classes[1]
        )
    elif r.metric == "f1":
        name = _("{metric} (scikit-learn's {function}, macro mean)").format(
            metric=metric(r), function=sklearn
        )
    else:
        name = _("{metric} (scikit-learn's {function})").format(metric=metric(r), function=sklearn)
    direction = _("higher is better") if r.higher_is_better else _("lower is better")
    if not r.metric_by_default:
        return _("Metric: {name}, as asked with --metric; {direction}.").format(
            name=name, direction=direction
        )
    if r.task == "regression":
        return _(
            "Metric: {name} in the units of '{target}', the default for regression; "
            "{direction}; --metric mae or r2 changes it."
        ).format(name=name, target=r.target, direction=direction)
    ratio = f"{max(r.class_counts) / min(r.class_counts):.2f}"
    if r.metric == "balanced_accuracy":
        text = _(
            "Metric: {name}, the default here because the classes are imbalanced: the largest "
            "has {ratio} times the rows of the smallest, and plain accuracy would reward the "
            "majority; {direction}; --metric changes it."
        )
    else:
        text = _(
            "Metric: {name}, the default here because the classes are about balanced (the "
            "largest has {ratio} times the rows of the smallest); {direction}; --metric "
            "changes it."
        )
    return text.format(name=name, ratio=ratio, direction=direction)


def warnings(r) -> list[str]:
    """What the user must know, from the numbers: printed by the CLI and on the page."""
    found = []
    trivial, linear = r.baselines
    if not r.beats_trivial:
        found.append(
            _(
                "the rule's networks do not beat the {baseline} baseline beyond the noise "
                "({metric} {rule} against {score}): the inputs may not predict '{target}'; "
                "no recommendation"
            ).format(
                baseline=_(trivial.label),
                metric=metric(r),
                rule=_num(r.rule.mean),
                score=_num(trivial.score.mean),
                target=r.target,
            )
        )
    elif linear.versus_rule.mean > 0:
        found.append(
            _(
                "{baseline} is {verdict} ({metric} {score} against {rule}): a linear model "
                "may be all this table needs"
            ).format(
                baseline=_(linear.label),
                verdict=_verdict(linear.versus_rule, against_rule=False),
                metric=metric(r),
                score=_num(linear.score.mean),
                rule=_num(r.rule.mean),
            )
        )
    if r.given_lr is None:
        for s in r.scored:
            if 2 * s.at_edge > r.splits:
                found.append(
                    ngettext(
                        "{optimizer}: the chosen rate sat at the edge of the widest grid "
                        "(widened by up to {widen} step each way) in {edge} of {splits} "
                        "splits; a better one may lie beyond",
                        "{optimizer}: the chosen rate sat at the edge of the widest grid "
                        "(widened by up to {widen} steps each way) in {edge} of {splits} "
                        "splits; a better one may lie beyond",
                        r.widen,
                    ).format(
                        optimizer=label(s.name), widen=r.widen, edge=s.at_edge, splits=r.splits
                    )
                )
    capped = sum(s.capped for s in r.scored)
    runs = sum(s.runs for s in r.scored)
    if capped:
        found.append(
            _(
                "{capped} of {runs} runs at the chosen rates reached the cap of {epochs} "
                "epochs while their validation loss was still falling; --steps raises the cap"
            ).format(capped=capped, runs=runs, epochs=r.max_epochs)
        )
    return found


def _recommendation(r) -> str:
    rule = r.rule
    if not r.beats_trivial:
        return _(
            "No recommendation: no network of the rule does better than the {baseline} "
            "({metric} {interval})."
        ).format(baseline=_(r.baselines[0].label), metric=metric(r), interval=_interval(rule))
    return _(
        "Use {setup}. The rule that picks it scores {metric} {mean} (95% interval {low} to "
        "{high}) on test rows it never saw, over {splits} splits."
    ).format(
        setup=_setup(r.final.optimizer, r.final.lr, r.weight_decay),
        metric=metric(r),
        mean=f"{rule.mean:.3f}",
        low=f"{rule.low:.3f}",
        high=f"{rule.high:.3f}",
        splits=r.splits,
    )


def _what_was_scored(r) -> str:
    picked = Counter((pick.optimizer, pick.lr) for pick in r.picks)
    parts = [
        _("{setup} in {count} of {splits}").format(
            setup=_setup(name, lr, r.weight_decay), count=n, splits=r.splits
        )
        for (name, lr), n in picked.items()
    ]
    return _(
        "That score is the rule's: inside each split the whole choice (each optimizer's rate, "
        "then the optimizer) was made on the training rows alone, and it picked {picks} "
        "splits. The setup above is what the same rule picks on all {rows} rows; trained on "
        "the first split's training rows it scores {test} on that split's test rows (stopped "
        "after epoch {epochs}), which the exported script reproduces."
    ).format(picks=_join(parts), rows=r.rows, test=_num(r.final.test), epochs=r.final.epochs)


def _why_pick(r) -> str:
    """Why the pick, when it is not the highest-scoring of the tied optimizers."""
    final = [s for s in r.searches if s.split == r.splits]
    by_name = {s.optimizer: s for s in final}
    pick, best = by_name[r.final.optimizer], by_name[r.final.best]
    if pick is best or pick.optimizer == best.optimizer:
        if len(r.final.tied) > 1:
            others = [label(n) for n in r.final.tied if n != pick.optimizer]
            return _(
                "On all rows {optimizer} has the best validation score ({score}); {others} lie "
                "within one standard error of it."
            ).format(optimizer=label(pick.optimizer), score=_num(pick.score), others=_join(others))
        return _(
            "On all rows {optimizer} has the best validation score ({score}), beyond one "
            "standard error of every other."
        ).format(optimizer=label(pick.optimizer), score=_num(pick.score))
    tied = [by_name[n] for n in r.final.tied]
    sign = 1 if r.higher_is_better else -1
    lowest = min(tied, key=lambda s: sign * s.score) is pick
    numbers = {
        "pick": label(pick.optimizer),
        "best": label(best.optimizer),
        "fall": f"{pick.sensitivity:.3f}",
        "best_fall": f"{best.sensitivity:.3f}",
    }
    if pick.score == best.score:
        return _(
            "{pick} is used; {best} scored as high on validation ({score}), but {pick}'s score "
            "falls by {fall} a grid step from its rate, against {best_fall} for {best}."
        ).format(score=_num(best.score), **numbers)
    if lowest and len(tied) > 2:
        text = _(
            "{pick} is used though {best} scored higher on validation ({scores}, the lowest "
            "of the {tied} tied): the two are within one standard error ({error}) and {pick}'s "
            "score falls by {fall} a grid step from its rate, against {best_fall} for {best}."
        )
    else:
        text = _(
            "{pick} is used though {best} scored higher on validation ({scores}): the two are "
            "within one standard error ({error}) and {pick}'s score falls by {fall} a grid "
            "step from its rate, against {best_fall} for {best}."
        )
    return text.format(
        scores=_pair(pick.score, best.score), tied=len(tied), error=f"{best.error:.3f}", **numbers
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
            _("{count} of {splits}").format(count=s.picked, splits=r.splits),
            f"{s.sensitivity:.3f}",
        ]
        if not r.subsampled:
            row.append(_interval(s.test_score))
        rows.append(row)
    header = [
        term("optimizer"),
        _("validation {metric} at its rate, mean [95% interval]").format(metric=metric(r)),
        _("rate chosen per split"),
        _("picked by the rule"),
        _("fall a grid step away (median)"),
    ]
    if not r.subsampled:
        header.append(
            _("test {metric} of its network, mean [95% interval]").format(metric=metric(r))
        )
    return table(header, rows)


def _baselines(r) -> str:
    rows = [[_("the rule (what the recommendation comes from)"), _interval(r.rule), "-", "-"]]
    for b in r.baselines:
        d = b.versus_rule
        sign = 1 if r.higher_is_better else -1
        rows.append(
            [
                _("baseline: {baseline}").format(baseline=_(b.label)),
                _interval(b.score),
                f"{sign * d.mean:+.3f} [{min(sign * d.low, sign * d.high):+.3f}, "
                f"{max(sign * d.low, sign * d.high):+.3f}]",
                _verdict(d, against_rule=True),
            ]
        )
    return table(
        [
            "",
            _("test {metric}, mean [95% interval]").format(metric=metric(r)),
            _("this minus the rule, mean [95% interval]"),
            "",
        ],
        rows,
    )


def _data(r) -> str:
    what = _(TASKS[r.task])
    if r.classes:
        counts = ", ".join(f"'{c}' {n}" for c, n in zip(r.classes, r.class_counts, strict=True))
        what = ngettext(
            "{task}, {count} class ({counts})", "{task}, {count} classes ({counts})", len(r.classes)
        ).format(task=what, count=len(r.classes), counts=counts)
    return p(
        _(
            "{data}: {rows} rows with a target, {numeric} numeric and {text} text columns, "
            "{inputs} network inputs after one-hot encoding, target '{target}' ({what})."
        ).format(
            data=r.data,
            rows=r.rows,
            numeric=len(r.numeric),
            text=len(r.text),
            inputs=len(r.features),
            target=r.target,
            what=what,
        )
    ) + "".join(p(_("Data: {warning}.").format(warning=w), WARN) for w in r.data_warnings)


def _method(r) -> str:
    if r.kfold:
        inner = _("{folds}-fold cross-validation on those rows").format(folds=r.folds)
    else:
        inner = _("one held-out fifth of them (1 of {folds} folds)").format(folds=r.folds)
    if r.subsampled:
        where = _(
            "a random subsample of {search} of the {train} training rows (for speed; the pick "
            "then trains on all of them)"
        ).format(search=r.search_rows, train=r.train_rows)
    else:
        where = _("the {train} training rows").format(train=r.train_rows)
    if r.model:
        model = _("the network of {model} ({parameters} parameters)").format(
            model=r.model, parameters=f"{r.parameters:,}"
        )
    else:
        model = ngettext(
            "a multilayer perceptron: {inputs} inputs → {hidden} ReLU units → {outputs} output "
            "({parameters} parameters)",
            "a multilayer perceptron: {inputs} inputs → {hidden} ReLU units → {outputs} outputs "
            "({parameters} parameters)",
            r.outputs,
        ).format(
            inputs=len(r.features),
            hidden=r.hidden,
            outputs=r.outputs,
            parameters=f"{r.parameters:,}",
        )
    loss = term("cross_entropy") if r.task == "classification" else _("mean squared error")
    if r.classes:
        splits = _("{splits} random splits (stratified by class, {test} test rows each)")
    else:
        splits = _("{splits} random splits ({test} test rows each)")
    method = ngettext(
        "Method: {splits}. In each, every optimizer's rate is chosen on {where} by {inner}: "
        "each rate of the grid trains on the fit part and is scored with the metric on the "
        "validation part, averaged over the folds. The rates within one standard error of the "
        "best form a plateau and its middle is chosen, so that a validation loss reaching 0 at "
        "a large rate does not decide alone; the grid widens (up to {widen} step each way) "
        "while the choice sits at its edge. Then the tie rule picks the optimizer, and its "
        "network is scored once on the test rows. Scores are a mean with a 95% interval over "
        "the splits, with Nadeau and Bengio's corrected variance (the splits share training "
        "rows).",
        "Method: {splits}. In each, every optimizer's rate is chosen on {where} by {inner}: "
        "each rate of the grid trains on the fit part and is scored with the metric on the "
        "validation part, averaged over the folds. The rates within one standard error of the "
        "best form a plateau and its middle is chosen, so that a validation loss reaching 0 at "
        "a large rate does not decide alone; the grid widens (up to {widen} steps each way) "
        "while the choice sits at its edge. Then the tie rule picks the optimizer, and its "
        "network is scored once on the test rows. Scores are a mean with a 95% interval over "
        "the splits, with Nadeau and Bengio's corrected variance (the splits share training "
        "rows).",
        r.widen,
    ).format(
        splits=splits.format(splits=r.splits, test=r.test_rows),
        where=where,
        inner=inner,
        widen=r.widen,
    )
    training = _(
        "Model: {model}, trained on {loss} in mini-batches of {batch}, with early stopping on "
        "the validation loss (patience {patience}, at most {epochs} epochs, the best weights "
        "kept); inputs through scikit-learn's ColumnTransformer (median imputation and "
        "standardization of numbers, one-hot encoding of text), fitted on the fit rows only."
    ).format(model=model, loss=loss, batch=r.batch_size, patience=r.patience, epochs=r.max_epochs)
    if "adamw" in r.optimizers:
        training += " " + _("AdamW's weight decay: {decay}.").format(decay=f"{r.weight_decay:g}")
    training += " " + ngettext(
        "Device: {device}; {jobs} process.", "Device: {device}; {jobs} processes.", r.jobs
    ).format(device=r.device, jobs=r.jobs)
    return p(method) + p(training)


def code(r) -> str:
    """The setup in a few lines to paste; the whole loop is in the exported script.

    Its comments stay in English in every language: it is code, as the exported script is."""
    if not r.beats_trivial:
        return ""
    optimizer = TORCH_CODE[r.final.optimizer].format(lr=r.final.lr, wd=r.weight_decay)
    loss = "nn.CrossEntropyLoss()" if r.task == "classification" else "nn.MSELoss()"
    if r.model:
        path, _sep, function = r.model.rpartition(":")
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
    body += [p(_(TIE_RULE)), p(_metric(r))]
    body += [p(_("Warning: {warning}.").format(warning=w), WARN) for w in warnings(r)]
    heading = "<h4>{}</h4>".format
    body += [heading(html.escape(_("The rule and the baselines, on the test rows"))), _baselines(r)]
    body += [heading(html.escape(_("Each optimizer inside the splits"))), _optimizers(r)]
    snippet = code(r)
    if snippet:
        body += [
            heading(html.escape(_("The setup to paste"))),
            f"<pre style='{CODE}'><code>{html.escape(snippet)}</code></pre>",
            p(
                _(
                    "The whole training script (reading this CSV, the same preprocessing, "
                    "model, optimizer and loop with early stopping, scored on the first "
                    "split's test rows): {command}"
                ).format(command="lossopt lab compare ... --export train.py")
            ),
        ]
    body += [heading(html.escape(_("Data and method"))), _data(r), _method(r)]
    return "".join(body)


def _draw(r):
    from lossopt.lab import compare_plots  # matplotlib only when a page is drawn

    return compare_plots.comparison(r)


def section() -> Section:
    """The compare page's section, in the language in use when it is made."""
    return Section(
        _("Which optimizer for this data?"),
        _(
            "the whole choice (rate, then optimizer) made inside each split; scored on test "
            "rows never seen"
        ),
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
