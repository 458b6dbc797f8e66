"""Response windows in the provider's working time, the awake score and their explanations."""

from datetime import timedelta
from decimal import Decimal

import pytest
from delego_shared.events.matching import LiveWindow
from delego_shared.types import Money
from matching.domain.explain import reason_message
from matching.domain.filters import Filter
from matching.domain.index import CandidateIndex
from matching.domain.matcher import find_matches, find_matches_bruteforce
from matching.domain.request import ClientRequest
from matching.domain.response import response_window
from matching.domain.schedule import WeeklySchedule
from matching.domain.scoring import awake_component
from matching.domain.spec import NextWorkingDay, RequestDraft

from .builders import WEEKDAYS, at, offer, provider, skills, spans, spec, utc

FIFTEEN = timedelta(minutes=15)
HORIZON = timedelta(weeks=8)
KOLKATA = WeeklySchedule.of(spans(WEEKDAYS, "09:00", "18:00"), "Asia/Kolkata")
PARIS_EVENING = at("Europe/Paris", 2026, 2, 10, 18, 30)  # Tuesday, 23:00 in Bangalore


def test_asked_at_night_the_window_is_the_first_minutes_of_the_next_working_day():
    w = response_window(KOLKATA, PARIS_EVENING, FIFTEEN, HORIZON)
    assert not w.awake
    assert w.answer_from == at("Asia/Kolkata", 2026, 2, 11, 9)
    assert w.answer_by == at("Asia/Kolkata", 2026, 2, 11, 9, 15)


def test_asked_at_work_the_window_starts_at_once():
    now = at("Asia/Kolkata", 2026, 2, 11, 10)
    w = response_window(KOLKATA, now, FIFTEEN, HORIZON)
    assert w.awake and w.answer_from == now
    assert w.answer_by == now + FIFTEEN


def test_a_window_that_reaches_the_end_of_the_day_continues_the_next_morning():
    w = response_window(KOLKATA, at("Asia/Kolkata", 2026, 2, 13, 17, 55), FIFTEEN, HORIZON)
    # Friday 17:55: 5 minutes that day, the other 10 on Monday morning
    assert w.answer_by == at("Asia/Kolkata", 2026, 2, 16, 9, 10)


def test_the_window_is_counted_in_real_minutes_across_a_dst_night():
    toronto = WeeklySchedule.of(spans(["sun"], "01:30", "03:00"), "America/Toronto")
    # clocks go back on Sunday 1 November 2026 02:00 EDT → 01:00 EST: 30 working minutes
    # (01:30-02:00 EDT), the repeated 01:00-01:30 EST is outside the span, then 15 more
    # from the second 01:30 (EST)
    w = response_window(
        toronto, at("America/Toronto", 2026, 10, 31, 12), timedelta(minutes=45), HORIZON
    )
    assert w.answer_from == utc(2026, 11, 1, 5, 30)  # the first 01:30 (EDT)
    assert w.answer_by == utc(2026, 11, 1, 6, 45)  # 01:45 EST


def test_no_working_time_at_all_falls_back_to_the_wall_clock_window():
    empty = WeeklySchedule.of([], "Asia/Kolkata")
    w = response_window(empty, PARIS_EVENING, FIFTEEN, HORIZON)
    assert w.answer_by == PARIS_EVENING + FIFTEEN


def test_awake_component_weighs_the_wait_against_the_time_to_the_deadline():
    now = PARIS_EVENING
    wake = at("Asia/Kolkata", 2026, 2, 11, 9)  # 10 h later
    assert awake_component(now, now, now + timedelta(hours=1)) == 1.0
    tight = awake_component(now, wake, at("Europe/Paris", 2026, 2, 11, 9))  # 14.5 h away
    loose = awake_component(now, wake, now + timedelta(days=7))
    assert tight == pytest.approx(1 - 10 / 14.5)
    assert loose == pytest.approx(1 - 10 / 168)


def test_a_provider_sets_its_own_response_window():
    p = provider(
        "prv_slow", zone="Asia/Kolkata", schedule=spans(WEEKDAYS, "09:00", "18:00")
    ).model_copy(update={"response_window_minutes": 60})
    idx = CandidateIndex.build([p], [offer("off_slow", "prv_slow")])
    out = find_matches(idx, spec(deadline=at("Europe/Paris", 2026, 2, 12, 18)), PARIS_EVENING)
    assert out.best is not None
    assert out.best.response.answer_by == at("Asia/Kolkata", 2026, 2, 11, 10)
    # the work starts after the answer: 10:00-12:00 IST
    assert out.best.finish == at("Asia/Kolkata", 2026, 2, 11, 12)


