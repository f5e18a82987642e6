"""Data for the lab: the handwritten digits that ship inside scikit-learn, and
the user's own CSV table. Nothing is downloaded."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch


class DataError(ValueError):
    """A problem with the user's data, reported as one line."""


@dataclass
class Split:
    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    task: str  # 'classification' or 'regression'
    classes: list[str] = field(default_factory=list)
    features: list[str] = field(default_factory=list)

    @property
    def num_outputs(self) -> int:
        return len(self.classes) if self.task == "classification" else 1


def _split_indices(n: int, seed: int, val_fraction: float = 0.3) -> tuple[np.ndarray, np.ndarray]:
    order = np.random.default_rng(seed).permutation(n)
    n_val = max(1, int(round(n * val_fraction)))
    return order[n_val:], order[:n_val]


def _standardize(train: np.ndarray, val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = train.mean(axis=0)
    std = train.std(axis=0)
    std[std == 0] = 1.0
    return (train - mean) / std, (val - mean) / std


def digits(seed: int = 0) -> Split:
    """scikit-learn's 8x8 handwritten digits (1797 images, 10 classes)."""
    from sklearn.datasets import load_digits

    bunch = load_digits()
    x = bunch.data.astype(np.float32)
    y = bunch.target.astype(np.int64)
    train, val = _split_indices(len(y), seed)
    x_train, x_val = _standardize(x[train], x[val])
    return Split(
        torch.from_numpy(x_train),
        torch.from_numpy(y[train]),
        torch.from_numpy(x_val),
        torch.from_numpy(y[val]),
        "classification",
        [str(c) for c in range(10)],
        [f"pixel_{i}" for i in range(64)],
    )


def _as_number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None


MAX_CATEGORIES = 50
MAX_CLASSES = 20


def load_csv(path: str | Path, target: str, task: str | None = None, seed: int = 0) -> Split:
    """Read a CSV table into a standardized train/validation split.

    Numeric columns are used as they are; columns of text with at most 50
    distinct values are one-hot encoded; any other column is an error. The
    task is classification when the target is text or holds at most 20
    distinct whole numbers, else regression, unless ``task`` says otherwise.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
    except (OSError, UnicodeDecodeError, csv.Error) as error:
        raise DataError(f"cannot read {path}: {error}") from None
    rows = [row for row in rows if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"{path} is empty")
    header, body = [name.strip() for name in rows[0]], rows[1:]
    if not body:
        raise DataError(f"{path} has a header but no rows")
    if target not in header:
        raise DataError(f"target column {target!r} not in {path} (columns: {', '.join(header)})")
    for number, row in enumerate(body, start=2):
        if len(row) != len(header):
            raise DataError(f"{path} line {number} has {len(row)} fields, the header {len(header)}")
    columns = {name: [row[i].strip() for row in body] for i, name in enumerate(header)}

    target_values = columns.pop(target)
    numbers = [_as_number(v) for v in target_values]
    if task is None:
        whole = all(v is not None and v == int(v) for v in numbers)
        numeric = all(v is not None for v in numbers)
        task = (
            "classification"
            if not numeric or (whole and len(set(numbers)) <= MAX_CLASSES)
            else "regression"
        )
    if task == "regression":
        if any(v is None for v in numbers):
            bad = target_values[numbers.index(None)]
            raise DataError(
                f"target column {target!r} must be numeric for regression, found {bad!r}"
            )
        y = np.asarray(numbers, dtype=np.float32)
        classes: list[str] = []
    else:
        classes = sorted(
            set(target_values), key=lambda v: (_as_number(v) is None, _as_number(v) or 0, v)
        )
        if len(classes) < 2:
            raise DataError(f"target column {target!r} has a single class {classes[0]!r}")
        index = {c: i for i, c in enumerate(classes)}
        y = np.asarray([index[v] for v in target_values], dtype=np.int64)

    features, blocks = [], []
    for name, values in columns.items():
        parsed = [_as_number(v) for v in values]
        if all(v is not None for v in parsed):
            blocks.append(np.asarray(parsed, dtype=np.float32)[:, None])
            features.append(name)
            continue
        categories = sorted(set(values))
        if len(categories) > MAX_CATEGORIES:
            raise DataError(
                f"column {name!r} is neither numeric nor categorical "
                f"({len(categories)} distinct text values, at most {MAX_CATEGORIES})"
            )
        blocks.append(np.asarray([[v == c for c in categories] for v in values], dtype=np.float32))
        features.extend(f"{name}={c}" for c in categories)
    if not blocks:
        raise DataError(f"{path} has no feature column besides the target {target!r}")
    if len(y) < 4:
        raise DataError(f"{path} has {len(y)} rows; at least 4 are needed to train and validate")
    x = np.concatenate(blocks, axis=1)
    train, val = _split_indices(len(y), seed)
    x_train, x_val = _standardize(x[train], x[val])
    y_train, y_val = y[train], y[val]
    if task == "regression":
        mean, std = y_train.mean(), y_train.std() or 1.0
        y_train, y_val = (y_train - mean) / std, (y_val - mean) / std
    return Split(
        torch.from_numpy(x_train),
        torch.from_numpy(y_train),
        torch.from_numpy(x_val),
        torch.from_numpy(y_val),
        task,
        classes,
        features,
    )
