"""Data for the lab: the handwritten digits that ship inside scikit-learn, and
the user's own CSV table. Nothing is downloaded."""

from __future__ import annotations

import csv
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


# -- the user's CSV table ----------------------------------------------------------------

MAX_CATEGORIES = 50  # a text column with more distinct values is free text, not a category
MAX_CLASSES = 20  # a whole-number target with at most this many values is a class label
MIN_ROWS = 10
MIN_PER_CLASS = 5  # each class in the training, validation and test parts of every split
# Spellings of "no value" in exported tables (compared lower-case, after stripping).
MISSING = {"", "na", "n/a", "nan", "-nan", "null", "none", "<na>", "#n/a", "?", "missing"}
DELIMITERS = ",;\t|"


@dataclass
class Table:
    """A CSV table as numbers: x may hold NaN (imputed per split, from training rows only)."""

    path: str
    target: str
    task: str
    x: np.ndarray  # float32, rows x features
    y: np.ndarray  # class index (int64) or value (float32)
    features: list[str]
    classes: list[str]
    delimiter: str
    warnings: list[str] = field(default_factory=list)

    @property
    def rows(self) -> int:
        return len(self.y)

    def prepare(
        self, train: np.ndarray, *others: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(x, y) of rows train, then of each of others: missing values filled with
        the training median, inputs (and a regression target) standardized by
        training statistics, so that nothing of the other rows leaks in."""
        x_train = self.x[train]
        observed = ~np.isnan(x_train)
        counts = observed.sum(axis=0)
        median = np.array(
            [
                np.median(x_train[observed[:, j], j]) if counts[j] else 0.0
                for j in range(x_train.shape[1])
            ]
        )
        mean_y, std_y = 0.0, 1.0
        if self.task == "regression":
            mean_y, std_y = float(self.y[train].mean()), float(self.y[train].std()) or 1.0
        filled = []
        for rows in (train, *others):
            x = self.x[rows].astype(np.float64)
            holes = np.isnan(x)
            x[holes] = np.take(median, np.nonzero(holes)[1])
            y = self.y[rows]
            if self.task == "regression":
                y = ((y - mean_y) / std_y).astype(np.float32)
            filled.append((x, y))
        mean = filled[0][0].mean(axis=0)
        std = filled[0][0].std(axis=0)
        std[std == 0] = 1.0
        return [(((x - mean) / std).astype(np.float32), y) for x, y in filled]

    def split(self, train: np.ndarray, val: np.ndarray) -> Split:
        """Rows train and val as a Split, prepared as `prepare` says."""
        (x_train, y_train), (x_val, y_val) = self.prepare(train, val)
        return Split(
            torch.from_numpy(x_train),
            torch.from_numpy(np.ascontiguousarray(y_train)),
            torch.from_numpy(x_val),
            torch.from_numpy(np.ascontiguousarray(y_val)),
            self.task,
            self.classes,
            self.features,
        )


def _delimiter(path: Path, sample: str) -> str:
    try:
        return csv.Sniffer().sniff(sample, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column, or ragged lines: count the header's candidates
        header = sample.splitlines()[0] if sample else ""
        counts = {d: header.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        return best if counts[best] else ","


def _numbers(values, decimal_comma: bool):
    """The column as floats (NaN where missing), or None if some value is text."""
    import pandas as pd

    text = values.str.replace(",", ".", regex=False) if decimal_comma else values
    parsed = pd.to_numeric(text.where(~values.str.lower().isin(MISSING)), errors="coerce")
    present = ~values.str.lower().isin(MISSING)
    if parsed[present].isna().any():
        return None
    return parsed.to_numpy(dtype=np.float64, copy=True)


def _read(path: Path):
    import pandas as pd

    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    try:
        sample = path.read_bytes()[:65536].decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError:
        try:  # a cut in the middle of a multi-byte character is fine
            sample = path.read_bytes()[:65536].decode("utf-8-sig", errors="ignore")
            path.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError):
            raise DataError(f"cannot read {path}: it is not UTF-8 text") from None
    except OSError as error:
        raise DataError(f"cannot read {path}: {error.strerror or error}") from None
    if not sample.strip():
        raise DataError(f"{path} is empty")
    delimiter = _delimiter(path, sample)
    try:
        frame = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            dtype=str,
            keep_default_na=False,
            encoding="utf-8-sig",
            skip_blank_lines=True,
        )
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DataError(f"cannot read {path} as CSV (delimiter {delimiter!r}): {detail}") from None
    frame = frame.fillna("").apply(lambda column: column.str.strip())  # short lines: blanks
    return frame, delimiter


def _header(frame, path: Path, target: str, warnings: list[str]) -> list[str]:
    names = [str(name) for name in frame.iloc[0]]
    seen: dict[str, int] = {}
    renamed = []
    for i, name in enumerate(names):
        if not name:
            names[i] = name = f"column {i + 1}"
            renamed.append(f"column {i + 1} has no name")
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            if name == target:
                raise DataError(
                    f"target column {target!r} appears {names.count(target)} times in the "
                    f"header of {path}; rename all but one"
                )
            names[i] = f"{name} ({seen[name]})"
            renamed.append(f"a second {name!r} is called {names[i]!r}")
    if renamed:
        warnings.append("header: " + "; ".join(renamed))
    return names


def read_table(path: str | Path, target: str, task: str | None = None) -> Table:
    """Read a CSV table for `lossopt lab compare`.

    The delimiter (comma, semicolon, tab or bar) and a UTF-8 byte-order mark are
    detected. Blank cells and spellings such as NaN, NA, null or ? are missing
    values: rows with a missing target are dropped, missing numbers are filled
    per split with the training median, and a missing category is a category of
    its own; each is reported in `warnings`. Text columns with at most 50
    distinct values are one-hot encoded. The task is classification when the
    target is text or holds at most 20 distinct whole numbers, else regression,
    unless ``task`` says otherwise.
    """
    path = Path(path)
    frame, delimiter = _read(path)
    warnings: list[str] = []
    names = _header(frame, path, target, warnings)
    body = frame.iloc[1:].reset_index(drop=True)
    body.columns = names
    body = body[~(body == "").all(axis=1)]  # a line of bare delimiters is no row
    if body.empty:
        raise DataError(f"{path} has a header but no rows")
    if target not in names:
        raise DataError(f"target column {target!r} not in {path} (columns: {', '.join(names)})")

    missing_target = body[target].str.lower().isin(MISSING)
    if missing_target.any():
        count = int(missing_target.sum())
        warnings.append(f"dropped {count} row{'s' * (count != 1)} whose target {target!r} is blank")
        body = body[~missing_target].reset_index(drop=True)
    if len(body) < MIN_ROWS:
        raise DataError(
            f"{path} has {len(body)} row{'s' * (len(body) != 1)} with a target; "
            f"compare needs at least {MIN_ROWS}"
        )
    decimal_comma = delimiter != ","
    y, task, classes = _target(body[target], target, task, decimal_comma)

    features, blocks, imputed, blank_text, empty = [], [], [], [], []
    for name in names:
        if name == target:
            continue
        values = body[name]
        missing = values.str.lower().isin(MISSING)
        if missing.all():
            empty.append(name)
            continue
        numbers = _numbers(values, decimal_comma)
        if numbers is not None:
            holes = ~np.isfinite(numbers)  # inf is no measurement either
            numbers[holes] = np.nan
            if holes.any():
                imputed.append(f"{name} ({int(holes.sum())})")
            blocks.append(numbers[:, None])
            features.append(name)
            continue
        text = values.where(~missing, "(missing)")
        categories = sorted(set(text))
        if len(categories) > MAX_CATEGORIES:
            raise DataError(
                f"column {name!r} is neither numeric nor categorical "
                f"({len(categories)} distinct text values, at most {MAX_CATEGORIES})"
            )
        if missing.any():
            blank_text.append(f"{name} ({int(missing.sum())})")
        blocks.append(np.stack([(text == c).to_numpy() for c in categories], axis=1))
        features.extend(f"{name}={c}" for c in categories)
    if empty:
        warnings.append(f"columns with no value at all, left out: {', '.join(empty)}")
    if imputed:
        warnings.append("missing numbers filled with the training median: " + ", ".join(imputed))
    if blank_text:
        warnings.append("missing text kept as the category '(missing)': " + ", ".join(blank_text))
    if not blocks:
        raise DataError(f"{path} has no feature column besides the target {target!r}")
    x = np.concatenate([b.astype(np.float32) for b in blocks], axis=1)
    return Table(str(path), target, task, x, y, features, classes, delimiter, warnings)


def _target(values, target: str, task: str | None, decimal_comma: bool):
    numbers = _numbers(values, decimal_comma)

    def order(label: str):  # numbers by value, then text
        try:
            value = float(label.replace(",", ".") if decimal_comma else label)
        except ValueError:
            return (True, 0.0, label)
        return (False, value, label)

    if task is None:
        whole = numbers is not None and bool(np.all(numbers == np.round(numbers)))
        few = numbers is not None and len(np.unique(numbers)) <= MAX_CLASSES
        task = "classification" if numbers is None or (whole and few) else "regression"
    if task == "regression":
        if numbers is None:
            bad = next(v for v in values if order(v)[0])
            raise DataError(
                f"target column {target!r} must be numeric for regression, found {bad!r}"
            )
        if not np.all(np.isfinite(numbers)):
            raise DataError(f"target column {target!r} holds an infinite value")
        return numbers.astype(np.float32), task, []

    if numbers is not None:  # '1' and '1.0' are the same class
        import pandas as pd

        labels = [str(int(v)) if v == int(v) else repr(float(v)) for v in numbers]
        values = pd.Series(labels, index=values.index)
    classes = sorted(set(values), key=order)
    if len(classes) < 2:
        raise DataError(f"target column {target!r} has a single class {classes[0]!r}")
    counts = values.value_counts()
    if len(classes) * MIN_PER_CLASS > len(values):
        raise DataError(
            f"target column {target!r} has {len(classes)} classes for {len(values)} rows; "
            f"compare needs at least {MIN_PER_CLASS} rows per class"
        )
    rare = counts[counts < MIN_PER_CLASS]
    if len(rare):
        label, count = rare.index[-1], int(rare.iloc[-1])
        raise DataError(
            f"class {label!r} of target {target!r} has {count} row{'s' * (count != 1)}; "
            f"compare needs at least {MIN_PER_CLASS} per class"
            + (f" ({len(rare)} classes are that rare)" if len(rare) > 1 else "")
        )
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[v] for v in values], dtype=np.int64), task, classes
