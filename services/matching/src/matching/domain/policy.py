"""Tunable matching policy, kept as data so operators can change it without code."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from types import MappingProxyType

from .rating import RatingPrior

SCORE_COMPONENTS = ("slack", "rating", "price", "load", "trust_bonus", "awake")

DEFAULT_WEIGHTS: Mapping[str, float] = MappingProxyType(
    {
        "slack": 0.25,
        "rating": 0.25,
        "price": 0.20,
        "load": 0.10,
        "trust_bonus": 0.10,
        "awake": 0.10,
    }
)


@dataclass(frozen=True)
class MatchingPolicy:
    weights: Mapping[str, float] = field(default_factory=lambda: DEFAULT_WEIGHTS)
    rating_prior: RatingPrior = field(default_factory=RatingPrior)
    acceptance_window: timedelta = timedelta(minutes=15)
    """Default response window, in the provider's working time (a provider's
    `response_window_minutes` overrides it)."""
    max_attempts: int = 3
    min_live_overlap: timedelta = timedelta(minutes=30)
    """A live-session window must share at least this much with the provider's spans."""
    horizon: timedelta = timedelta(weeks=8)
    """The schedule walk never looks further than this."""
    candidates_limit: int = 5
    trust_threshold: int = 4

    def __post_init__(self) -> None:
        unknown = set(self.weights) - set(SCORE_COMPONENTS)
        if unknown:
            raise ValueError(f"unknown score weights {sorted(unknown)}; use {SCORE_COMPONENTS}")
        if any(w < 0 for w in self.weights.values()):
            raise ValueError("score weights must be >= 0")
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if self.acceptance_window <= timedelta(0):
            raise ValueError("acceptance_window must be positive")


DEFAULT_POLICY = MatchingPolicy()
