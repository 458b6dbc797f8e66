"""Kafka credentials in settings, the clients' options, and the ACL plan (no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from delego_shared.events import ALL_TOPICS
from delego_shared.events.base import dlq_name
from delego_shared.messaging.acls import CONSUMED_BY, SERVICES, Acl, service_acls
from delego_shared.messaging.broker import broker_security
from delego_shared.messaging.owners import TOPIC_WRITERS
from delego_shared.settings import KafkaAccess, Settings
from faststream.security import SASLScram512
from pydantic import SecretStr, ValidationError


def test_a_bare_bootstrap_is_plaintext_without_credentials():
    options = KafkaAccess.of("127.0.0.1:9092").client_options()
    assert options == {"bootstrap_servers": "127.0.0.1:9092", "security_protocol": "PLAINTEXT"}
    assert broker_security(KafkaAccess.of("127.0.0.1:9092")) is None


def test_a_sasl_service_connects_as_its_own_user_by_default():
    s = Settings(
        service_name="billing",
        kafka_security_protocol="SASL_PLAINTEXT",
        kafka_sasl_password=SecretStr("s3cret-pw"),
    )
    options = s.kafka_access.client_options()
    assert options["security_protocol"] == "SASL_PLAINTEXT"
    assert options["sasl_mechanism"] == "SCRAM-SHA-512"
    assert options["sasl_plain_username"] == "billing"
    assert options["sasl_plain_password"] == "s3cret-pw"
    assert "s3cret-pw" not in repr(s.kafka_access)  # never in a log line
    security = broker_security(s.kafka_access)
    assert isinstance(security, SASLScram512)
    assert (security.username, security.password, security.use_ssl) == (
        "billing",
        "s3cret-pw",
        False,
    )


def test_sasl_without_a_password_is_refused_at_start():
    with pytest.raises(ValidationError, match="DELEGO_KAFKA_SASL_PASSWORD"):
        Settings(service_name="billing", kafka_security_protocol="SASL_PLAINTEXT")


def test_the_password_can_come_from_a_secret_file(tmp_path: Path):
    secret = tmp_path / "kafka_billing"
    secret.write_text("from-a-file\n")
    s = Settings(
        service_name="billing",
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_password_file=secret,
    )
    options = s.kafka_access.client_options()
    assert options["sasl_plain_password"] == "from-a-file"
    assert options["ssl_context"] is not None


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_may_write_exactly_the_topics_it_owns_or_shares(service):
    writes = {a.name for a in service_acls(service) if a.operation == "write"}
    owned = {t.name for t in ALL_TOPICS if service in TOPIC_WRITERS[t.name]}
    dlqs = {dlq_name(t) for t in CONSUMED_BY[service]}
    assert writes == owned | dlqs
    others = {t.name for t in ALL_TOPICS} - owned
    assert others and not writes & others


def test_only_its_own_consumer_group_and_namespaced_ones():
    groups = [a for a in service_acls("billing") if a.resource == "group"]
    assert groups == [
        Acl("User:billing", "group", "billing", "literal", "read"),
        Acl("User:billing", "group", "billing.", "prefixed", "read"),
    ]
    assert Settings(service_name="billing", topic_prefix="t1.").consumer_group.startswith(
        "billing."
    )


def test_a_topic_prefix_applies_to_every_topic_acl():
    acls = [a for a in service_acls("catalog", prefix="t1.") if a.resource == "topic"]
    assert acls and all(a.name.startswith("t1.") for a in acls)


def test_an_unknown_service_has_no_acls():
    with pytest.raises(ValueError, match="unknown service"):
        service_acls("intruder")
