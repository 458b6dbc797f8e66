"""The seed's story end to end: four services as separate processes on real Kafka and a
real Mongo-wire database, driven through their public HTTP APIs only (the same code
path as `make run`).

The story is played once per module; a second test reads every record it left with
the official CloudEvents SDK (the contract a downstream consumer relies on). The last
two erase the story's clients with the operator's `delego privacy erase` (issue 17's
checks), one of them while a service crashes.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import uuid
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from cloudevents.v1.kafka import KafkaMessage, from_binary
from delego_cli.demo.data import CLIENTS, REQUESTS, STORY_START, WEBHOOK_SECRET
from delego_cli.demo.seed import bearer
from delego_cli.demo.sinks import SmtpSink, WebhookReceiver
from delego_cli.demo.story import Bus, Urls, play, render
from delego_cli.platform import SERVICES, Platform, PlatformConfig
from delego_cli.privacy import erasure_status, wait_for_erasure
from delego_shared.contracts import asyncapi_document
from delego_shared.events import ALL_TOPICS
from delego_shared.messaging.topics_admin import delete_topics_with_prefix
from delego_shared.settings import Settings
from delego_shared.testing.kafka_tools import Record, read_records
from delego_shared.testing.otlp import OtlpReceiver, ReceivedSpan
from delego_shared.testing.privacy_scan import Found, find_in, scan_databases, topic_texts
from delego_shared.testing.waiting import wait_for
from jsonschema import Draft202012Validator
from prometheus_client.parser import text_string_to_metric_families
from pymongo import AsyncMongoClient

pytestmark = pytest.mark.e2e


def consecutive_free_ports(n: int) -> int:
    for base in range(21000, 29000, 10):
        socks = []
        try:
            for port in range(base, base + n):
                s = socket.socket()
                s.bind(("127.0.0.1", port))
                socks.append(s)
            return base
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no free ports")


ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
async def story(infra, tmp_path_factory):
    """One run of the story for the module's tests, with tracing on: every service exports
    its spans over OTLP to an in-process receiver."""
    namespace = f"t{uuid.uuid4().hex[:10]}"
    anchor = f"{datetime.now().timestamp():.3f}"
    traces = OtlpReceiver()
    traces.start()
    smtp = SmtpSink()
    smtp.start()
    hooks = WebhookReceiver(secret=WEBHOOK_SECRET)
    await hooks.start()
    cfg = PlatformConfig(
        kafka_bootstrap=infra.kafka_bootstrap,
        mongodb_url=infra.mongodb_url,
        run_dir=tmp_path_factory.mktemp("story"),
        base_port=consecutive_free_ports(len(SERVICES)),
        topic_prefix=f"{namespace}.",
        database_prefix=namespace,
        extra_env={
            "DELEGO_SMTP_HOST": "127.0.0.1",
            "DELEGO_SMTP_PORT": str(smtp.port),
            "DELEGO_CLOCK_START": STORY_START,
            "DELEGO_CLOCK_ANCHOR": anchor,
            "OTEL_TRACES_EXPORTER": "otlp",
            "OTEL_EXPORTER_OTLP_ENDPOINT": traces.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",  # ms: spans reach the receiver soon
        },
    )
    platform = Platform(cfg, log=print)
    try:
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("DELEGO_CLOCK_START", STORY_START)
            mp.setenv("DELEGO_CLOCK_ANCHOR", anchor)
            await platform.create_topics()
            platform.start_services()
            await platform.wait_ready(timeout=180)
            urls = Urls(*(cfg.url(s) for s in ("catalog", "matching", "billing", "notifications")))
            report = await play(
                urls, Settings(), smtp, hooks, Bus(infra.kafka_bootstrap, cfg.topic_prefix)
            )
        print(render(report))
        records = {
            topic.name: await read_records(
                infra.kafka_bootstrap, cfg.topic_prefix + topic.name, timeout=10, idle=1.0
            )
            for topic in ALL_TOPICS
        }
        yield report, cfg, list(platform.procs.values()), records, traces, platform
    finally:
        procs = list(platform.procs.values())
        platform.stop()
        await delete_topics_with_prefix(infra.kafka_bootstrap, f"{namespace}.")
        await hooks.stop()
        smtp.stop()
        traces.stop()
        assert all(p.poll() is not None for p in procs), "a service process was left behind"


async def scrape(url: str) -> dict[str, float]:
    """`/metrics` of a service as {sample with labels: value}."""
    async with httpx.AsyncClient() as http:
        resp = await http.get(f"{url}/metrics")
    assert resp.status_code == 200
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(resp.text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def by_title(report, word):
    [o] = [o for o in report.outcomes if word in o.title]
    return o


def money(m) -> Decimal:
    return Decimal(m["amount"])


async def test_the_seed_story(story, infra):
    report, cfg, procs, records, *_ = story

    # Paris, 18:30: the translation goes to Bangalore and is promised before 09:00
    tr = by_title(report, "Translation")
    assert tr.request["proposal"]["provider_id"] == "prv-priya-bangalore"
    promised = datetime.fromisoformat(tr.request["promised_local"])
    assert promised.utcoffset().total_seconds() == 3600  # Europe/Paris in December
    assert (promised.date().isoformat(), promised.hour < 9) == ("2026-12-02", True)
    assert tr.request["status"] == "rated"
    score = tr.request["proposal"]["score"]
    assert {"slack", "rating", "price", "load", "trust_bonus", "total"} <= set(score)

    # each request went to the provider the story expects
    expected = {
        "Translation": "prv-priya-bangalore",
        "dating": "prv-claire-paris",
        "tutoring": "prv-julien-lyon",
        "moderation": "prv-paolo-manila",
        "concierge": "prv-sophie-montreal",
    }
    for word, provider in expected.items():
        assert by_title(report, word).request["proposal"]["provider_id"] == provider, word

    # invoices: commission, VAT by the client's country, tax-credit decision per line
    [tr_inv] = tr.invoices
    t = tr_inv["totals"]
    assert money(t["total_net"]) == Decimal("26.25")  # 1 h 45 at 15 EUR/h, 15-min increments
    assert money(t["commission"]) > 0
    assert money(t["provider_payout"]) + money(t["commission"]) == money(t["total_net"])
    assert money(t["total_vat"]) == Decimal("5.25")  # French VAT 20 %
    assert tr_inv["lines"][0]["decision"]["code"].startswith("not_eligible")

    [dating] = by_title(report, "dating").invoices
    assert money(dating["totals"]["total_net"]) == Decimal("650.00")
    assert all(ln["decision"]["code"].startswith("not_eligible") for ln in dating["lines"])
    assert money(dating["totals"]["tax_credit"]) == 0

    [tutoring] = by_title(report, "tutoring").invoices
    t = tutoring["totals"]
    assert [ln["decision"]["code"] for ln in tutoring["lines"]] == ["eligible"]
    assert "soutien scolaire" in tutoring["lines"][0]["decision"]["reason_fr"]
    assert money(t["tax_credit"]) == (money(t["total_gross"]) / 2).quantize(Decimal("0.01"))
    assert money(t["payable_now"]) == money(t["total_gross"]) - money(t["tax_credit"])

    [moderation] = by_title(report, "moderation").invoices
    assert money(moderation["totals"]["total_net"]) == Decimal("36.00")  # 3 batches at 12 EUR
    assert money(moderation["totals"]["total_vat"]) == Decimal("7.56")  # Belgian VAT 21 %
    assert moderation["lines"][0]["decision"]["code"] == "not_eligible_non_resident"

    [concierge] = by_title(report, "concierge").invoices
    assert money(concierge["totals"]["total_net"]) == Decimal("39.00")  # first monthly period

    # the ledger balances: double entry sums to zero per currency
    totals: dict[str, Decimal] = {}
    for b in report.balances:
        totals[b["currency"]] = totals.get(b["currency"], Decimal(0)) + money(b)
    assert totals and all(v == 0 for v in totals.values())

    # notifications: e-mails really sent over SMTP, signed webhooks really received
    to = {addr for m in report.mails for addr in m.to}
    assert {"camille@example.fr", "lucas@example.be"} <= to
    assert any("priya" in a for a in to)  # the provider was told about the proposal
    assert report.webhooks and all(c.verified for c in report.webhooks)
    assert {c.event_type for c in report.webhooks} >= {"delego.billing.InvoiceIssued.v1"}

    # privacy: no e-mail address and no private description on any topic
    for topic, recs in records.items():
        for rec in recs:
            text = rec.value.decode() + str(rec.headers)
            assert "@" not in text, (topic, text[:200])
            assert "landlord" not in text and "Léa" not in text

    # the four services are separate processes, all alive until the end of the story
    assert len({p.pid for p in procs}) == 4 and all(p.poll() is None for p in procs)

    # their /metrics count what the report shows
    metrics = {s: await scrape(cfg.url(s)) for s in ("matching", "billing", "notifications")}
    billing = metrics["billing"]
    invoices = sum(len(o.invoices) for o in report.outcomes)
    assert billing["delego_billing_invoices_issued_total"] == invoices
    decisions = sum(
        v for k, v in billing.items() if k.startswith("delego_billing_tax_credit_decisions_total")
    )
    assert decisions == sum(len(i["lines"]) for o in report.outcomes for i in o.invoices)
    # billed at acceptance: the dating package (the concierge's first period is not
    # observed); at completion: translation, tutoring and moderation
    assert billing["delego_flow_accepted_to_invoiced_seconds_count"] == 1
    assert billing["delego_flow_completed_to_invoiced_seconds_count"] == 3
    assert metrics["matching"]["delego_matching_requests_matched_total"] == len(expected)
    delivered = sum(
        v
        for k, v in metrics["notifications"].items()
        if k.startswith("delego_notifications_total") and 'outcome="delivered"' in k
    )
    assert delivered >= len(report.mails) + len(report.webhooks)
    _ = os


# CloudEvents 1.0: extension names are lower-case letters and digits
EXTENSION_NAME = re.compile(r"^[a-z0-9]{1,20}$")
REQUIRED_HEADERS = ("ce_specversion", "ce_id", "ce_source", "ce_type", "ce_time", "ce_subject")


def ce_types_by_topic() -> dict[str, set[str]]:
    doc = asyncapi_document()
    messages = doc["components"]["messages"]
    return {
        ch["address"]: {messages[name]["x-ce-type"] for name in ch["messages"]}
        for ch in doc["channels"].values()
    }


def read_with_sdk(rec: Record):
    """A record as a consumer using the official SDK reads it (Kafka binary mode)."""
    message = KafkaMessage(
        headers={k: v.encode() for k, v in rec.headers.items()}, key=rec.key, value=rec.value
    )
    return from_binary(message)


async def test_the_cloudevents_sdk_reads_every_record_the_story_left(story):
    """Each record: a CloudEvents 1.0 event per the official Python SDK
    (`cloudevents.v1.kafka.from_binary`), attributes from our own headers (the SDK
    would invent a missing id or time), a type the topic's catalogue lists, and a
    body valid against the published JSON Schema of that type."""
    _, _, _, records, *_ = story
    types = ce_types_by_topic()
    schemas = ROOT / "contracts" / "schemas"
    seen: dict[str, int] = {}
    for topic, recs in records.items():
        for rec in recs:
            where = f"{topic}@{rec.partition}:{rec.offset}"
            assert set(REQUIRED_HEADERS) <= rec.headers.keys(), where
            event = read_with_sdk(rec)
            attrs = event.get_attributes()
            assert attrs["specversion"] == "1.0", where
            assert attrs["id"] == rec.headers["ce_id"], where
            assert attrs["type"] in types[topic], where
            assert attrs["source"].startswith("/delego/"), where
            assert attrs["subject"] == rec.key.decode(), where
            assert attrs["datacontenttype"] == "application/json", where
            when = datetime.fromisoformat(attrs["time"])
            assert when.utcoffset() is not None and when.utcoffset().total_seconds() == 0, where
            standard = {"specversion", "id", "source", "type", "time", "subject"}
            standard |= {"datacontenttype", "partitionkey"}
            for name in attrs.keys() - standard:
                assert EXTENSION_NAME.match(name), (where, name)
            schema = json.loads((schemas / f"{attrs['type']}.json").read_text())
            errors = [e.message for e in Draft202012Validator(schema).iter_errors(event.data)]
            assert errors == [], (where, errors[:3])
            seen[attrs["type"]] = seen.get(attrs["type"], 0) + 1
    # the story's flows publish on every business topic
    topics_seen = {t for t, recs in records.items() if recs}
    assert {
        "catalog.providers.v1",
        "catalog.offers.v1",
        "matching.requests.v1",
        "billing.invoices.v1",
        "notifications.deliveries.v1",
    } <= topics_seen, seen
    print(f"read with the CloudEvents SDK: {sum(seen.values())} records, {seen}")


def ancestry(span: ReceivedSpan, by_id: dict[str, ReceivedSpan]) -> list[ReceivedSpan]:
    """The span, its parent, its parent's parent... up to the root (or a span not received)."""
    chain = [span]
    while chain[-1].parent_id in by_id:
        chain.append(by_id[chain[-1].parent_id])
    return chain


