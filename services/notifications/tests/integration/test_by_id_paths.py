"""The per-event paths go by `_id`, deliveries leave at once, and the slow sweeps only
catch up after crashes: real Kafka, real Mongo-wire store, real SMTP and HTTP."""

from __future__ import annotations

import asyncio
import threading
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from delego_shared.events import Envelope
from delego_shared.events.notifications import Channel, NotificationDelivered
from delego_shared.mongo import Mongo
from delego_shared.replica import Replica
from delego_shared.types import new_id
from notifications.domain import (
    PlannedDelivery,
    QuietHours,
    Recipient,
    Rendered,
    delivery_key,
    digest_key,
    set_key,
)
from notifications.store import LEGACY_ENDPOINT_SETS, SETS_MOVED, NotificationsStore
from pymongo import monitoring

pytestmark = pytest.mark.integration

SECRET = "whsec_0123456789abcdef"
SLOW = {"dispatch_interval_s": 3600.0, "release_interval_s": 3600.0}
"""No sweep after the one at start-up: whatever is sent afterwards was sent at once."""

OURS = {
    "recipients",
    "webhooks",
    "deliveries",
    "schedule",
    "inbox",
    "inbox_index",
    "release_locks",
}


class Queries(monitoring.CommandListener):
    """Records the filters the service sends to its own collections while `on`."""

    def __init__(self) -> None:
        self.database: str | None = None
        self.on = False
        self.seen: list[tuple[str, str, dict[str, Any]]] = []
        self.lock = threading.Lock()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if not self.on or event.database_name != self.database:
            return
        cmd, name = event.command, event.command_name
        coll = cmd.get(name)
        if not isinstance(coll, str) or coll not in OURS:
            return
        filters: list[dict[str, Any]] = []
        if name == "find":
            filters = [cmd.get("filter", {})]
        elif name == "findAndModify":
            filters = [cmd.get("query", {})]
        elif name == "update":
            filters = [u["q"] for u in cmd["updates"]]
        elif name == "delete":
            filters = [d["q"] for d in cmd["deletes"]]
        elif name in ("insert", "listIndexes", "createIndexes"):
            return
        else:
            filters = [{"<command>": name}]
        with self.lock:
            self.seen.extend((name, coll, f) for f in filters)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def not_by_id(self) -> list[tuple[str, str, dict[str, Any]]]:
        """Accesses that are not by `_id` (an exact match or an `$in` of ids; the
        outbox relay is the platform's)."""

        def by_id(f: dict[str, Any]) -> bool:
            key = f.get("_id")
            if isinstance(key, dict) and list(key) == ["$in"]:
                return all(isinstance(k, str) for k in key["$in"])
            return isinstance(key, str)

        with self.lock:
            return [
                (name, coll, f)
                for name, coll, f in self.seen
                if not by_id(f) and "_outbox_n" not in f
            ]


QUERIES = Queries()
monitoring.register(QUERIES)  # before any client is created: clients pick listeners up then


async def put_contact(kit, client, settings, user_id, **contact):
    r = await client.put(
        "/v1/me/contact", json=contact, headers=kit.bearer(settings, user_id, "client")
    )
    assert r.status_code == 200, r.text


