"""Who can be reached and how: the recipient directory and operators' webhook endpoints.

This is the only place contact data lives on the platform. E-mail addresses
and webhook secrets are hidden from `repr` so they never end up in a log line
by accident; events built from these models carry ids only.
"""

from __future__ import annotations

import re
from fnmatch import fnmatchcase
from ipaddress import ip_address
from urllib.parse import urlsplit

from delego_shared.events.notifications import Channel
from delego_shared.types import IanaZone, Identifier, LanguageTag
from pydantic import BaseModel, ConfigDict, Field, field_validator

from .preferences import Preferences
from .quiet_hours import QuietHours

DEFAULT_LOCALE = "fr"
DEFAULT_ZONE = "Europe/Paris"
EMAIL_PATTERN = r"^[^@\s<>,;]+@[^@\s<>,;]+\.[^@\s<>,;]+$"
_EMAIL = re.compile(EMAIL_PATTERN)
RULE_HOST = "webhook URL needs a host"
RULE_HTTPS = "webhook URL must be https (plain http only for local hosts)"


class Recipient(BaseModel):
    """A user (client or provider) as the notifications service knows them.

    `channels` is the failover order; a channel is only usable when it can be
    reached (e-mail needs an address, webhook needs an endpoint owned by the
    user). In-app always works: the inbox needs no contact data.
    """

    model_config = ConfigDict(frozen=True)

    recipient_id: Identifier
    email: str | None = Field(default=None, repr=False, max_length=254)
    locale: LanguageTag = DEFAULT_LOCALE
    zone: IanaZone = DEFAULT_ZONE
    quiet_hours: QuietHours | None = None
    channels: tuple[Channel, ...] = (Channel.EMAIL, Channel.INAPP)
    preferences: Preferences = Field(default_factory=Preferences)
    urgent_kinds: frozenset[str] = frozenset()
    """Kinds delivered even during quiet hours (`urgency.quiet_wait`)."""

    @field_validator("email")
    @classmethod
    def _email(cls, v: str | None) -> str | None:
        if v is not None and not _EMAIL.match(v):
            raise ValueError("not an e-mail address")
        return v

    @field_validator("channels")
    @classmethod
    def _channels(cls, v: tuple[Channel, ...]) -> tuple[Channel, ...]:
        if not v:
            raise ValueError("at least one channel is needed")
        if len(set(v)) != len(v):
            raise ValueError("each channel may appear once in the failover order")
        return v


def _dev_host(host: str) -> bool:
    if host == "localhost" or "." not in host:
        return True  # loopback name or a single-label name (compose service)
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


class WebhookEndpoint(BaseModel):
    """An HTTPS endpoint registered by an operator for some event types.

    Without `owner_id` it is a platform integration: it receives every event
    whose type matches `event_types` (glob patterns, e.g. `delego.billing.*`).
    With `owner_id` it is that user's webhook channel, used when their
    channel order says so.
    """

    model_config = ConfigDict(frozen=True)

    endpoint_id: Identifier
    url: str = Field(max_length=2048)
    secret: str = Field(min_length=16, repr=False)
    event_types: frozenset[str] = Field(min_length=1)
    owner_id: Identifier | None = None
    active: bool = True

    @field_validator("url")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        host = parts.hostname or ""
        if not host:
            raise ValueError(RULE_HOST)
        if parts.scheme == "https" or (parts.scheme == "http" and _dev_host(host)):
            return v
        raise ValueError(RULE_HTTPS)

    def subscribes(self, event_type: str) -> bool:
        return self.active and any(fnmatchcase(event_type, p) for p in self.event_types)
