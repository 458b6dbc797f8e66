"""French tax credit for services à la personne (CGI art. 199 sexdecies).

Per invoice line: is it eligible, how much of it counts against the
household's annual caps, and why (a code plus a French and an English
reason). Rules are data, one file per tax year (rules/tax_credit_<year>.toml).

Checks, in order (the first failure decides the code):
1. the client's tax residence is France              not_eligible_non_resident
2. the offer carries a SAP activity code             not_eligible_no_sap_activity
3. that activity is on the year's list (D7231-1)     not_eligible_activity_not_listed
4. the provider has a SAP declaration                not_eligible_provider_not_declared
5. delivery: at_home qualifies; remote only for activities the law deems
   rendered at home (téléassistance, visio-assistance) not_eligible_remote;
   mixed (part at home, part elsewhere) only for activities that may be
   performed away from the home within an at-home offer (LF 2022 art. 3:
   deliveries, escorting)                             not_eligible_mixed_delivery
6. the amount is in the rules' currency (EUR)        not_eligible_currency
7. per-intervention limits (petit bricolage <= 2 h)  not_eligible_intervention_too_long
8. caps: the eligible amount is the gross (VAT included, the sum actually
   paid) limited by what remains of the annual cap and of the activity's
   sub-cap                                            eligible | eligible_partially_capped
                                                      | not_eligible_cap_reached
Credit = 50 % of the eligible amount, rounded half-up to the cent per line.

Cap consumption is kept per client and tax year as amounts (not credits), in
one document the edge updates with a compare-and-set (`cap_update`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from enum import StrEnum
from typing import Any

from delego_shared.events.billing import TaxCreditDecision
from delego_shared.events.common import AgreedTerms, DeliveryMode
from delego_shared.types import CountryCode, Money
from pydantic import BaseModel, ConfigDict, Field

from .errors import BillingError, RulesError

_CENT = Decimal("0.01")


class DecisionCode(StrEnum):
    ELIGIBLE = "eligible"
    ELIGIBLE_PARTIALLY_CAPPED = "eligible_partially_capped"
    NOT_ELIGIBLE_CAP_REACHED = "not_eligible_cap_reached"
    NOT_ELIGIBLE_REMOTE = "not_eligible_remote"
    NOT_ELIGIBLE_MIXED_DELIVERY = "not_eligible_mixed_delivery"
    NOT_ELIGIBLE_NO_SAP_ACTIVITY = "not_eligible_no_sap_activity"
    NOT_ELIGIBLE_ACTIVITY_NOT_LISTED = "not_eligible_activity_not_listed"
    NOT_ELIGIBLE_PROVIDER_NOT_DECLARED = "not_eligible_provider_not_declared"
    NOT_ELIGIBLE_NON_RESIDENT = "not_eligible_non_resident"
    NOT_ELIGIBLE_CURRENCY = "not_eligible_currency"
    NOT_ELIGIBLE_INTERVENTION_TOO_LONG = "not_eligible_intervention_too_long"
    NOT_ELIGIBLE_NO_AMOUNT = "not_eligible_no_amount"

    @property
    def eligible(self) -> bool:
        return self in (DecisionCode.ELIGIBLE, DecisionCode.ELIGIBLE_PARTIALLY_CAPPED)


class ClientTaxProfile(BaseModel):
    """What the caps depend on; owned by billing (declared by the client)."""

    model_config = ConfigDict(frozen=True)

    residence_country: CountryCode
    dependents: int = Field(default=0, ge=0, le=50, description="dependent children")
    members_over_65: int = Field(default=0, ge=0, le=50, description="household members over 65")
    disabled_member: bool = Field(default=False, description="invalidity card or pension")
    avance_immediate: bool = Field(default=False, description="URSSAF immediate advance opt-in")


# --- rules -----------------------------------------------------------------


@dataclass(frozen=True)
class SubCap:
    code: str
    amount: Decimal
    label_fr: str
    label_en: str
    max_minutes_per_intervention: int | None = None


@dataclass(frozen=True)
class Activity:
    code: str
    label_fr: str
    label_en: str
    sub_cap: str | None = None
    outside_home_in_package: bool = False
    remote_eligible: bool = False
    sources: tuple[str, ...] = ()


@dataclass(frozen=True)
class TaxCreditRules:
    tax_year: int
    country: str
    currency: str
    credit_rate: Decimal
    base_cap: Decimal
    increase_per_member: Decimal
    max_cap: Decimal
    disabled_cap: Decimal
    sub_caps: Mapping[str, SubCap] = field(default_factory=dict)
    activities: Mapping[str, Activity] = field(default_factory=dict)
    # Set when no file exists for `tax_year` yet and an earlier year's rules stand in.
    provisional_from: int | None = None

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> TaxCreditRules:
        def dec(v: Any) -> Decimal:
            return Decimal(str(v))

        try:
            caps = data["caps"]
            subs = {
                str(k): SubCap(
                    str(k),
                    dec(v["amount"]),
                    str(v["label_fr"]),
                    str(v["label_en"]),
                    v.get("max_minutes_per_intervention"),
                )
                for k, v in dict(data.get("sub_caps", {})).items()
            }
            acts = {
                str(k): Activity(
                    code=str(k),
                    label_fr=str(v["label_fr"]),
                    label_en=str(v["label_en"]),
                    sub_cap=v.get("sub_cap"),
                    outside_home_in_package=bool(v.get("outside_home_in_package", False)),
                    remote_eligible=bool(v.get("remote_eligible", False)),
                    sources=tuple(v.get("sources", ())),
                )
                for k, v in dict(data.get("activities", {})).items()
            }
            for a in acts.values():
                if a.sub_cap is not None and a.sub_cap not in subs:
                    raise ValueError(f"activity {a.code} names unknown sub-cap {a.sub_cap}")
            return cls(
                tax_year=int(data["tax_year"]),
                country=str(data["country"]),
                currency=str(data["currency"]),
                credit_rate=dec(data["credit_rate"]),
                base_cap=dec(caps["base"]),
                increase_per_member=dec(caps["increase_per_member"]),
                max_cap=dec(caps["maximum"]),
                disabled_cap=dec(caps["disabled"]),
                sub_caps=subs,
                activities=acts,
            )
        except (KeyError, TypeError, ArithmeticError, ValueError) as exc:
            raise RulesError(f"bad tax-credit rules: {exc!r}") from exc


def annual_cap(profile: ClientTaxProfile, rules: TaxCreditRules) -> Decimal:
    """Household expense cap for the year (art. 199 sexdecies 3).

    12 000 + 1 500 per dependent child and per member over 65, at most
    15 000; 20 000 when a member is disabled (flat, not increased).
    """
    if profile.disabled_member:
        return rules.disabled_cap
    members = profile.dependents + profile.members_over_65
    return min(rules.base_cap + rules.increase_per_member * members, rules.max_cap)


# --- cap consumption ---------------------------------------------------------


@dataclass(frozen=True)
class AllocatedLine:
    line_no: int
    sub_cap: str | None
    amount: Decimal  # eligible amount counted against the caps (negative on reversal)


@dataclass(frozen=True)
class CapAllocation:
    """What one document (invoice or credit note) adds to a client-year's caps.

    `basis`: the client-year state the invoice's decisions were made on. A replay
    decides again on it, so it reproduces the stored decision exactly, amounts
    AND reason texts ("remaining annual cap ..."), whatever was allocated since.
    """

    document_id: str
    year: int
    lines: tuple[AllocatedLine, ...]
    basis: CapConsumption | None = None

    @property
    def total(self) -> Decimal:
        return sum((ln.amount for ln in self.lines), Decimal(0))

    def by_sub_cap(self) -> dict[str, Decimal]:
        out: dict[str, Decimal] = {}
        for ln in self.lines:
            if ln.sub_cap is not None:
                out[ln.sub_cap] = out.get(ln.sub_cap, Decimal(0)) + ln.amount
        return out

    def amount_for(self, line_no: int) -> Decimal | None:
        return next((ln.amount for ln in self.lines if ln.line_no == line_no), None)

    def reversed(self, document_id: str, line_nos: Sequence[int] | None = None) -> CapAllocation:
        """The allocation that undoes this one (or some of its lines): for a credit note."""
        keep = [ln for ln in self.lines if line_nos is None or ln.line_no in line_nos]
        return CapAllocation(
            document_id,
            self.year,
            tuple(AllocatedLine(ln.line_no, ln.sub_cap, -ln.amount) for ln in keep),
        )

    def to_document(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "document_id": self.document_id,
            "total_cents": _cents(self.total),
            "lines": [
                {"line_no": ln.line_no, "sub_cap": ln.sub_cap, "cents": _cents(ln.amount)}
                for ln in self.lines
            ],
        }
        if self.basis is not None:
            b = self.basis.to_document("")
            out["basis"] = {k: b[k] for k in ("year", "version", "total_cents", "sub_caps_cents")}
        return out

    @classmethod
    def from_document(cls, year: int, doc: Mapping[str, Any]) -> CapAllocation:
        basis = doc.get("basis")
        return cls(
            str(doc["document_id"]),
            year,
            tuple(
                AllocatedLine(int(x["line_no"]), x.get("sub_cap"), _from_cents(x["cents"]))
                for x in doc["lines"]
            ),
            CapConsumption.from_document(basis, year) if basis is not None else None,
        )

    def replay_basis(self, current: CapConsumption) -> CapConsumption:
        """The state to decide a replay on: the stored basis; for allocations stored
        before bases were kept, the current state without this allocation."""
        return self.basis if self.basis is not None else current.without(self)


@dataclass(frozen=True)
class CapConsumption:
    """Eligible expenses already counted for one client and tax year.

    Stored as ONE document per client-year (see `to_document`); `version`
    increases on every change so the edge can compare-and-set.
    """

    year: int
    total: Decimal = Decimal(0)
    sub_caps: Mapping[str, Decimal] = field(default_factory=dict)
    version: int = 0

    def used(self, sub_cap: str) -> Decimal:
        return self.sub_caps.get(sub_cap, Decimal(0))

    def apply(self, allocation: CapAllocation) -> CapConsumption:
        if allocation.year != self.year:
            raise BillingError(f"allocation for {allocation.year} applied to {self.year}")
        subs = dict(self.sub_caps)
        for code, amount in allocation.by_sub_cap().items():
            subs[code] = subs.get(code, Decimal(0)) + amount
        total = self.total + allocation.total
        if total < 0 or any(v < 0 for v in subs.values()):
            raise BillingError("cap consumption would become negative (reversal of unknown lines?)")
        return CapConsumption(self.year, total, subs, self.version + 1)

    def without(self, allocation: CapAllocation) -> CapConsumption:
        """The state as if `allocation` had not been applied (to rebuild a replayed invoice)."""
        undone = self.apply(allocation.reversed(allocation.document_id))
        return replace(undone, version=self.version)

    def to_document(self, client_id: str) -> dict[str, Any]:
        return {
            "_id": cap_document_id(client_id, self.year),
            "client_id": client_id,
            "year": self.year,
            "version": self.version,
            "total_cents": _cents(self.total),
            "sub_caps_cents": {k: _cents(v) for k, v in sorted(self.sub_caps.items())},
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any] | None, year: int) -> CapConsumption:
        """The stored state, or an empty one when the client has none for the year yet."""
        if doc is None:
            return cls(year=year)
        return cls(
            year=int(doc["year"]),
            total=_from_cents(doc.get("total_cents", 0)),
            sub_caps={
                str(k): _from_cents(v) for k, v in dict(doc.get("sub_caps_cents", {})).items()
            },
            version=int(doc.get("version", 0)),
        )


def cap_document_id(client_id: str, year: int) -> str:
    return f"{client_id}:{year}"


def cap_update(
    client_id: str, before: CapConsumption, allocation: CapAllocation
) -> tuple[dict[str, Any], dict[str, Any], bool]:
    """(filter, update, upsert) for ONE conditional `find_one_and_update`.

    Compare-and-set on `version`: it matches only if nobody changed the
    client-year since `before` was read, and only if this document's
    allocation is not there yet (a replay changes nothing). On no match the
    edge re-reads, and either finds its allocation (replay: rebuild with
    `decide_invoice_lines(..., replay=...)`) or decides again. The first
    allocation of a year upserts (version 0); a concurrent first insert fails
    on the unique `_id`, and the edge retries the same way.
    """
    after = before.apply(allocation)
    flt: dict[str, Any] = {
        "_id": cap_document_id(client_id, before.year),
        "version": before.version,
        "allocations.document_id": {"$ne": allocation.document_id},
    }
    doc = after.to_document(client_id)
    setter: dict[str, Any] = {
        "client_id": client_id,
        "year": before.year,
        "total_cents": doc["total_cents"],
    }
    for code, cents in doc["sub_caps_cents"].items():
        setter[f"sub_caps_cents.{code}"] = cents
    update = {
        "$set": setter,
        "$inc": {"version": 1},
        "$push": {"allocations": allocation.to_document()},
    }
    return flt, update, before.version == 0


def cap_release(
    client_id: str, current: CapConsumption, stored: Mapping[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(filter, update) for ONE conditional `update_one` that takes back an allocation
    whose document was never issued (an orphan): compare-and-set on `version`, and
    only while the allocation is there. `stored` is the allocation element exactly as
    stored (pulled by value: FerretDB's `$pull` takes no condition on sub-documents)."""
    allocation = CapAllocation.from_document(current.year, stored)
    after = current.without(allocation)
    doc = after.to_document(client_id)
    setter: dict[str, Any] = {"total_cents": doc["total_cents"]}
    for code, cents in doc["sub_caps_cents"].items():
        setter[f"sub_caps_cents.{code}"] = cents
    flt = {
        "_id": cap_document_id(client_id, current.year),
        "version": current.version,
        "allocations.document_id": allocation.document_id,
    }
    update = {
        "$set": setter,
        "$inc": {"version": 1},
        "$pull": {"allocations": dict(stored)},
    }
    return flt, update