async def test_the_translation_flow_is_one_trace_from_the_http_command_to_the_email(story):
    report, cfg, _, _, traces, _ = story
    rid = by_title(report, "Translation").request["request_id"]
    topic = {t: f"{cfg.topic_prefix}{t}" for t in ("matching.requests.v1", "billing.invoices.v1")}

    async def invoice_mail_chain() -> list[ReceivedSpan] | None:
        """The e-mail of the translation's invoice, with its ancestry, once received."""
        spans = traces.snapshot()
        by_id = {s.span_id: s for s in spans}
        for mail in (s for s in spans if s.name == "smtp send"):
            chain = ancestry(mail, by_id)
            root, via_billing = chain[-1], f"process {topic['billing.invoices.v1']}"
            if (
                root.kind == "server"
                and rid in str(root.attributes)  # its url path
                and any(s.name.endswith(via_billing) for s in chain)
            ):
                return chain
        return None

    chain = await wait_for(invoice_mail_chain, timeout=30)
    got = [(s.service, s.kind, s.name) for s in reversed(chain)]
    # the work report (hourly translation: invoiced at completion) -> ... -> the e-mail
    assert got == [
        ("matching", "server", "POST /requests/{request_id}/complete"),
        ("matching", "producer", f"publish {topic['matching.requests.v1']}"),
        (
            "billing",
            "consumer",
            f"billing.{cfg.topic_prefix.rstrip('.')} process {topic['matching.requests.v1']}",
        ),
        ("billing", "producer", f"publish {topic['billing.invoices.v1']}"),
        (
            "notifications",
            "consumer",
            f"notifications.{cfg.topic_prefix.rstrip('.')} process {topic['billing.invoices.v1']}",
        ),
        ("notifications", "client", "smtp send"),
    ]
    assert len({s.trace_id for s in chain}) == 1
    assert chain[1].attributes["cloudevents.event_type"] == "delego.billing.InvoiceIssued.v1"

    # the operator's signed webhook for that invoice is a POST in the same consumer span
    spans = traces.snapshot()
    posts = [s for s in spans if s.parent_id == chain[1].span_id and s.kind == "client"]
    assert any(p.name == "POST" and p.service == "notifications" for p in posts), posts
    # and the catalog traces its own commands: offer published -> read by matching
    by_id = {s.span_id: s for s in spans}
    assert any(
        [(x.service, x.kind) for x in reversed(ancestry(s, by_id))]
        == [("catalog", "server"), ("catalog", "producer"), ("matching", "consumer")]
        for s in spans
        if s.service == "matching" and s.kind == "consumer"
    )


