"""Whether a notification waits for the recipient's quiet hours, and until when (pure).

A message that interrupts a person (e-mail) waits until their quiet hours end
(their wall clock, DST-correct: `quiet_hours.quiet_until`), except:

- a critical kind (platform rule in `routing.toml`: invoices, credit notes and
  tax certificates are legal documents, never held);
- a kind the recipient marked urgent (`Recipient.urgent_kinds`): a provider who
  wants proposals at any hour says so; everyone else sleeps.

Channels that interrupt nobody (in-app inbox, machine webhooks) never wait.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

from .quiet_hours import QuietHours, quiet_until


def quiet_wait(
    *,
    kind: str | None,
    critical: bool,
    interrupts: bool,
    quiet: QuietHours | None,
    zone: str,
    urgent_kinds: Collection[str],
    now: datetime,
) -> datetime | None:
    """The UTC instant the delivery must wait for, or None to send it now."""
    if not interrupts or quiet is None or critical:
        return None
    if kind is not None and kind in urgent_kinds:
        return None
    return quiet_until(quiet, zone, now)
