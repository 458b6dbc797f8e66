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
from typing import Literal

import numpy as np
import numpy.typing as npt

from .availability import week_label, week_table
from .schedule import WeeklySchedule

I64 = npt.NDArray[np.int64]
I32 = npt.NDArray[np.int32]
_DAY_US = 86_400_000_000
_WORK_BUCKET_US = 4 * 3_600_000_000
"""Working time per bucket of the reach table: half a usual working day, so that a
search takes one step or two from the bucket's first piece."""
_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_week_table = week_table.__wrapped__
"""Uncached: a build reads every (schedule, week) once; the walks' cache keeps its room."""


def _utc_midnight(ordinal: int) -> int:
    return (ordinal - _EPOCH_ORDINAL) * _DAY_US


def _search_from(keys: I64, start: I32, key: I64, side: Literal["left", "right"]) -> I32:
    """`keys.searchsorted(key, side)` from `start`, a position at or before each answer:
    step forward while the key there is before `key[k]` (a sentinel stops every one)."""
    before = np.less_equal if side == "right" else np.less
    i = start
    while True:
        behind = before(keys[i], key)
        if not behind.any():
            return i
        i = i + behind


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
        starts, ends, weeks, per_week = array("q"), array("q"), array("q"), array("q")
        counts: list[int] = []
        for sched in schedules:
            k = 0
            for monday in range(first_monday, last_monday + 1, 7):
                spans = _week_table(sched, monday).spans
                for _, lo, hi in spans:
                    starts.append(lo)
                    ends.append(hi)
                weeks.extend(repeat(monday, len(spans)))
                per_week.append(len(spans))
                k += len(spans)
            counts.append(k)
        self.n_weeks = (last_monday - first_monday) // 7 + 1
        raw = np.concatenate(([0], np.cumsum(np.frombuffer(ends, dtype=np.int64) - starts)))
        bounds = np.concatenate(([0], np.cumsum(np.frombuffer(per_week, dtype=np.int64))))
        self._week_us: I64 = raw[bounds[1:]] - raw[bounds[:-1]]
        """Per (schedule, week), row-major: the µs of the week table's spans as they are
        (`real_week_hours_fast` sums the same), so a week's capacity needs no table."""
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
        # after each schedule's pieces an empty one at the end of its keys (start = end =
        # (s + 1) * span - 1, working time before it = the schedule's total), so that a
        # search for a key of schedule s (an instant before `t0 + span - 1`) always lands
        # on a piece of s (`worked` needs no check); one more past the end (schedule
        # -1) so that every search result indexes
        last = np.arange(1, self.n + 1, dtype=np.int64) * self.span - 1
        at = first[1:]
        self.ps: I64 = np.append(np.insert(ps, at, last), 0)
        self._starts: I64 = self.ps[:-1]
        """The pieces' starts without the last sentinel (sorted)."""
        self.pe: I64 = np.insert(pe, at, last)
        self.cs: I64 = np.append(np.insert(cs, at, self.total), 0)
        self.seg: I64 = np.append(np.insert(seg, at, np.arange(self.n, dtype=np.int64)), -1)
        # the sentinel's cumulative end equals the last piece's: a search from the left
        # finds the real piece first; one more, the largest key, past the end (where
        # the stepping of `_first_total_from` stops)
        ce = seg * self.span + cs + length
        self.ce_key: I64 = np.append(
            np.insert(ce, at, np.arange(self.n, dtype=np.int64) * self.span + self.total),
            np.iinfo(np.int64).max,
        )
        self.week = np.insert(self.week, at, last_monday)
        self._latest = self.t0 + self.span - 2
        """The latest instant `worked` takes as it is (later ones are clamped to it: the
        schedule has no piece ending after it)."""
        # where the searches start (`_first_end_after`, `_first_total_from`): a binary
        # search of the whole array lands on about 18 cache lines per candidate, cold on a
        # request; a table read and a step or two land on two
        if len(self.pe) >= 2**31:
            raise ValueError("too many pieces for the tables' 32-bit indices")
        self.n_days = self.span // _DAY_US
        day_keys = np.arange(self.n, dtype=np.int64)[:, None] * self.span + (
            np.arange(self.n_days, dtype=np.int64) * _DAY_US
        )
        # int32: indices of arrays far below 2**31 pieces, half the memory (about 35 MB at a
        # million offers for the two tables)
        self._day_first: I32 = self.pe.searchsorted(day_keys.ravel(), side="right").astype(np.int32)
        """Per (schedule, day of the range): the first piece ending after the day began."""
        n_buckets = self.total // _WORK_BUCKET_US + 1
        self._bucket_base: I64 = np.concatenate(([0], np.cumsum(n_buckets)))[:-1]
        self._last_bucket: I64 = n_buckets - 1
        owner = np.repeat(np.arange(self.n, dtype=np.int64), n_buckets)
        nth = np.arange(len(owner), dtype=np.int64) - self._bucket_base[owner]
        self._bucket_first: I32 = self.ce_key.searchsorted(
            owner * self.span + nth * _WORK_BUCKET_US, side="left"
        ).astype(np.int32)
        """Per (schedule, 4 h of its working time): the first piece whose cumulative end
        is at or after the bucket's start."""

    def week_us(self, s: int, monday: int) -> int | None:
        """The µs of schedule `s`'s week table for the week of `monday` (a date ordinal),
        None outside the range."""
        if 0 <= s < self.n and self.first_monday <= monday <= self.last_monday:
            return int(self._week_us[s * self.n_weeks + (monday - self.first_monday) // 7])
        return None

    def covers(self, us: int) -> bool:
        return self.lo <= us < self.hi

    def worked(self, s: I64, t: I64 | int, off: I64 | None = None) -> tuple[I64, I64]:
        """(F(t), start of the first piece ending after t) for schedule `s[k]` at `t[k]`
        (or at `t` for all); the start is `hi` or later when there is none in the
        range. `off`: `s * span - t0` when the caller has it."""
        if off is None:
            off = s * self.span - self.t0
        t = min(t, self._latest) if isinstance(t, int) else np.minimum(t, self._latest)
        key = off + t
        i = self._first_end_after(s, t, key)
        ps = self.ps[i]
        # i is a piece of s (its end sentinel at the latest): no check of its schedule
        f = self.cs[i] + np.maximum(key - ps, 0)
        return f, ps - off

    def reach(self, s: I64, v: I64, off: I64 | None = None) -> Walked:
        """The first instant where schedule `s[k]` has worked `v[k]` (> 0) since the range
        began: F⁻¹, left-most. `off`: `s * span - t0` when the caller has it."""
        if off is None:
            off = s * self.span - self.t0
        v = np.minimum(v, self.span)
        # ce_key - t0 ... the keys of s's cumulative ends are s * span + F
        j = self._first_total_from(s, v, off + self.t0 + v)
        ps = self.ps[j] - off
        # past s's total, j is the next schedule's first piece (or the last sentinel)
        return Walked(ps + (v - self.cs[j]), ps, self.seg[j] == s)

    def _first_end_after(self, s: I64, t: I64 | int, key: I64) -> I32:
        """`pe.searchsorted(key, side="right")` for keys of schedule `s[k]` at instants
        `t[k]` from `t0`: from the first piece ending after the day began, step by step
        (a day holds few pieces; each schedule's end sentinel stops it)."""
        day = np.maximum((t - self.t0) // _DAY_US, 0)
        return _search_from(self.pe, self._day_first[s * self.n_days + day], key, "right")

    def _first_total_from(self, s: I64, v: I64, key: I64) -> I32:
        """`ce_key.searchsorted(key, side="left")` for the keys `s[k] * span + v[k]` (0 <
        v <= span): from the first piece of `v`'s 4 h bucket of `s`'s working time, step
        by step (past `s`'s total, to the next schedule's first piece or the end)."""
        j = self._bucket_first[
            self._bucket_base[s] + np.minimum(v // _WORK_BUCKET_US, self._last_bucket[s])
        ]
        return _search_from(self.ce_key, j, key, "left")

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
        self,
        s: I64,
        start: I64 | int,
        effort: I64,
        limit: I64 | int,
        worked: I64 | None = None,
        off: I64 | None = None,
    ) -> tuple[I64, I64]:
        """`fast_finish` for every k: (finish, state) with state 1 = finishes at `finish`,
        0 = not before `limit` (an array, or one instant for all), -1 = undecided here
        (the Python walk decides). `worked`: F(start) when the caller knows it (one
        search less); `off`: `s * span - t0`."""
        if off is None:
            off = s * self.span - self.t0
        f0 = self.worked(s, start, off)[0] if worked is None else worked
        r = self.reach(s, f0 + effort, off)
        in_time = np.maximum(r.piece_start, start) < limit
        if isinstance(limit, int):
            state = np.where(r.found, in_time, 0 if limit <= self.hi else -1)
        else:
            state = np.where(r.found, in_time, np.where(limit <= self.hi, 0, -1))
        finish = r.at
        if effort.min() <= 0:  # never with the catalog's efforts: two calls saved
            zero = effort <= 0
            state = np.where(zero, 1, state)
            finish = np.where(zero, start, finish)
        return finish, state.astype(np.int64, copy=False)

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
        Faster with `s` sorted (the searches then go through the pieces in order).
        Scalar bounds are compared once, not per candidate."""
        limit = now + horizon
        off = s * self.span - self.t0
        f0, nxt = self.worked(s, now, off)
        # the first piece ending after now is where the answer can start (if before limit)
        answer_from = np.maximum(nxt, now)
        answer_from[nxt >= limit] = now
        r = self.reach(s, f0 + window, off)
        if limit > now:
            answered = r.found & (r.piece_start < limit)
        else:
            answered = np.zeros(len(s), dtype=bool)
        known = None if limit <= self.hi else (nxt < self.hi) & r.found
        answer_by = np.where(answered, r.at, window + now)
        start = np.maximum(answer_by, earliest)
        # where the work starts at the answer, F there is F(now) + window (F⁻¹ is left-most)
        at_answer = answered & (answer_by >= earliest)
        worked = f0 + window
        if not at_answer.all():
            other = ~at_answer
            worked[other] = self.worked(s[other], start[other], off[other])[0]
        limit_work = np.minimum(start + horizon, deadline)
        finish, state = self.finish(s, start, effort, limit_work, worked, off)
        if known is not None:
            state[~known] = -1
        return answer_from, answer_by, finish, state, f0
