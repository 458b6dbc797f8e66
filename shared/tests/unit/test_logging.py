import json
import logging

import structlog
from delego_shared.logging import configure_logging, get_logger, mask_text


def test_mask_text_hides_emails_and_phone_numbers():
    text = "write to anna.k+test@example.org or call +33 6 12 34 56 78 / 0612345678"
    masked = mask_text(text)
    assert "example.org" not in masked and "anna" not in masked
    assert "12 34 56" not in masked and "0612345678" not in masked
    assert masked.count("<email>") == 1 and masked.count("<phone>") == 2


def test_mask_text_keeps_dates_amounts_and_ids():
    text = "invoice DLG-2026-000123 of 650.00 EUR at 2026-11-29T17:30:00Z for prv_3f2a"
    assert mask_text(text) == text


def test_log_lines_are_json_masked_and_carry_the_bound_correlation_id(capsys):
    configure_logging("INFO", "json", service="unit")
    log = get_logger("t")
    with structlog.contextvars.bound_contextvars(correlation_id="corr-42"):
        log.info("notify", to="someone@example.com", detail=["call 06 12 34 56 78"])
    structlog.contextvars.clear_contextvars()
    line = capsys.readouterr().err.strip().splitlines()[-1]
    data = json.loads(line)
    assert data["correlation_id"] == "corr-42"
    assert data["service"] == "unit"
    assert data["to"] == "<email>"
    assert data["detail"] == ["call <phone>"]
    assert "example.com" not in line


def test_stdlib_loggers_go_through_the_same_masking(capsys):
    configure_logging("INFO", "json")
    logging.getLogger("uvicorn.error").warning("client bob@example.net failed")
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "bob@example.net" not in line and "<email>" in line
