"""`make bench-stats`: a school survey report's statistics, Anshim's engine against R's survey.

The report: every question of a generated (fictitious) student survey, as a weighted proportion
(0/1 questions, logit CI as ``svyciprop``) or mean (``svymean``), overall and by grade, sex,
school level, level x sex and level x grade x sex, on a stratified school sample (strata: school
level x district; PSU: school) raked to known grade and sex margins. Ours runs through
``anshim.stats`` (design, ``rake``, ``estimate`` for every question and grouping, then
``protect_table`` on every proportion's grade x sex table); R runs ``svydesign``, ``rake``,
``svyciprop``/``svymean`` and ``svyby`` on the same CSV in the same run. Both run on one core
(this process and its R child are pinned to one CPU, BLAS threads off) and are timed in CPU
seconds (``time.process_time``; R's ``proc.time`` user + system), so other load on a shared
machine does not distort the ratio; from data already in memory (R's ``read.csv`` and our data
generation are outside the timings). The bench also checks that both give
the same numbers (largest difference printed).

Sections and targets (exit status 1 when one is missed):

- 4,012 responses, every question: ours < 2 s, and ours at least as fast as R;
- 400,000 responses: ours on every question, R on ``--r-questions`` of them (default 1: R needs
  over two minutes per question at this size, even through svymean), the ratio on the same
  questions;
- 4,000,000 responses, ours alone, in a child process: peak RSS < 4 GiB;
- extra sections registered in ``SECTIONS`` (the class-session load test of the prevention app
  adds itself from ``bench/bench_stats_class.py`` when that module exists).

    .venv/bin/python bench/bench_stats.py [--sizes 4012,400000] [--big 4000000] [--r-questions 1]
"""

from __future__ import annotations

import os

# one core: no BLAS/OpenMP thread pools in this process or in R
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import csv  # noqa: E402
import importlib.util  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import shutil  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from anshim import stats  # noqa: E402

GROUPINGS: tuple[tuple[str, ...], ...] = (
    ("grade",),
    ("sex",),
    ("level",),
    ("level", "sex"),
    ("level", "grade", "sex"),
)
LEVELS = ("elementary", "middle", "high")
DISTRICTS = 5


@dataclass
class Target:
    """One printed target: met or missed."""

    name: str
    value: str
    met: bool


# Extra sections: callables taking the parsed arguments and returning their targets.
SECTIONS: list[Callable[[argparse.Namespace], list[Target]]] = []


@dataclass
class Question:
    name: str
    kind: str  # "proportion" | "mean"
    prevalence: float  # proportions: the share answering 1; means: the mean
    among: str | None = None  # skip logic: asked only of those answering 1 to this question


# Shaped like the center's survey (issue 13): exposure, types among the exposed, reactions...
QUESTIONS: tuple[Question, ...] = (
    Question("exposed", "proportion", 0.213),
    Question("received_images", "proportion", 0.564, "exposed"),
    Question("persistent_requests", "proportion", 0.272, "exposed"),
    Question("distribution_threat", "proportion", 0.048, "exposed"),
    Question("paid_requests", "proportion", 0.043, "exposed"),
    Question("no_action", "proportion", 0.275, "exposed"),
    Question("blocked", "proportion", 0.259, "exposed"),
    Question("stopped_service", "proportion", 0.15, "exposed"),
    Question("reason_no_information", "proportion", 0.785, "no_action"),
    Question("reason_distrust", "proportion", 0.117, "no_action"),
    Question("wants_deletion", "proportion", 0.38),
    Question("knows_hotline", "proportion", 0.31),
    Question("told_adult", "proportion", 0.42, "exposed"),
    Question("uses_sns_daily", "proportion", 0.81),
    Question("met_online_friend", "proportion", 0.12),
    Question("shared_photo", "proportion", 0.09),
    Question("saw_deepfake", "proportion", 0.17),
    Question("bystander_helped", "proportion", 0.22),
    Question("knowledge_score", "mean", 62.0),
    Question("attitude_score", "mean", 3.6),
    Question("hours_online", "mean", 4.1),
    Question("safety_confidence", "mean", 3.2),
)