# --- the story's people erased ----------------------------------------------------------
# These two tests change the story's state (its clients are erased), so they stay the
# last of the module: pytest runs a file's tests in file order.

PARIS = "cli-camille-paris"
BRUSSELS = "cli-lucas-brussels"
EMAIL_ADDRESS = re.compile(r"[\w.+-]+@[\w-]+(\.[\w-]+)+")
DELEGO = Path(sys.executable).with_name("delego")
"""The operator CLI of this venv: the erasure goes through the operator's own command."""

# Where an erased client's id may stay, each named in the service README's "Privacy"
# section as kept (ids only, no name, e-mail or text); billing's legal list is its
# receipt's `kept`. Anything else that still carries the id is personal data left behind.
KEPT_WITH_THE_ID = {
    # the rest of each request, the index of the client's requests, the read audit
    "matching": {"requests", "subject_requests", "details_reads"},
    "billing": set(),  # + the receipt's `kept` (invoices, ledger, ...: Code de commerce L123-22)
    "notifications": {"deliveries"},  # ids, kind, state and the source event (ids only)
    "catalog": set(),
}


def contact_email(client_id: str) -> str:
    [client] = [c for c in CLIENTS if c["id"] == client_id]
    return str(client["contact"]["email"])


def private_texts(client_id: str) -> list[str]:
    return [
        r["body"]["description"]
        for r in REQUESTS
        if r["client"] == client_id and r["body"]["description"]
    ]


