"""Start-after (`not_before`): the work, its reservation, a relative deadline, the
promise and the score all count from it."""

from decimal import Decimal

import pytest
from delego_shared.events.matching import RequestSubmitted
from matching.domain.index import CandidateIndex
from matching.domain.matcher import find_matches
from matching.domain.request import ClientRequest
from matching.domain.spec import NextWorkingDay, RequestDraft

from .builders import WEEKDAYS, at, offer, provider, skills, spans

NOW = at("Europe/Paris", 2026, 2, 10, 18, 30)  # Tuesday
MONDAY_8 = at("Europe/Paris", 2026, 2, 16, 8)
WEDNESDAY = at("Europe/Paris", 2026, 2, 18, 18)


def draft(**kw) -> RequestDraft:
    base = dict(
        category="translation",
        required_skills=skills(("translation.en-fr", 4)),
        languages=["fr"],
        effort_hours=Decimal(2),
        client_zone="Europe/Paris",
        deadline=WEDNESDAY,
        not_before=MONDAY_8,
    )
    base.update(kw)
    return RequestDraft(**base)


def paris_office() -> CandidateIndex:
    p = provider("prv_par", schedule=spans(WEEKDAYS, "09:00", "18:00"))
    return CandidateIndex.build([p], [offer("off_par", "prv_par")])


def test_work_and_its_reservation_start_no_earlier_than_not_before():
    req, (submitted,) = ClientRequest.submit("r1", "c1", draft(), NOW)
    assert isinstance(submitted, RequestSubmitted)
    assert submitted.not_before == MONDAY_8
    out = find_matches(paris_office(), req.spec, NOW)
    best = out.best
    assert best is not None
    # free all week, yet the work waits for Monday 09:00 (first working minute after 08:00)
    assert best.finish == at("Europe/Paris", 2026, 2, 16, 11)
    assert best.reservation == {"prv_par:2026-W08": Decimal("2.0000")}
    assert best.score.awake == 1.0  # awake when the work may start: no wait to count


def test_the_promise_is_shown_in_the_clients_zone():
    req, _ = ClientRequest.submit("r1", "c1", draft(), NOW)
    req.propose(NOW, lambda tried: find_matches(paris_office(), req.spec, NOW))
    assert req.proposal is not None
    assert req.proposal.promised_local == "2026-02-16T11:00:00+01:00"
    assert "no earlier than 08:00 Mon 16 Feb (Europe/Paris)" in req.proposal.explanation
    assert "ne commence pas avant 08:00 16/02 (Europe/Paris)" in req.proposal.explanation_fr
    # the provider still answers in their working time from now, not from Monday
    assert req.proposal.expires_at == at("Europe/Paris", 2026, 2, 11, 9, 15)


def test_a_relative_deadline_counts_from_not_before():
    req, _ = ClientRequest.submit("r1", "c1", draft(deadline=NextWorkingDay(start="09:00")), NOW)
    # Monday 08:00 → the next working-day start after it is Monday 09:00
    assert req.spec.deadline == at("Europe/Paris", 2026, 2, 16, 9)


def test_slack_counts_from_not_before():
    req, _ = ClientRequest.submit(
        "r1", "c1", draft(deadline=at("Europe/Paris", 2026, 2, 16, 17)), NOW
    )
    best = find_matches(paris_office(), req.spec, NOW).best
    assert best is not None
    # Monday 09:00 + 2 h = 11:00 Paris: 6 h of the 9 between 08:00 and 17:00 are left
    assert best.score.slack == pytest.approx(6 / 9)


def test_a_deadline_not_after_not_before_is_refused():
    with pytest.raises(ValueError, match="after not_before"):
        ClientRequest.submit("r1", "c1", draft(deadline=MONDAY_8), NOW)


def test_a_past_not_before_means_now():
    req, _ = ClientRequest.submit("r1", "c1", draft(not_before=NOW.replace(year=2025)), NOW)
    best = find_matches(paris_office(), req.spec, NOW).best
    assert best is not None and best.finish == at("Europe/Paris", 2026, 2, 11, 11, 15)