def make_survey(n: int, seed: int = 13) -> dict[str, np.ndarray]:
    """A fictitious two-stage school sample of about ``n`` students (benign numbers only)."""
    rng = np.random.default_rng(seed)
    schools_per_stratum = max(2, round(n / 67 / (len(LEVELS) * DISTRICTS)))
    n_schools = len(LEVELS) * DISTRICTS * schools_per_stratum
    school = rng.integers(0, n_schools, n)
    stratum = school // schools_per_stratum  # level-major: stratum = level * DISTRICTS + district
    level_code = stratum // DISTRICTS
    lo = np.array([4, 7, 10])[level_code]
    hi = np.array([6, 9, 12])[level_code]
    grade = rng.integers(lo, hi + 1)
    sex = np.where(rng.random(n) < 0.49, "F", "M")
    # selection: schools with unequal probabilities, classes within; non-response adjusted
    p_school = rng.uniform(0.05, 0.3, n_schools)[school]
    p_class = rng.uniform(0.2, 0.6, n_schools)[school]
    w = stats.base_weights(p_school * p_class) * rng.uniform(1.0, 1.3, n_schools)[school]
    school_effect = rng.normal(0, 0.35, n_schools)[school]
    data: dict[str, np.ndarray] = {
        "stratum": stratum,
        "school": school,
        "w": np.round(w, 4),
        "grade": grade,
        "sex": sex,
        "level": np.array(LEVELS)[level_code],
    }
    female = (sex == "F").astype(float)
    for q in QUESTIONS:
        if q.kind == "proportion":
            lin = np.log(q.prevalence / (1 - q.prevalence)) + school_effect
            lin = lin + 0.15 * (grade - 8) / 4 + 0.2 * (female - 0.5)
            col = (rng.random(n) < 1 / (1 + np.exp(-lin))).astype(np.float64)
        else:
            col = np.round(q.prevalence * (1 + 0.15 * school_effect + rng.normal(0, 0.2, n)), 2)
        if q.among is not None:
            col[data[q.among] != 1] = np.nan
        data[q.name] = col
    return data


def margins(data: dict[str, np.ndarray]) -> tuple[dict[str, int], dict[str, int]]:
    """Known population totals by grade and by sex: the weighted totals, tilted (so raking moves
    the weights), consistent with each other."""
    w = data["w"]
    grade_tot = {str(g): float(w[data["grade"] == g].sum()) for g in range(4, 13)}
    total = sum(grade_tot.values())
    tilt = {g: 1.0 + 0.04 * (int(g) - 8) for g in grade_tot}
    scale = total / sum(v * tilt[g] for g, v in grade_tot.items())
    grade_pop = {g: round(v * tilt[g] * scale) for g, v in grade_tot.items()}
    total = sum(grade_pop.values())
    f = round(0.487 * total)
    return grade_pop, {"F": f, "M": total - f}


def our_report(data: dict[str, np.ndarray], questions: tuple[Question, ...]) -> tuple[float, dict]:
    """The report's statistics through anshim.stats; seconds and {key: (estimate, se)}."""
    grade_pop, sex_pop = margins(data)
    t0 = time.process_time()
    design = stats.make_design(data["w"], strata=data["stratum"], psu=data["school"])
    design = stats.rake(design, [(data["grade"], grade_pop), (data["sex"], sex_pop)])
    domains = [stats.make_domains({c: data[c] for c in g}, design.n) for g in GROUPINGS]
    out: dict[str, tuple[float, float]] = {}
    for q in questions:
        kind = "proportion" if q.kind == "proportion" else "mean"
        rows = stats.estimate(design, data[q.name], kind=kind, name=q.name)  # type: ignore[arg-type]
        for grouping, doms in zip(GROUPINGS, domains, strict=True):
            rows += stats.estimate(design, data[q.name], by=doms, kind=kind, overall=False)  # type: ignore[arg-type]
            if grouping == ("level", "grade", "sex") and kind == "proportion":
                _protect(rows[-len(doms) :])
        for e in rows:
            key = q.name + "|" + ",".join(f"{k}={v}" for k, v in sorted(e.by.items()))
            out[key] = (e.estimate, e.se)
    return time.process_time() - t0, out


