"""Explained outcome: how many offers each filter excluded, in words the client reads.

Times are rendered in the client's zone; the summary reads like
"12 offers in category translation; 5 lack skill translation.en-fr ≥ 4;
4 cannot finish before 09:00 Europe/Paris (Wed 2026-03-04); 3 over budget (50.00 EUR)".
"""

from __future__ import annotations

from collections.abc import Mapping

from delego_shared.events.matching import FilterReason

from .filters import FILTER_ORDER, Filter
from .schedule import in_zone
from .spec import RequestSpec

ReasonKey = tuple[Filter, str]
"""(filter, detail); detail names the missing skill for SKILL, else ''."""


def reason_message(f: Filter, count: int, detail: str, spec: RequestSpec) -> str:
    n = str(count)
    match f:
        case Filter.AVAILABLE:
            return f"{n} not published or their provider is not active"
        case Filter.CATEGORY:
            return f"{n} not in category {spec.category}"
        case Filter.SKILL:
            return f"{n} lack skill {detail}"
        case Filter.LANGUAGE:
            return f"{n} share no language with {', '.join(spec.languages)}"
        case Filter.ALREADY_TRIED:
            return f"{n} from providers already proposed for this request"
        case Filter.PRICING:
            return f"{n} cannot price this amount of work"
        case Filter.CURRENCY:
            cur = spec.budget.currency if spec.budget else "?"
            return f"{n} priced in another currency than {cur}"
        case Filter.BUDGET:
            return f"{n} over budget ({spec.budget})" if spec.budget else f"{n} over budget"
        case Filter.LIVE_WINDOW:
            w = spec.live_window
            if w is None:  # pragma: no cover - filter only fires with a window
                return f"{n} not available for live sessions"
            s, e = in_zone(w.start, spec.client_zone), in_zone(w.end, spec.client_zone)
            return (
                f"{n} do not work during your live-session window "
                f"({s:%a %H:%M}-{e:%a %H:%M} {spec.client_zone})"
            )
        case Filter.CAPACITY:
            need = f" for {spec.effort_hours} h" if spec.effort_hours is not None else ""
            return f"{n} lack weekly capacity{need}"
        case Filter.DEADLINE:
            d = in_zone(spec.deadline, spec.client_zone)
            return f"{n} cannot finish before {d:%H:%M} {spec.client_zone} ({d:%a %Y-%m-%d})"


def skill_detail(code: str, level: int) -> str:
    return f"{code} ≥ {level}"


def explain(
    spec: RequestSpec, considered: int, counts: Mapping[ReasonKey, int], qualified: int
) -> tuple[list[FilterReason], str]:
    """Reasons sorted by count (then filter order) and a one-line summary."""
    order = {f: i for i, f in enumerate(FILTER_ORDER)}
    keys = sorted(
        (k for k, c in counts.items() if c > 0),
        key=lambda k: (-counts[k], order[k[0]], k[1]),
    )
    reasons = [
        FilterReason(
            filter=f.value, count=counts[(f, d)], message=reason_message(f, counts[(f, d)], d, spec)
        )
        for f, d in keys
    ]
    if considered == 0:
        return reasons, f"no published offer in category {spec.category}"
    head = f"{considered} offer{'s' if considered != 1 else ''} in category {spec.category}"
    parts = [head]
    if qualified:
        parts.append(f"{qualified} qualify")
    parts.extend(r.message for r in reasons)
    return reasons, "; ".join(parts)
