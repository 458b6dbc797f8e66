"""Settings every service reads from `DELEGO_*` environment variables."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_JWT_SECRET = "dev-only-change-me-0123456789abcdef"
DEMO_JWT_SECRETS = frozenset(
    {
        DEFAULT_JWT_SECRET,
        "compose-demo-secret-change-me-0123456789",  # the committed `.env` (compose demo)
        "bench-only-secret-0123456789abcdef",  # benchmarks/flowbench
    }
)
"""Secrets published in this repository: anyone can forge tokens with them."""
MIN_PRODUCTION_SECRET_BYTES = 32


class UnsafeSettings(RuntimeError):
    """Settings a production service must not start with (one line, for operators)."""


KafkaSecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SASL_SSL"]
SaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256"]


@dataclass(frozen=True)
class KafkaAccess:
    """Where the broker is and who we are to it: every Kafka client Delego builds
    (broker factory, admin, followers, CLI) takes one, so none connects without the
    service's credentials. A bare bootstrap string is PLAINTEXT (`of`)."""

    bootstrap: str
    security_protocol: KafkaSecurityProtocol = "PLAINTEXT"
    sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    username: str = ""
    password: SecretStr = field(default=SecretStr(""), repr=False)

    @classmethod
    def of(cls, kafka: KafkaAccess | str) -> KafkaAccess:
        return kafka if isinstance(kafka, KafkaAccess) else cls(kafka)

    @property
    def sasl(self) -> bool:
        return self.security_protocol != "PLAINTEXT"

    def client_options(self) -> dict[str, Any]:
        """Keyword arguments of aiokafka's producer, consumer and admin client."""
        options: dict[str, Any] = {
            "bootstrap_servers": self.bootstrap,
            "security_protocol": self.security_protocol,
        }
        if self.sasl:
            options |= {
                "sasl_mechanism": self.sasl_mechanism,
                "sasl_plain_username": self.username,
                "sasl_plain_password": self.password.get_secret_value(),
            }
        if self.security_protocol == "SASL_SSL":
            options["ssl_context"] = ssl.create_default_context()
        return options


class Settings(BaseSettings):
    """Platform settings; a service subclasses it to add its own (same prefix)."""

    model_config = SettingsConfigDict(env_prefix="DELEGO_", env_file=None, extra="ignore")

    service_name: str = Field(default="delego", description="also the consumer group and ce_source")
    environment: Literal["development", "production", "test"] = "development"
    log_level: str = "INFO"
    log_format: Literal["json", "console", "auto"] = "auto"

    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        default="PLAINTEXT",
        description="SASL_PLAINTEXT or SASL_SSL in production (per-service user, ACLs)",
    )
    kafka_sasl_mechanism: SaslMechanism = "SCRAM-SHA-512"
    kafka_sasl_username: str = Field(default="", description="default: the service name")
    kafka_sasl_password: SecretStr = SecretStr("")
    kafka_sasl_password_file: Path | None = Field(
        default=None, description="read the password from this file (a compose/Kubernetes secret)"
    )
    topic_prefix: str = Field(
        default="", description="prepended to every topic name (test isolation)"
    )
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = ""

    http_host: str = "127.0.0.1"
    http_port: int = 8000
    instance_id: str = Field(
        default="",
        pattern=r"^[^/]*$",
        description="this replica's name, stable across its restarts and unique among the "
        "replicas running at once (default for a served process: host name and HTTP port); "
        "a replica that starts again takes over at once what its previous run left "
        "half-done (delego_shared.replica)",
    )

    jwt_secret: SecretStr = SecretStr(DEFAULT_JWT_SECRET)
    jwt_issuer: str = "delego"
    jwt_max_ttl_s: int = Field(
        default=24 * 3600,
        gt=0,
        description="longest token lifetime accepted (exp - now, and exp - iat when given)",
    )

    idempotency_retention_s: float = Field(
        default=48 * 3600,
        gt=0,
        description="how long an Idempotency-Key is remembered (a retry must come within it)",
    )

    consumer_max_attempts: int = Field(default=5, ge=1)
    consumer_workers: int = Field(default=1, ge=1)
    """Consumers of the group per topic in one process: partitions handled concurrently."""
    consumer_backoff_initial_s: float = Field(default=0.2, gt=0)
    consumer_backoff_max_s: float = Field(default=5.0, gt=0)
    consumer_commit_interval_s: float = Field(default=0.2, ge=0)
    """Handled records' offsets are committed together this long after (0: one by one)."""
    outbox_sweep_interval_s: float = Field(default=60.0, gt=0)
    """How often a relay beats and looks for relays that died (it then sweeps for them);
    the normal path publishes right after the write."""
    outbox_lease_s: float = Field(default=30.0, gt=0)
    metrics_lag_interval_s: float = Field(default=15.0, gt=0)
    """How often the consumer lag metric is read from the broker (cached between reads)."""

    @model_validator(mode="after")
    def _sasl_needs_a_password(self) -> Settings:
        if self.kafka_sasl_password_file is not None:
            # a secret file's trailing newline is not part of the password
            password = self.kafka_sasl_password_file.read_text().rstrip("\r\n")
            self.kafka_sasl_password = SecretStr(password)
        if self.kafka_security_protocol != "PLAINTEXT" and not self.kafka_sasl_password:
            raise ValueError(
                f"DELEGO_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs"
                " DELEGO_KAFKA_SASL_PASSWORD or DELEGO_KAFKA_SASL_PASSWORD_FILE"
            )
        return self

    @property
    def kafka_access(self) -> KafkaAccess:
        """This service's way into Kafka: as user `<service>` (or the one configured)."""
        return KafkaAccess(
            self.kafka_bootstrap,
            self.kafka_security_protocol,
            self.kafka_sasl_mechanism,
            self.kafka_sasl_username or self.service_name,
            self.kafka_sasl_password,
        )

    def check_safe_to_run(self) -> None:
        """Refuse, in production, a JWT secret anyone could know or guess.

        With the default or a demo secret (both are in this repository) or a short
        one, anyone could mint an operator token. Other environments accept them
        so that local demos and tests need no configuration.
        """
        if self.environment != "production":
            return
        secret = self.jwt_secret.get_secret_value()
        if secret in DEMO_JWT_SECRETS:
            reason = "DELEGO_JWT_SECRET is a demo secret published in the repository"
        elif len(secret.encode()) < MIN_PRODUCTION_SECRET_BYTES:
            reason = f"DELEGO_JWT_SECRET is shorter than {MIN_PRODUCTION_SECRET_BYTES} bytes"
        else:
            return
        raise UnsafeSettings(
            f"{reason}; refusing to start with DELEGO_ENVIRONMENT=production "
            "(set a random secret of at least 32 bytes, see README 'Secrets')"
        )

    @property
    def database(self) -> str:
        return self.mongodb_database or f"delego_{self.service_name}"

    @property
    def consumer_group(self) -> str:
        """`<service>`, or `<service>.<prefix>` for an isolated (test) namespace,
        so two namespaces never share (and rebalance) one consumer group."""
        prefix = self.topic_prefix.rstrip(".")
        return f"{self.service_name}.{prefix}" if prefix else self.service_name

    @property
    def source(self) -> str:
        """CloudEvents `source` of everything this service publishes."""
        return f"/delego/{self.service_name}"

    def topic(self, name: str) -> str:
        """Physical topic name for a logical one (prefix for isolated test runs)."""
        return f"{self.topic_prefix}{name}"

    def logical_topic(self, physical: str) -> str:
        if self.topic_prefix and physical.startswith(self.topic_prefix):
            return physical[len(self.topic_prefix) :]
        return physical