async def test_an_event_is_sent_at_once_and_touches_the_store_only_by_id(
    notif_settings, smtp, receiver, publish, events, kit
):
    settings = notif_settings(**SLOW)
    receiver.script["/erp"] = [503, 200]  # one retry: an in-process timer, not a poll
    client_id = new_id("cli")
    QUERIES.database = settings.database
    async with kit.running(kit.app_for(settings)) as client:
        op = kit.bearer(settings, "op_1", "operator")
        r = await client.post(
            "/v1/webhooks",
            json={
                "url": f"{receiver.base_url}/erp",
                "secret": SECRET,
                "event_types": ["delego.billing.*"],
            },
            headers=op,
        )
        assert r.status_code == 201, r.text
        await put_contact(kit, client, settings, client_id, email="ada@example.org", locale="en")
        await asyncio.sleep(0.5)  # the start-up sweeps are over
        QUERIES.seen.clear()
        QUERIES.on = True
        try:
            await publish(kit.envelope(events.invoice_issued(client_id)))

            async def both_sent():
                ok = [c for c in receiver.on("/erp") if c.status == 200]
                return len(smtp.mailbox.messages) >= 1 and ok

            await kit.wait_for(both_sent, timeout=15.0)
            evts = await kit.delivery_events(settings, expect=2)
        finally:
            QUERIES.on = False
        assert all(isinstance(e.data, NotificationDelivered) for e in evts)
        assert [c.status for c in receiver.on("/erp")] == [503, 200]
        assert QUERIES.seen, "the listener saw the service's commands"
        assert QUERIES.not_by_id() == []
        # routing read the client, their endpoints and the subscriptions in one command
        [routing] = [f for name, coll, f in QUERIES.seen if (name, coll) == ("find", "recipients")]
        assert set(routing["_id"]["$in"]) == {client_id, set_key(client_id), set_key(None)}
        # nothing left in flight: the schedule holds only what is not final (the entries
        # of finished deliveries go together, a moment after)
        mongo = Mongo(settings.mongodb_url, settings.database)
        try:

            async def schedule_empty():
                return await mongo.db["schedule"].count_documents({}) == 0

            await kit.wait_for(schedule_empty, timeout=5.0)
        finally:
            await mongo.close()


async def test_a_user_without_contact_data_is_read_once_and_reached_in_app(
    notif_settings, publish, events, kit
):
    """The routing read finds no contact data: the delivery goes in-app as planned,
    and the sender does not read the recipient again."""
    settings = notif_settings(**SLOW)
    client_id = new_id("cli")
    QUERIES.database = settings.database
    async with kit.running(kit.app_for(settings)):
        await asyncio.sleep(0.5)  # the start-up sweeps are over
        QUERIES.seen.clear()
        QUERIES.on = True
        try:
            await publish(kit.envelope(events.invoice_issued(client_id)))
            [evt] = await kit.delivery_events(settings, expect=1)
        finally:
            QUERIES.on = False
        assert isinstance(evt.data, NotificationDelivered)
        assert (evt.data.recipient_id, evt.data.channel) == (client_id, Channel.INAPP)
        reads = [f for name, coll, f in QUERIES.seen if (name, coll) == ("find", "recipients")]
        assert len(reads) == 1, reads  # the routing read, nothing after it
        assert client_id in reads[0]["_id"]["$in"]


def invoice_email(env: Envelope, user: str) -> PlannedDelivery:
    """The invoice e-mail the routing plans for this event and user."""
    return PlannedDelivery(
        key=delivery_key(env.id, user, Channel.EMAIL),
        event_id=env.id,
        event_type=env.type,
        kind="invoice_issued",
        recipient_id=user,
        channel=Channel.EMAIL,
        critical=True,
    )


async def test_the_start_up_sweep_sends_what_a_crash_left_behind(notif_settings, smtp, events, kit):
    settings = notif_settings(**SLOW, delivery_lease_s=1.0)
    now = datetime.now(UTC)
    mongo = Mongo(settings.mongodb_url, settings.database)
    store = NotificationsStore(mongo)
    stored_only, mid_send = new_id("cli"), new_id("cli")
    try:
        for user in (stored_only, mid_send):
            await store.put_contact(
                Recipient(recipient_id=user, email=f"{user}@example.org", locale="en"), now
            )
        plans = {}
        for user in (stored_only, mid_send):
            env = kit.envelope(events.invoice_issued(user))
            p = invoice_email(env, user)
            assert await store.claim(p, env, now=now)  # crashed right after storing
            plans[user] = p
        # the other one crashed mid-send: claimed under a lease that has run out
        assert await store.claim_send(plans[mid_send].key, "dead-replica", now, timedelta(0))
        # and an entry whose delivery was never stored (crash between the two inserts)
        await store.schedule_c.insert_one(
            {
                "_id": "dlv_orphan",
                "op": "send",
                "at": now - timedelta(minutes=5),
                "recipient_id": "x",
                "channel": "email",
                "created_at": now - timedelta(minutes=5),
            }
        )
        await asyncio.sleep(0.01)

        async with kit.running(kit.app_for(settings)):

            async def two_mails():
                return len(smtp.mailbox.messages) >= 2

            await kit.wait_for(two_mails, timeout=15.0)
            evts = await kit.delivery_events(settings, expect=2)

            async def schedule_empty():
                return await store.schedule_c.count_documents({}) == 0

            await kit.wait_for(schedule_empty, timeout=10.0)
        assert sorted(m["To"] for m in smtp.mailbox.messages) == sorted(
            f"{u}@example.org" for u in (stored_only, mid_send)
        )
        assert {e.data.recipient_id for e in evts} == {stored_only, mid_send}
        for user in (stored_only, mid_send):
            doc = await store.delivery(plans[user].key)
            assert doc is not None
            assert doc["state"] == "delivered"
    finally:
        await mongo.close()


