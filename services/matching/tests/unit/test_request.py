"""Lifecycle of a client request: transitions, their events, and illegal moves."""

from datetime import timedelta
from decimal import Decimal

import pytest
from delego_shared.events.matching import (
    DelegationLevel,
    MatchAccepted,
    MatchDeclined,
    MatchProposed,
    ProposalExpired,
    RequestCancelled,
    RequestSubmitted,
    RequestUnmatched,
    WorkCompleted,
    WorkRated,
)
from matching.domain.index import CandidateIndex
from matching.domain.matcher import find_matches
from matching.domain.policy import MatchingPolicy
from matching.domain.request import (
    ClientRequest,
    IllegalTransition,
    NotTheProposedProvider,
    ProposalAlreadyExpired,
    ProposalStillOpen,
    RequestStatus,
)
from matching.domain.spec import NextWorkingDay, RequestDraft

from .builders import at, offer, provider, skills

NOW = at("Europe/Paris", 2026, 2, 10, 18, 30)
SECRET = "my bank password is hunter2"


def world(n: int = 4) -> CandidateIndex:
    ps = [provider(f"p{i}", zone="Asia/Kolkata", sap=f"SAP{i:09d}") for i in range(n)]
    return CandidateIndex.build(ps, [offer(f"o{i}", f"p{i}") for i in range(n)])


def draft(**kw) -> RequestDraft:
    base = dict(
        category="translation",
        required_skills=skills(("translation.en-fr", 4)),
        languages=["fr"],
        effort_hours=Decimal(2),
        client_zone="Europe/Paris",
        deadline=NextWorkingDay(),
        delegation_level=DelegationLevel.ACT_WITH_REVIEW,
        description=SECRET,
    )
    base.update(kw)
    return RequestDraft(**base)


DEFAULT = MatchingPolicy()


def submitted(idx: CandidateIndex, policy: MatchingPolicy = DEFAULT):
    req, events = ClientRequest.submit("req_1", "cli_1", draft(), NOW, policy)
    return req, events


def finder(idx: CandidateIndex, req: ClientRequest, now):
    return lambda tried: find_matches(idx, req.spec, now, exclude_providers=tried)


def proposed(idx: CandidateIndex, policy: MatchingPolicy = DEFAULT):
    req, _ = submitted(idx, policy)
    events = req.propose(NOW, finder(idx, req, NOW))
    return req, events


def test_submit_resolves_the_deadline_and_keeps_the_description_private():
    req, events = submitted(world())
    assert req.status is RequestStatus.SUBMITTED
    assert req.version == 1
    assert req.spec.deadline == at("Europe/Paris", 2026, 2, 11, 9)
    assert req.spec.description == SECRET
    (ev,) = events
    assert isinstance(ev, RequestSubmitted)
    assert ev.deadline == req.spec.deadline
    assert ev.submitted_at == NOW
    assert SECRET not in ev.model_dump_json()
    assert SECRET not in repr(req)
    assert SECRET not in str(req)
    assert SECRET not in repr(req.spec)
    assert SECRET not in str(req.log_fields())
    # but the edge can store and reload it
    again = ClientRequest.model_validate(req.model_dump(mode="json"))
    assert again.spec.description == SECRET
    assert again == req


def test_a_past_deadline_is_refused():
    with pytest.raises(ValueError, match="past"):
        ClientRequest.submit("r", "c", draft(deadline=NOW - timedelta(minutes=1)), NOW)


def test_a_draft_needs_effort_or_units():
    with pytest.raises(ValueError, match="effort"):
        draft(effort_hours=None)


def test_propose_carries_the_agreed_terms_and_the_promise():
    req, events = proposed(world())
    (ev,) = events
    assert isinstance(ev, MatchProposed)
    assert req.status is RequestStatus.PROPOSED
    assert req.version == 2
    assert ev.attempt == 1
    assert ev.provider_id == ev.terms.provider_id
    assert ev.terms.offer_id.startswith("o")
    assert ev.terms.offer_version == 1
    assert ev.terms.provider_sap_number == f"SAP{int(ev.provider_id[1:]):09d}"
    assert ev.terms.provider_display_name == f"Provider {ev.provider_id}"
    assert ev.terms.category == "translation"
    assert ev.terms.currency == "EUR"
    assert ev.terms.pricing.model == "hourly"
    assert str(ev.estimated_price) == "60.00 EUR"
    assert ev.reserved_hours == Decimal(2)
    # 23:00 in Bangalore: the window is the first 15 minutes of the next working day
    assert ev.expires_at == at("Asia/Kolkata", 2026, 2, 11, 9, 15)
    assert ev.promised_at <= req.spec.deadline
    assert ev.promised_local == "2026-02-11T06:45:00+01:00"  # 09:15 + 2 h IST = 06:45 Paris
    assert ev.client_zone == "Europe/Paris"
    assert ev.score.total > 0
    assert req.proposal is not None
    assert req.proposal.reservation == {f"{ev.provider_id}:2026-W07": Decimal("2.0000")}
    assert SECRET not in ev.model_dump_json()