def _cents(amount: Decimal) -> int:
    q = amount.quantize(_CENT)
    if q != amount:
        raise BillingError(f"{amount} is not a whole number of cents")
    return int(q * 100)


def _from_cents(cents: Any) -> Decimal:
    return (Decimal(int(cents)) / 100).quantize(_CENT)


# --- decisions ----------------------------------------------------------------


@dataclass(frozen=True)
class LineDecision:
    code: DecisionCode
    eligible_amount: Money
    credit: Money
    reason_fr: str
    reason_en: str
    sub_cap: str | None = None

    def to_contract(self) -> TaxCreditDecision:
        return TaxCreditDecision(
            code=self.code.value,
            eligible_amount=self.eligible_amount,
            credit=self.credit,
            reason_fr=self.reason_fr,
            reason_en=self.reason_en,
        )


def _grouped(amount: Decimal, currency: str) -> str:
    units = Money.zero(currency).minor_units
    return f"{amount:,.{units}f}"


def fmt_fr(amount: Decimal, currency: str) -> str:
    """3250 -> '3 250,00 EUR' (always the currency's minor units)."""
    return _grouped(amount, currency).replace(",", " ").replace(".", ",") + f" {currency}"


def fmt_en(amount: Decimal, currency: str) -> str:
    """3250 -> '3,250.00 EUR' (always the currency's minor units)."""
    return f"{_grouped(amount, currency)} {currency}"


