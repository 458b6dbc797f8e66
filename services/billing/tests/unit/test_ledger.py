from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from billing.domain.errors import BillingError
from billing.domain.invoice import build_credit_note, build_invoice
from billing.domain.ledger import (
    Account,
    JournalEntry,
    Posting,
    balances,
    journal_for_credit_note,
    journal_for_invoice,
)
from billing.domain.numbering import credit_note_number, invoice_number
from billing.domain.pricing import price_at_acceptance, price_work_completed
from billing.domain.subscription import period
from billing.domain.tax_credit import CapConsumption, ClientTaxProfile, annual_cap
from delego_shared.events.common import DeliveryMode
from delego_shared.types import Money

from .conftest import ISSUED, eur

D = Decimal


def _sum(entry: JournalEntry) -> Decimal:
    return sum((p.amount.amount for p in entry.postings), D(0))


def test_invoice_journal_is_balanced_with_expected_postings(make_terms, rules, profile_fr):
    terms = make_terms()
    inv, _ = build_invoice(
        invoice_id="inv_1",
        number="DLG-2026-000001",
        client_id="cli_1",
        request_id="req_1",
        terms=terms,
        priced=price_work_completed(terms, actual_hours=D("1.5"), units=None),
        profile=profile_fr,
        consumption=CapConsumption(year=2026),
        rules=rules,
        issued_at=ISSUED,
    )
    entry = journal_for_invoice(inv)
    got = {p.account: p.amount for p in entry.postings}
    assert got == {
        Account.CLIENT_RECEIVABLE: eur("66.00"),  # debit
        Account.VAT_PAYABLE: eur("-6.00"),  # credits (soutien scolaire: 10 %)
        Account.PLATFORM_COMMISSION_REVENUE: eur("-7.20"),
        Account.PROVIDER_PAYABLE: eur("-52.80"),
    }
    assert _sum(entry) == 0
    cn = build_credit_note(
        invoice=inv,
        credit_note_id="cn_1",
        number="DLG-AV-2026-000001",
        issued_at=ISSUED,
        reason_code="x",
    )
    back = journal_for_credit_note(cn)
    assert {p.account: p.amount for p in back.postings} == {k: -v for k, v in got.items()}
    assert all(m.amount == 0 for m in balances([entry, back]).values())


def test_avance_immediate_books_the_advanced_credit_on_urssaf(make_terms, rules):
    terms = make_terms()
    profile = ClientTaxProfile(residence_country="FR", avance_immediate=True)
    inv, _ = build_invoice(
        invoice_id="inv_1",
        number="DLG-2026-000001",
        client_id="cli_1",
        request_id="req_1",
        terms=terms,
        priced=price_work_completed(terms, actual_hours=D("1.5"), units=None),
        profile=profile,
        consumption=CapConsumption(year=2026),
        rules=rules,
        issued_at=ISSUED,
    )
    assert (inv.total_gross, inv.payable_now) == (eur("66.00"), eur("33.00"))
    entry = journal_for_invoice(inv)
    got = {p.account: p.amount for p in entry.postings}
    assert got == {
        Account.CLIENT_RECEIVABLE: inv.payable_now,  # what the bill says is payable now
        Account.URSSAF_RECEIVABLE: eur("33.00"),  # the credit URSSAF advances
        Account.VAT_PAYABLE: eur("-6.00"),  # unchanged
        Account.PLATFORM_COMMISSION_REVENUE: eur("-7.20"),  # unchanged
        Account.PROVIDER_PAYABLE: eur("-52.80"),  # unchanged
    }
    assert _sum(entry) == 0
    cn = build_credit_note(
        invoice=inv,
        credit_note_id="cn_1",
        number="DLG-AV-2026-000001",
        issued_at=ISSUED,
        reason_code="x",
    )
    back = journal_for_credit_note(cn)
    assert {p.account: p.amount for p in back.postings} == {k: -v for k, v in got.items()}


def test_unbalanced_entry_is_rejected():
    with pytest.raises(BillingError):
        JournalEntry(
            "je",
            "d",
            "n",
            "invoice",
            ISSUED,
            (Posting(Account.CLIENT_RECEIVABLE, eur(10)), Posting(Account.VAT_PAYABLE, eur(-9))),
        )


