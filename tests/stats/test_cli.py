"""``anshim stats estimate``: the JSON contract, the readable table, disclosure control, and bad
input (exit status 2 with a message naming the problem, never a traceback)."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from anshim.stats.cli import main

from .rsurvey import R_MISSING, generate, r_available, r_estimates, write_csv

ANSHIM = Path(sys.executable).with_name("anshim")


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def data(tmp_path: Path) -> Path:
    g = generate(1500, seed=11, strata=4, psu_per_stratum=4)
    path = tmp_path / "survey.csv"
    write_csv(g, path)
    return path


def test_json_contract(data: Path) -> None:
    code, out, err = _run(
        [
            "estimate",
            "--data",
            str(data),
            "--var",
            "y",
            "--weight",
            "w",
            "--strata",
            "stratum",
            "--psu",
            "psu",
            "--by",
            "grade,sex",
            "--json",
        ]
    )
    assert code == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0]["by"] == {}
    assert set(rows[0]) == {"by", "n", "estimate", "se", "ci_low", "ci_high", "suppressed"}
    assert rows[0]["suppressed"] is False
    assert all(set(r["by"]) == {"grade", "sex"} for r in rows[1:])
    assert len(rows) == 1 + 9 * 2
    for r in rows:
        if r["suppressed"]:
            assert set(r) == {"by", "n", "suppressed"}
        else:
            assert r["ci_low"] < r["estimate"] < r["ci_high"]
    assert sum(r["n"] for r in rows[1:]) == rows[0]["n"]


def test_small_cells_are_suppressed(data: Path) -> None:
    code, out, _ = _run(
        [
            "estimate",
            "--data",
            str(data),
            "--var",
            "y",
            "--weight",
            "w",
            "--by",
            "grade,sex,stratum",
            "--json",
        ]
    )
    assert code == 0
    rows = [json.loads(line) for line in out.splitlines()]
    small = [r for r in rows if r["n"] < 30]
    assert small and all(r["suppressed"] and "estimate" not in r for r in small)
    # a higher threshold suppresses more; 0 turns the rule off
    _, out2, _ = _run(
        [
            "estimate",
            "--data",
            str(data),
            "--var",
            "y",
            "--weight",
            "w",
            "--by",
            "grade,sex,stratum",
            "--json",
            "--min-denominator",
            "0",
            "--max-small-numerator",
            "0",
        ]
    )
    assert not any(json.loads(line)["suppressed"] for line in out2.splitlines())


@pytest.mark.skipif(not r_available(), reason=R_MISSING)
def test_cli_matches_r(tmp_path: Path) -> None:
    g = generate(2000, seed=12, strata=5, psu_per_stratum=3)
    ref = r_estimates(g, tmp_path)
    for var in ("y", "score"):
        code, out, err = _run(
            [
                "estimate",
                "--data",
                str(tmp_path / "data.csv"),
                "--var",
                var,
                "--weight",
                "w",
                "--strata",
                "stratum",
                "--psu",
                "psu",
                "--by",
                "grade,sex",
                "--json",
                "--min-denominator",
                "0",
                "--max-small-numerator",
                "0",
            ]
        )
        assert code == 0, err
        for line in out.splitlines():
            r = json.loads(line)
            key = f"{var}|" + (f"{r['by']['grade']},{r['by']['sex']}" if r["by"] else "")
            est, se, lo, hi = ref[key]
            assert abs(r["estimate"] - est) < 1e-6
            assert abs(r["se"] - se) < 1e-4
            assert abs(r["ci_low"] - lo) < 1e-4 and abs(r["ci_high"] - hi) < 1e-4


def test_readable_table(data: Path) -> None:
    code, out, _ = _run(
        ["estimate", "--data", str(data), "--var", "score", "--weight", "w", "--by", "sex"]
    )
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["sex", "n", "mean"]
    assert lines[1].startswith("(all)") and lines[2].startswith("F") and lines[3].startswith("M")


def _write(tmp_path: Path, rows: list[list[object]]) -> Path:
    p = tmp_path / "bad.csv"
    with p.open("w", newline="") as fh:
        csv.writer(fh).writerows(rows)
    return p


@pytest.mark.parametrize(
    ("rows", "extra", "message"),
    [
        ([["y", "w"], [1, 2]], ["--var", "nope", "--weight", "w"], "no column 'nope'"),
        (
            [["y", "w"], [1, "two"], [0, 1]],
            ["--var", "y", "--weight", "w"],
            "weight column 'w' is not numeric: row 1 has 'two'",
        ),
        ([["y", "w"], [1, -1], [0, 1]], ["--var", "y", "--weight", "w"], "weight column 'w'"),
        ([["y", "w"], [1, ""], [0, 1]], ["--var", "y", "--weight", "w"], "empty on data row 1"),
        (
            [["y", "w", "s", "p"], [1, 1, "A", 1], [0, 1, "A", 2], [1, 1, "B", 1]],
            ["--var", "y", "--weight", "w", "--strata", "s", "--psu", "p"],
            "'B' has only one PSU",
        ),
        (
            [["y", "w"], ["yes", 1], [1, 1]],
            ["--var", "y", "--weight", "w"],
            "column 'y' is not numeric",
        ),
        ([["y", "w"]], ["--var", "y", "--weight", "w"], "no data rows"),
        (
            [["y", "w", "g"], [1, 1, "a"]],
            ["--var", "y", "--weight", "w", "--by", "g,h"],
            "no column 'h'",
        ),
    ],
)
def test_bad_input_exits_2_naming_the_problem(
    tmp_path: Path, rows: list[list[object]], extra: list[str], message: str
) -> None:
    path = _write(tmp_path, rows)
    code, out, err = _run(["estimate", "--data", str(path), *extra, "--json"])
    assert code == 2
    assert out == ""
    assert message in err, err
    assert "Traceback" not in err


def test_missing_file_and_not_utf8(tmp_path: Path) -> None:
    code, _, err = _run(
        ["estimate", "--data", str(tmp_path / "none.csv"), "--var", "y", "--weight", "w"]
    )
    assert code == 2 and "cannot read" in err
    p = tmp_path / "cp949.csv"
    p.write_bytes("y,w,학년\n1,1,3\n".encode("cp949"))
    code, _, err = _run(["estimate", "--data", str(p), "--var", "y", "--weight", "w"])
    assert code == 2 and "UTF-8" in err


def test_the_anshim_command(data: Path, tmp_path: Path) -> None:
    """Through the installed console command: status, stdout, no traceback."""
    ok = subprocess.run(
        [
            str(ANSHIM),
            "stats",
            "estimate",
            "--data",
            str(data),
            "--var",
            "y",
            "--weight",
            "w",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout.splitlines()[0])["by"] == {}
    bad = subprocess.run(
        [str(ANSHIM), "stats", "estimate", "--data", str(data), "--var", "y", "--weight", "level"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 2
    assert "weight column 'level' is not numeric" in bad.stderr
    assert "Traceback" not in bad.stderr
    usage = subprocess.run(
        [str(ANSHIM), "stats", "estimate", "--data", str(data)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert usage.returncode == 2 and "--var" in usage.stderr


def test_estimates_are_finite_for_every_row(data: Path) -> None:
    code, out, _ = _run(
        [
            "estimate",
            "--data",
            str(data),
            "--var",
            "y",
            "--weight",
            "w",
            "--psu",
            "psu",
            "--strata",
            "stratum",
            "--by",
            "level",
            "--json",
        ]
    )
    assert code == 0
    for line in out.splitlines():
        r = json.loads(line)
        if not r["suppressed"]:
            assert np.isfinite([r["estimate"], r["se"], r["ci_low"], r["ci_high"]]).all()


def test_blank_group_label_is_in_the_overall_row_only(tmp_path: Path) -> None:
    rows: list[list[object]] = [["y", "w", "sex"]]
    rows += [[k % 2, 1, "F"] for k in range(40)] + [[1, 1, ""] for _ in range(5)]
    path = _write(tmp_path, rows)
    code, out, err = _run(
        ["estimate", "--data", str(path), "--var", "y", "--weight", "w", "--by", "sex", "--json"]
    )
    assert code == 0, err
    parsed = [json.loads(line) for line in out.splitlines()]
    assert [(r["by"], r["n"]) for r in parsed] == [({}, 45), ({"sex": "F"}, 40)]
