"""The Offer aggregate: what a provider sells, and its draft -> published -> withdrawn life.

Decisions (documented here because the edges and other services rely on them):

- An offer needs at least one skill, and at least one of its skills must belong
  to the offer's category. Skills of other categories are allowed alongside
  (a tutoring offer may also need `translation.en-fr`): real work crosses
  categories, but the category must describe the offer.
- The provider must declare every skill of the offer at a level at least as
  high, and speak every language of the offer (same primary language subtag).
  Checked at create, update and publish, against the provider as it is then.
- A SAP activity on a remote-only offer is allowed but flagged
  (`sap_remote_flag`, and a warning): billing decides eligibility. Activities
  that are remote by nature (téléassistance et visio-assistance) are not flagged.
- Drafts are private: creating or editing one produces no event. Publishing
  produces OfferPublished; editing a published offer produces OfferUpdated;
  withdrawing produces OfferWithdrawn. Withdrawn is final (publish a new offer
  instead); a draft cannot be withdrawn (the edge deletes drafts). Every change,
  drafts included, bumps the version; an update that changes nothing does not.
- A suspended provider cannot create or publish offers; it may still edit or
  withdraw them.
"""

from __future__ import annotations

import re
from datetime import datetime

from delego_shared.events.catalog import (
    OfferPublished,
    OfferSnapshot,
    OfferStatus,
    OfferUpdated,
    OfferWithdrawn,
    ProviderSnapshot,
    ProviderStatus,
)
from delego_shared.events.common import DeliveryMode

from .clock import require_utc
from .errors import FieldIssue, IllegalTransition, Issues, ProviderNotActive, WrongProvider
from .model import (
    DESCRIPTION_MAX,
    TITLE_MAX,
    OfferChanges,
    OfferDraft,
    SkillClaim,
    check_skills,
    unknown_category_message,
    unknown_sap_message,
)
from .pricing import check_pricing
from .provider import Provider
from .taxonomy import MAX_LEVEL, MIN_LEVEL, Taxonomy, default_taxonomy
from .text import check_currency, check_languages, check_text, primary_language

_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")

ProviderLike = Provider | ProviderSnapshot


def _provider_snapshot(provider: ProviderLike) -> ProviderSnapshot:
    return provider.snapshot() if isinstance(provider, Provider) else provider


def check_offer(
    draft: OfferDraft, provider: ProviderSnapshot, taxonomy: Taxonomy, issues: Issues
) -> None:
    """All offer rules, including consistency with the provider's declared skills and languages."""
    check_text(draft.title, "title", issues, max_length=TITLE_MAX)
    check_text(draft.description, "description", issues, max_length=DESCRIPTION_MAX, required=False)
    category_ok = taxonomy.category(draft.category) is not None
    if not category_ok:
        issues.add("category", unknown_category_message(draft.category, taxonomy))
    _check_offer_skills(draft, provider, taxonomy, issues, category_ok)
    check_languages(draft.languages, "languages", issues)
    spoken = {primary_language(t) for t in provider.languages}
    for i, tag in enumerate(draft.languages):
        if f"languages.{i}" not in _fields(issues) and primary_language(tag) not in spoken:
            issues.add(
                f"languages.{i}",
                f"'{tag}' is not among the provider's languages ({', '.join(provider.languages)})",
            )
    if draft.sap_activity is not None and taxonomy.sap_activity(draft.sap_activity) is None:
        issues.add("sap_activity", unknown_sap_message(draft.sap_activity, taxonomy))
    effort = draft.typical_effort_hours
    if not effort.is_finite() or effort <= 0:
        issues.add("typical_effort_hours", f"must be greater than 0 hours, got {effort}")
    currency_ok = check_currency(draft.currency, "currency", issues)
    check_pricing(draft.pricing, draft.currency if currency_ok else None, effort, issues)


def _fields(issues: Issues) -> set[str]:
    return {i.field for i in issues}