def test_balances_are_per_account_and_currency():
    e1 = JournalEntry(
        "1",
        "d1",
        "n1",
        "invoice",
        ISSUED,
        (Posting(Account.CLIENT_RECEIVABLE, eur(10)), Posting(Account.PROVIDER_PAYABLE, eur(-10))),
    )
    e2 = JournalEntry(
        "2",
        "d2",
        "n2",
        "invoice",
        ISSUED,
        (
            Posting(Account.CLIENT_RECEIVABLE, Money.of(5, "USD")),
            Posting(Account.PROVIDER_PAYABLE, Money.of(-5, "USD")),
        ),
    )
    b = balances([e1, e1, e2])
    assert b[(Account.CLIENT_RECEIVABLE, "EUR")] == eur(20)
    assert b[(Account.PROVIDER_PAYABLE, "EUR")] == eur(-20)
    assert b[(Account.CLIENT_RECEIVABLE, "USD")] == Money.of(5, "USD")


# --- property-style: many random invoices and credit notes ----------------------------

_ACTIVITIES = [
    None,
    "soutien_scolaire_domicile",
    "assistance_informatique_domicile",
    "jardinage",
    "petit_bricolage",
    "teleassistance_visioassistance",
    "livraison_courses_domicile",
    "not_a_sap_activity",
]
_CATEGORIES = ["tutoring", "tutoring.maths", "translation", "home_services", "concierge", "other"]
_COUNTRIES = ["FR", "FR", "FR", "BE", "DE", "US", "FI"]


def _random_pricing(rng: random.Random) -> dict[str, object]:
    def amount(lo: int, hi: int) -> dict[str, str]:
        return {"amount": f"{rng.randint(lo, hi)}.{rng.randint(0, 99):02d}", "currency": "EUR"}

    kind = rng.choice(["hourly", "package", "per_unit", "subscription"])
    if kind == "hourly":
        return {
            "model": "hourly",
            "rate": amount(5, 120),
            "minimum_minutes": rng.choice([0, 15, 30, 60]),
            "increment_minutes": rng.choice([1, 5, 10, 15, 30]),
        }
    if kind == "package":
        return {"model": "package", "price": amount(20, 2000)}
    if kind == "per_unit":
        return {"model": "per_unit", "unit_name": "module", "unit_price": amount(1, 80)}
    return {
        "model": "subscription",
        "price_per_period": amount(5, 60),
        "included_hours": str(rng.randint(0, 5)),
        "overage_rate": amount(5, 40),
    }