def test_a_sleeper_who_would_make_it_only_by_answering_at_once_is_explained():
    short_morning = provider(
        "prv_short", zone="Asia/Kolkata", schedule=spans(WEEKDAYS, "09:00", "11:00")
    )
    idx = CandidateIndex.build([short_morning], [offer("off_short", "prv_short")])
    s = spec(deadline=at("Europe/Paris", 2026, 2, 11, 9), effort="2")
    out = find_matches(idx, s, PARIS_EVENING)
    assert out.best is None
    assert [(r.filter, r.count) for r in out.reasons] == [("response", 1)]
    [r] = out.reasons
    assert "response window" in r.message
    assert r.message_fr is not None and "délai de réponse" in r.message_fr
    assert "délai de réponse" in out.summary_fr
    assert find_matches_bruteforce(idx.items(), s, PARIS_EVENING) == out


def test_the_proposal_explains_the_wait_and_the_tight_deadline_in_both_languages():
    asha = provider(
        "prv_blr",
        zone="Asia/Kolkata",
        schedule=spans(WEEKDAYS, "09:00", "18:00"),
        name="Asha (Bangalore)",
    )
    idx = CandidateIndex.build([asha], [offer("off_blr", "prv_blr")])
    draft = RequestDraft(
        category="translation",
        required_skills=skills(("translation.en-fr", 4)),
        languages=["fr"],
        effort_hours=Decimal(2),
        client_zone="Europe/Paris",
        deadline=NextWorkingDay(),
    )
    req, _ = ClientRequest.submit("req_1", "cli_1", draft, PARIS_EVENING)
    req.propose(PARIS_EVENING, lambda t: find_matches(idx, req.spec, PARIS_EVENING))
    p = req.proposal
    assert p is not None and p.provider_zone == "Asia/Kolkata"
    assert p.answer_from == at("Asia/Kolkata", 2026, 2, 11, 9)
    assert p.score.awake == pytest.approx(1 - 10 / 14.5, abs=1e-6)
    assert "outside their working hours" in p.explanation
    assert "09:15 Wed 11 Feb (Asia/Kolkata)" in p.explanation
    assert "awake are preferred" in p.explanation
    assert "hors de ses heures de travail" in p.explanation_fr
    assert "éveillés passent devant" in p.explanation_fr
    for word in ("slack", "rating", "price", "load", "trust", "awake"):
        assert word in p.explanation
    assert req.attempts[0].provider_zone == "Asia/Kolkata"


def test_an_awake_provider_wins_over_a_better_rated_sleeper_when_time_is_short():
    # two providers who both make the 09:00 deadline; the sleeper also finishes earlier
    sleeper = provider("prv_zz", zone="Asia/Kolkata", schedule=spans(WEEKDAYS, "09:00", "18:00"))
    awake = provider("prv_up", zone="Europe/Paris", schedule=spans(WEEKDAYS, "18:00", "23:59"))
    idx = CandidateIndex.build(
        [sleeper, awake], [offer("off_zz", "prv_zz"), offer("off_up", "prv_up")]
    )
    s = spec(deadline=at("Europe/Paris", 2026, 2, 11, 9), effort="2")
    out = find_matches(idx, s, PARIS_EVENING)
    assert [c.provider.provider_id for c in out.candidates] == ["prv_up", "prv_zz"]
    up, zz = out.candidates
    assert up.score.awake == 1.0 and zz.score.awake is not None and zz.score.awake < 0.5


@pytest.mark.parametrize("f", list(Filter))
def test_every_filter_has_an_english_and_a_french_reason(f):
    s = spec(
        deadline=at("Europe/Paris", 2026, 2, 11, 9),
        budget=Money.of("50.00", "EUR"),
        live_window=LiveWindow(
            start=at("Europe/Paris", 2026, 2, 10, 19), end=at("Europe/Paris", 2026, 2, 10, 20)
        ),
    )
    en, fr = reason_message(f, 3, "x ≥ 4", s), reason_message(f, 3, "x ≥ 4", s, "fr")
    assert en.startswith("3 ") and fr.startswith("3 ") and en != fr


@pytest.mark.parametrize(
    ("f", "en", "fr"),
    [
        (Filter.BUDGET, "3 over budget", "3 trop chères"),
        (
            Filter.LIVE_WINDOW,
            "3 not available for live sessions",
            "3 indisponibles pour des séances en direct",
        ),
        (Filter.CAPACITY, "3 lack weekly capacity", "3 sans capacité hebdomadaire suffisante"),
    ],
)
def test_a_reason_without_what_the_filter_compares_with_says_so_shortly(f, en, fr):
    s = spec(deadline=at("Europe/Paris", 2026, 2, 11, 9), effort=None, units=5)
    assert (reason_message(f, 3, "", s), reason_message(f, 3, "", s, "fr")) == (en, fr)
