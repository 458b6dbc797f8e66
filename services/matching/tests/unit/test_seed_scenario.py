"""The seed's time-zone arbitrage: order at the end of your day, get it first thing.

A client in Paris submits at 18:30 on a weekday a 2-hour en->fr translation due
"by the start of my next working day" (09:00 Paris). A Bangalore provider
working 09:00-18:00 IST is matched and promised before 09:00 Paris; a Paris
provider with the same hours cannot make it.
"""

from decimal import Decimal

import pytest
from delego_shared.events.matching import MatchProposed
from matching.domain.index import CandidateIndex
from matching.domain.matcher import find_matches
from matching.domain.request import ClientRequest
from matching.domain.spec import NextWorkingDay, RequestDraft

from .builders import WEEKDAYS, at, offer, provider, skills, spans


@pytest.mark.parametrize(
    ("day", "expected_local"),
    [
        # asked at 23:00 IST, answers by 09:15 IST, then 2 h of work
        ((2026, 2, 10), "2026-02-11T06:45:00+01:00"),  # winter: 09:00 IST = 04:30 Paris
        ((2026, 6, 16), "2026-06-17T07:45:00+02:00"),  # summer: 09:00 IST = 05:30 Paris
    ],
)
def test_bangalore_provider_delivers_before_paris_wakes_up(day, expected_local):
    bangalore = provider(
        "prv_blr",
        zone="Asia/Kolkata",
        schedule=spans(WEEKDAYS, "09:00", "18:00"),
        languages=["en", "fr", "hi"],
        name="Asha (Bangalore)",
    )
    paris = provider("prv_par", zone="Europe/Paris", schedule=spans(WEEKDAYS, "09:00", "18:00"))
    idx = CandidateIndex.build(
        [bangalore, paris],
        [offer("off_blr", "prv_blr"), offer("off_par", "prv_par")],
    )
    now = at("Europe/Paris", *day, 18, 30)
    req, _ = ClientRequest.submit(
        "req_seed",
        "cli_paris",
        RequestDraft(
            category="translation",
            required_skills=skills(("translation.en-fr", 4)),
            languages=["fr"],
            effort_hours=Decimal(2),
            client_zone="Europe/Paris",
            deadline=NextWorkingDay(),
            description="Traduire ma lettre au propriétaire",
        ),
        now,
    )
    nine_paris = at("Europe/Paris", day[0], day[1], day[2] + 1, 9)
    assert req.spec.deadline == nine_paris

    outcome = find_matches(idx, req.spec, now)
    assert [c.provider.provider_id for c in outcome.candidates] == ["prv_blr"]
    assert [(r.filter, r.count) for r in outcome.reasons] == [("deadline", 1)]

    (ev,) = req.propose(
        now, lambda tried: find_matches(idx, req.spec, now, exclude_providers=tried)
    )
    assert isinstance(ev, MatchProposed)
    assert ev.provider_id == "prv_blr"
    assert ev.terms.provider_display_name == "Asha (Bangalore)"
    assert ev.promised_at < nine_paris
    assert ev.promised_local == expected_local