def _check_offer_skills(
    draft: OfferDraft,
    provider: ProviderSnapshot,
    taxonomy: Taxonomy,
    issues: Issues,
    category_ok: bool,
) -> None:
    if not draft.skills:
        issues.add("skills", "at least one skill is required")
        return
    check_skills(draft.skills, taxonomy, issues)
    declared = {s.code: s.level for s in provider.skills}
    in_category = False
    for i, claim in enumerate(draft.skills):
        skill = taxonomy.skill(claim.code)
        if skill is None:
            continue
        in_category = in_category or skill.category == draft.category
        if claim.code not in declared:
            issues.add(
                f"skills.{i}.code",
                f"the provider does not declare skill '{claim.code}' in its profile",
            )
        elif MIN_LEVEL <= claim.level <= MAX_LEVEL and claim.level > declared[claim.code]:
            issues.add(
                f"skills.{i}.level",
                f"level {claim.level} exceeds the provider's declared level "
                f"{declared[claim.code]} for '{claim.code}'",
            )
    all_known = all(taxonomy.skill(c.code) is not None for c in draft.skills)
    if category_ok and all_known and not in_category:
        issues.add(
            "skills",
            f"none of the skills belongs to category '{draft.category}'; add at least one "
            f"'{draft.category}.*' skill (skills of other categories may be added alongside)",
        )


def sap_remote_flag(draft: OfferDraft, taxonomy: Taxonomy) -> bool:
    """True when a home-service SAP activity is sold remote-only (billing will likely refuse)."""
    if draft.sap_activity is None or draft.delivery_mode is not DeliveryMode.REMOTE:
        return False
    activity = taxonomy.sap_activity(draft.sap_activity)
    return activity is not None and not activity.remote


def offer_warnings(snapshot: OfferSnapshot) -> list[FieldIssue]:
    """Non-blocking remarks the edge returns to the provider with the offer."""
    if not snapshot.sap_remote_flag:
        return []
    return [
        FieldIssue(
            field="sap_activity",
            message=f"'{snapshot.sap_activity}' is defined as a service at the client's home, "
            "but the offer is remote only: billing will most likely find it not eligible "
            "for the SAP tax credit (Conseil d'État, 30 Nov 2020)",
        )
    ]


def draft_of(snapshot: OfferSnapshot) -> OfferDraft:
    return OfferDraft(
        title=snapshot.title,
        description=snapshot.description,
        category=snapshot.category,
        skills=[SkillClaim(code=s.code, level=s.level) for s in snapshot.skills],
        languages=list(snapshot.languages),
        delivery_mode=snapshot.delivery_mode,
        sap_activity=snapshot.sap_activity,
        typical_effort_hours=snapshot.typical_effort_hours,
        currency=snapshot.currency,
        pricing=snapshot.pricing,
    )


def _snapshot(
    offer_id: str,
    provider_id: str,
    version: int,
    status: OfferStatus,
    draft: OfferDraft,
    taxonomy: Taxonomy,
    now: datetime,
) -> OfferSnapshot:
    return OfferSnapshot(
        offer_id=offer_id,
        provider_id=provider_id,
        version=version,
        status=status,
        title=draft.title.strip(),
        description=draft.description.strip(),
        category=draft.category,
        skills=[s.to_contract() for s in draft.skills],
        languages=draft.languages,
        delivery_mode=draft.delivery_mode,
        sap_activity=draft.sap_activity,
        sap_remote_flag=sap_remote_flag(draft, taxonomy),
        typical_effort_hours=draft.typical_effort_hours,
        currency=draft.currency,
        pricing=draft.pricing,
        updated_at=now,
    )


_CONTENT_EXCLUDE = {"version", "updated_at"}