def test_generated_ledger_always_balances_and_payout_plus_commission_is_price(make_terms, rules):
    rng = random.Random(20260310)
    entries: list[JournalEntry] = []
    consumption: dict[tuple[str, int], CapConsumption] = {}
    profiles = {
        f"cli_{i}": ClientTaxProfile(
            residence_country=rng.choice(_COUNTRIES),
            dependents=rng.randint(0, 3),
            members_over_65=rng.randint(0, 1),
            disabled_member=rng.random() < 0.1,
            avance_immediate=rng.random() < 0.5,
        )
        for i in range(12)
    }
    seq = {"invoice": 0, "credit_note": 0}
    sums = {"gross": D(0), "vat": D(0), "net": D(0), "payable": D(0), "advanced": D(0)}
    invoices = []
    now = datetime(2026, 1, 1, 8, tzinfo=UTC)
    for n in range(400):
        now += timedelta(minutes=rng.randint(1, 1000))
        client = rng.choice(list(profiles))
        terms = make_terms(
            category=rng.choice(_CATEGORIES),
            sap_activity=rng.choice(_ACTIVITIES),
            delivery_mode=rng.choice(list(DeliveryMode)),
            provider_sap_number=rng.choice([None, "SAP999999999"]),
            provider_id=f"prv_{rng.randint(1, 4)}",
            pricing=_random_pricing(rng),
        )
        priced = price_at_acceptance(terms, period(now, 0)) + price_work_completed(
            terms,
            actual_hours=D(rng.randint(0, 600)) / 60,
            units=rng.randint(0, 9),
            period=period(now, 0),
            period_hours_used_before=D(rng.randint(0, 6)),
        )
        if not priced:
            continue
        key = (client, now.year)
        before = consumption.get(key, CapConsumption(year=now.year))
        seq["invoice"] += 1
        inv, after = build_invoice(
            invoice_id=f"inv_{n}",
            number=invoice_number("DLG", now.year, seq["invoice"]),
            client_id=client,
            request_id=f"req_{n}",
            terms=terms,
            priced=priced,
            profile=profiles[client],
            consumption=before,
            rules=rules,
            issued_at=now,
        )
        consumption[key] = after
        invoices.append(inv)
        entries.append(journal_for_invoice(inv))
        sums["gross"] += inv.total_gross.amount
        sums["payable"] += inv.payable_now.amount
        sums["advanced"] += inv.credit_advanced.amount
        sums["vat"] += inv.total_vat.amount
        sums["net"] += inv.total_net.amount
        # per line and per invoice invariants
        for ln in inv.lines:
            assert ln.payout + ln.commission == ln.net
            assert ln.net + ln.vat == ln.gross
            assert ln.commission.amount >= 0
            assert ln.payout.amount >= 0
            assert ln.decision.credit == (ln.decision.eligible_amount * D("0.5")).rounded()
            assert D(0) <= ln.decision.eligible_amount.amount <= ln.gross.amount
        assert inv.provider_payout + inv.commission == inv.total_net
        assert inv.total_gross == inv.total_net + inv.total_vat
        assert D(0) <= inv.payable_now.amount <= inv.total_gross.amount
        cap = annual_cap(profiles[client], rules.tax_credit_for(now.year))
        assert after.total <= cap
        for code, used in after.sub_caps.items():
            assert used <= rules.tax_credit_for(now.year).sub_caps[code].amount
        # sometimes credit some or all lines of an earlier invoice
        if rng.random() < 0.3:
            target = rng.choice(invoices)
            credited = getattr(target, "_credited", set())
            open_lines = [ln.line_no for ln in target.lines if ln.line_no not in credited]
            if open_lines:
                chosen = rng.sample(open_lines, rng.randint(1, len(open_lines)))
                seq["credit_note"] += 1
                cn = build_credit_note(
                    invoice=target,
                    credit_note_id=f"cn_{n}",
                    number=credit_note_number("DLG", now.year, seq["credit_note"]),
                    issued_at=now,
                    reason_code="random",
                    line_nos=chosen,
                    already_credited=credited,
                )
                object.__setattr__(target, "_credited", credited | set(chosen))
                ck = (target.client_id, target.tax_year)
                consumption[ck] = consumption[ck].apply(cn.cap_reversal)
                entries.append(journal_for_credit_note(cn))
                sums["gross"] -= cn.total_gross.amount
                sums["payable"] -= cn.refundable_now.amount
                sums["advanced"] -= cn.credit_advanced_reversed.amount
                sums["vat"] -= cn.total_vat.amount
                sums["net"] -= cn.total_net.amount
                assert cn.provider_payout + cn.commission == cn.total_net
    assert len(invoices) > 250
    assert seq["credit_note"] > 50
    for e in entries:
        assert _sum(e) == 0
    total = balances(entries)
    assert sum((m.amount for m in total.values()), D(0)) == 0
    # each account holds exactly what was invoiced minus what was credited
    # the client owes what its bills say is payable now; URSSAF the credit it advanced
    assert sums["advanced"] > 0
    assert total[(Account.CLIENT_RECEIVABLE, "EUR")].amount == sums["payable"]
    assert total[(Account.URSSAF_RECEIVABLE, "EUR")].amount == sums["advanced"]
    assert sums["payable"] + sums["advanced"] == sums["gross"]
    assert total[(Account.VAT_PAYABLE, "EUR")].amount == -sums["vat"]
    assert (
        -(
            total[(Account.PROVIDER_PAYABLE, "EUR")].amount
            + total[(Account.PLATFORM_COMMISSION_REVENUE, "EUR")].amount
        )
        == sums["net"]
    )
    # credit every remaining line: everything returns to zero, caps included
    for inv in invoices:
        credited = getattr(inv, "_credited", set())
        if len(credited) == len(inv.lines):
            continue
        seq["credit_note"] += 1
        cn = build_credit_note(
            invoice=inv,
            credit_note_id=f"cn_final_{inv.invoice_id}",
            number=credit_note_number("DLG", 2027, seq["credit_note"]),
            issued_at=datetime(2027, 6, 1, tzinfo=UTC),
            reason_code="wind_down",
            already_credited=credited,
        )
        ck = (inv.client_id, inv.tax_year)
        consumption[ck] = consumption[ck].apply(cn.cap_reversal)
        entries.append(journal_for_credit_note(cn))
    assert all(m.amount == 0 for m in balances(entries).values())
    assert all(
        c.total == 0 and all(v == 0 for v in c.sub_caps.values()) for c in consumption.values()
    )
