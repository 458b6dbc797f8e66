"""Kafka as in production: SASL/SCRAM-SHA-512 users and the platform's ACLs, on a real
local broker of this test's own (localinfra's SASL option, its own ports and state).

The suite's main broker stays PLAINTEXT (see the README); this module starts a second
one, creates the topics and `delego acls apply`'s ACLs as `admin`, and stops it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import secrets
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    TopicAuthorizationFailedError,
)
from delego_cli.acls import apply_acls
from delego_shared.events import ALL_TOPICS
from delego_shared.events.base import dlq_name
from delego_shared.messaging import create_broker, ensure_topics
from delego_shared.messaging.acls import SERVICES, platform_acls
from delego_shared.messaging.topics_admin import consumer_lag, end_offsets
from delego_shared.settings import KafkaAccess, Settings
from pydantic import SecretStr

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
LOCALINFRA = REPO / "deploy" / "local" / "localinfra.py"


def _free_port_pair(low: int = 20_000, high: int = 32_000) -> int:
    """A port whose successor is free too (broker, controller), below Linux's ephemeral
    range (32768-60999): there no outgoing connection of the suite can hold it when the
    broker binds (a fixed 39092 once failed with "Address already in use")."""
    for port in random.sample(range(low, high, 2), 200):
        try:
            with socket.socket() as a, socket.socket() as b:
                a.bind(("127.0.0.1", port))
                b.bind(("127.0.0.1", port + 1))
        except OSError:
            continue
        return port
    raise RuntimeError(f"no two free ports between {low} and {high}")


PORT = int(os.environ.get("DELEGO_TEST_SASL_KAFKA_PORT") or _free_port_pair())  # controller: +1
BOOTSTRAP = f"127.0.0.1:{PORT}"


@dataclass(frozen=True)
class SaslBroker:
    passwords: dict[str, str]

    def access(self, user: str, password: str | None = None) -> KafkaAccess:
        secret = self.passwords[user] if password is None else password
        return KafkaAccess(BOOTSTRAP, "SASL_PLAINTEXT", "SCRAM-SHA-512", user, SecretStr(secret))

    def settings(self, service: str) -> Settings:
        return Settings(
            service_name=service,
            kafka_bootstrap=BOOTSTRAP,
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_password=SecretStr(self.passwords[service]),
        )


def _localinfra(state: Path, action: str, users: Path) -> None:
    cmd = [sys.executable, str(LOCALINFRA), "kafka", action, "--state-dir", str(state)]
    cmd += ["--kafka-port", str(PORT), "--kafka-sasl-users", str(users)]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        raise RuntimeError(f"localinfra kafka {action}:\n{result.stdout}\n{result.stderr}")


@pytest.fixture(scope="module")
def sasl_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SaslBroker]:
    state = tmp_path_factory.mktemp("sasl-kafka")
    passwords = {user: secrets.token_urlsafe(24) for user in ("admin", *SERVICES)}
    users = state / "users.json"
    users.write_text(json.dumps(passwords))
    _localinfra(state, "start", users)
    try:
        broker = SaslBroker(passwords)
        admin = broker.access("admin")
        asyncio.run(ensure_topics(admin, ALL_TOPICS, partitions=1))
        apply_acls(admin, platform_acls())
        yield broker
    finally:
        _localinfra(state, "stop", users)


async def _records_on(topic: str, broker: SaslBroker) -> int:
    return sum((await end_offsets(broker.access("admin"), [topic])).values())


async def test_a_service_writes_its_own_topic_through_the_broker_factory(sasl_broker):
    before = await _records_on("catalog.offers.v1", sasl_broker)
    broker = create_broker(sasl_broker.settings("catalog"))
    await broker.start()
    try:
        await broker.publish(b"{}", topic="catalog.offers.v1", key=b"offer-1")
    finally:
        await broker.stop()
    assert await _records_on("catalog.offers.v1", sasl_broker) == before + 1


async def test_a_service_is_refused_a_write_to_another_services_topic(sasl_broker):
    before = await _records_on("billing.invoices.v1", sasl_broker)
    broker = create_broker(sasl_broker.settings("catalog"))
    await broker.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await broker.publish(b"{}", topic="billing.invoices.v1", key=b"client-1")
    finally:
        await broker.stop()
    assert await _records_on("billing.invoices.v1", sasl_broker) == before


async def test_a_wrong_password_is_refused(sasl_broker, caplog):
    caplog.set_level(logging.ERROR, logger="aiokafka")
    wrong = sasl_broker.access("catalog", password="not-" + sasl_broker.passwords["catalog"])
    producer = AIOKafkaProducer(**wrong.client_options())
    with pytest.raises(KafkaConnectionError):
        await producer.start()
    await producer.stop()
    assert "SaslAuthenticationFailed" in caplog.text
    assert "invalid credentials" in caplog.text


async def test_a_consumer_parks_only_on_the_dlqs_of_the_topics_it_consumes(sasl_broker):
    producer = AIOKafkaProducer(**sasl_broker.access("billing").client_options(), acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(dlq_name("matching.requests.v1"), b"parked", key=b"r-1")
        with pytest.raises(TopicAuthorizationFailedError):  # billing does not consume offers
            await producer.send_and_wait(dlq_name("catalog.offers.v1"), b"forged", key=b"o-1")
    finally:
        await producer.stop()


async def _join_and_commit(consumer: AIOKafkaConsumer) -> None:
    await consumer.start()
    await consumer.getmany(timeout_ms=1000)
    await consumer.commit()


async def test_a_service_starts_as_its_user_and_reads_in_its_own_group_only(sasl_broker):
    access = sasl_broker.access("billing")
    # what a service does at start-up (`ServiceRuntime.start`)
    assert await ensure_topics(access, ALL_TOPICS) == []
    own = AIOKafkaConsumer("matching.requests.v1", **access.client_options(), group_id="billing")
    try:
        await _join_and_commit(own)
    finally:
        await own.stop()
    # the lag gauge reads the group's committed offsets
    assert set(await consumer_lag(access, "billing", ["matching.requests.v1"])) != set()
    other = AIOKafkaConsumer("matching.requests.v1", **access.client_options(), group_id="matching")
    with pytest.raises(GroupAuthorizationFailedError):
        await _join_and_commit(other)
    await other.stop()
