"""``anshim stats``: design-based estimates from a CSV file, for analysts and for checks.

``anshim stats estimate --data FILE.csv --var COLUMN --weight COLUMN [--strata COLUMN]
[--psu COLUMN] [--by COLUMN[,COLUMN...]] [--json]``

With ``--json``: one JSON object a line, the overall row first (``"by": {}``), then one per
domain: ``{"by": {...}, "n": ..., "estimate": ..., "se": ..., "ci_low": ..., "ci_high": ...,
"suppressed": false}``; a suppressed row (disclosure control: unweighted denominator under 30 or
numerator 1-9) is ``{"by": {...}, "n": ..., "suppressed": true}``. Without it a readable table.
Exit status 0, or 2 with a message naming the problem for any bad input (never a traceback).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from typing import TextIO

import numpy as np

from .design import as_float_column, make_design
from .disclosure import DEFAULT_RULE, DisclosureRule
from .errors import MissingColumnError, StatsError, StatsInputError
from .estimate import Estimate, estimate

__all__ = ["main"]


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors through the caller's stderr with status 2."""

    def __init__(self, *args: object, err: TextIO, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self._err = err

    def _print_message(self, message: str, file: object = None) -> None:
        if message:
            (self._err if file is sys.stderr else sys.stdout).write(message)


def _parser(err: TextIO) -> argparse.ArgumentParser:
    p = _Parser(prog="anshim stats", description="Survey statistics.", err=err)
    sub = p.add_subparsers(dest="command", required=True, parser_class=_Parser)
    e = sub.add_parser(
        "estimate",
        help="weighted proportion (0/1 variable) or mean, overall and by groups",
        description=(
            "Weighted proportion (a 0/1 variable; logit CI as R's svyciprop) or mean, with "
            "Taylor-linearised SEs for PSUs sampled with replacement within strata (R survey's "
            "svydesign(ids=~psu, strata=~strata, weights=~w, nest=TRUE)). Empty cells of --var "
            "are missing answers and left out."
        ),
        err=err,
    )
    e.add_argument("--data", required=True, metavar="FILE.csv", help="CSV with a header row")
    e.add_argument("--var", required=True, metavar="COLUMN", help="the variable to estimate")
    e.add_argument("--weight", required=True, metavar="COLUMN", help="the survey weight")
    e.add_argument("--strata", metavar="COLUMN", help="stratum of each response")
    e.add_argument("--psu", metavar="COLUMN", help="primary sampling unit (e.g. school)")
    e.add_argument("--by", metavar="COLUMN[,COLUMN...]", help="domains: one row per combination")
    e.add_argument("--json", action="store_true", help="one JSON object a line")
    e.add_argument(
        "--min-denominator",
        type=int,
        default=DEFAULT_RULE.min_denominator,
        help="suppress estimates of fewer responses (default %(default)s)",
    )
    e.add_argument(
        "--max-small-numerator",
        type=int,
        default=DEFAULT_RULE.max_small_numerator,
        help="suppress proportions with 1..N responses of 1 (default %(default)s; 0: off)",
    )
    return p


def _read_csv(path: str, wanted: list[str]) -> dict[str, list[str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if header is None:
                raise StatsInputError(f"{path} is empty")
            header = [h.strip() for h in header]
            for col in wanted:
                if col not in header:
                    raise MissingColumnError(
                        f"no column {col!r} in {path} (columns: {', '.join(header[:30])})"
                    )
            if len(set(header)) != len(header):
                dup = sorted({h for h in header if header.count(h) > 1})
                if set(dup) & set(wanted):
                    raise StatsInputError(f"column(s) {', '.join(dup)} appear twice in {path}")
            idx = {col: header.index(col) for col in wanted}
            cols: dict[str, list[str]] = {col: [] for col in wanted}
            for line_no, row in enumerate(reader, start=2):
                if not row:
                    continue
                if len(row) < len(header):
                    raise StatsInputError(
                        f"{path} line {line_no} has {len(row)} fields, the header {len(header)}"
                    )
                for col, k in idx.items():
                    cols[col].append(row[k].strip())
    except OSError as exc:
        raise StatsInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise StatsInputError(f"{path} is not UTF-8 text (save the CSV as UTF-8)") from None
    except csv.Error as exc:
        raise StatsInputError(f"{path} is not valid CSV: {exc}") from None
    if not cols[wanted[0]]:
        raise StatsInputError(f"{path} has a header but no data rows")
    return cols


def _label_column(values: list[str], name: str) -> np.ndarray:
    blank = [k for k, v in enumerate(values) if v == ""]
    if blank:
        raise StatsInputError(f"column {name!r} is empty on data row {blank[0] + 1}")
    return np.asarray(values)


def run_estimate(args: argparse.Namespace) -> list[tuple[Estimate, bool]]:
    """Read the CSV and estimate; each estimate with whether disclosure control hides it."""
    by_cols = [c.strip() for c in args.by.split(",") if c.strip()] if args.by else []
    if args.by is not None and not by_cols:
        raise StatsInputError("--by names no column")
    wanted = [args.var, args.weight]
    for c in (args.strata, args.psu, *by_cols):
        if c and c not in wanted:
            wanted.append(c)
    cols = _read_csv(args.data, wanted)
    weight_values = cols[args.weight]
    w = as_float_column(weight_values, name=f"weight column {args.weight!r}")
    missing_w = np.flatnonzero(np.isnan(w))
    if missing_w.size:
        raise StatsInputError(
            f"weight column {args.weight!r} is empty on data row {int(missing_w[0]) + 1}"
        )
    rule = DisclosureRule(
        min_denominator=args.min_denominator, max_small_numerator=args.max_small_numerator
    )
    try:
        design = make_design(
            w,
            strata=None if args.strata is None else _label_column(cols[args.strata], args.strata),
            psu=None if args.psu is None else _label_column(cols[args.psu], args.psu),
        )
    except StatsInputError as exc:
        if exc.message.startswith("weights"):
            raise StatsInputError(f"weight column {args.weight!r}: {exc.message}") from None
        raise
    # an empty group label is an unanswered grouping question: in the overall row, in no group
    by = {c: np.asarray(cols[c]) for c in by_cols}
    rows = estimate(
        design,
        as_float_column(cols[args.var], name=f"column {args.var!r}"),
        by=by or None,
        name=f"column {args.var!r}",
    )
    return [(e, rule.suppressed(e.n, e.numerator)) for e in rows]


def _json_line(e: Estimate, suppressed: bool) -> str:
    row: dict[str, object] = {"by": e.by, "n": e.n}
    if not suppressed:
        row.update(
            estimate=e.estimate, se=e.se, ci_low=e.ci_low, ci_high=e.ci_high, suppressed=False
        )
    else:
        row["suppressed"] = True
    return json.dumps(row, ensure_ascii=False)


def _table(rows: list[tuple[Estimate, bool]], by_cols: list[str], out: TextIO) -> None:
    kind = rows[0][0].kind if rows else "mean"
    head = [*by_cols, "n", "proportion" if kind == "proportion" else "mean", "SE", "95% CI", ""]
    body: list[list[str]] = []
    for e, sup in rows:
        labels = [e.by.get(c, "(all)") for c in by_cols]
        if sup:
            body.append([*labels, str(e.n), "suppressed", "", "", ""])
            continue
        flag = {"ok": "", "caution": "RSE > 0.30: caution", "not_shown": "RSE > 0.50: unreliable"}
        body.append(
            [
                *labels,
                str(e.n),
                f"{e.estimate:.4f}",
                f"{e.se:.4f}",
                f"[{e.ci_low:.4f}, {e.ci_high:.4f}]",
                flag[e.rse_flag],
            ]
        )
    widths = [max(len(r[k]) for r in [head, *body]) for k in range(len(head))]
    for r in [head, *body]:
        out.write("  ".join(v.ljust(wd) for v, wd in zip(r, widths, strict=True)).rstrip() + "\n")


def main(argv: list[str], *, stdout: TextIO | None = None, stderr: TextIO | None = None) -> int:
    """Run ``anshim stats`` with ``argv`` (without the word "stats"); return the exit status."""
    out = stdout if stdout is not None else sys.stdout
    err = stderr if stderr is not None else sys.stderr
    try:
        args = _parser(err).parse_args(argv)
    except SystemExit as exc:
        return int(exc.code) if isinstance(exc.code, int) else 2
    try:
        rows = run_estimate(args)
    except StatsError as exc:
        err.write(f"anshim stats estimate: error: {exc.message}\n")
        return 2
    if args.json:
        for e, sup in rows:
            out.write(_json_line(e, sup) + "\n")
    else:
        by_cols = [c.strip() for c in args.by.split(",") if c.strip()] if args.by else []
        _table(rows, by_cols, out)
    out.flush()
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