def _no(
    code: DecisionCode, currency: str, fr: str, en: str, sub_cap: str | None = None
) -> LineDecision:
    zero = Money.zero(currency)
    return LineDecision(code, zero, zero, f"non éligible : {fr}", f"not eligible: {en}", sub_cap)


def _precheck(
    terms: AgreedTerms,
    profile: ClientTaxProfile,
    gross: Money,
    rules: TaxCreditRules,
    intervention_minutes: int | None,
) -> LineDecision | Activity:
    """The first failing rule as a decision, or the activity when all pass."""
    cur = gross.currency
    if profile.residence_country != rules.country:
        c = profile.residence_country
        return _no(
            DecisionCode.NOT_ELIGIBLE_NON_RESIDENT,
            cur,
            f"résidence fiscale hors de France ({c})",
            f"tax residence outside France ({c})",
        )
    if not terms.sap_activity:
        return _no(
            DecisionCode.NOT_ELIGIBLE_NO_SAP_ACTIVITY,
            cur,
            "l'offre ne relève d'aucune activité de services à la personne",
            "the offer is not a personal-services (SAP) activity",
        )
    activity = rules.activities.get(terms.sap_activity)
    if activity is None:
        a = terms.sap_activity
        return _no(
            DecisionCode.NOT_ELIGIBLE_ACTIVITY_NOT_LISTED,
            cur,
            f"activité « {a} » absente de la liste de l'article D7231-1 du code du travail",
            f"activity '{a}' is not on the list of French labour code art. D7231-1",
        )
    if not terms.provider_sap_number:
        return _no(
            DecisionCode.NOT_ELIGIBLE_PROVIDER_NOT_DECLARED,
            cur,
            "le prestataire n'a pas de déclaration de services à la personne",
            "the provider has no personal-services (SAP) declaration",
        )
    mode = terms.delivery_mode
    if mode is DeliveryMode.REMOTE and not activity.remote_eligible:
        return _no(
            DecisionCode.NOT_ELIGIBLE_REMOTE,
            cur,
            "prestation réalisée à distance",
            "service performed remotely",
        )
    if mode is DeliveryMode.MIXED and not (
        activity.outside_home_in_package or activity.remote_eligible
    ):
        return _no(
            DecisionCode.NOT_ELIGIBLE_MIXED_DELIVERY,
            cur,
            f"{activity.label_fr} réalisé en partie hors du domicile",
            f"{activity.label_en} performed partly away from the home",
        )
    if cur != rules.currency:
        return _no(
            DecisionCode.NOT_ELIGIBLE_CURRENCY,
            cur,
            f"montant en {cur}, le crédit d'impôt porte sur des dépenses en {rules.currency}",
            f"amount in {cur}, the tax credit applies to expenses in {rules.currency}",
        )
    sub = rules.sub_caps.get(activity.sub_cap) if activity.sub_cap else None
    limit = sub.max_minutes_per_intervention if sub else None
    if limit is not None and intervention_minutes is not None and intervention_minutes > limit:
        return _no(
            DecisionCode.NOT_ELIGIBLE_INTERVENTION_TOO_LONG,
            cur,
            f"{activity.label_fr} : intervention de plus de {limit} minutes",
            f"{activity.label_en}: intervention longer than {limit} minutes",
            activity.sub_cap,
        )
    if gross.amount <= 0:
        return _no(
            DecisionCode.NOT_ELIGIBLE_NO_AMOUNT,
            cur,
            "aucun montant payé",
            "nothing paid",
            activity.sub_cap,
        )
    return activity


