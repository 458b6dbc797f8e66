"""E-mail over SMTP (aiosmtplib): multipart/alternative, text then HTML.

An SMTP-level rejection (5xx to RCPT/DATA, i.e. a synchronous bounce) is a
final failure, so the dispatcher fails over to the recipient's next channel;
4xx and connection problems are transient and retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from email.charset import QP, Charset
from email.header import Header
from email.message import EmailMessage, Message
from email.mime.multipart import MIMEMultipart
from email.mime.nonmultipart import MIMENonMultipart
from email.utils import formatdate
from time import monotonic
from typing import cast

import aiosmtplib
from delego_shared import tracing

from ..domain import Failure, Rendered, email_failure
from ..settings import NotificationsSettings

_UTF8 = Charset("utf-8")
_UTF8.header_encoding = QP
_UTF8.body_encoding = QP


def _header(value: str) -> str:
    """RFC 2047 encoded words for a header outside ASCII (folded by the generator)."""
    return value if value.isascii() else cast(str, Header(value, _UTF8))


def build_email(
    *, sender: str, to: str, rendered: Rendered, message_id: str, delivery_key: str
) -> Message:
    """multipart/alternative, text then HTML, UTF-8 quoted-printable.

    Built with the `compat32` classes: the modern policy (`EmailMessage`) parses
    every header it sets and again when the message is sent, which cost three
    times as much per e-mail for the same bytes on the wire. Addresses outside
    ASCII (SMTPUTF8) keep the modern policy, which knows how to write them.
    """
    headers = {
        "From": sender,
        "To": to,
        "Subject": rendered.subject,
        "Date": formatdate(localtime=False, usegmt=True),
        "Message-ID": message_id,
        "Content-Language": rendered.locale,
        "X-Delego-Delivery-Id": delivery_key,
    }
    if not (sender.isascii() and to.isascii()):
        modern = EmailMessage()
        for name, value in headers.items():
            modern[name] = value
        modern.set_content(rendered.text)
        modern.add_alternative(rendered.html, subtype="html")
        return modern
    msg = MIMEMultipart("alternative")
    for name, value in headers.items():
        msg[name] = _header(value)
    msg.attach(_text_part(rendered.text, "plain"))
    msg.attach(_text_part(rendered.html, "html"))
    return msg


def _text_part(text: str, subtype: str) -> MIMENonMultipart:
    part = MIMENonMultipart("text", subtype, charset="utf-8")
    part.set_payload(text, _UTF8)
    return part


class EmailSender:
    """Sends over a few kept-open SMTP sessions (one per concurrent send at most).

    A new session per e-mail cost a TCP handshake, EHLO (and TLS/AUTH) and QUIT
    around each message: more round trips than the message itself. A session
    is reused while it is younger than `smtp_session_max_idle_s` since its last
    message; one the server closed meanwhile is replaced once, before anything
    was sent on it, so that is not a failure of the delivery.
    """

    def __init__(self, settings: NotificationsSettings, *, clock: Callable[[], float] = monotonic):
        self.settings = settings
        self._clock = clock
        self._idle: list[tuple[aiosmtplib.SMTP, float]] = []

    async def send(self, *, to: str, rendered: Rendered, delivery_key: str) -> Failure | None:
        s = self.settings
        msg = build_email(
            sender=s.smtp_from,
            to=to,
            rendered=rendered,
            message_id=f"<{delivery_key}@notifications.delego>",
            delivery_key=delivery_key,
        )
        with tracing.span(
            "smtp send",
            kind=tracing.SpanKind.CLIENT,
            attributes={
                "server.address": s.smtp_host,
                "server.port": s.smtp_port,
                "delego.delivery_id": delivery_key,
            },
        ) as span:
            failure = await self._send(msg)
            if failure is not None:
                tracing.failed(span, failure.code)
        return failure

    async def _send(self, msg: Message) -> Failure | None:
        session: aiosmtplib.SMTP | None = None
        try:
            session, reused = await self._session()
            try:
                await session.send_message(msg)
            except aiosmtplib.SMTPServerDisconnected:
                if not reused:
                    raise
                await _close(session)  # the server closed it while idle: once more, anew
                session, _ = await self._session(fresh=True)
                await session.send_message(msg)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return await self._failed(session, email_failure(max(codes) if codes else 550))
        except aiosmtplib.SMTPResponseException as exc:
            return await self._failed(session, email_failure(exc.code))
        except (aiosmtplib.SMTPException, OSError):
            return await self._failed(session, email_failure(None))
        self._idle.append((session, self._clock()))
        return None

    @staticmethod
    async def _failed(session: aiosmtplib.SMTP | None, failure: Failure) -> Failure:
        """A session whose message failed is not reused (its state is unknown)."""
        if session is not None:
            await _close(session)
        return failure

    async def _session(self, *, fresh: bool = False) -> tuple[aiosmtplib.SMTP, bool]:
        """(session, reused): the most recently used open one, else a new one."""
        while self._idle and not fresh:
            session, last = self._idle.pop()
            fresh_enough = self._clock() - last < self.settings.smtp_session_max_idle_s
            if session.is_connected and fresh_enough:
                return session, True
            await _close(session)
        s = self.settings
        session = aiosmtplib.SMTP(
            hostname=s.smtp_host,
            port=s.smtp_port,
            username=s.smtp_username,
            password=s.smtp_password.get_secret_value() if s.smtp_password else None,
            use_tls=s.smtp_use_tls,
            start_tls=s.smtp_starttls,
            timeout=s.smtp_timeout_s,
        )
        await session.connect()
        return session, False

    async def close(self) -> None:
        idle, self._idle = self._idle, []
        for session, _ in idle:
            await _close(session)


async def _close(session: aiosmtplib.SMTP) -> None:
    """QUIT if still connected; a session that failed mid-message is just dropped."""
    try:
        if session.is_connected:
            await session.quit()
    except (aiosmtplib.SMTPException, OSError):
        session.close()
