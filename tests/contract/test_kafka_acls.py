"""The ACL plan matches what the services really do (their apps, built, not started)."""

import importlib

import pytest
from delego_shared.messaging.acls import CONSUMED_BY, SERVICES, service_acls
from delego_shared.settings import Settings


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_may_park_on_the_dlqs_of_exactly_the_topics_it_subscribes_to(service):
    app = importlib.import_module(f"{service}.app").create_app()
    consumer = app.state.runtime.consumer
    assert sorted(consumer.topics) == sorted(CONSUMED_BY[service])
    # and it consumes in the group its user may read
    groups = {a.name for a in service_acls(service) if a.resource == "group"}
    assert consumer.group == Settings(service_name=service).consumer_group
    assert consumer.group in groups