def decide_line(
    *,
    terms: AgreedTerms,
    profile: ClientTaxProfile,
    gross: Money,
    consumption: CapConsumption,
    rules: TaxCreditRules,
    intervention_minutes: int | None = None,
    replay_amount: Decimal | None = None,
) -> tuple[LineDecision, Decimal]:
    """Decide one line; returns the decision and the amount it counts against the caps.

    `replay_amount` (from a stored allocation) forces the eligible amount, so a
    replayed invoice gets exactly the decision it got the first time.
    """
    checked = _precheck(terms, profile, gross, rules, intervention_minutes)
    if isinstance(checked, LineDecision):
        return checked, Decimal(0)
    activity = checked
    cur = gross.currency
    cap = annual_cap(profile, rules)
    remaining_total = max(Decimal(0), cap - consumption.total)
    sub = rules.sub_caps.get(activity.sub_cap) if activity.sub_cap else None
    remaining_sub = max(Decimal(0), sub.amount - consumption.used(sub.code)) if sub else None
    room = remaining_total if remaining_sub is None else min(remaining_total, remaining_sub)
    eligible = min(gross.amount, room) if replay_amount is None else replay_amount
    sub_binding = sub is not None and remaining_sub is not None and remaining_sub < remaining_total
    cap_fr = f"plafond « {sub.label_fr} »" if sub and sub_binding else "plafond annuel"
    cap_en = f"{sub.label_en} sub-cap" if sub and sub_binding else "annual cap"
    if eligible <= 0:
        limit = sub.amount if sub and sub_binding else cap
        return (
            _no(
                DecisionCode.NOT_ELIGIBLE_CAP_REACHED,
                cur,
                f"{cap_fr} de {fmt_fr(limit, cur)} atteint",
                f"{cap_en} of {fmt_en(limit, cur)} reached",
                activity.sub_cap,
            ),
            Decimal(0),
        )
    credit = Money(amount=eligible * rules.credit_rate, currency=cur).rounded()
    left = room - eligible
    if eligible == gross.amount:
        code = DecisionCode.ELIGIBLE
        fr = f"éligible : {activity.label_fr}, {cap_fr} restant {fmt_fr(left, cur)}"
        en = f"eligible: {activity.label_en}, remaining {cap_en} {fmt_en(left, cur)}"
    else:
        code = DecisionCode.ELIGIBLE_PARTIALLY_CAPPED
        fr = (
            f"éligible en partie : {activity.label_fr}, {fmt_fr(eligible, cur)} retenus sur "
            f"{fmt_fr(gross.amount, cur)}, {cap_fr} atteint"
        )
        en = (
            f"partly eligible: {activity.label_en}, {fmt_en(eligible, cur)} of "
            f"{fmt_en(gross.amount, cur)} counted, {cap_en} reached"
        )
    if rules.provisional_from is not None:
        fr += f" (règles {rules.provisional_from} appliquées à titre provisoire)"
        en += f" ({rules.provisional_from} rules applied provisionally)"
    return LineDecision(
        code, Money(amount=eligible, currency=cur), credit, fr, en, activity.sub_cap
    ), eligible


