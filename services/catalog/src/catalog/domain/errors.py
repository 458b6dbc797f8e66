"""Domain errors: what the edges translate into HTTP problems (422 / 409) or logs.

Validation collects every problem before failing, so a caller fixes a form in
one round trip instead of one field at a time.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from pydantic import BaseModel, ConfigDict, ValidationError


class FieldIssue(BaseModel):
    """One problem (or warning) about one input field, e.g. `schedule.2`."""

    model_config = ConfigDict(frozen=True)

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


class DomainError(Exception):
    """Base of every catalog rule violation."""


class ValidationFailed(DomainError):
    """The input breaks one or more rules; `issues` lists all of them (HTTP 422)."""

    def __init__(self, issues: Iterable[FieldIssue]) -> None:
        self.issues: tuple[FieldIssue, ...] = tuple(issues)
        if not self.issues:
            raise ValueError("ValidationFailed needs at least one issue")
        super().__init__("; ".join(str(i) for i in self.issues))

    @classmethod
    def single(cls, field: str, message: str) -> ValidationFailed:
        return cls([FieldIssue(field=field, message=message)])

    @property
    def fields(self) -> set[str]:
        return {i.field for i in self.issues}

    def as_list(self) -> list[dict[str, str]]:
        """`[{field, message}, ...]`, the shape of the HTTP problem body's `errors`."""
        return [{"field": i.field, "message": i.message} for i in self.issues]

    @classmethod
    def from_pydantic(cls, exc: ValidationError, prefix: str = "") -> ValidationFailed:
        """Same shape for structural errors (wrong types, bad HH:MM) as for rule errors."""
        issues = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"])
            field = f"{prefix}.{path}" if prefix and path else (prefix or path or "body")
            message = str(err["msg"]).removeprefix("Value error, ")
            issues.append(FieldIssue(field=field, message=message))
        return cls(issues)


class IllegalTransition(DomainError):
    """The action is not allowed in the aggregate's current status (HTTP 409)."""

    def __init__(self, aggregate: str, aggregate_id: str, status: str, action: str) -> None:
        self.aggregate = aggregate
        self.aggregate_id = aggregate_id
        self.status = status
        self.action = action
        super().__init__(f"cannot {action} {aggregate} {aggregate_id}: it is {status}")


class ProviderNotActive(DomainError):
    """A suspended provider cannot create or publish offers (HTTP 409)."""

    def __init__(self, provider_id: str) -> None:
        self.provider_id = provider_id
        super().__init__(f"provider {provider_id} is suspended")


class WrongProvider(DomainError):
    """An offer operation was given a provider that does not own the offer."""

    def __init__(self, offer_id: str, expected: str, got: str) -> None:
        self.offer_id, self.expected, self.got = offer_id, expected, got
        super().__init__(f"offer {offer_id} belongs to provider {expected}, not {got}")


class Issues:
    """Collector used by the rules: add problems, then fail once with all of them."""

    def __init__(self) -> None:
        self._items: list[FieldIssue] = []

    def add(self, field: str, message: str) -> None:
        self._items.append(FieldIssue(field=field, message=message))

    def extend(self, issues: Iterable[FieldIssue]) -> None:
        self._items.extend(issues)

    def __bool__(self) -> bool:
        return bool(self._items)

    def __iter__(self) -> Iterator[FieldIssue]:
        return iter(self._items)

    @property
    def items(self) -> tuple[FieldIssue, ...]:
        return tuple(self._items)

    def raise_if_any(self) -> None:
        if self._items:
            raise ValidationFailed(self._items)
