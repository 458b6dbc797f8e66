"""The Provider aggregate: profile, working schedule, capacity, status.

State *is* the public snapshot (`ProviderSnapshot`): what is stored is exactly
what is published, so the store writes `snapshot()` and the returned event in
one document update and a relay publishes the event later (no dual write).
Every change bumps `version`; a read model keeps the highest version it saw.
"""

from __future__ import annotations

import re
from datetime import date, datetime

from delego_shared.events.catalog import (
    ProviderRegistered,
    ProviderReinstated,
    ProviderSnapshot,
    ProviderStatus,
    ProviderSuspended,
    ProviderUpdated,
)
from delego_shared.events.common import SapDeclaration

from .clock import require_utc
from .errors import IllegalTransition, Issues, ValidationFailed
from .model import (
    DISPLAY_NAME_MAX,
    ProviderChanges,
    ProviderProfile,
    SkillClaim,
    check_skills,
)
from .schedule import check_capacity, check_schedule
from .taxonomy import Taxonomy, default_taxonomy
from .text import check_country, check_languages, check_text, check_zone

_SAP_NUMBER = re.compile(r"^SAP\d{9}$")
_REASON = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")


def check_profile(
    profile: ProviderProfile, today: date, taxonomy: Taxonomy, issues: Issues
) -> None:
    """All provider rules; `today` (UTC) bounds the SAP declaration date."""
    check_text(profile.display_name, "display_name", issues, max_length=DISPLAY_NAME_MAX)
    check_country(profile.country, "country", issues)
    check_languages(profile.languages, "languages", issues)
    check_zone(profile.time_zone, "time_zone", issues)
    schedule_ok = check_schedule(profile.schedule, issues)
    check_capacity(
        profile.weekly_capacity_hours,
        profile.schedule,
        schedule_ok,
        issues,
        zone=profile.time_zone,
        today=today,
    )
    check_skills(profile.skills, taxonomy, issues)
    if profile.sap_declaration is not None:
        _check_sap(profile.sap_declaration, today, issues)


def _check_sap(sap: SapDeclaration, today: date, issues: Issues) -> None:
    if not _SAP_NUMBER.match(sap.number):
        issues.add(
            "sap_declaration.number",
            f"'{sap.number}' is not a SAP declaration number: 'SAP' followed by the "
            "9-digit SIREN (e.g. SAP123456789)",
        )
    if sap.declared_on > today:
        issues.add(
            "sap_declaration.declared_on",
            f"{sap.declared_on.isoformat()} is in the future",
        )


def profile_of(snapshot: ProviderSnapshot) -> ProviderProfile:
    return ProviderProfile(
        display_name=snapshot.display_name,
        country=snapshot.country,
        languages=list(snapshot.languages),
        time_zone=snapshot.time_zone,
        schedule=list(snapshot.schedule),
        weekly_capacity_hours=snapshot.weekly_capacity_hours,
        skills=[SkillClaim(code=s.code, level=s.level) for s in snapshot.skills],
        sap_declaration=snapshot.sap_declaration,
        response_window_minutes=snapshot.response_window_minutes,
    )


def _snapshot(
    provider_id: str,
    version: int,
    profile: ProviderProfile,
    status: ProviderStatus,
    now: datetime,
) -> ProviderSnapshot:
    return ProviderSnapshot(
        provider_id=provider_id,
        version=version,
        display_name=profile.display_name.strip(),
        country=profile.country,
        languages=profile.languages,
        time_zone=profile.time_zone,
        schedule=profile.schedule,
        weekly_capacity_hours=profile.weekly_capacity_hours,
        skills=[s.to_contract() for s in profile.skills],
        sap_declaration=profile.sap_declaration,
        status=status,
        updated_at=now,
        response_window_minutes=profile.response_window_minutes,
    )


_CONTENT_EXCLUDE = {"version", "updated_at"}


