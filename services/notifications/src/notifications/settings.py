"""Settings of the notifications service (`DELEGO_*` environment variables).

The clock is not a setting: it is injected into `create_app(clock=...)` (see
`app.py`). By default it is `delego_shared.types.utcnow`, which already
honours `DELEGO_CLOCK_START` for demos.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

from delego_shared.settings import Settings
from pydantic import Field, SecretStr

from .domain import RetryPolicy
from .domain.render import DEFAULT_APP_URL

Clock = Callable[[], datetime]
"""Returns the current instant (timezone-aware, UTC)."""


class NotificationsSettings(Settings):
    service_name: str = "notifications"
    http_port: int = 8004

    # --- e-mail (SMTP) -------------------------------------------------------
    smtp_host: str = "127.0.0.1"
    smtp_port: int = Field(default=1025, ge=1, le=65535, description="Mailpit's SMTP port")
    smtp_from: str = "Delego <no-reply@delego.example>"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_use_tls: bool = Field(default=False, description="implicit TLS (port 465)")
    smtp_starttls: bool = Field(default=False, description="upgrade with STARTTLS")
    smtp_timeout_s: float = Field(default=30.0, gt=0)
    smtp_session_max_idle_s: float = Field(
        default=20.0, ge=0, description="an SMTP session idle longer than this is not reused"
    )

    # --- webhooks ------------------------------------------------------------
    webhook_timeout_s: float = Field(default=10.0, gt=0)

    # --- retries (webhook and e-mail; domain RetryPolicy) --------------------
    retry_max_attempts: int = Field(default=8, ge=1, description="attempts per channel")
    retry_base_s: float = Field(default=30.0, gt=0, description="first backoff ceiling")
    retry_cap_s: float = Field(default=3600.0, gt=0, description="largest backoff ceiling")

    # --- loops -----------------------------------------------------------------
    dispatch_interval_s: float = Field(
        default=30.0,
        gt=0,
        description="slow catch-up sweep of the schedule (crashes, lost retry timers); "
        "new deliveries are sent at once, retries wake an in-process timer",
    )
    dispatch_concurrency: int = Field(default=4, ge=1, description="sends in flight per replica")
    delivery_lease_s: float = Field(
        default=120.0,
        gt=0,
        description="a claimed send not finished by then is taken over by another replica",
    )
    release_interval_s: float = Field(
        default=30.0, gt=0, description="how often held (quiet-hours) notifications are released"
    )
    release_lease_s: float = Field(default=60.0, gt=0)

    app_url: str = Field(default=DEFAULT_APP_URL, description="base of links in messages")

    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(
            max_attempts=self.retry_max_attempts,
            base=timedelta(seconds=self.retry_base_s),
            cap=timedelta(seconds=max(self.retry_cap_s, self.retry_base_s)),
        )

    @classmethod
    def of(cls, settings: Settings | None = None, **overrides: object) -> NotificationsSettings:
        """From the environment, or from platform settings (e.g. a test's) plus overrides."""
        if isinstance(settings, cls) and not overrides:
            return settings
        base = settings.model_dump() if settings is not None else {}
        return cls(**{**base, **overrides})