def _protect(rows: list[stats.Estimate]) -> None:
    """Disclosure control of a question's grade x sex table (numerators and denominators)."""
    grades = sorted({int(e.by["grade"]) for e in rows})
    num = np.zeros((len(grades), 2))
    den = np.zeros((len(grades), 2))
    for e in rows:
        i, j = grades.index(int(e.by["grade"])), ("F", "M").index(e.by["sex"])
        num[i, j] += e.numerator or 0
        den[i, j] += e.n
    t = stats.protect_table(num, den)
    assert stats.derivable_cells(t.numerators, t.suppressed) == []


R_SCRIPT = r"""
suppressPackageStartupMessages(library(survey))
args <- commandArgs(TRUE)
d <- read.csv(args[1], colClasses = c(grade = "character", sex = "character",
                                       level = "character"))
qs <- strsplit(args[3], ",")[[1]]
kinds <- strsplit(args[4], ",")[[1]]
pg <- read.csv(args[5], colClasses = c(grade = "character"))
ps <- read.csv(args[6], colClasses = c(sex = "character"))
# "ciprop": proportions through svyciprop(method = "logit") as an analyst writes it; "fast":
# through svymean (the same estimate and SE without the logit CI, no GLM fit per domain)
mode <- args[7]
groupings <- list(~grade, ~sex, ~level, ~level + sex, ~level + grade + sex)
gnames <- list("grade", "sex", "level", c("level", "sex"), c("level", "grade", "sex"))
keys <- character(0); ests <- numeric(0); ses <- numeric(0)
cpu <- function() { t <- proc.time(); t[["user.self"]] + t[["sys.self"]] }
t0 <- cpu()
des <- svydesign(ids = ~school, strata = ~stratum, weights = ~w, nest = TRUE, data = d)
des <- rake(des, list(~grade, ~sex), list(pg, ps))
for (k in seq_along(qs)) {
  q <- qs[k]
  f <- as.formula(paste0("~", q))
  sub <- des[!is.na(d[[q]]), ]
  if (kinds[k] == "proportion" && mode == "ciprop") {
    p <- svyciprop(f, sub, method = "logit", na.rm = TRUE)
    keys <- c(keys, paste0(q, "|")); ests <- c(ests, as.vector(p)); ses <- c(ses, SE(p))
  } else {
    m <- svymean(f, sub, na.rm = TRUE)
    keys <- c(keys, paste0(q, "|")); ests <- c(ests, coef(m)); ses <- c(ses, SE(m))
  }
  for (g in seq_along(groupings)) {
    if (kinds[k] == "proportion" && mode == "ciprop") {
      b <- svyby(f, groupings[[g]], sub, svyciprop, method = "logit",
                 vartype = c("se", "ci"), na.rm = TRUE)
    } else {
      b <- svyby(f, groupings[[g]], sub, svymean, vartype = c("se", "ci"), na.rm = TRUE)
    }
    nm <- sort(gnames[[g]])
    lab <- do.call(paste, c(lapply(nm, function(v) paste0(v, "=", b[[v]])), sep = ","))
    keys <- c(keys, paste0(q, "|", lab)); ests <- c(ests, b[[q]]); ses <- c(ses, SE(b))
  }
}
elapsed <- cpu() - t0
write.csv(data.frame(key = keys, estimate = ests, se = ses), args[2], row.names = FALSE)
cat(sprintf("%.6f\n", elapsed))
"""


def write_csv(data: dict[str, np.ndarray], path: Path, questions: tuple[Question, ...]) -> None:
    cols = ["stratum", "school", "w", "grade", "sex", "level", *[q.name for q in questions]]
    arrays = [data[c].tolist() for c in cols]
    with path.open("w", newline="") as fh:
        wr = csv.writer(fh)
        wr.writerow(cols)
        for row in zip(*arrays, strict=True):
            wr.writerow(["" if isinstance(v, float) and v != v else v for v in row])


