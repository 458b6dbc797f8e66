"""Bearer-JWT authentication: HS256, roles client/provider/operator and a subject id."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Annotated

import jwt
from fastapi import Depends, Request

from ..settings import Settings
from .problems import Forbidden, Unauthorized


class Role(StrEnum):
    CLIENT = "client"
    PROVIDER = "provider"
    OPERATOR = "operator"


@dataclass(frozen=True)
class Principal:
    subject: str
    role: Role

    @property
    def is_operator(self) -> bool:
        return self.role is Role.OPERATOR


def mint_token(
    settings: Settings, subject: str, role: Role | str, *, ttl: timedelta = timedelta(hours=12)
) -> str:
    """A signed token (development tooling and tests; production tokens come from the IdP).

    A lifetime beyond `settings.jwt_max_ttl_s` is refused here: the services would
    refuse the token anyway.
    """
    if ttl.total_seconds() > settings.jwt_max_ttl_s:
        raise ValueError(
            f"token lifetime {ttl} exceeds the {settings.jwt_max_ttl_s} s maximum "
            "(DELEGO_JWT_MAX_TTL_S)"
        )
    if not subject.strip():
        raise ValueError("a token needs a non-empty subject")
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": str(Role(role)),
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


LEEWAY_S = 60
"""Clock skew tolerated between the token's issuer and this service."""


def verify_token(settings: Settings, token: str) -> Principal:
    """The caller of a signed, unexpired token with a subject, a role and a bounded lifetime.

    A token valid for years is as good as a stolen password: `exp` is required
    and may lie at most `jwt_max_ttl_s` after now (and after `iat` when given).
    """
    try:
        claims = jwt.decode(
            token,
            settings.jwt_secret.get_secret_value(),
            algorithms=["HS256"],
            issuer=settings.jwt_issuer,
            options={"require": ["sub", "exp", "iss"]},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("token expired") from None
    except jwt.InvalidTokenError as exc:
        raise Unauthorized(f"invalid token: {exc}") from None
    subject = claims["sub"]
    if not isinstance(subject, str) or not subject.strip():
        raise Unauthorized("token has an empty subject (sub)")
    exp = float(claims["exp"])
    iat = claims.get("iat")
    start = float(iat) if isinstance(iat, int | float) else datetime.now(UTC).timestamp()
    longest = settings.jwt_max_ttl_s + LEEWAY_S
    if exp - datetime.now(UTC).timestamp() > longest or exp - start > longest:
        raise Unauthorized(
            f"token lifetime exceeds the maximum of {settings.jwt_max_ttl_s} s; "
            "ask for a shorter-lived token"
        )
    try:
        role = Role(str(claims.get("role", "")))
    except ValueError:
        raise Unauthorized("token has no valid role (client, provider or operator)") from None
    return Principal(subject=subject, role=role)


async def current_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller, from `Authorization: Bearer <jwt>` (401 otherwise)."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token (Authorization: Bearer <jwt>)")
    settings: Settings = request.app.state.settings
    return verify_token(settings, token.strip())


Caller = Annotated[Principal, Depends(current_principal)]
"""Any authenticated caller."""


def require_role(*roles: Role) -> Callable[[Principal], Awaitable[Principal]]:
    """Dependency factory: 403 unless the caller has one of `roles`.

    Usage: `who: Annotated[Principal, Depends(require_role(Role.OPERATOR))]`.
    """

    async def check(principal: Caller) -> Principal:
        if principal.role not in roles:
            allowed = ", ".join(r.value for r in roles)
            raise Forbidden(f"role '{principal.role.value}' may not do this (allowed: {allowed})")
        return principal

    check.__delego_roles__ = roles  # type: ignore[attr-defined]  # OpenAPI: the route answers 403
    return check
