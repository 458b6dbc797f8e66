from __future__ import annotations

from decimal import Decimal

import pytest
from billing.domain.errors import BillingError
from billing.domain.tax_credit import (
    AllocatedLine,
    CapAllocation,
    CapConsumption,
    ClientTaxProfile,
    DecisionCode,
    LineInput,
    annual_cap,
    cap_update,
    decide_invoice_lines,
    decide_line,
    fmt_en,
    fmt_fr,
)
from delego_shared.events.common import DeliveryMode
from delego_shared.types import Money

from .conftest import eur

D = Decimal


def decide(terms, profile, gross, rules, consumption=None, **kw):
    consumption = consumption or CapConsumption(year=rules.tax_year)
    return decide_line(
        terms=terms, profile=profile, gross=gross, consumption=consumption, rules=rules, **kw
    )


# --- eligibility branches ------------------------------------------------------


def test_eligible_at_home_tutoring(make_terms, profile_fr, tc2026):
    d, amount = decide(make_terms(), profile_fr, eur("60.00"), tc2026)
    assert d.code is DecisionCode.ELIGIBLE
    assert (d.eligible_amount, d.credit, amount) == (eur("60.00"), eur("30.00"), D("60.00"))
    assert d.reason_fr == (
        "éligible : soutien scolaire à domicile, plafond annuel restant 11 940,00 EUR"
    )
    assert d.reason_en == "eligible: home tutoring, remaining annual cap 11,940.00 EUR"