async def test_endpoint_sets_follow_the_webhook_api_and_are_repaired_at_start_up(
    notif_settings, smtp, kit
):
    settings = notif_settings(**SLOW)
    op = kit.bearer(settings, "op_1", "operator")
    ada, bob = new_id("cli"), new_id("cli")
    mongo = Mongo(settings.mongodb_url, settings.database)
    store = NotificationsStore(mongo)
    body = {
        "url": "http://127.0.0.1:9/hook",
        "secret": SECRET,
        "event_types": ["delego.billing.*"],
        "owner_id": ada,
    }
    try:
        async with kit.running(kit.app_for(settings)) as client:
            r = await client.post("/v1/webhooks", json=body, headers=op)
            assert r.status_code == 201, r.text
            eid = r.json()["endpoint_id"]
            assert [e.endpoint_id for e in await store.owned_endpoints([ada])] == [eid]
            assert await store.subscription_endpoints() == []

            r = await client.put(f"/v1/webhooks/{eid}", json={**body, "owner_id": bob}, headers=op)
            assert r.status_code == 200, r.text
            assert await store.owned_endpoints([ada]) == []
            assert [e.endpoint_id for e in await store.owned_endpoints([bob])] == [eid]

            r = await client.put(f"/v1/webhooks/{eid}", json={**body, "owner_id": None}, headers=op)
            assert r.status_code == 200, r.text
            assert await store.owned_endpoints([bob]) == []
            [sub] = await store.subscription_endpoints()
            assert sub.endpoint_id == eid
            assert sub.secret == SECRET

            assert (await client.delete(f"/v1/webhooks/{eid}", headers=op)).status_code == 204
            assert await store.subscription_endpoints() == []

        # a crash after the endpoint's write, before its sets: the next start-up finishes it
        await store.webhooks_c.update_one(
            {"_id": eid},
            {
                "$set": {"active": True, "owner_id": ada, "sync_pending": True},
                "$inc": {"version": 1},
                "$addToSet": {"sets": set_key(ada)},
            },
        )
        assert await store.owned_endpoints([ada]) == []
        async with kit.running(kit.app_for(settings)):

            async def repaired():
                return await store.owned_endpoints([ada])

            [ep] = await kit.wait_for(repaired, timeout=10.0)
            assert ep.endpoint_id == eid
        doc = await store.webhooks_c.find_one({"_id": eid})
        assert doc is not None
        assert "sync_pending" not in doc
        assert doc["sets"] == [set_key(ada)]
    finally:
        await mongo.close()