class Offer:
    """An offer. Mutating methods return the event the change produces (None for drafts)."""

    def __init__(self, snapshot: OfferSnapshot) -> None:
        self._snap = snapshot

    @classmethod
    def create(
        cls,
        offer_id: str,
        provider: ProviderLike,
        draft: OfferDraft,
        now: datetime,
        taxonomy: Taxonomy | None = None,
    ) -> Offer:
        """A new draft at version 1 (no event: drafts are not public)."""
        now = require_utc(now)
        tax = taxonomy or default_taxonomy()
        prov = _provider_snapshot(provider)
        if prov.status is not ProviderStatus.ACTIVE:
            raise ProviderNotActive(prov.provider_id)
        issues = Issues()
        if not _ID.match(offer_id):
            issues.add("offer_id", f"'{offer_id}' is not a valid identifier")
        check_offer(draft, prov, tax, issues)
        issues.raise_if_any()
        return cls(_snapshot(offer_id, prov.provider_id, 1, OfferStatus.DRAFT, draft, tax, now))

    @classmethod
    def from_snapshot(cls, snapshot: OfferSnapshot) -> Offer:
        return cls(snapshot)

    def snapshot(self) -> OfferSnapshot:
        return self._snap

    @property
    def offer_id(self) -> str:
        return self._snap.offer_id

    @property
    def provider_id(self) -> str:
        return self._snap.provider_id

    @property
    def version(self) -> int:
        return self._snap.version

    @property
    def status(self) -> OfferStatus:
        return self._snap.status

    @property
    def draft(self) -> OfferDraft:
        return draft_of(self._snap)

    @property
    def warnings(self) -> list[FieldIssue]:
        return offer_warnings(self._snap)

    def update(
        self,
        changes: OfferChanges,
        provider: ProviderLike,
        now: datetime,
        taxonomy: Taxonomy | None = None,
    ) -> OfferUpdated | None:
        """Edit a draft (no event) or a published offer (OfferUpdated); withdrawn is final."""
        now = require_utc(now)
        if self.status is OfferStatus.WITHDRAWN:
            raise IllegalTransition("offer", self.offer_id, self.status.value, "update")
        prov = self._own(provider)
        tax = taxonomy or default_taxonomy()
        issues = Issues()
        merged = changes.apply_to(self.draft, issues)
        check_offer(merged, prov, tax, issues)
        issues.raise_if_any()
        candidate = _snapshot(
            self.offer_id, self.provider_id, self.version + 1, self.status, merged, tax, now
        )
        if candidate.model_dump(exclude=_CONTENT_EXCLUDE) == self._snap.model_dump(
            exclude=_CONTENT_EXCLUDE
        ):
            return None
        self._snap = candidate
        if self.status is OfferStatus.PUBLISHED:
            return OfferUpdated(offer=candidate)
        return None

    def publish(
        self, provider: ProviderLike, now: datetime, taxonomy: Taxonomy | None = None
    ) -> OfferPublished:
        """Draft -> published. Rules are re-checked: the provider may have changed since."""
        now = require_utc(now)
        if self.status is not OfferStatus.DRAFT:
            raise IllegalTransition("offer", self.offer_id, self.status.value, "publish")
        prov = self._own(provider)
        if prov.status is not ProviderStatus.ACTIVE:
            raise ProviderNotActive(prov.provider_id)
        issues = Issues()
        check_offer(self.draft, prov, taxonomy or default_taxonomy(), issues)
        issues.raise_if_any()
        self._snap = self._next(OfferStatus.PUBLISHED, now)
        return OfferPublished(offer=self._snap)

    def withdraw(self, now: datetime) -> OfferWithdrawn:
        """Published -> withdrawn (final)."""
        now = require_utc(now)
        if self.status is not OfferStatus.PUBLISHED:
            raise IllegalTransition("offer", self.offer_id, self.status.value, "withdraw")
        self._snap = self._next(OfferStatus.WITHDRAWN, now)
        return OfferWithdrawn(offer=self._snap)

    def _own(self, provider: ProviderLike) -> ProviderSnapshot:
        prov = _provider_snapshot(provider)
        if prov.provider_id != self.provider_id:
            raise WrongProvider(self.offer_id, self.provider_id, prov.provider_id)
        return prov

    def _next(self, status: OfferStatus, now: datetime) -> OfferSnapshot:
        return self._snap.model_copy(
            update={"status": status, "version": self.version + 1, "updated_at": now}
        )
