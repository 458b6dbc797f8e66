"""The gapless counter's decisions (`plan_number`): pure, no store."""

from billing.domain.numbering import counter_id, plan_number


def test_counter_id_is_one_per_entity_kind_and_year():
    assert counter_id("DLG", "invoice", 2026) == "DLG:invoice:2026"
    assert counter_id("DLG", "credit_note", 2026) != counter_id("DLG", "invoice", 2026)


def test_first_number_of_a_sequence_is_one():
    plan = plan_number(0, [], used=set(), unused=set())
    assert (plan.seq, plan.last, plan.forget) == (1, 1, ())


def test_next_number_follows_last_and_keeps_reservations_in_flight():
    plan = plan_number(7, [("inv_a", 6), ("inv_b", 7)], used=set(), unused=set())
    assert (plan.seq, plan.last, plan.forget) == (8, 8, ())


def test_finished_reservations_are_forgotten():
    plan = plan_number(7, [("inv_a", 6), ("inv_b", 7)], used={"inv_a"}, unused=set())
    assert (plan.seq, plan.last, plan.forget) == (8, 8, ("inv_a",))


def test_an_unused_reserved_number_is_given_to_the_next_document_not_skipped():
    plan = plan_number(
        9, [("inv_a", 6), ("inv_b", 8), ("inv_c", 9)], used={"inv_a"}, unused={"inv_c", "inv_b"}
    )
    assert plan.seq == 8  # the smallest free number first
    assert plan.last == 9  # nothing new handed out
    assert plan.forget == ("inv_a", "inv_b")  # inv_c's number stays free for the next one


def test_the_issue_instant_never_goes_back_in_time():
    from datetime import UTC, datetime, timedelta

    from billing.domain.numbering import issue_instant

    now = datetime(2026, 6, 1, 9, tzinfo=UTC)
    assert issue_instant(now, None) == now
    assert issue_instant(now, now - timedelta(seconds=1)) == now
    assert issue_instant(now, now + timedelta(seconds=1)) == now + timedelta(seconds=1)


def test_early_january_also_looks_in_the_previous_years_counter():
    from datetime import UTC, datetime

    from billing.domain.numbering import years_to_look_in

    assert years_to_look_in(datetime(2027, 1, 2, 10, tzinfo=UTC)) == [2026, 2027]
    assert years_to_look_in(datetime(2026, 12, 31, 23, 30, tzinfo=UTC)) == [2026, 2027]  # Paris
    assert years_to_look_in(datetime(2027, 1, 9, tzinfo=UTC)) == [2027]
    assert years_to_look_in(datetime(2026, 6, 1, tzinfo=UTC)) == [2026]
