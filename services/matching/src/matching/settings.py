"""Settings of the matching service (`DELEGO_*` environment variables)."""

from __future__ import annotations

from datetime import timedelta

from delego_shared.settings import Settings, UnsafeSettings
from pydantic import Field, SecretStr

from .domain import DEFAULT_POLICY, MatchingPolicy
from .sealing import Sealer, SealingKeyInvalid, platform_key

DEMO_SEALING_KEY = "XeKu1_2PceenJsLRJitaWQKhCogGQWyGh4tDmIgaNHs"
"""The default platform key: published in this repository, so refused in production."""


class MatchingSettings(Settings):
    service_name: str = "matching"
    http_port: int = 8002

    acceptance_window_s: int = Field(
        default=15 * 60,
        gt=0,
        description="how long a provider has to accept a proposal, counted in their working "
        "time (a provider's response_window_minutes overrides it)",
    )
    max_attempts: int = Field(
        default=3, ge=1, description="proposals per request before it is unmatched"
    )
    expiry_sweep_interval_s: float = Field(
        default=5.0, gt=0, description="how often expired proposals are looked for"
    )
    hold_grace_s: float = Field(
        default=120.0,
        gt=0,
        description="age after which a capacity hold no request refers to is released "
        "(and a rating without its counters is counted)",
    )
    reconcile_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often the crash-recovery sweeps (orphan holds, uncounted "
        "ratings) run besides start-up; they read with queries, so keep it slow",
    )

    sealing_key: SecretStr = Field(
        default=SecretStr(DEMO_SEALING_KEY),
        description="platform key wrapping each request's data key: URL-safe base64 of 32 "
        "random bytes (README 'Secrets in production' says how to make one)",
    )
    details_retention_days: int = Field(
        default=90,
        ge=1,
        description="private details are erased this many days after the request ended",
    )
    retention_sweep_interval_s: float = Field(
        default=3600.0,
        gt=0,
        description="how often the retention sweep looks for details past their retention "
        "(also at start-up)",
    )

    def check_safe_to_run(self) -> None:
        """Also refuse, in production, the published demo sealing key or a malformed one."""
        super().check_safe_to_run()
        key = self.sealing_key.get_secret_value()
        try:
            platform_key(key)
        except SealingKeyInvalid as exc:
            raise UnsafeSettings(f"DELEGO_SEALING_KEY: {exc}") from None
        if self.environment == "production" and key == DEMO_SEALING_KEY:
            raise UnsafeSettings(
                "DELEGO_SEALING_KEY is the demo key published in the repository; refusing to "
                "start with DELEGO_ENVIRONMENT=production (set a random 32-byte key, see "
                "README 'Secrets')"
            )

    def sealer(self) -> Sealer:
        return Sealer(platform_key(self.sealing_key.get_secret_value()))

    @property
    def details_retention(self) -> timedelta:
        return timedelta(days=self.details_retention_days)

    def policy(self) -> MatchingPolicy:
        return MatchingPolicy(
            weights=DEFAULT_POLICY.weights,
            rating_prior=DEFAULT_POLICY.rating_prior,
            acceptance_window=timedelta(seconds=self.acceptance_window_s),
            max_attempts=self.max_attempts,
            min_live_overlap=DEFAULT_POLICY.min_live_overlap,
            horizon=DEFAULT_POLICY.horizon,
            candidates_limit=DEFAULT_POLICY.candidates_limit,
            trust_threshold=DEFAULT_POLICY.trust_threshold,
        )

    @classmethod
    def of(cls, settings: Settings | None = None, **overrides: object) -> MatchingSettings:
        """Matching settings from the environment, or from platform settings plus overrides."""
        if isinstance(settings, cls) and not overrides:
            return settings
        base = settings.model_dump() if settings is not None else {}
        return cls(**{**base, **overrides})
