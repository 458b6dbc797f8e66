"""Webhook signatures: the recipe receivers implement to trust our calls.

Signed payload: `f"{timestamp}.{body}"` (the exact bytes sent), HMAC-SHA256
with the endpoint's secret, hex-encoded. Header, as Stripe does:

    Delego-Signature: t=1774000000,v1=<64 hex chars>

Receivers recompute the HMAC, compare in constant time and reject a
timestamp outside a tolerance window (replay protection). Several `v1=`
entries may appear (secret rotation); one match is enough.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta

SIGNATURE_HEADER = "Delego-Signature"
EVENT_ID_HEADER = "Delego-Event-Id"
EVENT_TYPE_HEADER = "Delego-Event-Type"
DELIVERY_ID_HEADER = "Delego-Delivery-Id"
SCHEME = "v1"
DEFAULT_TOLERANCE = timedelta(minutes=5)


class SignatureError(ValueError):
    """The request must be rejected; the subclass says why."""


class MalformedSignatureHeader(SignatureError):
    pass


class TimestampOutsideTolerance(SignatureError):
    pass


class SignatureMismatch(SignatureError):
    pass


def _bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def compute_signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of `f"{timestamp}.{body}"` under `secret`."""
    payload = f"{timestamp}.".encode() + _bytes(body)
    return hmac.new(secret.encode(), payload, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, body: bytes | str) -> str:
    return f"t={timestamp},{SCHEME}={compute_signature(secret, timestamp, body)}"


def webhook_headers(
    *,
    secret: str,
    body: bytes | str,
    event_id: str,
    event_type: str,
    now: datetime,
    delivery_id: str | None = None,
) -> dict[str, str]:
    """Headers for one webhook call, signed at `now`."""
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: signature_header(secret, int(now.timestamp()), body),
        EVENT_ID_HEADER: event_id,
        EVENT_TYPE_HEADER: event_type,
    }
    if delivery_id is not None:
        headers[DELIVERY_ID_HEADER] = delivery_id
    return headers


def parse_signature_header(header: str) -> tuple[int, list[str]]:
    """`t=<unix>,v1=<hex>[,v1=<hex>...]` -> (timestamp, signatures); unknown schemes ignored."""
    timestamp: int | None = None
    sigs: list[str] = []
    for item in header.split(","):
        key, sep, value = item.strip().partition("=")
        if not sep:
            raise MalformedSignatureHeader(f"'{item.strip()}' is not key=value")
        if key == "t":
            if not value.isdigit():
                raise MalformedSignatureHeader("t must be a unix timestamp")
            timestamp = int(value)
        elif key == SCHEME:
            sigs.append(value)
    if timestamp is None:
        raise MalformedSignatureHeader("no t= timestamp")
    if not sigs:
        raise MalformedSignatureHeader(f"no {SCHEME}= signature")
    return timestamp, sigs


def verify_signature(
    *,
    secret: str,
    body: bytes | str,
    header: str,
    now: datetime,
    tolerance: timedelta = DEFAULT_TOLERANCE,
) -> int:
    """Check a received call; returns its timestamp or raises a SignatureError.

    The timestamp is checked both ways (too old or too far in the future) and
    every comparison of signatures is constant-time.
    """
    timestamp, sigs = parse_signature_header(header)
    if abs(now.timestamp() - timestamp) > tolerance.total_seconds():
        raise TimestampOutsideTolerance(
            f"timestamp {timestamp} is more than {int(tolerance.total_seconds())}s from now"
        )
    expected = compute_signature(secret, timestamp, body)
    matched = False
    for sig in sigs:
        matched |= hmac.compare_digest(expected, sig)
    if not matched:
        raise SignatureMismatch("no signature matches the body")
    return timestamp