async def test_endpoint_sets_of_the_earlier_layout_are_rebuilt_beside_the_recipients(
    notif_settings, smtp, kit
):
    settings = notif_settings(**SLOW)
    op = kit.bearer(settings, "op_1", "operator")
    ada = new_id("cli")
    mongo = Mongo(settings.mongodb_url, settings.database)
    store = NotificationsStore(mongo)
    body = {"url": "http://127.0.0.1:9/hook", "secret": SECRET, "event_types": ["delego.*"]}
    try:
        async with kit.running(kit.app_for(settings)) as client:
            r = await client.post("/v1/webhooks", json={**body, "owner_id": ada}, headers=op)
            assert r.status_code == 201, r.text
            owned = r.json()["endpoint_id"]
            r = await client.post("/v1/webhooks", json=body, headers=op)
            assert r.status_code == 201, r.text
            sub = r.json()["endpoint_id"]
        # the earlier layout: sets in their own collection under the old keys
        for key in (set_key(ada), set_key(None)):
            await store.recipients_c.delete_one({"_id": key})
        await store.recipients_c.delete_one({"_id": SETS_MOVED})
        await store.webhooks_c.update_many({}, {"$set": {"sets": ["subscriptions"]}})
        await mongo.db[LEGACY_ENDPOINT_SETS].insert_one({"_id": f"owner:{ada}", "eps": {}})
        assert await store.owned_endpoints([ada]) == []

        async with kit.running(kit.app_for(settings)):

            async def moved():
                return await store.recipients_c.find_one({"_id": SETS_MOVED})

            await kit.wait_for(moved, timeout=10.0)
        assert [e.endpoint_id for e in await store.owned_endpoints([ada])] == [owned]
        route = await store.routing([ada], with_recipients=False)
        assert [e.endpoint_id for e in route.subscriptions] == [sub]
        assert LEGACY_ENDPOINT_SETS not in await mongo.db.list_collection_names()
        assert await store.recipients_c.find_one({"_id": "subscriptions"}) is None
        for d in await store.webhooks_c.find({}).to_list():
            assert d["sets"] == [set_key(d["owner_id"])] and "sync_pending" not in d
    finally:
        await mongo.close()


async def test_inbox_pages_come_from_the_per_user_index_including_older_items(
    notif_settings, smtp, kit
):
    settings = notif_settings(**SLOW)
    user = new_id("cli")
    me = kit.bearer(settings, user, "client")
    mongo = Mongo(settings.mongodb_url, settings.database)
    try:
        t0 = datetime(2026, 1, 1, tzinfo=UTC)
        # stored before the per-user index existed
        await mongo.db["inbox"].insert_many(
            [
                {
                    "_id": f"dlv_old{i}",
                    "user_id": user,
                    "kind": "work_completed",
                    "subject": f"old {i}",
                    "text": "t",
                    "html": "h",
                    "locale": "en",
                    "source_event_id": f"evt_{i}",
                    "created_at": t0 + timedelta(minutes=i),
                    "read_at": t0 if i == 0 else None,
                }
                for i in range(3)
            ]
        )
        app = kit.app_for(settings)
        async with kit.running(app) as client:
            r = await client.get("/v1/me/inbox", headers=me)
            assert r.status_code == 200, r.text
            assert [i["subject"] for i in r.json()["items"]] == ["old 2", "old 1", "old 0"]
            assert r.json()["unread"] == 2
            # a new item goes on top of the index
            store: NotificationsStore = app.state.store
            rendered = Rendered(
                subject="new", text="t", html="h", html_body="h", locale="en", fell_back=False
            )
            assert await store.add_inbox_item(
                "dlv_new",
                user_id=user,
                kind="work_completed",
                rendered=rendered,
                source_event_id="evt_new",
                now=datetime.now(UTC),
            )
            assert not await store.add_inbox_item(  # idempotent: listed once
                "dlv_new",
                user_id=user,
                kind="work_completed",
                rendered=rendered,
                source_event_id="evt_new",
                now=datetime.now(UTC),
            )
            r = await client.get("/v1/me/inbox?unread=true&limit=2", headers=me)
            assert [i["subject"] for i in r.json()["items"]] == ["new", "old 2"]
            assert r.json()["unread"] == 3
            r = await client.get("/v1/me/inbox?limit=2&offset=2", headers=me)
            assert [i["subject"] for i in r.json()["items"]] == ["old 1", "old 0"]
            r = await client.post("/v1/me/inbox/dlv_old1/read", headers=me)
            assert r.status_code == 200
            r = await client.post("/v1/me/inbox/read-all", headers=me)
            assert r.json() == {"marked": 2}
            r = await client.get("/v1/me/inbox", headers=me)
            assert r.json()["unread"] == 0
            assert len(r.json()["items"]) == 4
    finally:
        await mongo.close()


