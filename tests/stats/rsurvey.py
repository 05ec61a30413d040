"""R's survey package as the reference: generated designs written to CSV, Rscript subprocesses
reading them and writing their estimates back as CSV.

Shared by tests/stats and bench/bench_stats.py. Debian: ``apt-get install r-base-core
r-cran-survey`` (in the Makefile's APT_PACKAGES).
"""

from __future__ import annotations

import csv
import shutil
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

R_MISSING = (
    "R's survey package is not installed (Debian: apt-get install r-base-core r-cran-survey; "
    "`make test` installs it with the other system packages)"
)


@cache
def r_available() -> bool:
    rscript = shutil.which("Rscript")
    if rscript is None:
        return False
    proc = subprocess.run(
        [rscript, "-e", "suppressPackageStartupMessages(library(survey))"],
        capture_output=True,
        timeout=120,
        check=False,
    )
    return proc.returncode == 0


@dataclass
class Generated:
    """A generated stratified cluster sample (benign numbers only)."""

    stratum: np.ndarray
    psu: np.ndarray
    w: np.ndarray
    grade: np.ndarray
    sex: np.ndarray
    level: np.ndarray
    y: np.ndarray  # 0/1 with NaN for no answer
    score: np.ndarray  # numeric with NaN

    @property
    def n(self) -> int:
        return int(self.w.shape[0])


def generate(
    n: int, *, seed: int = 0, strata: int = 6, psu_per_stratum: int = 5, missing: float = 0.05
) -> Generated:
    """Schools (PSUs) nested in strata, unequal weights, a school effect on the answers."""
    rng = np.random.default_rng(seed)
    stratum = rng.integers(0, strata, n)
    # PSU labels repeat across strata (nest=TRUE makes them distinct)
    psu = rng.integers(1, psu_per_stratum + 1, n)
    school_effect = rng.normal(0, 0.6, (strata, psu_per_stratum + 1))
    w = np.round(rng.gamma(4.0, 25.0, n) + 1.0, 3)
    grade = rng.integers(4, 13, n)
    sex = np.where(rng.random(n) < 0.5, "F", "M")
    level = np.where(grade <= 6, "elementary", np.where(grade <= 9, "middle", "high"))
    lin = -1.2 + school_effect[stratum, psu] + 0.08 * (grade - 8) + 0.3 * (sex == "F")
    y = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(np.float64)
    score = np.round(50 + 10 * school_effect[stratum, psu] + rng.normal(0, 12, n), 2)
    if missing:
        y[rng.random(n) < missing] = np.nan
        score[rng.random(n) < missing] = np.nan
    return Generated(stratum, psu, w, grade, sex, level, y, score)


def write_csv(g: Generated, path: Path) -> None:
    with path.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(["stratum", "psu", "w", "grade", "sex", "level", "y", "score"])
        for row in zip(
            g.stratum.tolist(),
            g.psu.tolist(),
            g.w.tolist(),
            g.grade.tolist(),
            g.sex.tolist(),
            g.level.tolist(),
            g.y.tolist(),
            g.score.tolist(),
            strict=True,
        ):
            *head, y, score = row
            wr.writerow([*head, "" if y != y else int(y), "" if score != score else score])


R_PRELUDE = r"""
suppressPackageStartupMessages(library(survey))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = c(grade = "character", sex = "character",
                                       level = "character", stratum = "character",
                                       psu = "character"))
des <- svydesign(ids = ~psu, strata = ~stratum, weights = ~w, nest = TRUE, data = d)
calib <- args[3]
if (calib == "post") {
  pop <- read.csv(args[4], colClasses = c(grade = "character", sex = "character"))
  des <- postStratify(des, ~grade + sex, pop)
} else if (calib == "rake") {
  pg <- read.csv(args[4], colClasses = c(grade = "character"))
  ps <- read.csv(args[5], colClasses = c(sex = "character"))
  des <- rake(des, list(~grade, ~sex), list(pg, ps))
}
"""

R_ESTIMATES = r"""
out <- NULL
add <- function(key, est, se, lo, hi) {
  out <<- rbind(out, data.frame(key = key, estimate = est, se = se, ci_low = lo, ci_high = hi))
}
for (v in c("y", "score")) {
  # calibrated designs keep the rows of a subset (weight 0), so na.rm as well
  sub <- des[!is.na(d[[v]]), ]
  f <- as.formula(paste0("~", v))
  if (v == "y") {
    p <- svyciprop(f, sub, method = "logit", na.rm = TRUE)
    ci <- attr(p, "ci")
    add(paste0(v, "|"), as.vector(p), as.vector(SE(p)), ci[1], ci[2])
    b <- svyby(f, ~grade + sex, sub, svyciprop, method = "logit", vartype = c("se", "ci"),
              na.rm = TRUE)
  } else {
    m <- svymean(f, sub, na.rm = TRUE)
    ci <- confint(m)
    add(paste0(v, "|"), as.vector(coef(m)), as.vector(SE(m)), ci[1], ci[2])
    b <- svyby(f, ~grade + sex, sub, svymean, vartype = c("se", "ci"), na.rm = TRUE)
  }
  add(paste0(v, "|", b$grade, ",", b$sex), b[[v]], as.vector(SE(b)), b$ci_l, b$ci_u)
}
write.csv(out, args[2], row.names = FALSE)
"""

R_WEIGHTS = r"""
write.csv(data.frame(w = weights(des)), args[2], row.names = FALSE)
"""


def run_r(script: str, args: list[str], timeout: float = 600) -> subprocess.CompletedProcess[str]:
    rscript = shutil.which("Rscript")
    assert rscript is not None
    proc = subprocess.run(
        [rscript, "--vanilla", "-e", script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    return proc


def r_estimates(
    g: Generated, tmp: Path, calib: str = "none", pops: list[Path] | None = None
) -> dict[str, tuple[float, float, float, float]]:
    """R's estimates of y (proportion) and score (mean), overall and by grade x sex."""
    data = tmp / "data.csv"
    out = tmp / "r_out.csv"
    write_csv(g, data)
    proc = run_r(
        R_PRELUDE + R_ESTIMATES, [str(data), str(out), calib, *[str(p) for p in pops or []]]
    )
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr[-2000:]}")
    res: dict[str, tuple[float, float, float, float]] = {}
    with out.open(newline="") as fh:
        for row in csv.DictReader(fh):
            res[row["key"]] = (
                float(row["estimate"]),
                float(row["se"]),
                float(row["ci_low"]),
                float(row["ci_high"]),
            )
    return res


def r_weights(g: Generated, tmp: Path, calib: str, pops: list[Path]) -> np.ndarray:
    data = tmp / "data.csv"
    out = tmp / "r_w.csv"
    write_csv(g, data)
    proc = run_r(R_PRELUDE + R_WEIGHTS, [str(data), str(out), calib, *[str(p) for p in pops]])
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr[-2000:]}")
    with out.open(newline="") as fh:
        return np.array([float(r["w"]) for r in csv.DictReader(fh)])
