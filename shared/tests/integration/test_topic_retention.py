"""`privacy.subjects.v1` is created with unlimited retention (the audit and the receipts
are kept); other topics keep the broker's default."""

from __future__ import annotations

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from delego_shared.events.topics import PRIVACY_SUBJECTS, REQUESTS
from delego_shared.messaging.topics_admin import delete_topics_with_prefix, ensure_topics

pytestmark = pytest.mark.integration


async def retention_of(bootstrap: str, topic: str) -> tuple[str, bool]:
    """(retention.ms, whether it is the broker's default) of one topic."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        [response] = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, topic, configs={"retention.ms": None})]
        )
    finally:
        await admin.close()
    [resource] = response.resources
    [entry] = resource[-1]  # (error_code, error_message, type, name, config_entries)
    name, value, _read_only, config_source, *_ = entry
    assert name == "retention.ms"
    return value, config_source != 1  # 1: set on the topic itself


async def test_the_privacy_topic_is_kept_for_good_and_others_keep_the_default(infra, namespace):
    prefix = f"{namespace}r."
    await ensure_topics(infra.kafka_bootstrap, [PRIVACY_SUBJECTS, REQUESTS], prefix=prefix)
    try:
        kept = await retention_of(infra.kafka_bootstrap, prefix + PRIVACY_SUBJECTS.name)
        _, default = await retention_of(infra.kafka_bootstrap, prefix + REQUESTS.name)
    finally:
        await delete_topics_with_prefix(infra.kafka_bootstrap, prefix)
    assert kept == ("-1", False)
    assert default is True
