"""`lossopt lab compare --export train.py`: the recommended setup as a script of
its own. It reads the CSV as compare did, takes compare's first split, builds
the same ColumnTransformer, network and optimizer, trains with the same loop
(shuffled mini-batches, early stopping on the first fold of the training rows,
the best weights kept) and prints the test score the page gives for it."""

from __future__ import annotations

import os
from string import Template

from lossopt import __version__
from lossopt.lab.data import MISSING, MISSING_TEXT

TORCH_OPTIMIZERS = {
    "sgd": "torch.optim.SGD(model.parameters(), lr=LR)",
    "momentum": "torch.optim.SGD(model.parameters(), lr=LR, momentum=0.9)",
    "adagrad": "torch.optim.Adagrad(model.parameters(), lr=LR)",
    "rmsprop": "torch.optim.RMSprop(model.parameters(), lr=LR)",
    "adam": "torch.optim.Adam(model.parameters(), lr=LR)",
    "adamw": "torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=WEIGHT_DECAY)",
}

TEMPLATE = Template('''\
"""Train $setup on $name and score it on the first split's test rows, as
`lossopt lab compare` did (lossopt $version): the page gives $score for it.

Needs numpy, pandas, scikit-learn and torch (not lossopt). Usage:
    python $script [path/to/$name]
"""

import math
import sys

import numpy as np
import pandas as pd
import torch
from sklearn import metrics
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.model_selection import $kfold, $shuffle
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler
from torch import nn

DATA = sys.argv[1] if len(sys.argv) > 1 else $data
DELIMITER = $delimiter
COLUMNS = $columns  # the header, as compare named its columns
TARGET = $target
TASK = $task
NUMERIC = $numeric
TEXT = $text
CATEGORIES = $categories
CLASSES = $classes
MISSING = $missing  # spellings of a blank cell, lower-case
MISSING_TEXT = $missing_text
SEED = $seed
SPLITS = $splits
TEST_FRACTION = $test_fraction
FOLDS = $folds
BATCH_SIZE = $batch_size
MAX_EPOCHS = $max_epochs
PATIENCE = $patience
LR = $lr
WEIGHT_DECAY = $weight_decay
METRIC = $metric
DEVICE = $device


def blank(values):
    return values.str.lower().isin(MISSING)


def numbers(values):
    text = values.str.replace(",", ".", regex=False) if DELIMITER != "," else values
    parsed = pd.to_numeric(text.where(~blank(values)), errors="coerce").to_numpy(np.float64)
    parsed = parsed.astype(np.float32)
    parsed[~np.isfinite(parsed)] = np.nan
    return parsed


def read():
    frame = pd.read_csv(
        DATA,
        sep=DELIMITER,
        header=None,
        skiprows=1,
        names=COLUMNS,
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
        skip_blank_lines=True,
    )
    frame = frame.fillna("").apply(lambda column: column.str.strip())
    frame = frame[~(frame == "").all(axis=1)]
    frame = frame[~blank(frame[TARGET])].reset_index(drop=True)
    x = pd.DataFrame(
        {name: numbers(frame[name]) for name in NUMERIC}
        | {name: frame[name].where(~blank(frame[name]), MISSING_TEXT) for name in TEXT}
    )
    if TASK == "regression":
        return x, numbers(frame[TARGET])
    values = frame[TARGET]
    text = values.str.replace(",", ".", regex=False) if DELIMITER != "," else values
    parsed = pd.to_numeric(text, errors="coerce")
    if parsed.notna().all():  # number labels: '1' and '1.0' are one class
        values = [str(int(v)) if v == int(v) else repr(float(v)) for v in parsed]
    index = {c: i for i, c in enumerate(CLASSES)}
    return x, np.asarray([index[v] for v in values], dtype=np.int64)


def preprocessor():
    parts = []
    if NUMERIC:
        parts.append(
            ("numbers", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), NUMERIC)
        )
    if TEXT:
        encoder = OneHotEncoder(
            categories=CATEGORIES, handle_unknown="ignore", sparse_output=False, dtype=np.float32
        )
        parts.append(("text", encoder, TEXT))
    return ColumnTransformer(parts, sparse_threshold=0.0)


$model_code


def loss_fn(output, target):
    if TASK == "classification":
        return nn.functional.cross_entropy(output, target)
    return nn.functional.mse_loss(output.squeeze(-1), target)


def score(y, output):
    if not np.all(np.isfinite(output)):
        return math.nan
    if TASK == "regression":
        return {
            "rmse": lambda *a: math.sqrt(metrics.mean_squared_error(*a)),
            "mae": metrics.mean_absolute_error,
            "r2": metrics.r2_score,
        }[METRIC](y, output.reshape(-1))
    labels = list(range(len(CLASSES)))
    predicted = output.argmax(axis=1)
    if METRIC == "accuracy":
        return metrics.accuracy_score(y, predicted)
    if METRIC == "balanced_accuracy":
        return metrics.balanced_accuracy_score(y, predicted)
    if METRIC == "f1":
        average = "binary" if len(CLASSES) == 2 else "macro"
        return metrics.f1_score(y, predicted, labels=labels, average=average, zero_division=0)
    if METRIC == "log_loss":
        return metrics.log_loss(y, output, labels=labels)
    if len(CLASSES) == 2:
        return metrics.roc_auc_score(y, output[:, 1])
    return metrics.roc_auc_score(y, output, multi_class="ovr", labels=labels)


def main():
    torch.set_num_threads(1)  # as compare: the same sums in the same order
    x, y = read()
    splitter = $shuffle(n_splits=SPLITS, test_size=TEST_FRACTION, random_state=SEED)
    train, test = next(splitter.split(np.zeros(len(y)), y))
    folds = $kfold(n_splits=FOLDS, shuffle=True, random_state=SEED)
    fit_part, val_part = next(folds.split(np.zeros(len(train)), y[train]))
    fit_rows, val_rows = train[fit_part], train[val_part]

    pipeline = preprocessor().fit(x.iloc[fit_rows])

    def inputs(rows):
        array = np.ascontiguousarray(pipeline.transform(x.iloc[rows]), dtype=np.float32)
        return torch.from_numpy(array).to(DEVICE)

    mean, std = 0.0, 1.0
    if TASK == "regression":
        values = y[fit_rows].astype(np.float64)
        mean, std = float(values.mean()), float(values.std()) or 1.0

    def targets(rows):
        values = y[rows] if TASK == "classification" else ((y[rows] - mean) / std)
        return torch.from_numpy(np.ascontiguousarray(values)).to(DEVICE)

    x_fit, y_fit = inputs(fit_rows), targets(fit_rows)
    x_val, y_val = inputs(val_rows), targets(val_rows)
    torch.manual_seed(SEED)
    model = build(x_fit.shape[1], $outputs).to(DEVICE)
    optimizer = $optimizer
    generator = torch.Generator().manual_seed(SEED)
    best_loss, best_epoch, best_state = math.inf, None, None
    for epoch in range(MAX_EPOCHS):
        order = torch.randperm(len(fit_rows), generator=generator).to(DEVICE)
        for i in range(0, len(fit_rows), BATCH_SIZE):
            batch = order[i : i + BATCH_SIZE]
            optimizer.zero_grad(set_to_none=True)
            loss_fn(model(x_fit[batch]), y_fit[batch]).backward()
            optimizer.step()
        with torch.no_grad():
            loss = loss_fn(model(x_val), y_val).item()
        if not math.isfinite(loss):  # diverged
            break
        if loss < best_loss:
            best_loss, best_epoch = loss, epoch
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        elif epoch - best_epoch >= PATIENCE:  # early stopping: the best weights are kept
            break
    if best_state is not None:
        model.load_state_dict(best_state)

    model.eval()
    with torch.no_grad():
        output = model(inputs(test)).double().cpu()
    if TASK == "classification":
        output = torch.softmax(output, dim=1).numpy()
    else:
        output = output.reshape(-1).numpy() * std + mean
    value = score(y[test], output)
    print(f"kept epoch {best_epoch + 1 if best_epoch is not None else 0} of {MAX_EPOCHS}")
    print(f"{METRIC} on the first split's test rows: {value:.6f}")


if __name__ == "__main__":
    main()
''')