@dataclass(frozen=True)
class LineInput:
    line_no: int
    gross: Money
    intervention_minutes: int | None = None


def decide_invoice_lines(
    *,
    document_id: str,
    terms: AgreedTerms,
    profile: ClientTaxProfile,
    lines: Sequence[LineInput],
    consumption: CapConsumption,
    rules: TaxCreditRules,
    replay: CapAllocation | None = None,
) -> tuple[list[LineDecision], CapAllocation, CapConsumption]:
    """Decide every line in order, each seeing the caps the previous ones used.

    Returns the decisions, the allocation to store, and the consumption after it.
    """
    if consumption.year != rules.tax_year:
        raise BillingError(f"consumption for {consumption.year} with {rules.tax_year} rules")
    decisions: list[LineDecision] = []
    allocated: list[AllocatedLine] = []
    running = consumption
    for ln in lines:
        forced = replay.amount_for(ln.line_no) if replay is not None else None
        if replay is not None and forced is None:
            forced = Decimal(0)
        decision, amount = decide_line(
            terms=terms,
            profile=profile,
            gross=ln.gross,
            consumption=running,
            rules=rules,
            intervention_minutes=ln.intervention_minutes,
            replay_amount=forced,
        )
        decisions.append(decision)
        if amount:
            one = AllocatedLine(ln.line_no, decision.sub_cap, amount)
            allocated.append(one)
            running = running.apply(CapAllocation(document_id, running.year, (one,)))
    allocation = CapAllocation(document_id, consumption.year, tuple(allocated), consumption)
    return decisions, allocation, consumption.apply(allocation)
