"""Sealed private details: who may read them, the audit of each read, erasure, retention.

Domain rules on plain `ClientRequest`s; use cases on an in-memory store.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from delego_shared.events.privacy import PrivateDetailsRead
from matching.details import (
    DetailsErased,
    DetailsForbidden,
    DetailsNotVisible,
    PrivateDetails,
)
from matching.domain.details import (
    Access,
    OperatorReason,
    Reader,
    ReaderRole,
    details_access,
    erase_details_after,
    summary,
)
from matching.domain.request import ClientRequest, RequestStatus
from matching.sealing import Sealer, Unreadable

from .fake_details import MemoryDetailsStore, sealer
from .test_request import NOW, SECRET, finder, proposed, world

RETENTION = timedelta(days=90)
CLIENT = Reader("cli_1", ReaderRole.CLIENT)
OPERATOR = Reader("ops_1", ReaderRole.OPERATOR, reason=OperatorReason.DISPUTE, reference="case-7")


def a_proposal() -> tuple[ClientRequest, str, str]:
    """A proposed request: (request, the proposed provider, another provider)."""
    req, _ = proposed(world())
    assert req.proposal is not None
    chosen = req.proposal.provider_id
    return req, chosen, "p9" if chosen != "p9" else "p8"


def accepted() -> tuple[ClientRequest, str]:
    req, chosen, _ = a_proposal()
    req.accept(chosen, NOW + timedelta(minutes=1))
    return req, chosen


def completed() -> tuple[ClientRequest, str]:
    req, chosen = accepted()
    req.complete(chosen, NOW + timedelta(hours=3), actual_hours=Decimal(2), units=None)
    return req, chosen


# -- domain: who may read ---------------------------------------------------------


def test_the_proposed_provider_may_not_read_before_accepting():
    req, chosen, _ = a_proposal()
    assert details_access(req, Reader(chosen, ReaderRole.PROVIDER)) is Access.NOT_YET


def test_the_assigned_provider_reads_after_accepting_and_after_completing():
    req, chosen = accepted()
    assert details_access(req, Reader(chosen, ReaderRole.PROVIDER)) is Access.ALLOWED
    req.complete(chosen, NOW + timedelta(hours=3), actual_hours=Decimal(2), units=None)
    assert details_access(req, Reader(chosen, ReaderRole.PROVIDER)) is Access.ALLOWED


def test_a_provider_never_asked_does_not_learn_the_request_exists():
    req, _, other = a_proposal()
    assert details_access(req, Reader(other, ReaderRole.PROVIDER)) is Access.NOT_VISIBLE


def test_a_provider_who_was_asked_but_not_assigned_may_not_read():
    req, chosen, _ = a_proposal()
    later = NOW + timedelta(minutes=1)
    req.decline(chosen, later, finder(world(), req, later))
    assert req.proposal is not None and req.proposal.provider_id != chosen  # someone else
    assert details_access(req, Reader(chosen, ReaderRole.PROVIDER)) is Access.NOT_YET


def test_only_its_own_client_reads():
    req, _, _ = a_proposal()
    assert details_access(req, CLIENT) is Access.ALLOWED
    assert details_access(req, Reader("cli_2", ReaderRole.CLIENT)) is Access.NOT_VISIBLE


def test_an_operator_needs_a_reason():
    req, _, _ = a_proposal()
    assert details_access(req, Reader("ops", ReaderRole.OPERATOR)) is Access.REASON_REQUIRED
    assert details_access(req, OPERATOR) is Access.ALLOWED


def test_the_summary_of_a_proposal_tells_the_provider_details_exist_but_not_for_them():
    req, chosen, _ = a_proposal()
    req.take_description()
    s = summary(req, Reader(chosen, ReaderRole.PROVIDER))
    assert (s.present, s.readable_by_you, s.erased) == (True, False, False)
    assert summary(req, CLIENT).readable_by_you is True


# -- domain: retention --------------------------------------------------------------


def test_details_of_a_live_request_are_never_due():
    req, _ = accepted()
    assert erase_details_after(req, RETENTION) is None


def test_details_are_due_the_retention_after_completion():
    req, _ = completed()
    assert req.completed_at is not None
    assert erase_details_after(req, RETENTION) == req.completed_at + RETENTION


def test_a_cancelled_request_counts_from_its_cancellation():
    req, _, _ = a_proposal()
    req.cancel(NOW + timedelta(hours=1))
    assert erase_details_after(req, RETENTION) == NOW + timedelta(hours=1) + RETENTION


# -- sealing ------------------------------------------------------------------------


def test_a_sealed_text_opens_only_for_its_request_and_under_its_platform_key():
    s = sealer()
    key = s.new_key()
    sealed = s.seal("req_1", key, SECRET)
    assert SECRET.encode() not in sealed.ciphertext
    assert s.open("req_1", key, sealed) == SECRET
    with pytest.raises(Unreadable):
        s.open("req_2", key, sealed)  # moved to another request
    with pytest.raises(Unreadable):
        sealer().open("req_1", key, sealed)  # another platform key


# -- use cases ----------------------------------------------------------------------


def use_cases(store: MemoryDetailsStore, s: Sealer, now=NOW) -> PrivateDetails:
    return PrivateDetails(
        store, s, retention=RETENTION, source="/delego/matching", clock=lambda: now
    )


async def test_the_client_reads_the_text_and_the_read_is_recorded_without_it():
    store, s = MemoryDetailsStore(), sealer()
    req, _, _ = a_proposal()
    store.put(req, s, SECRET)
    assert await use_cases(store, s).read(req.request_id, CLIENT) == SECRET
    [(record, [envelope])] = store.reads
    event = envelope.data
    assert isinstance(event, PrivateDetailsRead)
    assert (event.subject_id, event.request_id, event.reader_id) == ("cli_1", "req_1", "cli_1")
    assert event.reader_role == "client" and event.reason is None
    assert envelope.key() == b"cli_1"
    assert SECRET not in envelope.body().decode() and SECRET not in str(record)


async def test_the_proposed_provider_is_refused_and_nothing_is_recorded():
    store, s = MemoryDetailsStore(), sealer()
    req, chosen, _ = a_proposal()
    store.put(req, s, SECRET)
    with pytest.raises(DetailsForbidden):
        await use_cases(store, s).read(req.request_id, Reader(chosen, ReaderRole.PROVIDER))
    assert store.reads == []


async def test_an_operator_read_records_the_reason_and_reference():
    store, s = MemoryDetailsStore(), sealer()
    req, _ = accepted()
    store.put(req, s, SECRET)
    assert await use_cases(store, s).read(req.request_id, OPERATOR) == SECRET
    [(_, [envelope])] = store.reads
    assert envelope.data.reader_role == "operator"
    assert (envelope.data.reason, envelope.data.reference) == ("dispute", "case-7")


async def test_an_unknown_request_is_not_visible():
    store, s = MemoryDetailsStore(), sealer()
    with pytest.raises(DetailsNotVisible):
        await use_cases(store, s).read("req_nope", CLIENT)


async def test_erasure_shreds_the_key_so_an_earlier_copy_of_the_ciphertext_is_unreadable():
    store, s = MemoryDetailsStore(), sealer()
    req, _ = accepted()
    store.put(req, s, SECRET)
    backup = store.sealed[req.request_id]  # a copy of the ciphertext, e.g. in a backup
    details = use_cases(store, s)

    assert await details.erase(req.request_id) is True

    assert req.request_id not in store.keys and req.request_id not in store.sealed
    assert await store.wrapped_key(req.request_id) is None  # nothing left to open `backup`
    with pytest.raises(Unreadable):
        s.open(req.request_id, s.new_key(), backup)  # and no other key opens it
    with pytest.raises(DetailsErased):
        await details.read(req.request_id, CLIENT)
    assert await details.erase(req.request_id) is False  # idempotent


async def test_erasure_clears_a_clear_text_stored_before_sealing():
    store, s = MemoryDetailsStore(), sealer()
    req, _ = accepted()
    store.requests[req.request_id] = req  # as stored before sealing: text in the state
    assert req.spec.description == SECRET
    assert await use_cases(store, s).erase(req.request_id) is True
    assert store.requests[req.request_id].spec.description == ""


async def test_erasure_reads_again_when_the_request_changed_meanwhile():
    store, s = MemoryDetailsStore(), sealer()
    req, _ = accepted()
    store.put(req, s, SECRET)
    store.concurrent_writes = 2
    assert await use_cases(store, s).erase(req.request_id) is True
    assert store.requests[req.request_id].details_erased


async def test_retention_erases_details_older_than_the_retention_and_no_younger():
    store, s = MemoryDetailsStore(), sealer()
    old, _ = completed()
    young, _ = completed()
    young.request_id = "req_young"
    young.completed_at = NOW + timedelta(days=30)
    store.put(old, s, SECRET, erase_after=erase_details_after(old, RETENTION))
    store.put(young, s, SECRET, erase_after=erase_details_after(young, RETENTION))
    now = NOW + timedelta(days=100)

    erased = await use_cases(store, s, now).sweep_retention()

    assert erased == 1
    assert store.requests["req_1"].details_erased and "req_1" not in store.keys
    assert not store.requests["req_young"].details_erased
    assert await use_cases(store, s, now).read("req_young", CLIENT) == SECRET


async def test_retention_withdraws_a_date_written_ahead_of_a_transition_that_did_not_happen():
    store, s = MemoryDetailsStore(), sealer()
    req, _ = accepted()  # still live: the completion was never stored
    store.put(req, s, SECRET, erase_after=NOW - timedelta(days=1))

    assert await use_cases(store, s).sweep_retention() == 0

    assert store.keys[req.request_id]["erase_after"] is None
    assert req.status is RequestStatus.ACCEPTED and not req.details_erased


async def test_a_clear_text_stored_before_sealing_is_sealed_then_read_and_erased_as_any():
    store, s = MemoryDetailsStore(), sealer()
    req, _ = completed()
    store.requests[req.request_id] = req  # as stored before sealing: text in the state
    details = use_cases(store, s)

    assert await details.seal_clear_texts() == 1

    stored = store.requests[req.request_id]
    assert stored.spec.description == "" and stored.sealed_details
    assert store.keys[req.request_id]["erase_after"] == erase_details_after(req, RETENTION)
    assert await details.read(req.request_id, CLIENT) == SECRET
    assert await details.seal_clear_texts() == 0  # nothing left in clear


async def test_retention_goes_on_past_one_batch(monkeypatch):
    import matching.details

    monkeypatch.setattr(matching.details, "SWEEP_BATCH", 2)
    store, s = MemoryDetailsStore(), sealer()
    for i in range(5):
        req, _ = completed()
        req.request_id = f"req_{i}"
        store.put(req, s, SECRET, erase_after=erase_details_after(req, RETENTION))

    erased = await use_cases(store, s, NOW + timedelta(days=100)).sweep_retention()

    assert erased == 5 and store.keys == {}
