"""Prometheus metrics of a running engine (``tasktui collect --health-port``).

Built with prometheus-client: a custom collector reads the engine's quota rows
(the objects ``tasktui quota --json`` prints) and the push receiver's counts in
the store at scrape time, so nothing is counted twice and a scrape always says
what the store and engine say now.  Its own registry (never the process-wide
default one), so tests and several engines in one process do not collide.

Metrics (every one labelled ``provider``)::

    tasktui_requests_total                 requests sent to the provider (all runs)
    tasktui_errors_total                   failed requests (any failure class)
    tasktui_rate_limited_total             429 answers
    tasktui_answers_total{kind}            answers by class: ok, transient, not_found ...
    tasktui_budget_left                    requests the budget allows now
    tasktui_retry_after_seconds            seconds until the provider may be asked again (0: now)
    tasktui_provider_state{state}          1 for the provider's state, 0 for the others
    tasktui_tasks{state}                   tracked tasks by state
    tasktui_credits_spent                  credits the tracked tasks cost
    tasktui_balance                        the account balance, where the provider has one
    tasktui_push_received_total            webhook/callback deliveries received
    tasktui_push_accepted_total            deliveries accepted
    tasktui_push_rejected_total{reason}    refused: bad_signature, stale, unknown_task, too_large ...
    tasktui_push_polls_saved_total         status requests pushes made unnecessary
    tasktui_store_ok                       1 while the task database answers and takes writes

No label or value holds a key, a secret, a task id or a provider's text.
"""

from __future__ import annotations

import math
import time
from typing import Any, Callable, Iterable


STATES = ("ok", "degraded", "backing_off", "rate_limited", "auth_failed", "quota_exhausted", "offline", "disabled")
TASK_STATES = ("queued", "running", "succeeded", "failed", "cancelled", "not_found", "unknown")
PUSH_KEY = "push"  # tui.push.PUSH_KEY (not imported: this module stays light)


def _num(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class EngineCollector:
    """A prometheus-client collector over ``rows()`` (quota rows), ``counters()``
    (the store's counters blobs, for the push counts) and ``store_ok()``."""

    def __init__(self, rows: Callable[[], list[dict]], counters: Callable[[], dict[str, dict]],
                 store_ok: Callable[[], bool], wall: Callable[[], float] = time.time) -> None:
        self.rows, self.counters, self.store_ok, self.wall = rows, counters, store_ok, wall

    def describe(self) -> Iterable[Any]:
        return []  # families are known only at scrape time (register without a first collect)

    def collect(self) -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        try:
            rows = self.rows()
        except Exception:
            rows = []
        try:
            blobs = self.counters() or {}
        except Exception:
            blobs = {}
        now = self.wall()
        p = ["provider"]
        requests = CounterMetricFamily("tasktui_requests", "Requests sent to the provider (all runs)", labels=p)
        errors = CounterMetricFamily("tasktui_errors", "Failed requests", labels=p)
        limited = CounterMetricFamily("tasktui_rate_limited", "429 answers (rate limited)", labels=p)
        answers = CounterMetricFamily("tasktui_answers", "Answers by class", labels=p + ["kind"])
        budget = GaugeMetricFamily("tasktui_budget_left", "Requests the budget allows now", labels=p)
        retry = GaugeMetricFamily("tasktui_retry_after_seconds",
                                  "Seconds until the provider may be asked again (0: now)", labels=p)
        state = GaugeMetricFamily("tasktui_provider_state", "1 for the provider's current state", labels=p + ["state"])
        tasks = GaugeMetricFamily("tasktui_tasks", "Tracked tasks by state", labels=p + ["state"])
        credits = GaugeMetricFamily("tasktui_credits_spent", "Credits the tracked tasks cost", labels=p)
        balance = GaugeMetricFamily("tasktui_balance", "Account balance (where the provider has one)", labels=p)
        received = CounterMetricFamily("tasktui_push_received", "Push deliveries received", labels=p)
        accepted = CounterMetricFamily("tasktui_push_accepted", "Push deliveries accepted", labels=p)
        rejected = CounterMetricFamily("tasktui_push_rejected", "Push deliveries refused, by reason",
                                       labels=p + ["reason"])
        saved = CounterMetricFamily("tasktui_push_polls_saved", "Status requests pushes made unnecessary", labels=p)
        for row in rows:
            name = str(row.get("provider"))
            requests.add_metric([name], _num(row.get("requests")) or 0.0)
            errors.add_metric([name], _num(row.get("errors")) or 0.0)
            limited.add_metric([name], _num(row.get("rate_limited")) or 0.0)
            for kind, n in sorted((row.get("answers") or {}).items()):
                if _num(n) is not None:
                    answers.add_metric([name, str(kind)], _num(n))
            left = _num(row.get("budget_left"))
            if left is not None:
                budget.add_metric([name], left)
            retry.add_metric([name], _retry_left(row.get("retry_at"), now))
            current = row.get("state")
            for s in STATES:
                state.add_metric([name, s], 1.0 if s == current else 0.0)
            counts = row.get("tasks") or {}
            for s in TASK_STATES:
                tasks.add_metric([name, s], _num(counts.get(s)) or 0.0)
            credits.add_metric([name], _num(row.get("credits_spent")) or 0.0)
            if _num(row.get("balance")) is not None:
                balance.add_metric([name], _num(row.get("balance")))
            push = (blobs.get(name) or {}).get(PUSH_KEY) if isinstance(blobs.get(name), dict) else None
            if isinstance(push, dict):
                received.add_metric([name], _num(push.get("received")) or 0.0)
                accepted.add_metric([name], _num(push.get("accepted")) or 0.0)
                saved.add_metric([name], _num(push.get("polls_saved")) or 0.0)
                for why, n in sorted((push.get("rejected") or {}).items()):
                    if _num(n) is not None:
                        rejected.add_metric([name, str(why)], _num(n))
        store = GaugeMetricFamily("tasktui_store_ok", "1 while the task database answers and takes writes")
        try:
            store.add_metric([], 1.0 if self.store_ok() else 0.0)
        except Exception:
            store.add_metric([], 0.0)
        yield from (requests, errors, limited, answers, budget, retry, state, tasks, credits, balance,
                    received, accepted, rejected, saved, store)


def _retry_left(value: Any, now: float) -> float:
    """Seconds from ``now`` to an ISO time (a quota row's ``retry_at``); 0 for none or past."""
    if not isinstance(value, str):
        return 0.0
    from datetime import datetime

    try:
        when = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return 0.0
    return max(0.0, round(when - now, 3))


def registry(collector: EngineCollector) -> Any:
    from prometheus_client import CollectorRegistry

    reg = CollectorRegistry(auto_describe=False)
    reg.register(collector)
    return reg


def render(reg: Any) -> bytes:
    """The text exposition format of everything in ``reg``."""
    from prometheus_client import generate_latest

    return generate_latest(reg)
