"""Who this process is: a replica's stable name, and this run of it.

Work in progress is leased to an owner: an outbox relay's session, a
notification being sent, an idempotent command under way. When a process is
killed, its leases must run out before anyone takes that work over (a lease
is far longer than the work, so that a slow owner is never doubled): tens of
seconds to minutes of nothing happening. A replica that starts again under the
same name knows better: an owner with its name but another run is a dead
predecessor, since two runs of one replica never live at once, so it takes
that work over at start-up.

The name must be unique among the replicas running at the same time:
`DELEGO_INSTANCE_ID`, else, for a served process (`serve`), its host name and
HTTP port (each compose container has its own host name, each local process
its own port). A process that does not serve (tests) gets a name of its own,
so it never takes anything over early.
"""

from __future__ import annotations

import re
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

SEPARATOR = "/"


def default_instance(http_port: int) -> str:
    return f"{socket.gethostname()}:{http_port}"


@dataclass(frozen=True)
class Replica:
    instance: str
    run: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self) -> None:
        if not self.instance or SEPARATOR in self.instance:
            raise ValueError(f"a replica's name is not empty and has no {SEPARATOR!r}")

    @classmethod
    def unnamed(cls) -> Replica:
        """A name of its own: never anyone's successor, so it takes nothing over early."""
        return cls(f"unnamed-{uuid.uuid4().hex}")

    @property
    def owner(self) -> str:
        """The owner id this run writes on what it leases."""
        return f"{self.instance}{SEPARATOR}{self.run}"

    def is_predecessor(self, owner: object) -> bool:
        """Was `owner` an earlier run of this replica (so it is dead)?"""
        return (
            isinstance(owner, str)
            and owner != self.owner
            and owner.startswith(self.instance + SEPARATOR)
        )

    def predecessors(self) -> dict[str, Any]:
        """A query condition on an owner field: an earlier run of this replica."""
        return {"$regex": f"^{re.escape(self.instance + SEPARATOR)}", "$ne": self.owner}
