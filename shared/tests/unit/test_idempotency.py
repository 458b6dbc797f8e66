"""The Idempotency-Key protocol (claim, run, record, recover) on an in-memory record store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from delego_shared.http import Conflict, Unprocessable
from delego_shared.http.idempotency import DONE, LEASE, PENDING, IdempotentCall
from delego_shared.replica import Replica
from delego_shared.types import utcnow
from pydantic import BaseModel


class View(BaseModel):
    id: str
    n: int


class FakeRecords:
    """Same methods as `IdempotencyRecords`, in a dict."""

    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}

    async def claim(self, record_id: str, fingerprint: str, now: datetime, owner: str = ""):
        if record_id in self.docs:
            return dict(self.docs[record_id])
        self.docs[record_id] = {
            "state": PENDING,
            "fingerprint": fingerprint,
            "created_at": now,
            "claimed_at": now,
            "owner": owner,
        }
        return None

    async def take_over(
        self, record_id: str, claimed_at: datetime, now: datetime, owner: str = ""
    ) -> bool:
        doc = self.docs.get(record_id)
        if doc and doc["state"] == PENDING and doc["claimed_at"] == claimed_at:
            doc["claimed_at"], doc["owner"] = now, owner
            return True
        return False

    async def complete(self, record_id: str, response: Any) -> None:
        self.docs[record_id].update(state=DONE, response=response)

    async def release(self, record_id: str, claimed_at: datetime) -> None:
        doc = self.docs.get(record_id)
        if doc and doc["state"] == PENDING and doc["claimed_at"] == claimed_at:
            del self.docs[record_id]


class Command:
    def __init__(self, fail: Exception | None = None) -> None:
        self.calls = 0
        self.fail = fail

    async def __call__(self) -> View:
        self.calls += 1
        if self.fail:
            raise self.fail
        return View(id="x", n=self.calls)


def call(
    records: FakeRecords,
    key: str | None = "k",
    fingerprint: str = "f",
    replica: Replica | None = None,
) -> IdempotentCall:
    return IdempotentCall(
        key=key,
        record_id=f"svc:client:c1:{key}",
        fingerprint=fingerprint,
        records=records,
        replica=replica,
    )


async def test_without_a_key_every_call_runs_the_command():
    records, command = FakeRecords(), Command()
    for _ in range(2):
        await call(records, key=None).run(View, command)
    assert command.calls == 2 and records.docs == {}
    assert call(records, key=None).derived_id("req") is None


async def test_the_same_key_and_request_answers_the_first_result():
    records, command = FakeRecords(), Command()
    first = await call(records).run(View, command)
    again = await call(records).run(View, command)
    assert again == first and command.calls == 1


async def test_the_same_key_with_another_request_is_422():
    records, command = FakeRecords(), Command()
    await call(records).run(View, command)
    with pytest.raises(Unprocessable, match="another request"):
        await call(records, fingerprint="other").run(View, command)
    assert command.calls == 1


async def test_a_key_in_flight_is_409_and_the_command_does_not_run_twice():
    records, command = FakeRecords(), Command()
    await records.claim("svc:client:c1:k", "f", utcnow())
    with pytest.raises(Conflict, match="still being processed"):
        await call(records).run(View, command)
    assert command.calls == 0


async def test_after_a_crash_the_retry_recovers_the_stored_result_without_running_again():
    records, command = FakeRecords(), Command()
    await records.claim("svc:client:c1:k", "f", utcnow() - 2 * LEASE)  # died mid-command

    async def recover() -> View:
        return View(id="stored", n=0)

    assert await call(records).run(View, command, recover=recover) == View(id="stored", n=0)
    assert command.calls == 0
    assert records.docs["svc:client:c1:k"]["state"] == DONE


async def test_a_claim_of_a_killed_run_is_taken_over_at_once_by_the_same_replica_only():
    records, command = FakeRecords(), Command()
    killed = Replica("host:8002")
    await records.claim("svc:client:c1:k", "f", utcnow(), killed.owner)  # a moment ago
    with pytest.raises(Conflict, match="still being processed"):  # another replica waits
        await call(records, replica=Replica("other:8002")).run(View, command)
    assert command.calls == 0

    async def nothing() -> None:
        return None

    again = Replica("host:8002")  # the same replica, started again
    assert (await call(records, replica=again).run(View, command, recover=nothing)).n == 1
    assert command.calls == 1
    assert records.docs["svc:client:c1:k"]["owner"] == again.owner


async def test_a_claim_of_the_running_process_is_in_flight_not_abandoned():
    records, command = FakeRecords(), Command()
    me = Replica("host:8002")
    await records.claim("svc:client:c1:k", "f", utcnow(), me.owner)
    with pytest.raises(Conflict, match="still being processed"):
        await call(records, replica=me).run(View, command)
    assert command.calls == 0


async def test_after_a_crash_before_the_command_the_retry_runs_it():
    records, command = FakeRecords(), Command()
    await records.claim("svc:client:c1:k", "f", utcnow() - 2 * LEASE)

    async def nothing() -> None:
        return None

    assert (await call(records).run(View, command, recover=nothing)).n == 1
    assert command.calls == 1


async def test_a_refused_command_releases_the_key():
    records, refused = FakeRecords(), Command(fail=Conflict("not now"))
    with pytest.raises(Conflict):
        await call(records).run(View, refused)
    assert records.docs == {}
    assert (await call(records).run(View, Command())).n == 1


async def test_a_service_refusal_counts_as_nothing_done_when_named():
    class DomainRefusal(Exception):
        pass

    records = FakeRecords()
    with pytest.raises(DomainRefusal):
        await call(records).run(View, Command(fail=DomainRefusal()), refusals=(DomainRefusal,))
    assert records.docs == {}


async def test_an_unexpected_failure_keeps_the_claim_for_recovery():
    records = FakeRecords()
    with pytest.raises(RuntimeError):
        await call(records).run(View, Command(fail=RuntimeError("store down")))
    assert records.docs["svc:client:c1:k"]["state"] == PENDING


def test_derived_ids_are_stable_per_key_and_caller():
    records = FakeRecords()
    a = call(records).derived_id("req")
    assert a == call(records).derived_id("req")
    assert a != call(records, key="k2").derived_id("req")
    assert a is not None and a.startswith("req_") and len(a) == 4 + 32