def test_accept_complete_rate():
    idx = world()
    req, (prop,) = proposed(idx)
    assert isinstance(prop, MatchProposed)
    pid = prop.provider_id
    (acc,) = req.accept(pid, NOW + timedelta(minutes=5))
    assert isinstance(acc, MatchAccepted)
    assert acc.terms == prop.terms
    assert req.status is RequestStatus.ACCEPTED
    (done,) = req.complete(pid, NOW + timedelta(hours=12), actual_hours=Decimal("2.5"))
    assert isinstance(done, WorkCompleted)
    assert done.actual_hours == Decimal("2.5")
    assert done.terms == prop.terms
    (rated,) = req.rate(5, NOW + timedelta(days=1))
    assert isinstance(rated, WorkRated)
    assert rated.rating == 5
    assert rated.provider_id == pid
    assert req.status is RequestStatus.RATED
    assert req.version == 5
    with pytest.raises(IllegalTransition):
        req.rate(4, NOW + timedelta(days=2))


def test_decline_proposes_the_next_provider_excluding_those_tried():
    idx = world()
    req, (first,) = proposed(idx)
    assert isinstance(first, MatchProposed)
    later = NOW + timedelta(minutes=3)
    declined, second = req.decline(first.provider_id, later, finder(idx, req, later))
    assert isinstance(declined, MatchDeclined)
    assert declined.attempt == 1
    assert isinstance(second, MatchProposed)
    assert second.attempt == 2
    assert second.provider_id != first.provider_id
    assert second.expires_at == at("Asia/Kolkata", 2026, 2, 11, 9, 15)  # still asleep
    assert [a.outcome.value for a in req.attempts] == ["declined", "pending"]


def test_expiry_moves_on_and_after_max_attempts_the_request_is_unmatched():
    idx = world(5)
    req, (p1,) = proposed(idx, MatchingPolicy(max_attempts=2))
    assert isinstance(p1, MatchProposed)
    t = p1.expires_at
    with pytest.raises(ProposalStillOpen):
        req.expire(t - timedelta(seconds=1), finder(idx, req, t))
    expired, p2 = req.expire(t, finder(idx, req, t))
    assert isinstance(expired, ProposalExpired)
    assert isinstance(p2, MatchProposed)
    declined, unmatched = req.decline(p2.provider_id, t, finder(idx, req, t))
    assert isinstance(declined, MatchDeclined)
    assert isinstance(unmatched, RequestUnmatched)
    assert unmatched.attempts == 2
    assert [(r.filter, r.count) for r in unmatched.reasons] == [("attempts", 2)]
    assert unmatched.summary == "no provider accepted after 2 proposals"
    assert req.status is RequestStatus.UNMATCHED


def test_running_out_of_candidates_is_unmatched_with_reasons():
    idx = world(1)
    req, (p1,) = proposed(idx)
    assert isinstance(p1, MatchProposed)
    _, unmatched = req.decline(p1.provider_id, NOW, finder(idx, req, NOW))
    assert isinstance(unmatched, RequestUnmatched)
    assert unmatched.offers_considered == 1
    assert [(r.filter, r.count) for r in unmatched.reasons] == [("already_tried", 1)]


def test_nobody_qualifies_at_submission():
    idx = CandidateIndex.build([provider("p1")], [offer("o1", "p1")])  # Paris office hours
    req, (ev,) = proposed(idx)
    assert isinstance(ev, RequestUnmatched)
    assert ev.attempts == 0
    assert ev.offers_considered == 1
    assert ev.summary == (
        "1 offer in category translation; 1 cannot finish before 09:00 Europe/Paris "
        "(Wed 2026-02-11)"
    )
    assert req.unmatched_summary == ev.summary