async def delego(*args: str) -> str:
    """`delego ARGS` in a process of its own, as an operator runs it; its stdout."""
    proc = await asyncio.create_subprocess_exec(
        str(DELEGO), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout=180)
    assert proc.returncode == 0, (args, proc.returncode, out.decode(), err.decode())
    return out.decode()


async def erase(bootstrap: str, prefix: str, subject: str) -> str:
    """`delego privacy erase SUBJECT`; the erasure id it printed."""
    out = await delego("privacy", "erase", subject, "--bootstrap", bootstrap, "--prefix", prefix)
    m = re.search(rf"erasure (era_\w+) of {re.escape(subject)} requested", out)
    assert m, out
    return m.group(1)


def databases(cfg: PlatformConfig) -> dict[str, str]:
    return {s: f"{cfg.database_prefix}_{s}" for s in SERVICES}


async def document(infra, cfg: PlatformConfig, service: str, collection: str, _id: str) -> Any:
    """One document of a service's database, by `_id`."""
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(infra.mongodb_url)
    try:
        return await mongo[databases(cfg)[service]][collection].find_one({"_id": _id})
    finally:
        await mongo.close()


async def test_erasing_the_paris_client_leaves_only_what_the_law_keeps(story, infra):
    """The issue's check: the story played, its Paris client erased with `delego privacy
    erase`; then every service has confirmed, no database holds their e-mail, their texts
    or any document with their id outside what the READMEs say is kept, their request
    texts are unreadable, and no record on any topic links their id to a person."""
    report, cfg, _, _, _, _ = story
    email, texts = contact_email(PARIS), private_texts(PARIS)
    rids = [o.request["request_id"] for o in report.outcomes if o.client == PARIS]
    assert len(rids) == len(texts) == 3
    dbs = databases(cfg)
    mongodb_url = infra.mongodb_url
    auth = bearer(Settings(), PARIS, "client")
    async with httpx.AsyncClient(base_url=cfg.url("matching"), timeout=30) as matching:
        # before: the data is there, so every check below can fail
        assert Found(f"{dbs['notifications']}.recipients", email) in await scan_databases(
            mongodb_url, dbs.values(), [email]
        )
        for rid, text in zip(rids, texts, strict=True):
            r = await matching.get(f"/requests/{rid}/details", headers=auth)
            assert (r.status_code, r.json()["description"]) == (200, text), rid
            assert await document(infra, cfg, "matching", "request_keys", rid) is not None
        assert await document(infra, cfg, "billing", "tax_profiles", PARIS) is not None

        erasure_id = await erase(infra.kafka_bootstrap, cfg.topic_prefix, PARIS)
        status = json.loads(
            await delego(
                *("privacy", "status", PARIS, "--bootstrap", infra.kafka_bootstrap),
                *("--prefix", cfg.topic_prefix, "--wait", "120"),
            )
        )

        # every service has confirmed this erasure (`status` exits 0 only then)
        assert status["erasure_id"] == erasure_id
        assert status["complete"] is True and status["missing"] == []
        receipts = status["receipts"]
        assert set(receipts) == set(SERVICES)
        assert receipts["notifications"]["erased"]["recipients"] == 1
        assert receipts["matching"]["erased"]["request_descriptions"] == 3
        assert receipts["matching"]["erased"]["client_ratings"] == 1
        assert receipts["billing"]["erased"] == {"tax_profiles": 1}
        assert "invoices" in receipts["billing"]["kept"]

        # no personal data in any database: not the e-mail, not the texts; the id only in
        # what is kept, and the erased documents gone
        assert await scan_databases(mongodb_url, dbs.values(), [email, *texts]) == []
        kept = {s: set(places) for s, places in KEPT_WITH_THE_ID.items()}
        kept["billing"] |= set(receipts["billing"]["kept"])
        allowed = {f"{dbs[s]}.{c}" for s, colls in kept.items() for c in colls}
        left = {f.place for f in await scan_databases(mongodb_url, dbs.values(), [PARIS])}
        print(f"after the erasure, {PARIS} is only in: {', '.join(sorted(left))}")
        assert left - allowed == set()
        assert f"{dbs['billing']}.invoices" in left  # the law's invoices are kept
        assert await document(infra, cfg, "notifications", "recipients", PARIS) is None
        assert await document(infra, cfg, "notifications", "inbox_index", PARIS) is None
        assert await document(infra, cfg, "billing", "tax_profiles", PARIS) is None
        assert await document(infra, cfg, "matching", "client_ratings", PARIS) is None

        # their request texts are unreadable: keys shredded, ciphertexts gone, 410 to them
        for rid in rids:
            r = await matching.get(f"/requests/{rid}/details", headers=auth)
            assert r.status_code == 410, (rid, r.text)
            assert await document(infra, cfg, "matching", "request_keys", rid) is None
            assert "sealed" not in await document(infra, cfg, "matching", "requests", rid)

    # the topic scan: nothing links their id to a person
    records = await topic_texts(infra.kafka_bootstrap, cfg.topic_prefix)
    assert find_in(records, [email, *texts]) == []
    theirs = [r for r in records if PARIS in r.text]
    assert len(theirs) >= 10  # their requests, invoices, erasure and receipts were read
    assert [r.topic for r in theirs if EMAIL_ADDRESS.search(r.text)] == []
    print(f"topic scan: {len(records)} records, {len(theirs)} with {PARIS}, none links a person")


