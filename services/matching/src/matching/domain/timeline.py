"""Working time as cumulative sums: every schedule's walk for many offers at once (numpy).

The walks of `availability` consume a schedule's spans one by one from a
cursor. Whatever the cursor, a walk consumes the same pieces: span i from
max(its start, the largest end of the spans before it) to its end (empty
when that end is not later), cut at the cursor. So each schedule's week
tables (`week_table`: the same DST-correct conversion) over a range of
weeks become disjoint sorted pieces with the working time before each
(F, a cumulative sum), and a walk is arithmetic: the working time between
t and u is F(u) - F(t); the instant `effort` of work after t is F⁻¹(F(t) +
effort), the left-most such instant, as the walk stops. The walk gives up
when the piece it would take from starts at or after its limit (deadline or
horizon): one comparison with that piece's start.

All schedules' pieces are in ONE array, each time offset by its schedule's
ordinal times `span` (longer than the range), so that the keys grow
monotonically across schedules: one `np.searchsorted` answers the walk of
every candidate of a request, each on its own schedule. Integers only
(µs since the epoch), exact.

Valid only inside the weeks it was built for: an instant before `lo` or
after `hi`, or a walk whose limit is after `hi` without reaching its
effort, is left to the Python walk (`undecided`).
"""

from __future__ import annotations

from array import array
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import repeat

import numpy as np
import numpy.typing as npt

from .availability import week_label, week_table
from .schedule import WeeklySchedule

I64 = npt.NDArray[np.int64]
_DAY_US = 86_400_000_000
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_week_table = week_table.__wrapped__
"""Uncached: a build reads every (schedule, week) once; the walks' cache keeps its room."""


def _utc_midnight(ordinal: int) -> int:
    return (ordinal - _EPOCH_ORDINAL) * _DAY_US


@dataclass(frozen=True, slots=True)
class Walked:
    """Per-candidate results of `Timeline.reach`: µs since the epoch."""

    at: I64
    """Where the walk reaches its target (meaningless where not `found`)."""
    piece_start: I64
    """Start of the piece it reaches it in (the walk's limit check)."""
    found: npt.NDArray[np.bool_]


