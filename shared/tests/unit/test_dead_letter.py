"""The DLQ copy of any record that was read fits in one record the broker accepts."""

import hashlib

from delego_shared.events import Envelope
from delego_shared.messaging.dead_letter import (
    H_BODY_OMITTED,
    H_BODY_SHA256,
    H_BODY_SIZE,
    H_GROUP,
    H_HEADERS_CUT,
    H_KEY_SHA256,
    H_OFFSET,
    H_PARTITION,
    H_REPLAY_GROUP,
    H_TOPIC,
    MAX_DLQ_RECORD_BYTES,
    RawRecord,
    dead_letter,
)
from delego_shared.testing.samples import registered

ENV = Envelope(registered("prv_dl"), source="/delego/catalog")
HEADERS = [(k, v.encode()) for k, v in ENV.headers().items()]


def record(value: bytes, key: bytes | None = b"prv_dl", headers=HEADERS) -> RawRecord:
    return RawRecord("catalog.providers.v1", 2, 41, key, value, list(headers))


def test_a_small_record_is_copied_whole_with_where_it_came_from_and_why():
    letter = dead_letter(record(ENV.body()), RuntimeError("boom"), 3, "billing")
    assert letter.topic == "catalog.providers.v1.dlq"
    assert letter.key == b"prv_dl" and letter.body == ENV.body()
    assert letter.headers["ce_id"] == ENV.id
    assert letter.headers[H_TOPIC] == "catalog.providers.v1"
    assert (letter.headers[H_PARTITION], letter.headers[H_OFFSET]) == ("2", "41")
    assert letter.headers[H_GROUP] == "billing"
    assert letter.headers[H_BODY_SHA256] == hashlib.sha256(ENV.body()).hexdigest()
    assert H_BODY_OMITTED not in letter.headers and H_HEADERS_CUT not in letter.headers


def test_a_1_mib_record_keeps_key_headers_and_digest_but_not_its_body():
    body = b"x" * (1024 * 1024 - 2000)  # what the broker accepted on the topic
    letter = dead_letter(record(body), ValueError("e" * 5000), 0, "matching")
    assert letter.size() <= MAX_DLQ_RECORD_BYTES
    assert letter.body == b""
    assert letter.headers[H_BODY_OMITTED] == "true"
    assert letter.headers[H_BODY_SHA256] == hashlib.sha256(body).hexdigest()
    assert letter.headers[H_BODY_SIZE] == str(len(body))
    assert letter.key == b"prv_dl" and letter.headers["ce_type"] == ENV.type


def test_huge_keys_and_headers_are_cut_to_a_bounded_size_with_their_digest():
    key = b"k" * 500_000
    headers = [*HEADERS, ("x-junk", b"j" * 400_000), *((f"h{i}", b"v" * 900) for i in range(100))]
    letter = dead_letter(record(b"{}", key=key, headers=headers), ValueError("bad"), 0, "g")
    assert letter.size() < 64 * 1024
    assert letter.body == b"{}"
    assert letter.headers[H_KEY_SHA256] == hashlib.sha256(key).hexdigest()
    assert letter.headers[H_HEADERS_CUT] == "true"
    assert letter.headers["ce_id"] == ENV.id  # the CloudEvents headers come first and stay


def test_a_replayed_record_parked_again_loses_its_replay_target():
    headers = [*HEADERS, (H_REPLAY_GROUP, b"billing")]
    letter = dead_letter(record(ENV.body(), headers=headers), ValueError("x"), 1, "billing")
    assert H_REPLAY_GROUP not in letter.headers


def test_the_minimal_copy_keeps_only_metadata_and_digests():
    letter = dead_letter(record(ENV.body()), ValueError("x"), 1, "g", minimal=True)
    assert letter.body == b"" and letter.key is None
    assert "ce_id" not in letter.headers
    assert letter.headers[H_BODY_SHA256] == hashlib.sha256(ENV.body()).hexdigest()
    assert letter.headers[H_KEY_SHA256] == hashlib.sha256(b"prv_dl").hexdigest()
