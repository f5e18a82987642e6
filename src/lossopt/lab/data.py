"""Data for the lab: the handwritten digits that ship inside scikit-learn, and
the user's own CSV table. Nothing is downloaded."""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from pandas.api.types import union_categoricals

from lossopt.lab.i18n import _, ngettext


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
MISSING_TEXT = "(missing)"  # the category of a blank text cell
DELIMITERS = ",;\t|"
# Lines parsed at a time; of each chunk only the numbers (4 bytes a cell) and the
# category codes are kept.
CHUNK_ROWS = 50_000


def preprocessor(numeric: list[str], text: list[str], categories: list[list[str]]):
    """scikit-learn's ColumnTransformer for a table's inputs: numbers imputed with
    the training median then standardized, text one-hot encoded over its known
    categories (a value seen only outside the training rows encodes as zeros).
    Fitted on training rows only; the exported script builds the same."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    parts = []
    if numeric:
        numbers = make_pipeline(SimpleImputer(strategy="median"), StandardScaler())
        parts.append(("numbers", numbers, numeric))
    if text:
        encoder = OneHotEncoder(
            categories=categories, handle_unknown="ignore", sparse_output=False, dtype=np.float32
        )
        parts.append(("text", encoder, text))
    return ColumnTransformer(parts, sparse_threshold=0.0)


@dataclass
class Table:
    """A CSV table: its numeric inputs as float32 (NaN where missing; filled per
    split, from training rows only), its text inputs as categories, the target."""

    path: str
    target: str
    task: str
    frame: pd.DataFrame  # the inputs: float32 columns, then categorical ones
    numeric: list[str]
    text: list[str]
    categories: list[list[str]]  # of each text column, sorted
    y: np.ndarray  # class index (int64) or value (float32)
    classes: list[str]
    delimiter: str
    warnings: list[str] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)  # the header, renamed where needed

    @property
    def rows(self) -> int:
        return len(self.y)

    @property
    def features(self) -> list[str]:
        """The network's inputs: the numbers, then one per category of each text column."""
        onehot = [f"{n}={c}" for n, cs in zip(self.text, self.categories, strict=True) for c in cs]
        return [*self.numeric, *onehot]

    @property
    def x(self) -> np.ndarray:
        """The numeric inputs as read (NaN where missing)."""
        return self.frame[self.numeric].to_numpy(dtype=np.float32)

    def preprocessor(self):
        return preprocessor(self.numeric, self.text, self.categories)

    def target_scale(self, train: np.ndarray) -> tuple[float, float]:
        """Mean and standard deviation of a regression target on rows train: the
        network learns the standardized target (0 and 1 for classification)."""
        if self.task != "regression":
            return 0.0, 1.0
        values = self.y[train].astype(np.float64)
        return float(values.mean()), float(values.std()) or 1.0

    def prepare(
        self, train: np.ndarray, *others: np.ndarray
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """(x, y) of rows train, then of each of others, through `preprocessor`
        fitted on rows train (and a regression target standardized by their mean
        and deviation), so that nothing of the other rows leaks in."""
        pipeline = self.preprocessor().fit(self.frame.iloc[train])
        mean, std = self.target_scale(train)
        prepared = []
        for rows in (train, *others):
            x = np.ascontiguousarray(pipeline.transform(self.frame.iloc[rows]), dtype=np.float32)
            y = self.y[rows]
            if self.task == "regression":
                y = ((y - mean) / std).astype(np.float32)
            prepared.append((x, np.ascontiguousarray(y)))
        return prepared

    def split(self, train: np.ndarray, val: np.ndarray) -> Split:
        """Rows train and val as a Split, prepared as `prepare` says."""
        (x_train, y_train), (x_val, y_val) = self.prepare(train, val)
        return Split(
            torch.from_numpy(x_train),
            torch.from_numpy(y_train),
            torch.from_numpy(x_val),
            torch.from_numpy(y_val),
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


def _missing(values: pd.Series) -> pd.Series:
    return values.str.lower().isin(MISSING)


def _numbers(values: pd.Series, decimal_comma: bool, missing: pd.Series | None = None):
    """The column as floats (NaN where missing), or None if some value is text."""
    if missing is None:
        missing = _missing(values)
    text = values.str.replace(",", ".", regex=False) if decimal_comma else values
    parsed = pd.to_numeric(text.where(~missing), errors="coerce")
    if parsed[~missing].isna().any():
        return None
    return parsed.to_numpy(dtype=np.float64, copy=True)


def _sample(path: Path) -> str:
    if not path.is_file():
        raise DataError(_("data file not found: {path}").format(path=path))
    try:
        with path.open("rb") as file:
            head = file.read(65536)
    except OSError as error:
        raise DataError(
            _("cannot read {path}: {error}").format(path=path, error=error.strerror or error)
        ) from None
    try:
        sample = head.decode("utf-8-sig", errors="strict")
    except UnicodeDecodeError as error:
        if error.start < len(head) - 4:  # not a multi-byte character cut at the end
            raise DataError(
                _("cannot read {path}: it is not UTF-8 text").format(path=path)
            ) from None
        sample = head.decode("utf-8-sig", errors="ignore")
    if not sample.strip():
        raise DataError(_("{path} is empty").format(path=path))
    return sample


# The missing spellings as pandas' C parser matches them (exactly): lower, upper and
# title case; another casing makes its column text, which is then read cell by cell.
NA_SPELLINGS = sorted({v for m in MISSING for v in (m, m.upper(), m.title())})


def _chunks(path: Path, delimiter: str, width: int, target: int, text: list[int] | None = None):
    """The lines after the header, CHUNK_ROWS at a time, as frames: numbers parsed
    by pandas' C parser where a column holds nothing else (the missing spellings
    as NaN), text elsewhere and in the target; with ``text``, only those columns."""
    options = dict(usecols=text, dtype=str) if text is not None else dict(dtype={target: object})
    try:
        reader = pd.read_csv(
            path,
            sep=delimiter,
            header=None,
            skiprows=1,
            names=list(range(width)),
            na_values=NA_SPELLINGS,
            keep_default_na=False,
            decimal="," if delimiter != "," else ".",
            encoding="utf-8-sig",
            skip_blank_lines=True,
            chunksize=CHUNK_ROWS,
            **options,
        )
        yield from reader
    except pd.errors.EmptyDataError:
        return
    except UnicodeDecodeError:
        raise DataError(_("cannot read {path}: it is not UTF-8 text").format(path=path)) from None
    except (pd.errors.ParserError, ValueError) as error:
        detail = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
        raise DataError(
            _("cannot read {path} as CSV (delimiter {delimiter!r}): {detail}").format(
                path=path, delimiter=delimiter, detail=detail
            )
        ) from None


def _as_text(values: pd.Series) -> pd.Series:
    """A parsed column back as stripped text, '' where missing."""
    return values.astype(object).where(values.notna(), "").astype(str).str.strip()


def _header(values: list[str], path: Path, target: str, warnings: list[str]) -> list[str]:
    names = [str(name) for name in values]
    seen: dict[str, int] = {}
    renamed = []
    for i, name in enumerate(names):
        if not name:
            names[i] = name = f"column {i + 1}"  # a name in the results: kept in English
            renamed.append(_("column {number} has no name").format(number=i + 1))
        seen[name] = seen.get(name, 0) + 1
        if seen[name] > 1:
            if name == target:
                raise DataError(
                    _(
                        "target column {target!r} appears {count} times in the header of "
                        "{path}; rename all but one"
                    ).format(target=target, count=names.count(target), path=path)
                )
            names[i] = f"{name} ({seen[name]})"
            renamed.append(
                _("a second {name!r} is called {renamed!r}").format(name=name, renamed=names[i])
            )
    if renamed:
        warnings.append(_("header: {changes}").format(changes="; ".join(renamed)))
    return names


class _Column:
    """One input column while the file is read: numbers until a value is text."""

    def __init__(self) -> None:
        self.numbers: list[np.ndarray] | None = []
        self.text: list[pd.Categorical] = []
        self.missing = 0
        self.present = False
        self.spelled = False  # its text must be read again as the file spells it

    def add(self, values: pd.Series, decimal_comma: bool) -> None:
        if self.numbers is not None and values.dtype.kind in "fiu":  # parsed by pandas
            missing = values.isna().to_numpy()
            self.missing += int(missing.sum())
            self.present |= bool((~missing).any())
            self.numbers.append(values.to_numpy(dtype=np.float32))
            return
        if values.dtype.kind == "b":  # True/False: text, as the file spells it
            self.numbers = None
            self.spelled = True
            return
        values = _as_text(values)
        missing = _missing(values)
        self.missing += int(missing.sum())
        self.present |= bool((~missing).any())
        if self.numbers is not None:
            numbers = _numbers(values, decimal_comma, missing)
            if numbers is not None:
                self.numbers.append(numbers.astype(np.float32))
                return
            self.numbers = None  # text after all: its earlier chunks are read again
        self.text.append(pd.Categorical(values.where(~missing, MISSING_TEXT)))


def read_table(path: str | Path, target: str, task: str | None = None) -> Table:
    """Read a CSV table for `lossopt lab compare`.

    The delimiter (comma, semicolon, tab or bar) and a UTF-8 byte-order mark are
    detected. Blank cells and spellings such as NaN, NA, null or ? are missing
    values: rows with a missing target are dropped, missing numbers are filled
    per split with the training median, and a missing category is a category of
    its own; each is reported in `warnings`. Text columns with at most 50
    distinct values are one-hot encoded. The task is classification when the
    target is text or holds at most 20 distinct whole numbers, else regression,
    unless ``task`` says otherwise. The file is read CHUNK_ROWS lines at a time,
    so that memory holds the numbers, not the text.
    """
    path = Path(path)
    sample = _sample(path)
    delimiter = _delimiter(path, sample)
    decimal_comma = delimiter != ","
    warnings: list[str] = []
    first = next(line for line in sample.splitlines() if line.strip())
    header = [value.strip() for value in next(csv.reader([first], delimiter=delimiter))]
    names = _header(header, path, target, warnings)
    if target not in names:
        raise DataError(
            _("target column {target!r} not in {path} (columns: {columns})").format(
                target=target, path=path, columns=", ".join(names)
            )
        )
    columns = {name: _Column() for name in names if name != target}
    where = names.index(target)
    targets: list[pd.Series] = []
    kept: list[np.ndarray] = []  # per chunk: which lines are rows with a target
    dropped = 0
    for chunk in _chunks(path, delimiter, len(names), where):
        chunk.columns = names
        keep = ~chunk.isna().all(axis=1).to_numpy()  # a line of blanks is no row
        values = _as_text(chunk[target])
        blank = _missing(values).to_numpy() & keep
        dropped += int(blank.sum())
        keep &= ~blank
        kept.append(keep)
        targets.append(values[keep])
        for name, column in columns.items():
            column.add(chunk[name][keep], decimal_comma)
    if not any(k.any() for k in kept) and not dropped:
        raise DataError(_("{path} has a header but no rows").format(path=path))
    if dropped:
        warnings.append(
            ngettext(
                "dropped {count} row whose target {target!r} is blank",
                "dropped {count} rows whose target {target!r} is blank",
                dropped,
            ).format(count=dropped, target=target)
        )
    rows = sum(int(k.sum()) for k in kept)
    if rows < MIN_ROWS:
        raise DataError(
            ngettext(
                "{path} has {count} row with a target; compare needs at least {least}",
                "{path} has {count} rows with a target; compare needs at least {least}",
                rows,
            ).format(path=path, count=rows, least=MIN_ROWS)
        )
    y, task, classes = _target(pd.concat(targets, ignore_index=True), target, task, decimal_comma)
    del targets

    switched = [
        i
        for i, name in enumerate(names)
        if name in columns
        and columns[name].numbers is None
        and (columns[name].spelled or len(columns[name].text) < len(kept))
    ]
    for name in (names[i] for i in switched):
        columns[name].text, columns[name].missing = [], 0
    if switched:  # read those columns again, as the file spells them
        chunks = _chunks(path, delimiter, len(names), where, text=switched)
        for keep, chunk in zip(kept, chunks, strict=True):
            for i in switched:
                values = _as_text(chunk[i][keep])
                missing = _missing(values)
                columns[names[i]].missing += int(missing.sum())
                columns[names[i]].present |= bool((~missing).any())
                columns[names[i]].text.append(pd.Categorical(values.where(~missing, MISSING_TEXT)))

    data: dict[str, object] = {}
    numeric, text, categories = [], [], []
    imputed, blank_text, empty = [], [], []
    for name, column in columns.items():
        if not column.present:
            empty.append(name)
            continue
        if column.numbers is not None:
            values = np.concatenate(column.numbers)
            holes = ~np.isfinite(values)  # inf is no measurement either
            values[holes] = np.nan
            if holes.any():
                imputed.append(f"{name} ({int(holes.sum())})")
            data[name] = values
            numeric.append(name)
            continue
        merged = union_categoricals(column.text, sort_categories=True)
        found = [str(c) for c in merged.categories]
        if len(found) > MAX_CATEGORIES:
            raise DataError(
                _(
                    "column {name!r} is neither numeric nor categorical ({count} distinct text "
                    "values, at most {most})"
                ).format(name=name, count=len(found), most=MAX_CATEGORIES)
            )
        if column.missing:
            blank_text.append(f"{name} ({column.missing})")
        data[name] = merged
        text.append(name)
        categories.append(found)
    if empty:
        warnings.append(
            _("columns with no value at all, left out: {columns}").format(columns=", ".join(empty))
        )
    if imputed:
        warnings.append(
            _("missing numbers filled with the training median: {columns}").format(
                columns=", ".join(imputed)
            )
        )
    if blank_text:
        warnings.append(
            _("missing text kept as the category '{category}': {columns}").format(
                category=MISSING_TEXT, columns=", ".join(blank_text)
            )
        )
    if not data:
        raise DataError(
            _("{path} has no feature column besides the target {target!r}").format(
                path=path, target=target
            )
        )
    frame = pd.DataFrame({name: data[name] for name in [*numeric, *text]})
    return Table(
        path=str(path),
        target=target,
        task=task,
        frame=frame,
        numeric=numeric,
        text=text,
        categories=categories,
        y=y,
        classes=classes,
        delimiter=delimiter,
        warnings=warnings,
        columns=names,
    )


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
                _("target column {target!r} must be numeric for regression, found {bad!r}").format(
                    target=target, bad=bad
                )
            )
        if not np.all(np.isfinite(numbers)):
            raise DataError(
                _("target column {target!r} holds an infinite value").format(target=target)
            )
        return numbers.astype(np.float32), task, []

    if numbers is not None:  # '1' and '1.0' are the same class
        labels = [str(int(v)) if v == int(v) else repr(float(v)) for v in numbers]
        values = pd.Series(labels, index=values.index)
    classes = sorted(set(values), key=order)
    if len(classes) < 2:
        raise DataError(
            _("target column {target!r} has a single class {label!r}").format(
                target=target, label=classes[0]
            )
        )
    counts = values.value_counts()
    if len(classes) * MIN_PER_CLASS > len(values):
        raise DataError(
            _(
                "target column {target!r} has {classes} classes for {rows} rows; compare needs "
                "at least {least} rows per class"
            ).format(target=target, classes=len(classes), rows=len(values), least=MIN_PER_CLASS)
        )
    rare = counts[counts < MIN_PER_CLASS]
    if len(rare):
        label, count = rare.index[-1], int(rare.iloc[-1])
        said = ngettext(
            "class {label!r} of target {target!r} has {count} row; compare needs at least "
            "{least} per class",
            "class {label!r} of target {target!r} has {count} rows; compare needs at least "
            "{least} per class",
            count,
        ).format(label=label, target=target, count=count, least=MIN_PER_CLASS)
        if len(rare) > 1:
            said += " " + _("({count} classes are that rare)").format(count=len(rare))
        raise DataError(said)
    index = {c: i for i, c in enumerate(classes)}
    return np.asarray([index[v] for v in values], dtype=np.int64), task, classes
