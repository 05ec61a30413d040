"""Anshim's statistics engine (no Django): design-based survey estimates, survey weights,
paired pre/post analysis and disclosure control, as pure functions over numpy arrays.

Typical use (a survey report)::

    from anshim import stats

    design = stats.make_design(weights, strata=school_level, psu=school_id)
    design = stats.rake(design, [(grade, grade_totals), (sex, sex_totals)])
    rows = stats.estimate(design, exposed, by={"grade": grade, "sex": sex})
    for e in rows:
        if stats.DEFAULT_RULE.suppressed(e.n, e.numerator):
            ...  # blank it
        e.estimate, e.se, e.ci_low, e.ci_high, e.rse_flag

Tables published with margins go through :func:`protect_table` (primary + secondary
suppression) and can be proved safe with :func:`derivable_cells`. Errors are
:class:`StatsInputError` (a ``ValueError``) or subclasses, each naming the problem.
"""

from __future__ import annotations

from .codes import is_scheme_code, make_code, normalise_code
from .design import CalibrationStage, Design, factorize, make_design
from .disclosure import (
    DEFAULT_RULE,
    DisclosureRule,
    TableSuppression,
    derivable_cells,
    primary_suppression,
    protect_table,
    secondary_suppression,
    with_margins,
)
from .errors import (
    CalibrationError,
    MissingColumnError,
    SingletonStratumError,
    StatsError,
    StatsInputError,
)
from .estimate import (
    CAUTION_RSE,
    NOT_SHOWN_RSE,
    Domains,
    Estimate,
    estimate,
    estimate_columns,
    make_domains,
    mean,
    prevalence,
)
from .paired import Linkage, PairedReport, PairedResult, link_waves, paired_analysis
from .weights import (
    ResponseRates,
    base_weights,
    nonresponse_adjust,
    post_stratify,
    rake,
    response_rates,
)

__all__ = [
    "CAUTION_RSE",
    "DEFAULT_RULE",
    "NOT_SHOWN_RSE",
    "CalibrationError",
    "CalibrationStage",
    "Design",
    "DisclosureRule",
    "Domains",
    "Estimate",
    "Linkage",
    "MissingColumnError",
    "PairedReport",
    "PairedResult",
    "ResponseRates",
    "SingletonStratumError",
    "StatsError",
    "StatsInputError",
    "TableSuppression",
    "base_weights",
    "derivable_cells",
    "estimate",
    "estimate_columns",
    "factorize",
    "is_scheme_code",
    "link_waves",
    "make_code",
    "make_design",
    "make_domains",
    "mean",
    "nonresponse_adjust",
    "normalise_code",
    "paired_analysis",
    "post_stratify",
    "prevalence",
    "primary_suppression",
    "protect_table",
    "rake",
    "response_rates",
    "secondary_suppression",
    "with_margins",
]
