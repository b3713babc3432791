# Copyright 2026 The sac_robot Authors
# SPDX-License-Identifier: Apache-2.0
"""How well a real-time control loop keeps its period: p50/p99/max of the period and of its jitter over a
sliding window, and missed deadlines (a period over MISSED_DEADLINE_FACTOR × nominal). Plain Python with
the time passed in, so the collector's timer feeds it and the tests drive it."""

from __future__ import annotations

from sac_robot.robot.deploy_check import LatencyWindow

MISSED_DEADLINE_FACTOR = 1.5  # a control period longer than this × nominal is a missed deadline


class ControlTiming:
    def __init__(self, period_s: float, window_s: float) -> None:
        self.period = float(period_s)
        window = max(10, round(float(window_s) / self.period))
        self.periods = LatencyWindow(window)  # control periods, s
        self.jitter = LatencyWindow(window)  # |period - nominal|, s
        self.last_tick: float | None = None
        self.missed_deadlines = 0
        self.missed_reported = 0

    def tick(self, t: float) -> float | None:
        """One timer callback at steady time ``t``; returns the period when it missed its deadline."""
        missed = None
        if self.last_tick is not None:
            period = t - self.last_tick
            self.periods.add(period)
            self.jitter.add(abs(period - self.period))
            if period > MISSED_DEADLINE_FACTOR * self.period:
                self.missed_deadlines += 1
                missed = period
        self.last_tick = t
        return missed

    def pause(self) -> None:
        """Disarmed time is no control period."""
        self.last_tick = None

    def new_misses(self) -> int:
        """Missed deadlines since the last call (each diagnostics report says how many are new)."""
        missed, self.missed_reported = self.missed_deadlines - self.missed_reported, self.missed_deadlines
        return missed

    def diagnostics(self) -> dict[str, str]:
        p, j = self.periods.stats_ms(), self.jitter.stats_ms()
        window = sum(self.periods.samples)
        return {
            "control_rate_hz": f"{len(self.periods.samples) / window:.2f}" if window > 0 else "n/a",
            "control_period_nominal_ms": f"{self.period * 1e3:.2f}",
            "control_period_p50_ms": f"{p['p50']:.2f}",
            "control_period_p99_ms": f"{p['p99']:.2f}",
            "control_period_max_ms": f"{p['max']:.2f}",
            "control_jitter_p50_ms": f"{j['p50']:.2f}",
            "control_jitter_p99_ms": f"{j['p99']:.2f}",
            "control_jitter_max_ms": f"{j['max']:.2f}",
            "control_periods": str(self.periods.total),
            "control_window_periods": str(p["n"]),
            "missed_deadlines": str(self.missed_deadlines),
        }
