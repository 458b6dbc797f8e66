"""structlog set-up: JSON in production, readable console in development.

Every line of an event's handling carries its correlation id (bound through
contextvars by the consumer), and a last processor masks e-mail addresses and
phone numbers wherever they slipped in: privacy is enforced at the sink, not
left to each call site.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import Mapping, MutableMapping
from typing import Any

import structlog

from .tracing import add_trace_ids

EMAIL = re.compile(r"[A-Za-z0-9._%+\-]+@[A-Za-z0-9.\-]+\.[A-Za-z]{2,}")
# international or national phone numbers: 9+ digits with optional separators
PHONE = re.compile(r"(?<![\w./\-])\+?\d[\d ().\-]{7,}\d(?![\w.])")
_UUIDISH = re.compile(r"^[0-9a-f\-]{32,36}$")


def mask_text(text: str) -> str:
    """Replace e-mail addresses and phone numbers with placeholders."""
    text = EMAIL.sub("<email>", text)

    def phone(m: re.Match[str]) -> str:
        s = m.group(0)
        digits = sum(c.isdigit() for c in s)
        # ISO dates/times and decimal amounts are not phone numbers
        if digits < 9 or re.fullmatch(r"\d{4}-\d{2}-\d{2}.*", s):
            return s
        return "<phone>"

    return PHONE.sub(phone, text)


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return value if _UUIDISH.match(value) else mask_text(value)
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask(v) for v in value)
    return value


def mask_private_data(
    _: Any, __: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: masks contact data in every value of the line."""
    for k, v in list(event_dict.items()):
        event_dict[k] = _mask(v)
    return event_dict


def configure_logging(level: str = "INFO", fmt: str = "auto", service: str | None = None) -> None:
    """Configure structlog and route stdlib logging (uvicorn, aiokafka) through it."""
    json_output = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        add_trace_ids,  # trace_id / span_id of the active span (tracing on)
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
    ]
    if json_output:
        shared.append(structlog.processors.format_exc_info)
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_output
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            mask_private_data,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "pymongo"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # a uvicorn started elsewhere in the process with its default log config gave its
    # loggers their own (unmasked) handlers: route them through ours again
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
    if service:
        structlog.contextvars.bind_contextvars(service=service)


def get_logger(name: str | None = None) -> Any:
    return structlog.stdlib.get_logger(name)