async def test_a_service_killed_during_an_erasure_confirms_after_its_restart(story, infra):
    """Notifications (the holder of the e-mail) is frozen, the Brussels client's erasure
    is published, the three others confirm, then notifications is SIGKILLed with the
    request unhandled; restarted as the platform starts a service, it erases and
    confirms. Frozen first, so the crash surely comes before its part of the erasure."""
    _, cfg, _, _, _, platform = story
    victim, email = "notifications", contact_email(BRUSSELS)
    dbs = databases(cfg)
    mongodb_url = infra.mongodb_url
    others = set(SERVICES) - {victim}
    assert await document(infra, cfg, victim, "recipients", BRUSSELS) is not None
    crashed = platform.procs[victim]

    async def confirmed_by_the_others() -> Any:
        st = await erasure_status(infra.kafka_bootstrap, BRUSSELS, prefix=cfg.topic_prefix)
        return st if set(st.receipts) >= others else None

    os.killpg(crashed.pid, signal.SIGSTOP)
    try:
        erasure_id = await erase(infra.kafka_bootstrap, cfg.topic_prefix, BRUSSELS)
        during = await wait_for(confirmed_by_the_others, timeout=120, interval=1.0)
    finally:
        platform.kill_service(victim)  # SIGKILL: no shutdown, nothing flushed

    assert during.request is not None and during.request.erasure_id == erasure_id
    assert victim not in during.receipts and not during.complete
    assert await document(infra, cfg, victim, "recipients", BRUSSELS) is not None  # not erased yet

    platform.start_service(victim)
    await platform.wait_ready(timeout=180)
    assert platform.procs[victim].pid != crashed.pid

    status = await wait_for_erasure(
        infra.kafka_bootstrap, BRUSSELS, prefix=cfg.topic_prefix, timeout_s=120
    )
    assert status.complete, status.to_json()
    assert status.receipts[victim].erasure_id == erasure_id
    assert status.receipts[victim].erased["recipients"] == 1
    assert await document(infra, cfg, victim, "recipients", BRUSSELS) is None
    assert await document(infra, cfg, victim, "inbox_index", BRUSSELS) is None
    assert await scan_databases(mongodb_url, dbs.values(), [email]) == []
