"""Explained outcome: how many offers each filter excluded, in words the client reads.

Times are rendered in the client's zone; the summary reads like
"12 offers in category translation; 5 lack skill translation.en-fr ≥ 4;
4 cannot finish before 09:00 Europe/Paris (Wed 2026-03-04); 3 over budget (50.00 EUR)".
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Literal

from delego_shared.events.matching import FilterReason, ScoreBreakdown

from .filters import FILTER_ORDER, Filter
from .response import ResponseWindow
from .schedule import in_zone
from .spec import RequestSpec

ReasonKey = tuple[Filter, str]
"""(filter, detail); detail names the missing skill for SKILL, else ''."""


Lang = Literal["en", "fr"]

_REASONS: dict[Lang, dict[str, str]] = {
    "en": {
        "available": "{n} not published or their provider is not active",
        "category": "{n} not in category {category}",
        "skill": "{n} lack skill {detail}",
        "language": "{n} share no language with {languages}",
        "already_tried": "{n} from providers already proposed for this request",
        "pricing": "{n} cannot price this amount of work",
        "currency": "{n} priced in another currency than {currency}",
        "budget": "{n} over budget ({budget})",
        "budget/none": "{n} over budget",
        "live_window": "{n} do not work during your live-session window "
        "({start:%a %H:%M}-{end:%a %H:%M} {zone})",
        "live_window/none": "{n} not available for live sessions",
        "capacity": "{n} lack weekly capacity for {hours} h",
        "capacity/none": "{n} lack weekly capacity",
        "response": "{n} could finish in time only by answering at once, but their response "
        "window (counted in their working hours) ends too late",
        "deadline": "{n} cannot finish before {deadline:%H:%M} {zone} ({deadline:%a %Y-%m-%d})",
    },
    "fr": {
        "available": "{n} non publiées ou dont le prestataire n'est pas actif",
        "category": "{n} hors de la catégorie {category}",
        "skill": "{n} sans la compétence {detail}",
        "language": "{n} sans langue commune avec {languages}",
        "already_tried": "{n} de prestataires déjà sollicités pour cette demande",
        "pricing": "{n} ne savent pas tarifer cette quantité de travail",
        "currency": "{n} facturées dans une autre devise que {currency}",
        "budget": "{n} au-dessus du budget ({budget})",
        "budget/none": "{n} trop chères",
        "live_window": "{n} ne travaillent pas pendant votre créneau en direct "
        "({start:%d/%m %H:%M}-{end:%d/%m %H:%M} {zone})",
        "live_window/none": "{n} indisponibles pour des séances en direct",
        "capacity": "{n} sans capacité hebdomadaire suffisante pour {hours} h",
        "capacity/none": "{n} sans capacité hebdomadaire suffisante",
        "response": "{n} ne finiraient à temps qu'en répondant tout de suite, mais leur délai de "
        "réponse (compté dans leurs heures de travail) se termine trop tard",
        "deadline": "{n} ne peuvent pas finir avant {deadline:%H:%M} {zone} ({deadline:%d/%m/%Y})",
    },
}
"""One message per filter and language; `<filter>/none` when the request lacks what the
filter compares with (no budget, no live window, no effort in hours)."""


def _message_args(spec: RequestSpec) -> dict[str, object]:
    """What the messages of one request fill in (computed once for all its reasons)."""
    zone = spec.client_zone
    window = spec.live_window
    return {
        "category": spec.category,
        "languages": ", ".join(spec.languages),
        "currency": spec.budget.currency if spec.budget else "?",
        "budget": spec.budget,
        "start": in_zone(window.start, zone) if window else None,
        "end": in_zone(window.end, zone) if window else None,
        "hours": spec.effort_hours,
        "deadline": in_zone(spec.deadline, zone),
        "zone": zone,
    }


def reason_message(
    f: Filter,
    count: int,
    detail: str,
    spec: RequestSpec,
    lang: Lang = "en",
    args: dict[str, object] | None = None,
) -> str:
    """Why `count` offers were excluded by `f`, in the client's words and zone (`args`:
    `_message_args(spec)`, when the caller has it)."""
    key: str = f.value
    if (
        (f is Filter.BUDGET and spec.budget is None)
        or (f is Filter.LIVE_WINDOW and spec.live_window is None)
        or (f is Filter.CAPACITY and spec.effort_hours is None)
    ):
        key += "/none"
    return _REASONS[lang][key].format(
        n=count, detail=detail, **(_message_args(spec) if args is None else args)
    )


def skill_detail(code: str, level: int) -> str:
    return f"{code} ≥ {level}"


def explain(
    spec: RequestSpec, considered: int, counts: Mapping[ReasonKey, int], qualified: int
) -> tuple[list[FilterReason], str, str]:
    """Reasons sorted by count (then filter order) and a one-line summary (English, French)."""
    order = {f: i for i, f in enumerate(FILTER_ORDER)}
    keys = sorted(
        (k for k, c in counts.items() if c > 0),
        key=lambda k: (-counts[k], order[k[0]], k[1]),
    )
    args = _message_args(spec) if keys else {}
    reasons = [
        FilterReason(
            filter=f.value,
            count=counts[(f, d)],
            message=reason_message(f, counts[(f, d)], d, spec, "en", args),
            message_fr=reason_message(f, counts[(f, d)], d, spec, "fr", args),
        )
        for f, d in keys
    ]
    if considered == 0:
        return (
            reasons,
            f"no published offer in category {spec.category}",
            f"aucune offre publiée dans la catégorie {spec.category}",
        )
    plural = "s" if considered != 1 else ""
    en = [f"{considered} offer{plural} in category {spec.category}"]
    fr = [f"{considered} offre{plural} dans la catégorie {spec.category}"]
    if qualified:
        en.append(f"{qualified} qualify")
        fr.append(f"{qualified} conviennent" if qualified != 1 else "1 convient")
    en.extend(r.message for r in reasons)
    fr.extend(r.message_fr or r.message for r in reasons)
    return reasons, "; ".join(en), " ; ".join(fr)


TIGHT_AWAKE = 0.5
"""Below this awake score the provider sleeps through more than half of the time
until the deadline: the explanation says the deadline is tight for a sleeper."""


def _when(instant: datetime, zone: str, fr: bool = False) -> str:
    t = in_zone(instant, zone)
    return f"{t:%H:%M} {t:%d/%m} ({zone})" if fr else f"{t:%H:%M} {t:%a %d %b} ({zone})"


def proposal_explanation(
    *,
    spec: RequestSpec,
    provider_name: str,
    provider_zone: str,
    response: ResponseWindow,
    finish: datetime,
    score: ScoreBreakdown,
) -> tuple[str, str]:
    """Why this provider, and when they answer, in English and French.

    Names every score component, the response window in the provider's zone
    and the promise in the client's; says so when the awake component weighed
    (a sleeping provider against a tight deadline).
    """
    cz, pz = spec.client_zone, provider_zone
    awake = score.awake if score.awake is not None else 1.0
    en = [f"{provider_name} promises {_when(finish, cz)}, deadline {_when(spec.deadline, cz)}."]
    fr = [
        f"{provider_name} promet {_when(finish, cz, True)}, échéance "
        f"{_when(spec.deadline, cz, True)}."
    ]
    if spec.not_before is not None and spec.not_before > response.asked_at:
        en.append(f"Work starts no earlier than {_when(spec.not_before, cz)}, as asked.")
        fr.append(
            f"Le travail ne commence pas avant {_when(spec.not_before, cz, True)}, comme demandé."
        )
    asked_en, asked_fr = _when(response.asked_at, pz), _when(response.asked_at, pz, True)
    by_en, by_fr = _when(response.answer_by, pz), _when(response.answer_by, pz, True)
    if response.awake:
        en.append(f"Asked at {asked_en}, during their working hours: answer by {by_en}.")
        fr.append(f"Sollicité à {asked_fr}, pendant ses heures de travail : réponse avant {by_fr}.")
    else:
        from_en = _when(response.answer_from, pz)
        from_fr = _when(response.answer_from, pz, True)
        en.append(
            f"Asked at {asked_en}, outside their working hours: they can answer from "
            f"{from_en} and must answer by {by_en}; the promise counts that wait."
        )
        fr.append(
            f"Sollicité à {asked_fr}, hors de ses heures de travail : réponse possible dès "
            f"{from_fr}, au plus tard {by_fr} ; la promesse tient compte de cette attente."
        )
        if awake < TIGHT_AWAKE:
            en.append(
                f"The deadline is tight for someone asleep, so providers who are awake "
                f"are preferred (awake {awake:.2f})."
            )
            fr.append(
                f"L'échéance est serrée pour quelqu'un qui dort : les prestataires éveillés "
                f"passent devant (éveil {awake:.2f})."
            )
    parts = (
        ("slack", "marge", score.slack),
        ("rating", "note", score.rating),
        ("price", "prix", score.price),
        ("load", "charge", score.load),
        ("trust", "confiance", score.trust_bonus),
        ("awake", "éveil", awake),
    )
    en.append(
        f"Score {score.total:.3f} = weighted("
        + ", ".join(f"{e} {v:.2f}" for e, _, v in parts)
        + ")."
    )
    fr.append(
        f"Score {score.total:.3f} = pondération("
        + ", ".join(f"{f} {v:.2f}" for _, f, v in parts)
        + ")."
    )
    return " ".join(en), " ".join(fr)
