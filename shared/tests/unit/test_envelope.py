import json
from datetime import datetime, timedelta

import pytest
from delego_shared.events import ALL_TOPICS, Envelope, MalformedEvent, registry
from delego_shared.events.base import Topic
from delego_shared.testing.samples import registered


def test_headers_carry_cloudevents_binary_mode_attributes():
    env = Envelope(registered("prv_9"), source="/delego/catalog")
    h = env.headers()
    assert h["ce_specversion"] == "1.0"
    assert h["ce_type"] == "delego.catalog.ProviderRegistered.v1"
    assert h["ce_source"] == "/delego/catalog"
    assert h["ce_subject"] == "prv_9"
    assert h["ce_id"] == env.id
    assert h["ce_time"].endswith("Z")
    assert h["ce_correlationid"] == env.id  # a new chain starts with its own id
    assert "ce_causationid" not in h
    assert env.key() == b"prv_9"
    assert env.topic == "catalog.providers.v1"


def test_caused_event_keeps_the_correlation_and_names_its_cause():
    first = Envelope(registered("prv_1"), source="/a", correlation_id="c-1")
    second = first.caused(registered("prv_2"), source="/b")
    assert second.correlation_id == "c-1"
    assert second.causation_id == first.id
    assert second.headers()["ce_causationid"] == first.id


def test_decode_round_trip():
    env = Envelope(registered(), source="/x", correlation_id="c", causation_id="d")
    back = Envelope.from_record(env.headers(), env.body())
    assert back.data == env.data
    assert (back.id, back.source, back.correlation_id, back.causation_id) == (
        env.id,
        "/x",
        "c",
        "d",
    )


def test_decode_accepts_kafka_header_tuples_with_bytes():
    env = Envelope(registered(), source="/x")
    raw = [(k, v.encode()) for k, v in env.headers().items()]
    assert Envelope.from_record(raw, env.body()).id == env.id


def test_decoder_ignores_unknown_fields_added_by_a_newer_minor_version():
    env = Envelope(registered(), source="/x")
    body = json.loads(env.body())
    body["provider"]["new_optional_field"] = "x"
    body["top_level_addition"] = 1
    assert Envelope.from_record(env.headers(), json.dumps(body).encode()).data == env.data


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda h, b: ({k: v for k, v in h.items() if k != "ce_id"}, b),
            "missing CloudEvents header",
        ),
        (lambda h, b: ({**h, "ce_specversion": "0.3"}, b), "unsupported ce_specversion"),
        (lambda h, b: ({**h, "ce_type": "delego.x.Nope.v1"}, b), "unknown event type"),
        (lambda h, b: (h, b"{oops"), "not valid JSON"),
        (lambda h, b: (h, b'{"provider": {}}'), "does not match"),
        (lambda h, b: ({**h, "ce_time": "yesterday"}, b), "not an ISO-8601 instant"),
    ],
)
def test_malformed_records_are_rejected_with_the_reason(mutate, message):
    env = Envelope(registered(), source="/x")
    headers, body = mutate(env.headers(), env.body())
    with pytest.raises(MalformedEvent, match=message):
        Envelope.from_record(headers, body)


def test_every_event_type_is_on_a_declared_topic_with_versioned_names():
    declared = {t.name for t in ALL_TOPICS}
    for cls in registry.types():
        assert cls.topic.name in declared, cls
        service = cls.topic.service
        assert cls.event_type.startswith(f"delego.{service}."), cls.event_type
        assert cls.event_type.endswith(f".v{cls.topic.major}"), cls.event_type
    assert {t.name for t in registry.topics()} == declared


def test_topic_names_follow_the_convention():
    assert Topic("billing", "invoices", 1).name == "billing.invoices.v1"
    assert Topic("billing", "invoices", 1).dlq == "billing.invoices.v1.dlq"
    with pytest.raises(ValueError, match="unknown service"):
        Topic("payments", "x", 1)
    with pytest.raises(ValueError, match="lower-case identifier"):
        Topic("billing", "Invoices", 1)


@pytest.mark.parametrize("naive", ["2026-03-29T01:30:00", "2026-03-29 01:30:00.123456"])
def test_a_naive_ce_time_is_malformed(naive):
    env = Envelope(registered(), source="/x")
    with pytest.raises(MalformedEvent, match="has no UTC offset"):
        Envelope.from_record({**env.headers(), "ce_time": naive}, env.body())


@pytest.mark.parametrize(
    ("sent", "instant"),
    [
        ("2026-03-29T01:30:00Z", "2026-03-29T01:30:00+00:00"),
        ("2026-03-29T03:30:00+02:00", "2026-03-29T01:30:00+00:00"),
    ],
)
def test_a_ce_time_with_an_offset_is_the_same_instant(sent, instant):
    env = Envelope(registered(), source="/x")
    back = Envelope.from_record({**env.headers(), "ce_time": sent}, env.body())
    assert back.time == datetime.fromisoformat(instant)
    assert back.headers()["ce_time"] == "2026-03-29T01:30:00Z"


def test_a_producer_cannot_build_an_envelope_with_a_naive_time():
    with pytest.raises(ValueError, match="timezone-aware"):
        Envelope(registered(), source="/x", time=datetime(2026, 3, 29, 1, 30))


def test_producers_send_utc_instants():
    h = Envelope(registered(), source="/x").headers()
    sent = datetime.fromisoformat(h["ce_time"].replace("Z", "+00:00"))
    assert h["ce_time"].endswith("Z") and sent.utcoffset() == timedelta(0)
