"""CSV input for `lossopt lab compare`: what is detected, what is repaired with a
warning, and what is refused with one line and exit status 2."""

import numpy as np
import pytest

from lossopt.__main__ import main
from lossopt.lab.data import MIN_PER_CLASS, MIN_ROWS, DataError, read_table


def _table(n=40, seed=0):
    """Rows of (a, b, colour, kind): kind follows a + b."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        a, b = rng.normal(size=2)
        rows.append(
            [f"{a:.3f}", f"{b:.3f}", ["red", "blue"][i % 2], "big" if a + b > 0 else "small"]
        )
    return rows


def _write(path, header, rows, sep=",", prefix=""):
    text = prefix + "\n".join(sep.join(r) for r in [header, *rows]) + "\n"
    path.write_text(text, encoding="utf-8")
    return path


HEADER = ["a", "b", "colour", "kind"]


def _error(capsys, tmp_path, path, *extra, target="kind"):
    out = tmp_path / "out"
    code = main(
        ["lab", "compare", "--data", str(path), "--target", target, "--out", str(out), *extra]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("lossopt: error: "), err
    assert "Traceback" not in err[0]
    assert not out.exists()
    return err[0]


def test_utf8_byte_order_mark(tmp_path):
    path = _write(tmp_path / "bom.csv", HEADER, _table(), prefix="\ufeff")
    table = read_table(path, "a")  # the first column, right after the mark
    assert table.task == "regression" and table.features[0] == "b"


@pytest.mark.parametrize("sep", [";", "\t", "|"])
def test_delimiter_detected(tmp_path, sep):
    path = _write(tmp_path / "t.csv", HEADER, _table(), sep=sep)
    table = read_table(path, "kind")
    assert table.delimiter == sep
    assert table.features == ["a", "b", "colour=blue", "colour=red"]
    assert table.classes == ["big", "small"]


def test_decimal_comma_with_semicolons(tmp_path):
    rows = [[a.replace(".", ","), b.replace(".", ","), c, k] for a, b, c, k in _table()]
    table = read_table(_write(tmp_path / "eu.csv", HEADER, rows, sep=";"), "kind")
    assert table.features[:2] == ["a", "b"]
    assert table.x[0, 0] == pytest.approx(float(_table()[0][0]), abs=1e-6)


def test_missing_numbers_are_imputed_with_a_warning(tmp_path):
    rows = _table()
    rows[3][0] = rows[7][0] = ""
    rows[5][0] = "NaN"
    rows[9][1] = "n/a"
    table = read_table(_write(tmp_path / "holes.csv", HEADER, rows), "kind")
    assert table.features == ["a", "b", "colour=blue", "colour=red"]  # not one-hot per value
    assert "missing numbers filled with the training median: a (3), b (1)" in table.warnings
    assert np.isnan(table.x[:, 0]).sum() == 3
    # filled per split, from the training rows only
    train, val = np.arange(0, 30), np.arange(30, 40)
    (x_train, _), _ = table.prepare(train, val)
    assert not np.isnan(x_train).any()
    raw = table.x[train, 0].astype(np.float64)
    median = np.median(raw[~np.isnan(raw)])
    filled = np.where(np.isnan(raw), median, raw)
    assert x_train[3, 0] == pytest.approx((median - filled.mean()) / filled.std(), abs=1e-5)
    assert x_train[3, 0] == x_train[7, 0] == x_train[5, 0]


def test_missing_text_is_a_category_and_nan_text_is_missing(tmp_path):
    rows = _table()
    rows[0][2] = "NaN"
    rows[1][2] = "null"
    table = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    assert table.features == ["a", "b", "colour=(missing)", "colour=blue", "colour=red"]
    assert "missing text kept as the category '(missing)': colour (2)" in table.warnings


def test_rows_with_a_blank_target_are_dropped_with_a_warning(tmp_path):
    rows = _table()
    rows[2][3] = ""
    rows[4][3] = "NA"
    table = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    assert table.rows == 38
    assert table.classes == ["big", "small"]  # no class '' or 'NA'
    assert "dropped 2 rows whose target 'kind' is blank" in table.warnings


def test_duplicate_header(tmp_path, capsys):
    header = ["a", "a", "colour", "kind"]
    table = read_table(_write(tmp_path / "dup.csv", header, _table()), "kind")
    assert table.features[:2] == ["a", "a (2)"]  # both columns kept
    assert any("a second 'a' is called 'a (2)'" in w for w in table.warnings)
    path = _write(tmp_path / "dup2.csv", ["a", "kind", "colour", "kind"], _table())
    assert "target column 'kind' appears 2 times" in _error(capsys, tmp_path, path)


def test_compare_prints_the_data_warnings(tmp_path, capsys):
    rows = _table(60)
    rows[3][0] = ""
    path = _write(tmp_path / "t.csv", HEADER, rows)
    out = tmp_path / "out"
    args = ["--quick", "--quiet", "--optimizers", "adam", "--out", str(out)]
    assert main(["lab", "compare", "--data", str(path), "--target", "kind", *args]) == 0
    err = capsys.readouterr().err
    assert "lossopt: warning: missing numbers filled with the training median: a (1)" in err
    assert "a (1)" in (out / "index.html").read_text()


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("inf", "--lr must be positive and finite, got inf"),
        ("nan", "--lr must be positive and finite, got nan"),
        ("-1", "--lr must be positive and finite, got -1"),
        ("0", "--lr must be positive and finite, got 0"),
        ("fast", "--lr must be a number, got 'fast'"),
    ],
)
def test_bad_learning_rate(tmp_path, capsys, value, message):
    path = _write(tmp_path / "t.csv", HEADER, _table())
    assert message in _error(capsys, tmp_path, path, "--lr", value)


@pytest.mark.parametrize("value", ["-1", "1.5", "x", str(2**40)])
def test_bad_seed(tmp_path, capsys, value):
    path = _write(tmp_path / "t.csv", HEADER, _table())
    line = _error(capsys, tmp_path, path, "--seed", value)
    assert f"--seed must be a whole number from 0 to 4294967295, got '{value}'" in line


def test_too_few_rows_per_class(tmp_path, capsys):
    rows = _table(40)
    for row in rows[:3]:
        row[3] = "rare"
    line = _error(capsys, tmp_path, _write(tmp_path / "t.csv", HEADER, rows))
    assert (
        f"class 'rare' of target 'kind' has 3 rows; compare needs at least {MIN_PER_CLASS}" in line
    )


def test_more_classes_than_rows_allow(tmp_path, capsys):
    rows = _table(30)
    for i, row in enumerate(rows):
        row[3] = f"k{i % 10}"
    line = _error(capsys, tmp_path, _write(tmp_path / "t.csv", HEADER, rows))
    assert "target column 'kind' has 10 classes for 30 rows" in line
    assert f"at least {MIN_PER_CLASS} rows per class" in line


def test_one_row(tmp_path, capsys):
    line = _error(capsys, tmp_path, _write(tmp_path / "t.csv", HEADER, _table(1)))
    assert f"has 1 row with a target; compare needs at least {MIN_ROWS}" in line


def test_single_class(tmp_path, capsys):
    rows = _table(20)
    for row in rows:
        row[3] = "only"
    assert "single class 'only'" in _error(
        capsys, tmp_path, _write(tmp_path / "t.csv", HEADER, rows)
    )


def test_ragged_line(tmp_path, capsys):
    path = _write(tmp_path / "t.csv", HEADER, _table())
    path.write_text(path.read_text() + "1,2,red,big,extra\n")
    line = _error(capsys, tmp_path, path)
    assert "cannot read" in line and "as CSV" in line


def test_not_utf8(tmp_path, capsys):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"a,kind\n" + "é,x\n".encode("latin-1") * 20)
    assert "is not UTF-8 text" in _error(capsys, tmp_path, path)


def test_regression_target_must_be_numeric(tmp_path, capsys):
    path = _write(tmp_path / "t.csv", HEADER, _table())
    line = _error(capsys, tmp_path, path, "--task", "regression")
    assert "target column 'kind' must be numeric for regression, found '" in line


def test_unknown_task(tmp_path, capsys):
    path = _write(tmp_path / "t.csv", HEADER, _table())
    assert "invalid choice: 'clustering'" in _error(capsys, tmp_path, path, "--task", "clustering")


def test_data_error_is_a_value_error(tmp_path):
    with pytest.raises(ValueError, match="data file not found"):
        read_table(tmp_path / "none.csv", "y")
    assert issubclass(DataError, ValueError)


def test_numeric_classes_are_grouped_by_value(tmp_path):
    rows = _table(40)
    for i, row in enumerate(rows):
        row[3] = ["1", "1.0", "2", "10"][i % 4]
    table = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    assert table.task == "classification"
    assert table.classes == ["1", "2", "10"]  # by value, '1.0' is '1'
    assert np.bincount(table.y).tolist() == [20, 10, 10]


def test_a_column_that_turns_to_text_in_a_later_chunk_is_read_again(tmp_path, monkeypatch):
    import lossopt.lab.data as data

    monkeypatch.setattr(data, "CHUNK_ROWS", 7)  # six chunks for 40 rows
    rows = _table()
    rows[30][1] = "unknown"  # column b: numbers for four chunks, then one text value
    rows[12][2] = "NULL"  # a missing spelling in upper case, read as missing
    table = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    assert table.numeric == ["a"] and table.text == ["b", "colour"]
    b = table.categories[0]
    assert "unknown" in b and len(b) == 40 and rows[0][1] in b  # every value, as spelled
    assert table.frame["b"].iloc[0] == rows[0][1]
    assert "missing text kept as the category '(missing)': colour (1)" in table.warnings
    whole = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    monkeypatch.setattr(data, "CHUNK_ROWS", 100_000)
    once = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    assert whole.features == once.features and np.array_equal(whole.y, once.y)


def test_true_false_text_keeps_its_spelling(tmp_path):
    rows = [[a, b, ["true", "false"][i % 2], k] for i, (a, b, _, k) in enumerate(_table())]
    table = read_table(_write(tmp_path / "t.csv", HEADER, rows), "kind")
    assert table.text == ["colour"] and table.categories == [["false", "true"]]


def test_reading_holds_the_numbers_not_the_text(tmp_path):
    import tracemalloc

    rng = np.random.default_rng(0)
    lines = ["a,b,c,d,e,f,g,h,kind"] + [
        ",".join(f"{v:.15g}" for v in row) + f",{'xy'[i % 2]}"
        for i, row in enumerate(rng.normal(size=(60_000, 8)))
    ]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n")
    tracemalloc.start()
    table = read_table(path, "kind")
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert table.rows == 60_000 and table.frame.shape == (60_000, 8)
    assert peak < 1.5 * path.stat().st_size  # the CSV is about 10 MB