def r_report(
    data: dict[str, np.ndarray], questions: tuple[Question, ...], tmp: Path, mode: str = "ciprop"
) -> tuple[float, dict[str, tuple[float, float]]]:
    """R's survey on the same data; seconds (measured inside R) and its estimates."""
    write_csv(data, tmp / "data.csv", questions)
    grade_pop, sex_pop = margins(data)
    with (tmp / "pg.csv").open("w") as fh:
        fh.write("grade,Freq\n" + "".join(f"{k},{v!r}\n" for k, v in grade_pop.items()))
    with (tmp / "ps.csv").open("w") as fh:
        fh.write("sex,Freq\n" + "".join(f"{k},{v!r}\n" for k, v in sex_pop.items()))
    proc = subprocess.run(
        [
            "Rscript", "--vanilla", "-e", R_SCRIPT, str(tmp / "data.csv"), str(tmp / "r.csv"),
            ",".join(q.name for q in questions), ",".join(q.kind for q in questions),
            str(tmp / "pg.csv"), str(tmp / "ps.csv"), mode,
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"Rscript failed: {proc.stderr[-3000:]}")
    seconds = float(proc.stdout.strip().splitlines()[-1])
    res: dict[str, tuple[float, float]] = {}
    with (tmp / "r.csv").open(newline="") as fh:
        for row in csv.DictReader(fh):
            if row["estimate"] != "NA":
                res[row["key"]] = (float(row["estimate"]), float(row["se"]))
    return seconds, res


def compare(ours: dict[str, tuple[float, float]], ref: dict[str, tuple[float, float]]) -> str:
    """Largest differences over the estimates both produced. R's svyciprop sometimes returns 0
    with a [0, 0] CI on a domain of a calibrated design (its GLM diverges on the zero-weight rows
    a calibrated subset keeps: coefficient about -3e15, reported as converged) while svymean on
    the same domain gives our estimate; those are counted, not compared."""
    common = sorted(ref.keys() & ours.keys())
    diverged = [k for k in common if ref[k][0] in (0.0, 1.0) and abs(ours[k][0] - ref[k][0]) > 1e-6]
    ok = [k for k in common if k not in set(diverged)]
    de = max(abs(ours[k][0] - ref[k][0]) for k in ok)
    ds = max(abs(ours[k][1] - ref[k][1]) for k in common)
    missing = len(ref.keys() - ours.keys())
    text = f"{len(ok)} estimates agree with R to {de:.1e}, {len(common)} SEs to {ds:.1e}"
    if diverged:
        text += f"; {len(diverged)} where R's svyciprop GLM diverged (R: 0, svymean: ours)"
    if missing:
        text += f"; {missing} of R's not produced"
    return text


def _best_of(k: int, fn: Callable[[], tuple[float, dict]]) -> tuple[float, dict]:
    best: tuple[float, dict] | None = None
    for _ in range(k):
        r = fn()
        if best is None or r[0] < best[0]:
            best = r
    assert best is not None
    return best


def size_section(n_target: int, args: argparse.Namespace, tmp: Path) -> list[Target]:
    data = make_survey(n_target)
    n = data["w"].shape[0]
    targets: list[Target] = []
    print(f"\n== {n:,} responses, {len(QUESTIONS)} questions x {1 + len(GROUPINGS)} groupings ==")
    ours_all, ours_est = _best_of(3 if n < 100_000 else 1, lambda: our_report(data, QUESTIONS))
    print(f"anshim.stats: {ours_all:.3f} CPU s for {len(ours_est):,} estimates (all questions)")
    r_qs = QUESTIONS if n < 100_000 else _r_subset(args.r_questions)
    if shutil.which("Rscript") is None:
        print("R (Rscript) not installed: apt-get install r-base-core r-cran-survey")
        targets.append(Target(f"R reference at {n:,}", "R missing", False))
        return targets
    # the analyst's way (svyciprop, a GLM per domain) where it finishes in minutes, and the
    # fastest equivalent (svymean: same estimates and SEs, no logit CI) everywhere
    modes = ("ciprop", "fast") if n < 100_000 else ("fast",)
    ours_sub = ours_all if r_qs == QUESTIONS else our_report(data, r_qs)[0]
    fastest_r = float("inf")
    for mode in modes:
        r_s, r_est = r_report(data, r_qs, tmp, mode)
        fastest_r = min(fastest_r, r_s)
        how = "svyciprop + svymean" if mode == "ciprop" else "svymean only, no logit CIs"
        print(f"R survey ({how}): {r_s:.3f} CPU s for {len(r_est):,} estimates "
              f"({len(r_qs)} questions); R / ours {r_s / ours_sub:.1f}x")  # fmt: skip
        print("  " + compare(ours_est, r_est))
    if n < 100_000:
        targets.append(Target(f"whole report at {n:,} < 2 s (one core)", f"{ours_all:.3f} CPU s",
                              ours_all < 2.0))  # fmt: skip
    targets.append(Target(f"at least as fast as R's fastest at {n:,}",
                          f"{fastest_r / ours_sub:.1f}x", ours_sub <= fastest_r))  # fmt: skip
    return targets


def _r_subset(k: int) -> tuple[Question, ...]:
    props = [q for q in QUESTIONS if q.kind == "proportion"]
    means = [q for q in QUESTIONS if q.kind == "mean"]
    picked = props[: max(1, k - 1)] + means[:1]
    return tuple(picked[:k]) if k >= 1 else tuple(picked[:1])


def big_worker(n: int) -> None:
    """Child process: the whole report on ``n`` responses; prints JSON with time and peak RSS."""
    t0 = time.perf_counter()
    data = make_survey(n)
    gen = time.perf_counter() - t0
    seconds, est = our_report(data, QUESTIONS)
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"n": int(data["w"].shape[0]), "generate_s": gen, "report_cpu_s": seconds,
                      "estimates": len(est), "peak_rss_mb": peak_kb / 1024}))  # fmt: skip


