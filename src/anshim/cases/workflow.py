"""The case workflow: which statuses a case moves through, which moves are allowed, and which
actions elsewhere imply a move. The one home of these rules (no Django models here; the domain
actions that perform moves are in `anshim.cases.transitions`).

The default is the center's workflow (new → triaged → in support → erasure ongoing → closing →
closed, reopenable). A center may change it with the ``ANSHIM_CASE_WORKFLOW`` setting: a dict
whose keys ("transitions", "implied", "reopen_to") replace the default's; "implied" is merged
per event. The result is checked when Django starts (`check_configured`, from the app's
ready()), so a broken graph stops the server with a message that says what is wrong instead of
stranding cases at run time.

Fixed by design, whatever the setting says: the statuses are `CaseStatus` values (code and
reports rely on them); a case reaches "closed" only from "closing", with a supervisor's
approval; a rejected closure returns the case to the status it was in before "closing"; and a
closed case leaves "closed" only by a reopen with a reason.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed
from django.dispatch import receiver

from anshim.cases.models import CaseStatus

SETTING = "ANSHIM_CASE_WORKFLOW"


class Implied(StrEnum):
    """Actions elsewhere that imply a status move (the keys of the "implied" table)."""

    TRIAGE_DONE = "triage_done"  # a risk assessment was made
    SUPPORT_STARTED = "support_started"  # a referral, an expert assignment or an appointment
    ERASURE_STARTED = "erasure_started"  # a sighting confirmed or a takedown notice drafted


#: Statuses with fixed meaning (see the module docstring).
CLOSING = CaseStatus.CLOSING.value
CLOSED = CaseStatus.CLOSED.value
NEW = CaseStatus.NEW.value

DEFAULT_WORKFLOW: dict[str, Any] = {
    # status -> the statuses a counselor may move it to by hand ("closing" = ask a supervisor
    # to close; "closing" -> "closed" is the supervisor's approval).
    "transitions": {
        "new": ["triaged", "in_support", "erasure", "closing"],
        "triaged": ["in_support", "erasure", "on_hold", "closing"],
        "in_support": ["erasure", "on_hold", "closing"],
        "erasure": ["in_support", "on_hold", "closing"],
        "on_hold": ["in_support", "erasure", "closing"],
        "closing": ["closed"],
        "closed": [],
    },
    # event -> the statuses it moves a case from, and where to. A case in any other status
    # stays put (an implied move never skips back, cancels a closure request or reopens).
    "implied": {
        "triage_done": {"from": ["new"], "to": "triaged"},
        "support_started": {"from": ["new", "triaged", "on_hold"], "to": "in_support"},
        "erasure_started": {"from": ["new", "triaged", "in_support", "on_hold"],
                            "to": "erasure"},
    },
    # Where a reopened case may go.
    "reopen_to": ["in_support", "triaged"],
}


@dataclass(frozen=True)
class ImpliedMove:
    from_statuses: frozenset[str]
    to: str


@dataclass(frozen=True)
class Workflow:
    transitions: Mapping[str, tuple[str, ...]]
    implied: Mapping[Implied, ImpliedMove]
    reopen_to: tuple[str, ...]

    @property
    def statuses(self) -> list[str]:
        """The statuses in use, in `CaseStatus` order."""
        used = set(self.transitions) | {t for ts in self.transitions.values() for t in ts}
        return [s for s in CaseStatus.values if s in used]

    def manual_moves(self, status: str) -> tuple[str, ...]:
        """Where a counselor may move a case in `status` by hand ("closing" included: that is
        the closure request). A closed case has none: it is reopened instead; a closing one
        has none either: a supervisor decides."""
        if status in (CLOSING, CLOSED):
            return ()
        return self.transitions.get(status, ())

    def allows(self, from_status: str, to_status: str) -> bool:
        return to_status in self.manual_moves(from_status)

    def implied_target(self, event: Implied, status: str) -> str | None:
        move = self.implied.get(event)
        if move is None or status not in move.from_statuses or move.to == status:
            return None
        return move.to


def _merged(override: Mapping[str, Any] | None) -> dict[str, Any]:
    config = {k: v for k, v in DEFAULT_WORKFLOW.items()}
    if not override:
        return config
    if not isinstance(override, Mapping):
        raise ImproperlyConfigured(f"{SETTING} must be a dict, not {type(override).__name__}.")
    for key, value in override.items():
        if key == "implied" and isinstance(value, Mapping):
            config["implied"] = {**DEFAULT_WORKFLOW["implied"], **value}
        else:
            config[key] = value
    return config


def build(override: Mapping[str, Any] | None = None) -> Workflow:
    """The workflow from the default and `override`; ImproperlyConfigured listing every
    problem when the graph is not a usable workflow."""
    config = _merged(override)
    problems: list[str] = []
    known = set(CaseStatus.values)
    unknown_keys = set(config) - set(DEFAULT_WORKFLOW)
    if unknown_keys:
        problems.append(f"unknown keys {sorted(unknown_keys)} (use {sorted(DEFAULT_WORKFLOW)})")

    raw_transitions = config.get("transitions")
    transitions: dict[str, tuple[str, ...]] = {}
    if not isinstance(raw_transitions, Mapping):
        problems.append('"transitions" must map each status to a list of statuses')
    else:
        for source, targets in raw_transitions.items():
            if source not in known:
                problems.append(f'unknown status "{source}" (known: {", ".join(sorted(known))})')
                continue
            if isinstance(targets, str) or not isinstance(targets, list | tuple):
                problems.append(f'"{source}": the moves must be a list of statuses')
                continue
            for t in targets:
                if t not in known:
                    problems.append(f'"{source}" -> unknown status "{t}"')
            transitions[source] = tuple(dict.fromkeys(t for t in targets if t in known))
        for required in (NEW, CLOSING, CLOSED):
            if required not in transitions:
                problems.append(f'"transitions" must list "{required}"')
        for source, targets in transitions.items():
            if source in targets:
                problems.append(f'"{source}" may not move to itself')
            if CLOSED in targets and source != CLOSING:
                problems.append(f'"{source}" -> "closed": a case is closed only from "closing", '
                                "with a supervisor's approval")
        if CLOSING in transitions and transitions[CLOSING] != (CLOSED,):
            problems.append('"closing" must move to ["closed"] only (a rejection returns the '
                            "case to where it was)")
        if transitions.get(CLOSED):
            problems.append('"closed" must have no moves (a closed case is reopened instead)')
        for target in {t for ts in transitions.values() for t in ts}:
            transitions.setdefault(target, ())
        problems += _reachability_problems(transitions)

    implied: dict[Implied, ImpliedMove] = {}
    raw_implied = config.get("implied")
    if not isinstance(raw_implied, Mapping):
        problems.append('"implied" must map events to {"from": [...], "to": status}')
    else:
        for name, spec in raw_implied.items():
            try:
                event = Implied(name)
            except ValueError:
                problems.append(f'unknown implied event "{name}" '
                                f"(known: {', '.join(e.value for e in Implied)})")
                continue
            if not isinstance(spec, Mapping) or set(spec) != {"from", "to"}:
                problems.append(f'"{name}" must be {{"from": [statuses], "to": status}}')
                continue
            froms, to = spec["from"], spec["to"]
            if isinstance(froms, str) or not isinstance(froms, list | tuple):
                problems.append(f'"{name}": "from" must be a list of statuses')
                continue
            for f in froms:
                if f in (CLOSING, CLOSED):
                    problems.append(f'"{name}" may not move a case out of "{f}"')
                elif transitions and to not in transitions.get(f, ()):
                    problems.append(f'"{name}": "{f}" -> "{to}" is not an allowed move')
            if to in (CLOSING, CLOSED) or to not in known:
                problems.append(f'"{name}" may not move a case to "{to}"')
            implied[event] = ImpliedMove(frozenset(froms), to)

    raw_reopen = config.get("reopen_to")
    reopen: tuple[str, ...] = ()
    if isinstance(raw_reopen, str) or not isinstance(raw_reopen, list | tuple) or not raw_reopen:
        problems.append('"reopen_to" must be a non-empty list of statuses')
    else:
        reopen = tuple(raw_reopen)
        for r in reopen:
            if r in (CLOSING, CLOSED) or r not in transitions:
                problems.append(f'"reopen_to": "{r}" is not an open status of the workflow')

    if problems:
        raise ImproperlyConfigured(f"{SETTING} is not a usable case workflow: "
                                   + "; ".join(problems) + ".")
    return Workflow(transitions, implied, reopen)


def _reachability_problems(transitions: Mapping[str, tuple[str, ...]]) -> list[str]:
    """Every status reachable from "new", and "closing" reachable from every open status (no
    case may be stranded where it can never be closed)."""
    def reach(start: str) -> set[str]:
        seen, todo = {start}, [start]
        while todo:
            for nxt in transitions.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    problems: list[str] = []
    if NEW not in transitions:
        return problems
    from_new = reach(NEW)
    for status in transitions:
        if status not in from_new:
            problems.append(f'"{status}" cannot be reached from "new"')
        elif status not in (CLOSING, CLOSED) and CLOSING not in reach(status):
            problems.append(f'a case in "{status}" could never be closed')
    return problems


_cached: Workflow | None = None


def get() -> Workflow:
    """The configured workflow (built once; rebuilt when a test overrides the setting)."""
    global _cached
    if _cached is None:
        _cached = build(getattr(settings, SETTING, None))
    return _cached


@receiver(setting_changed)
def _reset(sender: Any, setting: str, **kwargs: Any) -> None:
    global _cached
    if setting == SETTING:
        _cached = None


def check_configured() -> None:
    """Called from the app's ready(): an invalid ANSHIM_CASE_WORKFLOW stops the start."""
    get()
