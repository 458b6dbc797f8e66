"""The notifications erasure use case on an in-memory store: what goes, idempotence, a crash."""

from __future__ import annotations

import pytest
from notifications.domain import set_key
from notifications.privacy import NotificationsErasure
from notifications.store import INBOX, INBOX_INDEX, RECIPIENTS


class Crash(Exception):
    pass


class MemoryStore:
    """The `PrivacyStore` surface over dicts; `crash_after` deletes fail after N successes."""

    def __init__(self, subject: str, items: list[str]) -> None:
        self.docs: dict[str, dict[str, dict[str, object]]] = {
            RECIPIENTS: {
                subject: {"email": "a@b.fr"},
                "other": {"email": "o@b.fr"},
                set_key(subject): {},
                set_key("other"): {},
            },
            INBOX: {i: {"text": "rendered"} for i in [*items, "itm-other"]},
            INBOX_INDEX: {subject: {"items": items}, "other": {"items": ["itm-other"]}},
        }
        self.crash_after: int | None = None

    async def delete(self, collection: str, _id: str) -> int:
        if self.crash_after is not None:
            if self.crash_after == 0:
                raise Crash
            self.crash_after -= 1
        return 1 if self.docs[collection].pop(_id, None) is not None else 0

    async def inbox_item_ids(self, subject_id: str) -> list[str]:
        return list(self.docs[INBOX_INDEX].get(subject_id, {}).get("items", []))  # type: ignore[call-overload]


async def test_erases_contact_inbox_items_index_and_owned_endpoints_of_the_subject_only():
    store = MemoryStore("cli-1", ["itm-1", "itm-2"])
    result = await NotificationsErasure(store)("cli-1")  # type: ignore[arg-type]
    assert result.erased == {
        "inbox_items": 2,
        "inbox_index": 1,
        "owned_endpoint_set": 1,
        "recipients": 1,
    }
    assert set(store.docs[RECIPIENTS]) == {"other", set_key("other")}
    assert set(store.docs[INBOX]) == {"itm-other"}
    assert set(store.docs[INBOX_INDEX]) == {"other"}
    assert result.kept == ()


async def test_a_second_run_changes_nothing():
    store = MemoryStore("cli-1", ["itm-1"])
    await NotificationsErasure(store)("cli-1")  # type: ignore[arg-type]
    again = await NotificationsErasure(store)("cli-1")  # type: ignore[arg-type]
    assert set(again.erased.values()) == {0}


async def test_a_crash_in_the_middle_is_finished_by_the_redelivered_request():
    store = MemoryStore("cli-1", ["itm-1", "itm-2", "itm-3"])
    store.crash_after = 1  # the first item goes, then the process dies
    with pytest.raises(Crash):
        await NotificationsErasure(store)("cli-1")  # type: ignore[arg-type]
    assert "cli-1" in store.docs[INBOX_INDEX]  # the index still lists what remains
    store.crash_after = None
    result = await NotificationsErasure(store)("cli-1")  # type: ignore[arg-type]
    assert result.erased["inbox_items"] == 2
    assert set(store.docs[INBOX]) == {"itm-other"} and "cli-1" not in store.docs[RECIPIENTS]
