import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest
from notifications.domain import (
    SignatureMismatch,
    TimestampOutsideTolerance,
    compute_signature,
    signature_header,
    verify_signature,
    webhook_headers,
)
from notifications.domain.signature import MalformedSignatureHeader

SECRET = "whsec_test_0123456789"
BODY = b'{"id":"evt_1","type":"delego.billing.InvoiceIssued.v1"}'
TS = 1_774_000_000
NOW = datetime.fromtimestamp(TS, UTC)


def test_known_vector_matches_an_independent_hmac():
    expected = hmac.new(
        SECRET.encode(), f"{TS}.{BODY.decode()}".encode(), hashlib.sha256
    ).hexdigest()
    assert compute_signature(SECRET, TS, BODY) == expected
    assert compute_signature(SECRET, TS, BODY.decode()) == expected
    assert signature_header(SECRET, TS, BODY) == f"t={TS},v1={expected}"


def test_fixed_vector():
    # Frozen so that a change of recipe breaks loudly (receivers depend on it).
    assert (
        compute_signature("secret", 1, "body")
        == hmac.new(b"secret", b"1.body", hashlib.sha256).hexdigest()
    )


def test_headers_carry_signature_and_ids():
    h = webhook_headers(
        secret=SECRET,
        body=BODY,
        event_id="evt_1",
        event_type="delego.billing.InvoiceIssued.v1",
        now=NOW,
        delivery_id="dlv_1",
    )
    assert h["Delego-Signature"] == signature_header(SECRET, TS, BODY)
    assert h["Delego-Event-Id"] == "evt_1"
    assert h["Delego-Event-Type"] == "delego.billing.InvoiceIssued.v1"
    assert h["Delego-Delivery-Id"] == "dlv_1"
    assert h["Content-Type"] == "application/json"


def test_verify_accepts_a_fresh_genuine_call():
    header = signature_header(SECRET, TS, BODY)
    assert (
        verify_signature(secret=SECRET, body=BODY, header=header, now=NOW + timedelta(minutes=4))
        == TS
    )


def test_tampered_body_is_rejected():
    header = signature_header(SECRET, TS, BODY)
    with pytest.raises(SignatureMismatch):
        verify_signature(
            secret=SECRET, body=BODY.replace(b"evt_1", b"evt_2"), header=header, now=NOW
        )


def test_wrong_secret_is_rejected():
    header = signature_header("whsec_other_secret_x", TS, BODY)
    with pytest.raises(SignatureMismatch):
        verify_signature(secret=SECRET, body=BODY, header=header, now=NOW)


def test_replayed_timestamp_is_changed_so_the_signature_no_longer_matches():
    sig = compute_signature(SECRET, TS, BODY)
    with pytest.raises(SignatureMismatch):
        verify_signature(secret=SECRET, body=BODY, header=f"t={TS + 60},v1={sig}", now=NOW)


@pytest.mark.parametrize("skew", [timedelta(minutes=5, seconds=1), -timedelta(minutes=6)])
def test_expired_or_future_timestamp_is_rejected(skew):
    header = signature_header(SECRET, TS, BODY)
    with pytest.raises(TimestampOutsideTolerance):
        verify_signature(secret=SECRET, body=BODY, header=header, now=NOW + skew)
    # a wider window accepts it
    verify_signature(
        secret=SECRET, body=BODY, header=header, now=NOW + skew, tolerance=timedelta(minutes=10)
    )


def test_any_of_several_signatures_may_match_during_secret_rotation():
    old = compute_signature("whsec_old_secret_xx", TS, BODY)
    new = compute_signature(SECRET, TS, BODY)
    header = f"t={TS},v1={old},v1={new},v0=ignored"
    assert verify_signature(secret=SECRET, body=BODY, header=header, now=NOW) == TS


@pytest.mark.parametrize("header", ["", "v1=abc", f"t={TS}", "t=soon,v1=abc", "garbage"])
def test_malformed_headers_are_rejected(header):
    with pytest.raises(MalformedSignatureHeader):
        verify_signature(secret=SECRET, body=BODY, header=header, now=NOW)