async def test_a_release_that_died_half_way_is_finished_once_after_a_restart(
    notif_settings, smtp, events, kit
):
    settings = notif_settings(**SLOW)
    night = datetime(2026, 3, 10, 22, 0, tzinfo=UTC)  # 23:00 in Paris
    morning = datetime(2026, 3, 11, 7, 0, tzinfo=UTC)
    user = new_id("cli")
    mongo = Mongo(settings.mongodb_url, settings.database)
    store = NotificationsStore(mongo)
    try:
        await store.put_contact(
            Recipient(
                recipient_id=user,
                email="ada@example.org",
                locale="en",
                quiet_hours=QuietHours.model_validate({"start": "21:00", "end": "08:00"}),
            ),
            night,
        )
        keys = []
        for event in (events.match_accepted(user), events.work_completed(user)):
            env = kit.envelope(event)
            p = PlannedDelivery(
                key=delivery_key(env.id, user, Channel.EMAIL),
                event_id=env.id,
                event_type=env.type,
                kind=kit_kind(env.type),
                recipient_id=user,
                channel=Channel.EMAIL,
                critical=False,
                hold_until=morning,
            )
            assert await store.claim(p, env, now=night)
            keys.append(p.key)
        assert {e["op"] for e in await store.schedule_c.find({}).to_list()} == {"release"}
        # a release died after storing the digest, before marking its parts
        dkey = digest_key(user, Channel.EMAIL, keys)
        for k in keys:
            await store.mark_entry_digest(k, dkey)
        await store.insert_digest(
            dkey, recipient_id=user, channel=Channel.EMAIL, parts=keys, now=morning
        )

        clock = kit.ShiftedClock()
        clock.set(morning + timedelta(minutes=1))
        async with kit.running(kit.app_for(settings, clock)):

            async def mailed():
                return len(smtp.mailbox.messages) >= 1

            await kit.wait_for(mailed, timeout=15.0)

            async def schedule_empty():
                return await store.schedule_c.count_documents({}) == 0

            await kit.wait_for(schedule_empty, timeout=10.0)
            await asyncio.sleep(0.5)
        [digest] = smtp.mailbox.messages
        assert digest["Subject"] == "2 notifications while you were away"
        for k in keys:
            doc = await store.delivery(k)
            assert doc is not None
            assert doc["digest_id"] == dkey
    finally:
        await mongo.close()


def kit_kind(event_type: str) -> str:
    return {
        "delego.matching.MatchAccepted.v1": "match_accepted",
        "delego.matching.WorkCompleted.v1": "work_completed",
    }[event_type]


async def test_a_send_killed_mid_way_is_taken_over_at_once_by_the_same_replica_only(
    notif_settings, smtp, events, kit
):
    """Its lease (2 min) still runs: another replica waits it out, the killed replica
    started again (same `instance_id`) knows its earlier run is dead and sends now."""
    instance = f"notif-{new_id('host')}"
    now = datetime.now(UTC)
    killed = Replica(instance)
    mongo = Mongo(notif_settings().mongodb_url, notif_settings().database)
    store = NotificationsStore(mongo)
    user = new_id("cli")
    try:
        await store.put_contact(
            Recipient(recipient_id=user, email=f"{user}@example.org", locale="en"), now
        )
        env = kit.envelope(events.invoice_issued(user))
        p = invoice_email(env, user)
        # stored already taken by the killed run, which died before sending
        assert await store.claim(p, env, now=now, sender=(killed.owner, now + timedelta(minutes=2)))
        await asyncio.sleep(0.01)

        other = notif_settings(**SLOW, instance_id=f"other-{instance}")
        async with kit.running(kit.app_for(other)):
            await asyncio.sleep(2.0)  # its start-up sweep has run
        assert smtp.mailbox.messages == []
        doc = await store.delivery(p.key)
        assert doc is not None and doc["state"] == "sending"
        assert doc["lease_owner"] == killed.owner

        again = notif_settings(**SLOW, instance_id=instance)
        async with kit.running(kit.app_for(again)):

            async def sent():
                return len(smtp.mailbox.messages) == 1

            await kit.wait_for(sent, timeout=10.0)
        assert [m["To"] for m in smtp.mailbox.messages] == [f"{user}@example.org"]
        doc = await store.delivery(p.key)
        assert doc is not None and doc["state"] == "delivered"
    finally:
        await mongo.close()