PERCEPTRON = """def build(inputs, outputs):
    return nn.Sequential(nn.Linear(inputs, $hidden), nn.ReLU(), nn.Linear($hidden, outputs))"""

USER_MODEL = '''def build(inputs, outputs):
    """The network factory compare was given with --model."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("user_model", $path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.$function(inputs, outputs)'''


def render(r, script_name: str = "train.py") -> str:
    """The script for Comparison r's recommended setup.

    It is code: its comments and what it prints stay in English whatever --lang the page
    is written in, as the code to paste on the page does."""
    from lossopt.lab import i18n
    from lossopt.lab.compare_report import _setup

    with i18n.language(i18n.DEFAULT):
        setup = _setup(r.final.optimizer, r.final.lr, r.weight_decay)

    classification = r.task == "classification"
    if r.model:
        path, _, function = r.model.rpartition(":")
        model = Template(USER_MODEL).substitute(path=repr(os.path.abspath(path)), function=function)
    else:
        model = Template(PERCEPTRON).substitute(hidden=r.hidden)
    return TEMPLATE.substitute(
        setup=setup,
        name=os.path.basename(r.data),
        version=__version__,
        score=f"{r.metric} {r.final.test:.6f}",
        script=script_name,
        kfold="StratifiedKFold" if classification else "KFold",
        shuffle="StratifiedShuffleSplit" if classification else "ShuffleSplit",
        data=repr(os.path.abspath(r.data)),
        delimiter=repr(r.delimiter),
        columns=repr(r.columns),
        target=repr(r.target),
        task=repr(r.task),
        numeric=repr(r.numeric),
        text=repr(r.text),
        categories=repr(r.categories),
        classes=repr(r.classes),
        missing=repr(sorted(MISSING)),
        missing_text=repr(MISSING_TEXT),
        seed=r.seed,
        splits=r.splits,
        test_fraction=r.test_fraction,
        folds=r.folds,
        batch_size=r.batch_size,
        max_epochs=r.max_epochs,
        patience=r.patience,
        lr=repr(r.final.lr),
        weight_decay=repr(r.weight_decay),
        metric=repr(r.metric),
        device=repr(r.device),
        model_code=model,
        outputs=r.outputs,
        optimizer=TORCH_OPTIMIZERS[r.final.optimizer],
    )
