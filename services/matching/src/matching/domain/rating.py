"""Provider rating as a Bayesian average, so a handful of reviews cannot win.

score = (C·m + Σ stars) / (C + n): with the prior mean m = 4.0 and weight
C = 10, one 5-star review gives 4.09 while forty reviews averaging 4.8 give
4.64. New providers start at m, neither buried nor favoured.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RatingPrior:
    mean: float = 4.0
    weight: float = 10.0


@dataclass(frozen=True, slots=True)
class RatingStats:
    """Running totals of one provider's ratings (1-5 stars); the read model keeps these."""

    count: int = 0
    total: int = 0

    def add(self, stars: int) -> RatingStats:
        if not 1 <= stars <= 5:
            raise ValueError(f"a rating is 1 to 5 stars, got {stars}")
        return RatingStats(self.count + 1, self.total + stars)

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None


def bayesian_average(stats: RatingStats, prior: RatingPrior = RatingPrior()) -> float:
    return (prior.weight * prior.mean + stats.total) / (prior.weight + stats.count)


def rating_component(stats: RatingStats | None, prior: RatingPrior = RatingPrior()) -> float:
    """Bayesian average mapped from 1-5 stars onto [0, 1]."""
    avg = bayesian_average(stats or RatingStats(), prior)
    return min(1.0, max(0.0, (avg - 1.0) / 4.0))
