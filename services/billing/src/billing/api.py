"""HTTP API of billing: invoices, credit notes, payouts, ledger, tax profile, certificates.

Roles (bearer JWT): a client sees its own documents, tax profile and
certificates; a provider sees the invoices concerning it and its payouts; an
operator sees everything, issues credit notes and reads ledger balances.
Errors are RFC 9457 problem bodies.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from delego_shared.http.auth import Caller, Principal, Role, require_role
from delego_shared.http.idempotency import Idempotent
from delego_shared.http.openapi import documented_rules, problem_responses
from delego_shared.http.problems import Conflict, Forbidden, NotFound, Unprocessable
from delego_shared.types import Identifier, Money
from fastapi import APIRouter, Depends, Path, Query, status
from fastapi.responses import HTMLResponse
from jinja2 import Environment, PackageLoader, select_autoescape
from pydantic import BaseModel, Field

from .domain.errors import BillingError
from .domain.invoice import CreditNote, Invoice
from .domain.money import fixed
from .domain.numbering import document_year
from .domain.tax_credit import ClientTaxProfile
from .service import BillingService
from .store import ConflictError, NotFoundError
from .views import (
    BalancesView,
    BalanceView,
    CertificateView,
    CreditNoteView,
    InvoiceView,
    LedgerEntryView,
    PayoutsView,
    PayoutView,
    TaxProfileView,
)

Clock = Callable[[], datetime]

_env = Environment(
    loader=PackageLoader("billing", "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt_money(m: Mapping[str, Any]) -> str:
    """Printed with the currency's minor units (grouped thousands, narrow spaces)."""
    units = Money.zero(str(m["currency"])).minor_units
    return f"{Decimal(str(m['amount'])):,.{units}f} {m['currency']}".replace(",", "\u202f")


def _fmt_pct(rate: str) -> str:
    return f"{(Decimal(rate) * 100).normalize():f} %"


_env.globals.update(money=_fmt_money, pct=_fmt_pct)


class CreditNoteRequest(BaseModel):
    reason_code: str = Field(
        min_length=1, max_length=64, pattern=r"^[a-z0-9_\-]+$", examples=["service_not_rendered"]
    )
    line_nos: list[int] | None = Field(
        default=None, min_length=1, description="lines to credit (default: all remaining)"
    )


@contextmanager
def _problems() -> Iterator[None]:
    try:
        yield
    except NotFoundError as exc:
        raise NotFound(str(exc)) from exc
    except ConflictError as exc:
        raise Conflict(str(exc)) from exc
    except BillingError as exc:
        raise Unprocessable(str(exc)) from exc