def test_remote_tutoring_not_eligible(make_terms, profile_fr, tc2026):
    d, amount = decide(make_terms(delivery_mode=DeliveryMode.REMOTE), profile_fr, eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_REMOTE
    assert d.reason_fr == "non éligible : prestation réalisée à distance"
    assert d.reason_en == "not eligible: service performed remotely"
    assert (d.eligible_amount, d.credit, amount) == (eur(0), eur(0), D(0))


def test_remote_assistance_is_eligible_even_remotely(make_terms, profile_fr, tc2026):
    t = make_terms(delivery_mode=DeliveryMode.REMOTE, sap_activity="teleassistance_visioassistance")
    d, _ = decide(t, profile_fr, eur("29.90"), tc2026)
    assert d.code is DecisionCode.ELIGIBLE
    assert d.credit == eur("14.95")
    assert "téléassistance" in d.reason_fr


def test_undeclared_provider(make_terms, profile_fr, tc2026):
    d, _ = decide(make_terms(provider_sap_number=None), profile_fr, eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_PROVIDER_NOT_DECLARED
    assert d.reason_en.startswith("not eligible: the provider has no")


def test_non_french_resident(make_terms, tc2026):
    d, _ = decide(make_terms(), ClientTaxProfile(residence_country="BE"), eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_NON_RESIDENT
    assert "(BE)" in d.reason_fr


def test_no_sap_activity(make_terms, profile_fr, tc2026):
    d, _ = decide(make_terms(sap_activity=None), profile_fr, eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_NO_SAP_ACTIVITY


def test_activity_not_listed(make_terms, profile_fr, tc2026):
    d, _ = decide(make_terms(sap_activity="dating_coaching"), profile_fr, eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_ACTIVITY_NOT_LISTED
    assert "dating_coaching" in d.reason_fr
    assert "D7231-1" in d.reason_fr


def test_mixed_delivery_only_for_outside_home_activities(make_terms, profile_fr, tc2026):
    tutoring = make_terms(delivery_mode=DeliveryMode.MIXED)
    d, _ = decide(tutoring, profile_fr, eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_MIXED_DELIVERY
    grocery = make_terms(
        delivery_mode=DeliveryMode.MIXED, sap_activity="livraison_courses_domicile"
    )
    assert decide(grocery, profile_fr, eur(60), tc2026)[0].code is DecisionCode.ELIGIBLE


def test_non_eur_amount_not_eligible(make_terms, profile_fr, tc2026):
    t = make_terms(
        currency="USD", pricing={"model": "hourly", "rate": {"amount": "40", "currency": "USD"}}
    )
    d, _ = decide(t, profile_fr, Money.of("60", "USD"), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_CURRENCY
    assert d.credit == Money.of("0", "USD")


def test_small_diy_intervention_over_two_hours(make_terms, profile_fr, tc2026):
    t = make_terms(sap_activity="petit_bricolage", category="home_services")
    assert decide(t, profile_fr, eur(50), tc2026, intervention_minutes=120)[
        0
    ].eligible_amount == eur(50)
    d, _ = decide(t, profile_fr, eur(50), tc2026, intervention_minutes=135)
    assert d.code is DecisionCode.NOT_ELIGIBLE_INTERVENTION_TOO_LONG


def test_first_failing_rule_decides(make_terms, tc2026):
    t = make_terms(delivery_mode=DeliveryMode.REMOTE, provider_sap_number=None)
    d, _ = decide(t, ClientTaxProfile(residence_country="DE"), eur(60), tc2026)
    assert d.code is DecisionCode.NOT_ELIGIBLE_NON_RESIDENT


# --- caps ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "cap"),
    [
        (ClientTaxProfile(residence_country="FR"), "12000"),
        (ClientTaxProfile(residence_country="FR", dependents=1), "13500"),
        (ClientTaxProfile(residence_country="FR", dependents=1, members_over_65=1), "15000"),
        (ClientTaxProfile(residence_country="FR", dependents=3), "15000"),  # max 15,000
        (ClientTaxProfile(residence_country="FR", dependents=5, members_over_65=2), "15000"),
        (ClientTaxProfile(residence_country="FR", disabled_member=True), "20000"),
        (ClientTaxProfile(residence_country="FR", disabled_member=True, dependents=4), "20000"),
    ],
)
def test_annual_cap(profile, cap, tc2026):
    assert annual_cap(profile, tc2026) == D(cap)


def test_exactly_at_the_cap_is_fully_eligible(make_terms, profile_fr, tc2026):
    used = CapConsumption(year=2026, total=D("11900.00"))
    d, amount = decide(make_terms(), profile_fr, eur("100.00"), tc2026, used)
    assert d.code is DecisionCode.ELIGIBLE
    assert amount == D("100.00")
    assert d.reason_en == "eligible: home tutoring, remaining annual cap 0.00 EUR"


def test_one_cent_over_the_cap_is_partially_capped(make_terms, profile_fr, tc2026):
    used = CapConsumption(year=2026, total=D("11900.00"))
    d, amount = decide(make_terms(), profile_fr, eur("100.01"), tc2026, used)
    assert d.code is DecisionCode.ELIGIBLE_PARTIALLY_CAPPED
    assert amount == D("100.00")
    assert d.credit == eur("50.00")
    assert d.reason_fr == (
        "éligible en partie : soutien scolaire à domicile, 100,00 EUR retenus sur 100,01 EUR, "
        "plafond annuel atteint"
    )


def test_cap_already_reached(make_terms, profile_fr, tc2026):
    used = CapConsumption(year=2026, total=D("12000.00"))
    d, amount = decide(make_terms(), profile_fr, eur("0.01"), tc2026, used)
    assert d.code is DecisionCode.NOT_ELIGIBLE_CAP_REACHED
    assert amount == 0
    assert d.reason_fr == "non éligible : plafond annuel de 12 000,00 EUR atteint"
    assert d.reason_en == "not eligible: annual cap of 12,000.00 EUR reached"


def test_fifteen_thousand_max_and_disabled_twenty_thousand(make_terms, tc2026):
    big = ClientTaxProfile(residence_country="FR", dependents=4)
    used = CapConsumption(year=2026, total=D("14999.99"))
    d, amount = decide(make_terms(), big, eur("10.00"), tc2026, used)
    assert (d.code, amount) == (DecisionCode.ELIGIBLE_PARTIALLY_CAPPED, D("0.01"))
    disabled = ClientTaxProfile(residence_country="FR", disabled_member=True)
    d, amount = decide(make_terms(), disabled, eur("10.00"), tc2026, used)
    assert (d.code, amount) == (DecisionCode.ELIGIBLE, D("10.00"))
    used = CapConsumption(year=2026, total=D("20000.00"))
    assert decide(make_terms(), disabled, eur("10.00"), tc2026, used)[0].code is (
        DecisionCode.NOT_ELIGIBLE_CAP_REACHED
    )


@pytest.mark.parametrize(
    ("activity", "sub_cap", "limit"),
    [
        ("assistance_informatique_domicile", "it_assistance", "3000"),
        ("petit_bricolage", "small_diy", "500"),
        ("jardinage", "gardening", "5000"),
    ],
)
def test_sub_caps_at_the_edges(make_terms, profile_fr, tc2026, activity, sub_cap, limit):
    t = make_terms(sap_activity=activity, category="home_services")
    lim = D(limit)
    at = CapConsumption(year=2026, total=lim - 100, sub_caps={sub_cap: lim - 100})
    d, amount = decide(t, profile_fr, eur("100.00"), tc2026, at)
    assert (d.code, amount, d.sub_cap) == (DecisionCode.ELIGIBLE, D(100), sub_cap)
    d, amount = decide(t, profile_fr, eur("100.01"), tc2026, at)
    assert (d.code, amount) == (DecisionCode.ELIGIBLE_PARTIALLY_CAPPED, D(100))
    assert "sub-cap reached" in d.reason_en
    full = CapConsumption(year=2026, total=lim, sub_caps={sub_cap: lim})
    d, _ = decide(t, profile_fr, eur("1.00"), tc2026, full)
    assert d.code is DecisionCode.NOT_ELIGIBLE_CAP_REACHED
    assert fmt_en(lim, "EUR") in d.reason_en


def test_sub_cap_does_not_limit_other_activities(make_terms, profile_fr, tc2026):
    used = CapConsumption(year=2026, total=D(3000), sub_caps={"it_assistance": D(3000)})
    d, _ = decide(make_terms(), profile_fr, eur(100), tc2026, used)
    assert d.code is DecisionCode.ELIGIBLE


def test_annual_cap_binds_before_sub_cap(make_terms, profile_fr, tc2026):
    t = make_terms(sap_activity="jardinage", category="home_services")
    used = CapConsumption(year=2026, total=D("11950"), sub_caps={"gardening": D(0)})
    d, amount = decide(t, profile_fr, eur(100), tc2026, used)
    assert amount == D(50)
    assert "annual cap reached" in d.reason_en


def test_eligible_reason_mentions_remaining_cap_example(make_terms, profile_fr, tc2026):
    used = CapConsumption(year=2026, total=D("8690.00"))
    d, _ = decide(make_terms(), profile_fr, eur("60.00"), tc2026, used)
    assert d.reason_fr.endswith("plafond annuel restant 3 250,00 EUR")
    assert d.reason_en.endswith("remaining annual cap 3,250.00 EUR")


def test_amount_formatting():
    assert fmt_fr(D("3250.5"), "EUR") == "3 250,50 EUR"
    assert fmt_en(D("1234567.89"), "EUR") == "1,234,567.89 EUR"


# --- several lines, allocation, consumption document ---------------------------


def test_lines_consume_caps_in_order(make_terms, tc2026):
    profile = ClientTaxProfile(residence_country="FR")
    before = CapConsumption(year=2026, total=D("11900"), version=4)
    decisions, alloc, after = decide_invoice_lines(
        document_id="inv_1",
        terms=make_terms(),
        profile=profile,
        lines=[LineInput(1, eur(60)), LineInput(2, eur(60)), LineInput(3, eur(60))],
        consumption=before,
        rules=tc2026,
    )
    assert [d.code for d in decisions] == [
        DecisionCode.ELIGIBLE,
        DecisionCode.ELIGIBLE_PARTIALLY_CAPPED,
        DecisionCode.NOT_ELIGIBLE_CAP_REACHED,
    ]
    assert [ln.amount for ln in alloc.lines] == [D(60), D(40)]
    assert (after.total, after.version) == (D(12000), 5)


def test_replay_reproduces_the_same_decisions_after_other_allocations(
    make_terms, profile_fr, tc2026
):
    before = CapConsumption(year=2026, total=D("11800"), version=1)
    lines = [LineInput(1, eur(60)), LineInput(2, eur(60))]
    first, alloc, after = decide_invoice_lines(
        document_id="inv_1",
        terms=make_terms(),
        profile=profile_fr,
        lines=lines,
        consumption=before,
        rules=tc2026,
    )
    assert first[1].reason_en.endswith("remaining annual cap 80.00 EUR")
    # another invoice really allocates in between: 50 more counted
    other = CapAllocation("inv_2", 2026, (AllocatedLine(1, None, D(50)),))
    current = after.apply(other)
    stored = CapAllocation.from_document(2026, alloc.to_document())  # as the store keeps it
    again, alloc2, _ = decide_invoice_lines(
        document_id="inv_1",
        terms=make_terms(),
        profile=profile_fr,
        lines=lines,
        consumption=stored.replay_basis(current),
        rules=tc2026,
        replay=stored,
    )
    assert again == first  # amounts AND reason texts
    assert alloc2 == alloc
    # what a replay decided on today's caps would have said instead (the old bug)
    drifted, _, _ = decide_invoice_lines(
        document_id="inv_1",
        terms=make_terms(),
        profile=profile_fr,
        lines=lines,
        consumption=current.without(alloc),
        rules=tc2026,
        replay=alloc,
    )
    assert [d.credit for d in drifted] == [d.credit for d in first]
    assert drifted[1].reason_en != first[1].reason_en


def test_consumption_document_round_trip_and_conditional_update():
    before = CapConsumption(
        year=2026, total=D("120.50"), sub_caps={"gardening": D("20.50")}, version=3
    )
    doc = before.to_document("cli_1")
    assert doc == {
        "_id": "cli_1:2026",
        "client_id": "cli_1",
        "year": 2026,
        "version": 3,
        "total_cents": 12050,
        "sub_caps_cents": {"gardening": 2050},
    }
    assert CapConsumption.from_document(doc, 2026) == before
    assert CapConsumption.from_document(None, 2026) == CapConsumption(year=2026)
    alloc = CapAllocation.from_document(
        2026,
        {"document_id": "inv_9", "lines": [{"line_no": 1, "sub_cap": "gardening", "cents": 1000}]},
    )
    flt, upd, upsert = cap_update("cli_1", before, alloc)
    assert flt == {"_id": "cli_1:2026", "version": 3, "allocations.document_id": {"$ne": "inv_9"}}
    assert upd["$set"]["total_cents"] == 13050
    assert upd["$set"]["sub_caps_cents.gardening"] == 3050
    assert upd["$inc"] == {"version": 1}
    assert upd["$push"]["allocations"]["total_cents"] == 1000
    assert upsert is False
    assert cap_update("cli_1", CapConsumption(year=2026), alloc)[2] is True


def test_reversal_gives_the_caps_back_and_never_below_zero():
    alloc = CapAllocation.from_document(
        2026,
        {
            "document_id": "inv_1",
            "lines": [{"line_no": 1, "sub_cap": "it_assistance", "cents": 5000}],
        },
    )
    used = CapConsumption(year=2026).apply(alloc)
    assert (used.total, used.used("it_assistance")) == (D(50), D(50))
    back = used.apply(alloc.reversed("cn_1"))
    assert (back.total, back.used("it_assistance")) == (D(0), D(0))
    with pytest.raises(BillingError):
        back.apply(alloc.reversed("cn_2"))
    with pytest.raises(BillingError):
        CapConsumption(year=2025).apply(alloc)


def test_an_orphan_allocation_is_released_by_value_and_version():
    from billing.domain.tax_credit import cap_release

    before = CapConsumption(year=2026, total=D("100.00"), sub_caps={"gardening": D("40.00")})
    orphan = CapAllocation("inv_x", 2026, (AllocatedLine(1, "gardening", D("40.00")),), before)
    current = before.apply(orphan)
    stored = orphan.to_document()
    flt, update = cap_release("cli_1", current, stored)
    assert flt == {"_id": "cli_1:2026", "version": 1, "allocations.document_id": "inv_x"}
    assert update["$set"] == {"total_cents": 10000, "sub_caps_cents.gardening": 4000}
    assert update["$pull"] == {"allocations": stored}
    assert update["$inc"] == {"version": 1}
