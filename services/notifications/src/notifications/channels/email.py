"""E-mail over SMTP (aiosmtplib): multipart/alternative, text then HTML.

An SMTP-level rejection (5xx to RCPT/DATA, i.e. a synchronous bounce) is a
final failure, so the dispatcher fails over to the recipient's next channel;
4xx and connection problems are transient and retried with backoff.
"""

from __future__ import annotations

from email.message import EmailMessage
from email.utils import formatdate

import aiosmtplib

from ..domain import Failure, Rendered, email_failure
from ..settings import NotificationsSettings


def build_email(
    *, sender: str, to: str, rendered: Rendered, message_id: str, delivery_key: str
) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = to
    msg["Subject"] = rendered.subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = rendered.locale
    msg["X-Delego-Delivery-Id"] = delivery_key
    msg.set_content(rendered.text)
    msg.add_alternative(rendered.html, subtype="html")
    return msg


class EmailSender:
    def __init__(self, settings: NotificationsSettings) -> None:
        self.settings = settings

    async def send(self, *, to: str, rendered: Rendered, delivery_key: str) -> Failure | None:
        s = self.settings
        msg = build_email(
            sender=s.smtp_from,
            to=to,
            rendered=rendered,
            message_id=f"<{delivery_key}@notifications.delego>",
            delivery_key=delivery_key,
        )
        try:
            await aiosmtplib.send(
                msg,
                hostname=s.smtp_host,
                port=s.smtp_port,
                username=s.smtp_username,
                password=s.smtp_password.get_secret_value() if s.smtp_password else None,
                use_tls=s.smtp_use_tls,
                start_tls=s.smtp_starttls,
                timeout=s.smtp_timeout_s,
            )
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = [r.code for r in exc.recipients]
            return email_failure(max(codes) if codes else 550)
        except aiosmtplib.SMTPResponseException as exc:
            return email_failure(exc.code)
        except (aiosmtplib.SMTPException, OSError):
            return email_failure(None)
        return None