Operator = Annotated[Principal, Depends(require_role(Role.OPERATOR))]
ClientOnly = Annotated[Principal, Depends(require_role(Role.CLIENT))]
ProviderOnly = Annotated[Principal, Depends(require_role(Role.PROVIDER))]
DocId = Annotated[str, Path(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9._:\-]+$")]


def _scope(who: Principal, client_id: str | None, provider_id: str | None) -> dict[str, Any]:
    """The filter a caller may list: own documents, or anything for an operator."""
    if who.role is Role.CLIENT:
        return {"client_id": who.subject}
    if who.role is Role.PROVIDER:
        return {"provider_id": who.subject}
    flt: dict[str, Any] = {}
    if client_id:
        flt["client_id"] = client_id
    if provider_id:
        flt["provider_id"] = provider_id
    return flt


def _may_see(who: Principal, doc: Invoice | CreditNote) -> bool:
    if who.role is Role.CLIENT:
        return doc.client_id == who.subject
    if who.role is Role.PROVIDER:
        return doc.provider_id == who.subject
    return True


RULE_OPERATOR_NAMES_CLIENT = "required for operators (a client reads their own)"


def api_router(service: BillingService, clock: Clock) -> APIRouter:
    """Commands go to the use cases (which publish a document's events before the
    command answers); reads go to the store."""
    router = APIRouter()
    store = service.store

    async def _invoice(who: Principal, invoice_id: str) -> InvoiceView:
        found = await store.issued_invoice(invoice_id)
        if found is None or not _may_see(who, found.invoice):  # no existence leak
            raise NotFound(f"no invoice {invoice_id}")
        return InvoiceView.of(found.invoice, found.credited_lines)

    async def _credit_note(who: Principal, credit_note_id: str) -> CreditNoteView:
        credit_note = await store.credit_note(credit_note_id)
        if credit_note is None or not _may_see(who, credit_note):
            raise NotFound(f"no credit note {credit_note_id}")
        return CreditNoteView.of(credit_note)

    # --- invoices and credit notes ------------------------------------------------------

    @router.get("/invoices", tags=["invoices"], summary="Invoices the caller may see")
    async def list_invoices(
        who: Caller,
        client_id: Annotated[Identifier | None, Query()] = None,
        provider_id: Annotated[Identifier | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[InvoiceView]:
        found = await store.list_invoices(_scope(who, client_id, provider_id), limit)
        return [InvoiceView.of(f.invoice, f.credited_lines) for f in found]

    @router.get("/invoices/{invoice_id}", tags=["invoices"], summary="One invoice (JSON)")
    async def get_invoice(who: Caller, invoice_id: DocId) -> InvoiceView:
        return await _invoice(who, invoice_id)

    @router.get(
        "/invoices/{invoice_id}/html",
        tags=["invoices"],
        summary="One invoice as a printable page",
        response_class=HTMLResponse,
        responses={200: {"description": "the invoice as an HTML page (text/html)"}},
    )
    async def invoice_html(who: Caller, invoice_id: DocId) -> HTMLResponse:
        view = await _invoice(who, invoice_id)
        return HTMLResponse(_env.get_template("invoice.html").render(doc=view.model_dump()))

    @router.post(
        "/invoices/{invoice_id}/credit-notes",
        tags=["credit notes"],
        summary="Issue a credit note for whole lines of an invoice (operator)",
        status_code=status.HTTP_201_CREATED,
    )
    async def issue_credit_note(
        who: Operator, invoice_id: DocId, body: CreditNoteRequest, idem: Idempotent
    ) -> CreditNoteView:
        # no `recover`: the credit note's id derives from the invoice and its lines, so
        # running the command again after a crash returns the same credit note
        async def command() -> CreditNoteView:
            with _problems():
                cn, _created = await service.issue_credit_note(
                    invoice_id,
                    reason_code=body.reason_code,
                    line_nos=body.line_nos,
                    issued_at=clock(),
                )
            return await _credit_note(who, cn.credit_note_id)

        return await idem.run(CreditNoteView, command)

    @router.get("/credit-notes", tags=["credit notes"], summary="Credit notes the caller may see")
    async def list_credit_notes(
        who: Caller,
        client_id: Annotated[Identifier | None, Query()] = None,
        provider_id: Annotated[Identifier | None, Query()] = None,
        invoice_id: Annotated[Identifier | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[CreditNoteView]:
        flt = _scope(who, client_id, provider_id)
        if invoice_id:
            flt["invoice_id"] = invoice_id
        return [CreditNoteView.of(cn) for cn in await store.list_credit_notes(flt, limit)]

    @router.get("/credit-notes/{credit_note_id}", tags=["credit notes"], summary="One credit note")
    async def get_credit_note(who: Caller, credit_note_id: DocId) -> CreditNoteView:
        return await _credit_note(who, credit_note_id)

    @router.get(
        "/credit-notes/{credit_note_id}/html",
        tags=["credit notes"],
        summary="One credit note as a printable page",
        response_class=HTMLResponse,
        responses={200: {"description": "the credit note as an HTML page (text/html)"}},
    )
    async def credit_note_html(who: Caller, credit_note_id: DocId) -> HTMLResponse:
        view = await _credit_note(who, credit_note_id)
        return HTMLResponse(_env.get_template("credit_note.html").render(doc=view.model_dump()))

    # --- provider payouts -----------------------------------------------------------

    @router.get("/payouts", tags=["payouts"], summary="The provider's payouts and balance")
    async def payouts(who: ProviderOnly) -> PayoutsView:
        flt = {"provider_id": who.subject}
        invoices = await store.list_invoices(flt, 500)
        notes = await store.list_credit_notes(flt, 500)
        rows = [PayoutView.of(f.invoice) for f in invoices] + [PayoutView.of(cn) for cn in notes]
        rows.sort(key=lambda r: r.issued_at, reverse=True)
        balance = await store.provider_payable(who.subject)
        return PayoutsView(
            provider_id=who.subject, balance=[fixed(m) for m in balance.values()], payouts=rows
        )

    # --- ledger (operator) ------------------------------------------------------------

    @router.get("/ledger/balances", tags=["ledger"], summary="Balance per account and currency")
    async def ledger_balances(
        who: Operator,
        client_id: Annotated[Identifier | None, Query()] = None,
        provider_id: Annotated[Identifier | None, Query()] = None,
    ) -> BalancesView:
        rows = await store.balances(_scope(who, client_id, provider_id))
        return BalancesView(
            convention="debit positive, credit negative; every journal entry sums to zero",
            balances=[
                BalanceView(account=acc, amount=fixed(m).amount, currency=m.currency)
                for (acc, _cur), m in sorted(rows.items())
            ],
        )

    @router.get("/ledger/entries", tags=["ledger"], summary="Journal entries")
    async def ledger_entries(
        who: Operator,
        document_id: Annotated[Identifier | None, Query()] = None,
        client_id: Annotated[Identifier | None, Query()] = None,
        provider_id: Annotated[Identifier | None, Query()] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 200,
    ) -> list[LedgerEntryView]:
        flt = _scope(who, client_id, provider_id)
        if document_id:
            flt["document_id"] = document_id
        return [
            LedgerEntryView.of(p.entry, client_id=p.client_id, provider_id=p.provider_id)
            for p in await store.ledger_entries(flt, limit)
        ]

    # --- tax profile (client) ---------------------------------------------------------

    @router.get("/tax-profile", tags=["tax"], summary="The client's tax profile")
    async def get_tax_profile(who: ClientOnly) -> TaxProfileView:
        found = await store.get_profile(who.subject)
        profile = found or await service.effective_profile(who.subject)
        return TaxProfileView(**profile.model_dump(mode="json"), declared=found is not None)

    @router.put("/tax-profile", tags=["tax"], summary="Declare the client's tax profile")
    async def put_tax_profile(who: ClientOnly, body: ClientTaxProfile) -> TaxProfileView:
        await store.put_profile(who.subject, body, clock())
        return TaxProfileView(**body.model_dump(mode="json"), declared=True)

    # --- tax certificates -----------------------------------------------------------

    def _check_year(year: int) -> None:
        current = document_year(clock())
        if not 2000 <= year < current:
            raise Unprocessable(
                f"certificates are issued for a completed year (before {current})",
                errors=[{"field": "year", "message": f"must be < {current}"}],
            )

    completed_year = Path(
        ge=2000,
        le=document_year(clock()) - 1,
        description="a completed year (before the current one, as of the service's start)",
    )

    @router.post(
        "/tax-certificates/{year}",
        tags=["tax"],
        summary="Issue (or fetch) the client's annual tax certificates for a year",
    )
    async def issue_certificates(
        who: ClientOnly, year: int = completed_year
    ) -> list[CertificateView]:
        _check_year(year)
        certificates = await service.issue_certificates(who.subject, year, clock())
        if not certificates:
            raise NotFound(f"nothing to certify for {year}")
        return [CertificateView.of(c) for c in certificates]

    @router.get(
        "/tax-certificates/{year}",
        tags=["tax"],
        summary="The certificates of a year",
        responses=problem_responses(403),
        openapi_extra=documented_rules(RULE_OPERATOR_NAMES_CLIENT),
    )
    async def get_certificates(
        who: Caller,
        year: Annotated[int, Path(ge=2000, le=9999, description="a calendar year")],
        client_id: Annotated[Identifier | None, Query()] = None,
    ) -> list[CertificateView]:
        if who.role is Role.PROVIDER:
            raise Forbidden("certificates are the client's")
        subject = who.subject if who.role is Role.CLIENT else client_id
        if not subject:
            raise Unprocessable(
                "client_id is required",
                errors=[
                    {"field": "client_id", "in": "query", "message": RULE_OPERATOR_NAMES_CLIENT}
                ],
            )
        return [CertificateView.of(c) for c in await store.certificates(subject, year)]

    return router
