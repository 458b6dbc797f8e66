"""The local runner's pure helpers (no broker started)."""

from __future__ import annotations

import base64
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _localinfra() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "localinfra", REPO / "deploy" / "local" / "localinfra.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def test_cluster_ids_never_start_with_a_dash_and_are_16_byte_uuids() -> None:
    new_cluster_id = _localinfra().new_cluster_id
    ids = [new_cluster_id() for _ in range(20_000)]
    # with ~1 in 64 drawn ids starting with '-', 20 000 draws hit that case ~300 times
    assert not [i for i in ids if i.startswith("-")]
    for i in ids[:500]:
        assert len(i) == 22
        assert len(base64.urlsafe_b64decode(i + "==")) == 16
    assert len(set(ids)) == len(ids)


def test_a_sasl_broker_authenticates_clients_with_scram_and_authorizes_with_acls(
    tmp_path: Path,
) -> None:
    li = _localinfra()
    users = tmp_path / "users.json"
    users.write_text('{"admin": "a-pw", "catalog": "c-pw"}')
    kafka = li.Kafka(li.Layout.from_env(str(tmp_path), 39092, 39017, str(users)))
    assert kafka.sasl_users() == {"admin": "a-pw", "catalog": "c-pw"}
    props = dict(line.split("=", 1) for line in kafka._listener_config(kafka.sasl_users()))
    assert props["listeners"] == "SASL_PLAINTEXT://127.0.0.1:39092,CONTROLLER://127.0.0.1:39093"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert (
        'username="admin" password="a-pw"'
        in props["listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config"]
    )
    assert props["authorizer.class.name"].endswith(".StandardAuthorizer")
    assert props["allow.everyone.if.no.acl.found"] == "false"


def test_without_a_users_file_the_local_broker_stays_plaintext(tmp_path: Path) -> None:
    li = _localinfra()
    kafka = li.Kafka(li.Layout(tmp_path, tmp_path, 9092, 27017))
    props = dict(line.split("=", 1) for line in kafka._listener_config(kafka.sasl_users()))
    assert props["listeners"].startswith("PLAINTEXT://127.0.0.1:9092,")
    assert "authorizer.class.name" not in props


@pytest.mark.parametrize(
    "users",
    ['{"catalog": "c-pw"}', '{"admin": "a,b"}', '{"admin": ""}', "[1]", "not json"],
)
def test_a_sasl_users_file_without_admin_or_with_unquotable_passwords_is_refused(
    tmp_path: Path, users: str
) -> None:
    li = _localinfra()
    path = tmp_path / "users.json"
    path.write_text(users)
    kafka = li.Kafka(li.Layout(tmp_path, tmp_path, 9092, 27017, path))
    with pytest.raises(li.InfraError):
        kafka.sasl_users()