class Timeline:
    """The pieces of schedules `0..n-1` over the local ISO weeks from `first_monday` to
    `last_monday` (date ordinals), as cumulative working time."""

    def __init__(
        self, schedules: Sequence[WeeklySchedule], first_monday: int, last_monday: int
    ) -> None:
        self.n = len(schedules)
        self.first_monday, self.last_monday = first_monday, last_monday
        self.t0 = _utc_midnight(first_monday) - 2 * _DAY_US
        self.span = (last_monday + 7 - first_monday + 4) * _DAY_US
        self.lo = _utc_midnight(first_monday) + 2 * _DAY_US
        """Walks from instants before this may need spans of earlier weeks."""
        self.hi = _utc_midnight(last_monday + 7) - _DAY_US
        """Spans of later weeks never start before this."""
        if self.n * self.span >= 2**62:
            raise ValueError("too many schedules or weeks for 64-bit keys")
        # machine integers, not Python ones: a million offers' schedules have millions
        starts, ends, weeks = array("q"), array("q"), array("q")
        counts: list[int] = []
        for sched in schedules:
            k = 0
            for monday in range(first_monday, last_monday + 1, 7):
                spans = _week_table(sched, monday).spans
                for _, lo, hi in spans:
                    starts.append(lo)
                    ends.append(hi)
                weeks.extend(repeat(monday, len(spans)))
                k += len(spans)
            counts.append(k)
        seg = np.repeat(np.arange(self.n, dtype=np.int64), counts)
        base = seg * self.span - self.t0
        a = np.frombuffer(starts, dtype=np.int64) + base
        b = np.frombuffer(ends, dtype=np.int64) + base
        # the walk's cursor before span i is the largest end before it: keyed times grow
        # across schedules, so one running maximum serves them all
        before = np.empty_like(b)
        if len(b):
            before[0] = -1
            np.maximum.accumulate(b[:-1], out=before[1:])
        ps = np.maximum(a, before)
        keep = b > ps
        ps, pe, seg = ps[keep], b[keep], seg[keep]
        self.week: I64 = np.frombuffer(weeks, dtype=np.int64)[keep]
        """The Monday (date ordinal) of the week table each piece comes from: the week
        its work is reserved in."""
        length = pe - ps
        done = np.cumsum(length)
        first = np.searchsorted(seg, np.arange(self.n + 1))
        until = np.concatenate(([0], done))[first]
        """Working time of all schedules before each schedule's first piece."""
        cs = done - length - until[seg]
        self.total: I64 = np.diff(until)
        # one sentinel past the end (schedule -1) so that every search result indexes
        self.ps: I64 = np.append(ps, 0)
        self._starts: I64 = self.ps[:-1]
        """The pieces' starts without the sentinel (sorted)."""
        self.pe: I64 = pe
        self.cs: I64 = np.append(cs, 0)
        self.seg: I64 = np.append(seg, -1)
        self.ce_key: I64 = seg * self.span + cs + length

    def covers(self, us: int) -> bool:
        return self.lo <= us < self.hi

    def worked(self, s: I64, t: I64) -> tuple[I64, I64]:
        """(F(t), start of the first piece ending after t) for schedule `s[k]` at `t[k]`;
        the start is `hi` or later when there is none in the range."""
        key = s * self.span + (t - self.t0)
        i = self.pe.searchsorted(key, side="right")
        inside = self.seg[i] == s
        f = np.where(inside, self.cs[i] + np.maximum(key - self.ps[i], 0), self.total[s])
        nxt = np.where(inside, self.ps[i] - s * self.span + self.t0, self.hi)
        return f, nxt

    def reach(self, s: I64, v: I64) -> Walked:
        """The first instant where schedule `s[k]` has worked `v[k]` (> 0) since the range
        began: F⁻¹, left-most."""
        v = np.minimum(v, self.span)
        j = self.ce_key.searchsorted(s * self.span + v, side="left")
        found = self.seg[j] == s
        off = s * self.span - self.t0
        ps = self.ps[j]
        return Walked(ps + (v - self.cs[j]) - off, ps - off, found)

    def split(self, s: int, start: int, finish: int) -> tuple[tuple[str, int], ...]:
        """`FastPlan.seconds_by_week` of the work of schedule `s` from `start` to `finish`
        (a walk this timeline decided): the pieces between them, by week."""
        off = s * self.span - self.t0
        # the arrays' own method on a scalar: np.searchsorted's wrapper costs as much
        i = int(self.pe.searchsorted(start + off, side="right"))
        j = int(self._starts.searchsorted(finish + off, side="left"))
        by_week: dict[str, int] = {}
        a, b = start + off, finish + off
        for lo, hi, monday in zip(
            self.ps[i:j].tolist(), self.pe[i:j].tolist(), self.week[i:j].tolist(), strict=True
        ):
            label = week_label(monday)
            by_week[label] = by_week.get(label, 0) + min(hi, b) - max(lo, a)
        return tuple((w, us // 1_000_000) for w, us in sorted(by_week.items()))

    def finish(
        self, s: I64, start: I64, effort: I64, limit: I64, worked: I64 | None = None
    ) -> tuple[I64, I64]:
        """`fast_finish` for every k: (finish, state) with state 1 = finishes at `finish`,
        0 = not before `limit`, -1 = undecided here (the Python walk decides).
        `worked`: F(start) when the caller knows it (one search less)."""
        f0 = self.worked(s, start)[0] if worked is None else worked
        r = self.reach(s, f0 + effort)
        in_time = np.maximum(r.piece_start, start) < limit
        state = np.where(r.found, np.where(in_time, 1, 0), np.where(limit <= self.hi, 0, -1))
        state = np.where(effort <= 0, 1, state)
        return np.where(effort <= 0, start, r.at), state

    def answer_finish(
        self,
        s: I64,
        now: int,
        window: I64,
        horizon: int,
        earliest: int,
        effort: I64,
        deadline: int,
    ) -> tuple[I64, I64, I64, I64, I64]:
        """`fast_answer_finish` for every k (window > 0): (answer_from, answer_by, finish,
        state, F(now)), state as in `finish`, -1 also when the answer is undecided here.
        Faster with `s` sorted (the searches then go through the pieces in order)."""
        limit = now + horizon
        f0, nxt = self.worked(s, np.full_like(s, now))
        # the first piece ending after now is where the answer can start (if before limit)
        known = (nxt < self.hi) | (limit <= self.hi)
        answer_from = np.where(nxt < limit, np.maximum(nxt, now), now)
        r = self.reach(s, f0 + window)
        answered = r.found & (np.maximum(r.piece_start, now) < limit)
        known &= r.found | (limit <= self.hi)
        answer_by = np.where(answered, r.at, now + window)
        start = np.maximum(answer_by, earliest)
        # where the work starts at the answer, F there is F(now) + window (F⁻¹ is left-most)
        at_answer = answered & (answer_by >= earliest)
        worked = f0 + window
        if not at_answer.all():
            other = ~at_answer
            worked[other] = self.worked(s[other], start[other])[0]
        limit_work = np.minimum(start + horizon, deadline)
        finish, state = self.finish(s, start, effort, limit_work, worked)
        return answer_from, answer_by, finish, np.where(known, state, -1), f0
