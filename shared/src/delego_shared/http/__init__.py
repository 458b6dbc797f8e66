"""HTTP helpers every service uses: app factory, health, problems, JWT auth."""

from .app import ServiceRuntime, create_http_app, serve
from .auth import Caller, Principal, Role, current_principal, mint_token, require_role, verify_token
from .idempotency import Idempotent, IdempotentCall
from .openapi import Problem, problem_responses
from .problems import (
    Conflict,
    Forbidden,
    NotFound,
    ProblemError,
    Unauthorized,
    Unprocessable,
    install_problem_handlers,
)

__all__ = [
    "Caller",
    "Conflict",
    "Forbidden",
    "Idempotent",
    "IdempotentCall",
    "NotFound",
    "Principal",
    "Problem",
    "ProblemError",
    "Role",
    "ServiceRuntime",
    "Unauthorized",
    "Unprocessable",
    "create_http_app",
    "current_principal",
    "install_problem_handlers",
    "mint_token",
    "problem_responses",
    "require_role",
    "serve",
    "verify_token",
]