def test_answers_from_the_wrong_provider_or_too_late_are_refused():
    idx = world()
    req, (p1,) = proposed(idx)
    assert isinstance(p1, MatchProposed)
    with pytest.raises(NotTheProposedProvider):
        req.accept("someone_else", NOW)
    with pytest.raises(NotTheProposedProvider):
        req.decline("someone_else", NOW, finder(idx, req, NOW))
    with pytest.raises(ProposalAlreadyExpired):
        req.accept(p1.provider_id, p1.expires_at)
    assert req.status is RequestStatus.PROPOSED
    assert req.version == 2


def test_cancel_before_completion_only():
    idx = world()
    req, _ = submitted(idx)
    (ev,) = req.cancel(NOW)
    assert isinstance(ev, RequestCancelled)
    assert ev.provider_id is None
    req2, (p,) = proposed(idx)
    assert isinstance(p, MatchProposed)
    (ev2,) = req2.cancel(NOW)
    assert isinstance(ev2, RequestCancelled)
    assert ev2.provider_id == p.provider_id
    assert req2.attempts[-1].outcome.value == "cancelled"
    req3, (p3,) = proposed(idx)
    assert isinstance(p3, MatchProposed)
    req3.accept(p3.provider_id, NOW)
    req3.complete(p3.provider_id, NOW, units=1)
    with pytest.raises(IllegalTransition, match="cancel request req_1 while completed"):
        req3.cancel(NOW)


@pytest.mark.parametrize(
    ("action", "status"),
    [
        ("accept", RequestStatus.SUBMITTED),
        ("complete", RequestStatus.SUBMITTED),
        ("rate", RequestStatus.SUBMITTED),
        ("propose", RequestStatus.PROPOSED),
        ("complete", RequestStatus.PROPOSED),
        ("expire", RequestStatus.SUBMITTED),
        ("propose", RequestStatus.CANCELLED),
        ("accept", RequestStatus.CANCELLED),
    ],
)
def test_illegal_transitions_raise(action, status):
    idx = world()
    if status is RequestStatus.SUBMITTED:
        req, _ = submitted(idx)
    else:
        req, _ = proposed(idx)
        if status is RequestStatus.CANCELLED:
            req.cancel(NOW)
    calls = {
        "accept": lambda: req.accept("p0", NOW),
        "complete": lambda: req.complete("p0", NOW, actual_hours=Decimal(1)),
        "rate": lambda: req.rate(5, NOW),
        "propose": lambda: req.propose(NOW, finder(idx, req, NOW)),
        "expire": lambda: req.expire(NOW + timedelta(hours=1), finder(idx, req, NOW)),
    }
    before = req.model_dump()
    with pytest.raises(IllegalTransition):
        calls[action]()
    assert req.model_dump() == before  # nothing changed


def test_completion_and_rating_validate_their_input():
    idx = world()
    req, (p,) = proposed(idx)
    assert isinstance(p, MatchProposed)
    req.accept(p.provider_id, NOW)
    with pytest.raises(NotTheProposedProvider):
        req.complete("other", NOW, actual_hours=Decimal(1))
    with pytest.raises(ValueError, match="actual hours"):
        req.complete(p.provider_id, NOW)
    req.complete(p.provider_id, NOW, actual_hours=Decimal(2))
    with pytest.raises(ValueError, match="1 to 5"):
        req.rate(0, NOW)


def test_work_reported_in_exact_minutes():
    req, (prop,) = proposed(world())
    assert isinstance(prop, MatchProposed)
    req.accept(prop.provider_id, NOW + timedelta(minutes=5))
    (done,) = req.complete(prop.provider_id, NOW + timedelta(hours=12), actual_minutes=70)
    assert isinstance(done, WorkCompleted)
    assert done.actual_minutes == 70
    assert done.actual_hours == Decimal("1.1667")  # for consumers that read only hours
    assert (req.actual_minutes, req.actual_hours) == (70, Decimal("1.1667"))


def test_hours_and_minutes_together_are_refused():
    req, (prop,) = proposed(world())
    assert isinstance(prop, MatchProposed)
    req.accept(prop.provider_id, NOW + timedelta(minutes=5))
    with pytest.raises(ValueError, match="not both"):
        req.complete(prop.provider_id, NOW, actual_hours=Decimal(1), actual_minutes=60)
    with pytest.raises(ValueError, match="negative"):
        req.complete(prop.provider_id, NOW, actual_minutes=-1)
    assert req.status is RequestStatus.ACCEPTED
