"""E-mails go over kept-open SMTP sessions, on a real SMTP server (aiosmtpd)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from aiosmtpd.controller import Controller
from notifications.channels.email import EmailSender
from notifications.domain import Rendered
from notifications.settings import NotificationsSettings

from .conftest import Mailbox, free_port

pytestmark = pytest.mark.integration


class SessionMailbox(Mailbox):
    """Also notes which client connection (peer address) carried each message."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[object] = []

    async def handle_DATA(self, server, session, envelope):
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def server() -> Iterator[tuple[SessionMailbox, int, list[Controller]]]:
    box, port = SessionMailbox(), free_port()
    controllers = [Controller(box, hostname="127.0.0.1", port=port)]
    controllers[0].start()
    try:
        yield box, port, controllers
    finally:
        for c in controllers:
            c.stop()


def sender(port: int, **more: object) -> EmailSender:
    return EmailSender(NotificationsSettings(smtp_host="127.0.0.1", smtp_port=port, **more))


def mail(n: int) -> Rendered:
    return Rendered(
        subject=f"s{n}",
        text=f"t{n}",
        html=f"<p>{n}</p>",
        html_body=f"{n}",
        locale="en",
        fell_back=False,
    )


async def test_messages_share_one_session(server) -> None:
    box, port, _ = server
    email = sender(port)
    for n in range(3):
        assert (
            await email.send(to=f"u{n}@example.org", rendered=mail(n), delivery_key=f"k{n}") is None
        )
    await email.close()
    assert [m["Subject"] for m in box.messages] == ["s0", "s1", "s2"]
    assert len(set(box.peers)) == 1


async def test_a_refused_message_drops_its_session_and_the_next_one_goes_through(server) -> None:
    box, port, _ = server
    email = sender(port)
    failure = await email.send(to="bounce@example.org", rendered=mail(0), delivery_key="k0")
    assert failure is not None and failure.permanent
    assert await email.send(to="ok@example.org", rendered=mail(1), delivery_key="k1") is None
    await email.close()
    assert [m["Subject"] for m in box.messages] == ["s1"]


async def test_an_idle_session_is_not_reused_past_its_age(server) -> None:
    box, port, _ = server
    email = sender(port, smtp_session_max_idle_s=0)
    for n in range(2):
        assert await email.send(to="u@example.org", rendered=mail(n), delivery_key=f"k{n}") is None
    await email.close()
    assert len(set(box.peers)) == 2


async def test_a_session_the_server_closed_is_replaced_without_failing_the_message(
    server,
) -> None:
    box, port, controllers = server
    email = sender(port)
    assert await email.send(to="u@example.org", rendered=mail(0), delivery_key="k0") is None
    controllers.pop().stop()  # the server goes away and comes back: our idle session is dead
    controllers.append(Controller(box, hostname="127.0.0.1", port=port))
    controllers[-1].start()
    assert await email.send(to="u@example.org", rendered=mail(1), delivery_key="k1") is None
    await email.close()
    assert [m["Subject"] for m in box.messages] == ["s0", "s1"]
    assert len(set(box.peers)) == 2
