"""Channel edges: e-mail over SMTP, webhooks over HTTP, in-app inbox.

Each `send` returns None on success or a domain `Failure` (a short code and
whether it is final); none of them raises for a delivery problem, and no
failure code carries an address or a server's free text.
"""

from .email import EmailSender, build_email
from .inapp import InAppSender
from .webhook import WebhookSender

__all__ = ["EmailSender", "InAppSender", "WebhookSender", "build_email"]
