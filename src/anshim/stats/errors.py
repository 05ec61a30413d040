"""Typed errors raised by the statistics engine.

Every error names the problem (the column, the stratum, the value) in words an analyst can act
on; the CLI prints the message and exits with status 2.
"""

from __future__ import annotations


class StatsError(Exception):
    """Base class of every error the statistics engine raises."""

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else type(self).__name__


class StatsInputError(StatsError, ValueError):
    """Input data are unusable: wrong shape, a non-numeric or negative weight, a missing column."""


class SingletonStratumError(StatsInputError):
    """A stratum has a single PSU, so its variance cannot be estimated (R survey's default
    ``options(survey.lonely.psu = "fail")``: "Stratum (X) has only one PSU at stage 1")."""

    def __init__(self, strata: list[str]) -> None:
        self.strata = strata
        shown = ", ".join(repr(s) for s in strata[:10]) + (" ..." if len(strata) > 10 else "")
        what = f"stratum {shown} has" if len(strata) == 1 else f"strata {shown} have"
        super().__init__(
            f"{what} only one PSU, so no design-based variance (as R survey's default "
            "survey.lonely.psu='fail'): merge it with a similar stratum or sample a second PSU"
        )


class CalibrationError(StatsInputError):
    """Post-stratification or raking cannot be done: a sample cell absent from the population
    totals, a population cell with no respondents, or a non-positive total."""


class MissingColumnError(StatsInputError):
    """A column named on the command line (or in a call) is not in the data."""