class Provider:
    """A provider on the platform. Mutating methods return the event the change produces."""

    def __init__(self, snapshot: ProviderSnapshot, suspension_reason: str | None = None) -> None:
        self._snap = snapshot
        self._suspension_reason = suspension_reason

    # -- construction -------------------------------------------------------------------

    @classmethod
    def register(
        cls,
        provider_id: str,
        profile: ProviderProfile,
        now: datetime,
        taxonomy: Taxonomy | None = None,
    ) -> tuple[Provider, ProviderRegistered]:
        """A new active provider at version 1, with its ProviderRegistered event."""
        now = require_utc(now)
        issues = Issues()
        if not _ID.match(provider_id):
            issues.add("provider_id", f"'{provider_id}' is not a valid identifier")
        check_profile(profile, now.date(), taxonomy or default_taxonomy(), issues)
        issues.raise_if_any()
        provider = cls(_snapshot(provider_id, 1, profile, ProviderStatus.ACTIVE, now))
        return provider, ProviderRegistered(provider=provider.snapshot())

    @classmethod
    def from_snapshot(
        cls, snapshot: ProviderSnapshot, suspension_reason: str | None = None
    ) -> Provider:
        """Rehydrate from the stored snapshot (no rule is re-run: it was valid when stored)."""
        return cls(snapshot, suspension_reason)

    # -- reading --------------------------------------------------------------------------

    def snapshot(self) -> ProviderSnapshot:
        return self._snap

    @property
    def provider_id(self) -> str:
        return self._snap.provider_id

    @property
    def version(self) -> int:
        return self._snap.version

    @property
    def status(self) -> ProviderStatus:
        return self._snap.status

    @property
    def is_active(self) -> bool:
        return self._snap.status is ProviderStatus.ACTIVE

    @property
    def suspension_reason(self) -> str | None:
        """Kept by the store next to the snapshot (the snapshot has no such field)."""
        return self._suspension_reason

    @property
    def profile(self) -> ProviderProfile:
        return profile_of(self._snap)

    # -- behaviour ------------------------------------------------------------------------

    def update(
        self, changes: ProviderChanges, now: datetime, taxonomy: Taxonomy | None = None
    ) -> ProviderUpdated | None:
        """Apply a partial update; the whole resulting profile is re-validated.

        A suspended provider may still fix its profile (status is unchanged).
        An update that changes nothing returns None and keeps the version, so a
        retried request is harmless.
        """
        now = require_utc(now)
        issues = Issues()
        merged = changes.apply_to(self.profile, issues)
        check_profile(merged, now.date(), taxonomy or default_taxonomy(), issues)
        issues.raise_if_any()
        candidate = _snapshot(self.provider_id, self.version + 1, merged, self.status, now)
        if candidate.model_dump(exclude=_CONTENT_EXCLUDE) == self._snap.model_dump(
            exclude=_CONTENT_EXCLUDE
        ):
            return None
        self._snap = candidate
        return ProviderUpdated(provider=candidate)

    def suspend(self, now: datetime, reason_code: str = "operator_decision") -> ProviderSuspended:
        """Operator action; suspending a suspended provider is an illegal transition."""
        now = require_utc(now)
        if not self.is_active:
            raise IllegalTransition("provider", self.provider_id, self.status.value, "suspend")
        if not _REASON.match(reason_code):
            raise ValidationFailed.single(
                "reason_code", f"'{reason_code}' must be a lower_snake_case code of 1-64 characters"
            )
        self._snap = self._next(ProviderStatus.SUSPENDED, now)
        self._suspension_reason = reason_code
        return ProviderSuspended(provider=self._snap, reason_code=reason_code)

    def reinstate(self, now: datetime) -> ProviderReinstated:
        """Operator action; reinstating an active provider is an illegal transition."""
        now = require_utc(now)
        if self.is_active:
            raise IllegalTransition("provider", self.provider_id, self.status.value, "reinstate")
        self._snap = self._next(ProviderStatus.ACTIVE, now)
        self._suspension_reason = None
        return ProviderReinstated(provider=self._snap)

    def _next(self, status: ProviderStatus, now: datetime) -> ProviderSnapshot:
        return self._snap.model_copy(
            update={"status": status, "version": self.version + 1, "updated_at": now}
        )
