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
    """A signed token (development tooling and tests; production tokens come from the IdP)."""
    now = datetime.now(UTC)
    claims = {
        "sub": subject,
        "role": str(Role(role)),
        "iss": settings.jwt_issuer,
        "iat": now,
        "exp": now + ttl,
    }
    return jwt.encode(claims, settings.jwt_secret.get_secret_value(), algorithm="HS256")


def verify_token(settings: Settings, token: str) -> Principal:
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
    try:
        role = Role(str(claims.get("role", "")))
    except ValueError:
        raise Unauthorized("token has no valid role (client, provider or operator)") from None
    return Principal(subject=str(claims["sub"]), role=role)


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

    return check