def big_section(n: int) -> list[Target]:
    print(f"\n== {n:,} responses, ours alone, in a child process ==")
    proc = subprocess.run(
        [sys.executable, __file__, "--worker-big", str(n)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        print(proc.stderr[-3000:])
        return [Target(f"{n:,} responses within 4 GiB", "failed", False)]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"data generated in {r['generate_s']:.1f} s; report: {r['report_cpu_s']:.1f} CPU s for "
          f"{r['estimates']:,} estimates; peak RSS {r['peak_rss_mb']:,.0f} MiB")  # fmt: skip
    return [Target(f"{r['n']:,} responses within 4 GiB", f"{r['peak_rss_mb']:,.0f} MiB",
                   r["peak_rss_mb"] < 4096)]  # fmt: skip


def _register_extra_sections() -> None:
    """bench/bench_stats_class.py (the prevention app's class-session load test), if present,
    adds itself: it defines ``section(args) -> list[Target]``."""
    path = Path(__file__).with_name("bench_stats_class.py")
    if not path.exists():
        return
    spec = importlib.util.spec_from_file_location("bench_stats_class", path)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod  # dataclasses look their module up while it loads
    spec.loader.exec_module(mod)
    SECTIONS.append(mod.section)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--sizes", default="4012,400000", help="responses per compared section")
    p.add_argument("--big", type=int, default=4_000_000, help="ours alone (0: skip)")
    p.add_argument("--r-questions", type=int, default=1, help="questions R runs at >= 100,000")
    p.add_argument("--cpu", type=int, default=None, help="the core to pin to (default: first)")
    p.add_argument("--no-extra", action="store_true", help="skip the registered extra sections")
    p.add_argument("--worker-big", type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    cpus = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {args.cpu if args.cpu is not None else cpus[0]})
    if args.worker_big is not None:
        big_worker(args.worker_big)
        return 0
    targets: list[Target] = []
    with tempfile.TemporaryDirectory(prefix="bench-stats-") as tmp:
        for size in (int(s) for s in args.sizes.split(",") if s):
            targets += size_section(size, args, Path(tmp))
    if args.big:
        targets += big_section(args.big)
    if not args.no_extra:
        _register_extra_sections()
        for section in SECTIONS:
            targets += section(args)
    print("\n== targets ==")
    for t in targets:
        print(f"{'met ' if t.met else 'MISSED'}  {t.name}: {t.value}")
    return 0 if all(t.met for t in targets) else 1


if __name__ == "__main__":
    sys.exit(main())
