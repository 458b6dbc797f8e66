"""Pure domain core of matching: no Kafka, no Mongo, no clock (pass `now` in).

Edges call: `CandidateIndex` (read model), `find_matches` (ranking and
explanations), `ClientRequest` (lifecycle, returns the events to store and
publish), `capacity` helpers (reservation keys).
"""

from .capacity import (
    capacity_key,
    planning_keys,
    remaining_capacity,
    reservation_keys,
    week_key,
)
from .filters import Filter
from .index import CandidateIndex
from .matcher import (
    Candidate,
    MatchContext,
    MatchOutcome,
    context_providers,
    evaluate,
    find_matches,
    find_matches_bruteforce,
)
from .policy import DEFAULT_POLICY, DEFAULT_WEIGHTS, MatchingPolicy
from .rating import RatingPrior, RatingStats, bayesian_average
from .request import (
    ClientRequest,
    Finder,
    IllegalTransition,
    NotTheProposedProvider,
    ProposalAlreadyExpired,
    ProposalStillOpen,
    RequestStatus,
)
from .schedule import WeeklySchedule, next_working_day_start, plan_work
from .spec import NextWorkingDay, RequestDraft, RequestSpec

__all__ = [
    "DEFAULT_POLICY",
    "DEFAULT_WEIGHTS",
    "Candidate",
    "CandidateIndex",
    "ClientRequest",
    "Filter",
    "Finder",
    "IllegalTransition",
    "MatchContext",
    "MatchOutcome",
    "MatchingPolicy",
    "NextWorkingDay",
    "NotTheProposedProvider",
    "ProposalAlreadyExpired",
    "ProposalStillOpen",
    "RatingPrior",
    "RatingStats",
    "RequestDraft",
    "RequestSpec",
    "RequestStatus",
    "WeeklySchedule",
    "bayesian_average",
    "capacity_key",
    "context_providers",
    "evaluate",
    "find_matches",
    "find_matches_bruteforce",
    "next_working_day_start",
    "plan_work",
    "planning_keys",
    "remaining_capacity",
    "reservation_keys",
    "week_key",
]
