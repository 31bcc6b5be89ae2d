"""The headless commands: ``add rm ls poll wait quota export``.

Each is ``cmd_<name>(args) -> exit code``, with ``args`` from ``tui.cli``.
This module must never import Textual, directly or not: it runs in cron jobs,
CI and scripts with no terminal.  Everything printed from a provider was
cleaned before it was stored; secrets are never printed.
"""

from __future__ import annotations

import csv
import functools
import io
import json
import sys
import time
from pathlib import Path
from typing import Any, Callable, Iterable, TextIO

from .model import BAD_ENDS, PROVIDERS, TASK_FIELDS, Task, task_key

EXIT_OK, EXIT_BAD_END, EXIT_TROUBLE = 0, 1, 2


class Fail(Exception):
    """A one-line reason to stop with exit code 2."""


def _say(message: str, stream: TextIO | None = None) -> None:
    print(message, file=stream or sys.stderr, flush=True)


def command(func: Callable[[Any], int]) -> Callable[[Any], int]:
    """Turn the expected failures (bad config, bad filter, unreadable store) into
    one line on stderr and exit code 2, never a traceback."""

    @functools.wraps(func)
    def run(args: Any) -> int:
        from .filter import FilterError
        from .store import StoreError

        try:
            return func(args)
        except Fail as exc:
            _say(f"tasktui: {exc}")
        except FilterError as exc:
            _say(f"tasktui: bad filter: {exc}")
        except StoreError as exc:
            _say(f"tasktui: task database: {exc}")
        except Exception as exc:
            if type(exc).__name__ != "ConfigError":
                raise
            _say(f"tasktui: {str(exc).splitlines()[0] if str(exc) else 'bad config'}")
        return EXIT_TROUBLE

    return run


# ---------------------------------------------------------------- opening things


def load_config(args: Any):
    """The validated config (``ConfigError`` on a bad one)."""
    from . import config as config_mod

    return config_mod.load_config(config_mod.config_path(getattr(args, "config", None)))


def open_store(args: Any, readonly: bool = False):
    from .paths import db_path
    from .store import Store

    path = Path(db_path(getattr(args, "db", None)))
    if not readonly:
        path.parent.mkdir(parents=True, exist_ok=True)
    return Store(path, readonly=readonly)


def make_engine(config: Any, store: Any):
    from .engine import Engine

    try:
        return Engine(config, store)
    except (ValueError, KeyError) as exc:  # e.g. a provider without a base_url
        raise Fail(f"config: {exc}") from None


def matcher(query: str | None) -> Callable[[Task], bool]:
    from .filter import compile_filter

    return compile_filter(query or "", strict=True)


# ---------------------------------------------------------------- add / rm


def read_ids(ids: Iterable[str], stdin: TextIO | None = None) -> list[str]:
    """The ids given; '-' stands for stdin, one id a line ('#' comments and blanks ignored)."""
    out: list[str] = []
    for item in ids:
        if item == "-":
            for line in (stdin or sys.stdin):
                line = line.strip()
                if line and not line.startswith("#"):
                    out.append(line)
        elif item.strip():
            out.append(item.strip())
    return list(dict.fromkeys(out))


def _check_provider(name: str) -> None:
    if name not in PROVIDERS:
        raise Fail(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")


@command
def cmd_add(args: Any) -> int:
    _check_provider(args.provider)
    ids = read_ids(args.ids)
    if not ids:
        raise Fail("no task ids given")
    store = open_store(args)
    try:
        try:
            added = store.add(args.provider, ids, kind=args.kind, label=args.label)
        except ValueError as exc:
            raise Fail(str(exc)) from None
    finally:
        store.close()
    known = len(ids) - len(added)
    _say(f"added {len(added)} {args.provider} task{'s' if len(added) != 1 else ''}"
         f"{f', {known} already tracked' if known else ''}", sys.stdout)
    _warn_unconfigured(args, args.provider)
    return EXIT_OK


def _warn_unconfigured(args: Any, provider: str) -> None:
    """A hint, never a failure: add works without a config."""
    try:
        config = load_config(args)
    except Exception:
        return
    if provider not in (getattr(config, "providers", None) or {}):
        _say(f"note: provider {provider!r} is not configured yet; add [providers.{provider}] "
             "to the config to poll these tasks")


@command
def cmd_rm(args: Any) -> int:
    _check_provider(args.provider)
    ids = read_ids(args.ids)
    store = open_store(args)
    try:
        removed = store.remove(task_key(args.provider, i) for i in ids)
    finally:
        store.close()
    missing = len(ids) - removed
    _say(f"removed {removed} task{'s' if removed != 1 else ''}"
         f"{f', {missing} not tracked' if missing else ''}", sys.stdout)
    return EXIT_OK


# ---------------------------------------------------------------- ls / poll


def ago(seconds: float | None) -> str:
    """12s, 4m, 3h, 2d; '-' when unknown."""
    if seconds is None:
        return "-"
    s = max(0, int(seconds))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if s >= size:
            return f"{s // size}{unit}"
    return f"{s}s"


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def table(tasks: list[Task], now: float | None = None) -> str:
    """The readable ls table: provider, id, label, state, progress, age, updated."""
    now = time.time() if now is None else now
    head = ("PROVIDER", "ID", "LABEL", "STATE", "PROGRESS", "AGE", "UPDATED")
    rows = [head]
    for t in tasks:
        progress = "-" if t.progress is None else f"{t.progress:.0f}%"
        age = ago(now - t.created_at) if t.created_at else "-"
        updated = ago(now - t.updated_at) + " ago" if t.updated_at else "-"
        rows.append((t.provider, _cut(t.task_id, 40), _cut(t.label or "-", 24), t.state,
                     progress, age, updated))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    right = {4, 5}
    lines = []
    for r in rows:
        cells = [r[i].rjust(widths[i]) if i in right else r[i].ljust(widths[i]) for i in range(len(r))]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def _print_tasks(tasks: list[Task], as_json: bool) -> None:
    if as_json:
        print(json.dumps([t.to_dict() for t in tasks], indent=2, ensure_ascii=False))
    elif tasks:
        print(table(tasks))


@command
def cmd_ls(args: Any) -> int:
    pred = matcher(args.filter)
    store = open_store(args, readonly=True)
    try:
        tasks = [t for t in store.tasks() if pred(t)]
    finally:
        store.close()
    _print_tasks(tasks, args.json)
    if not tasks and not args.json:
        _say("no tasks" + (" match the filter" if args.filter else " tracked"))
    return EXIT_OK


def _provider_trouble(engine: Any, providers: Iterable[str]) -> list[str]:
    out = []
    for name in sorted(set(providers)):
        if name not in engine.workers:
            continue
        s = engine.status(name)
        if s.state != "ok":
            out.append(f"{name}: {s.state}" + (f" ({s.last_error})" if s.last_error else ""))
    return out


@command
def cmd_poll(args: Any) -> int:
    import asyncio  # only the commands that poll pay for it

    config = load_config(args)
    pred = matcher(getattr(args, "filter", ""))
    store = open_store(args)
    try:
        engine = make_engine(config, store)
        if not engine.workers:
            raise Fail("no provider is configured: add a [providers.NAME] table to the config")

        async def one_round() -> None:
            try:
                await engine.poll_once()
            finally:
                await engine.stop()

        asyncio.run(one_round())
        for line in _provider_trouble(engine, engine.workers):
            _say(line)
        tasks = [t for t in store.tasks() if pred(t)]
    finally:
        store.close()
    _print_tasks(tasks, args.json)
    return EXIT_OK


# ---------------------------------------------------------------- wait


def _wait_code(tasks: list[Task]) -> int:
    return EXIT_BAD_END if any(t.state in BAD_ENDS for t in tasks) else EXIT_OK


async def wait_for(engine: Any, store: Any, keys: list[str], timeout: float | None,
                   progress: Callable[[str], None] | None = None) -> tuple[int, str | None]:
    """Run the engine until every task of ``keys`` is terminal.

    Returns (exit code, message): 0/1 by the end states, 2 with a reason on a
    timeout or when a provider refuses our credentials.
    """
    import asyncio

    tasks = [t for t in (store.get(k) for k in keys) if t is not None]
    if all(t.terminal for t in tasks):
        return _wait_code(tasks), None  # nothing to ask anyone
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    engine.focus = set(keys)  # spend requests on the tasks waited for only
    changed = asyncio.Event()
    unsubscribe = store.subscribe(lambda change: changed.set())
    last_line = None
    await engine.start()
    try:
        while True:
            store.sync()
            tasks = [t for t in (store.get(k) for k in keys) if t is not None]
            live = [t for t in tasks if not t.terminal]
            if not live:
                return _wait_code(tasks), None
            refused = sorted({t.provider for t in live
                              if engine.status(t.provider).state == "auth_failed"})
            if refused:
                reasons = "; ".join(
                    f"{name}: credentials refused ({engine.status(name).last_error or 'auth failed'})"
                    for name in refused)
                return EXIT_TROUBLE, reasons
            if progress is not None:
                done = len(tasks) - len(live)
                line = f"waiting: {done}/{len(tasks)} done"
                trouble = _provider_trouble(engine, {t.provider for t in live})
                if trouble:
                    line += " · " + " · ".join(trouble)
                if line != last_line:
                    progress(line)
                    last_line = line
            wait = 1.0
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    return EXIT_TROUBLE, f"timed out with {len(live)} of {len(tasks)} tasks not finished"
                wait = min(wait, left)
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=wait)
            except (asyncio.TimeoutError, TimeoutError):
                pass
    finally:
        unsubscribe()
        await engine.stop()


@command
def cmd_wait(args: Any) -> int:
    import asyncio  # only the commands that poll pay for it

    config = load_config(args)
    pred = matcher(args.filter)
    store = open_store(args)
    try:
        keys = [t.key for t in store.tasks() if pred(t)]
        if not keys:
            _say("no tasks match" + (f" the filter {args.filter!r}" if args.filter else ": nothing is tracked"))
            if args.json:
                print("[]")
            return EXIT_OK
        engine = make_engine(config, store)
        pending = {store.get(k).provider for k in keys if not store.get(k).terminal}
        missing = sorted(pending - set(engine.workers))
        if missing:
            raise Fail(f"cannot refresh tasks of {', '.join(missing)}: not configured or disabled "
                       "(add a [providers.NAME] table to the config)")
        tty = sys.stderr.isatty()
        progress = (lambda line: _say(line)) if tty else None
        code, message = asyncio.run(wait_for(engine, store, keys, args.timeout, progress))
        if message:
            _say(f"tasktui: {message}")
        tasks = [t for t in (store.get(k) for k in keys) if t is not None]
        if args.json:
            _print_tasks(tasks, True)
        elif code == EXIT_BAD_END:
            bad = [t for t in tasks if t.state in BAD_ENDS]
            _say(f"{len(bad)} of {len(tasks)} tasks did not succeed")
        return code
    finally:
        store.close()


# ---------------------------------------------------------------- quota


def quota_table(rows: list[dict]) -> str:
    head = ("PROVIDER", "STATE", "REQUESTS", "ERRORS", "429S", "RETRY AT", "CREDITS", "BALANCE",
            "BUDGET", "TASKS")
    out = [head]
    for q in rows:
        tasks = " ".join(f"{k}={v}" for k, v in sorted(q["tasks"].items()) if v) or "-"
        balance = "-" if q["balance"] is None else f"{q['balance']:g}"
        out.append((q["provider"], q["state"], str(q["requests"]), str(q["errors"]),
                    str(q["rate_limited"]), q["retry_at"] or "-", f"{q['credits_spent']:g}",
                    balance, "-" if q["budget_left"] is None else f"{q['budget_left']} left of {q.get('budget')}",
                    tasks))
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    return "\n".join("  ".join(r[i].ljust(widths[i]) for i in range(len(r))).rstrip() for r in out)


@command
def cmd_quota(args: Any) -> int:
    config = load_config(args)
    store = open_store(args, readonly=True)
    try:
        engine = make_engine(config, store)
        rows = engine.quota()
    finally:
        store.close()
    if args.json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        print(quota_table(rows))
    else:
        _say("no provider is configured")
    return EXIT_OK


# ---------------------------------------------------------------- export


def to_csv(tasks: list[Task]) -> str:
    """CSV with the TASK_FIELDS columns; results joined by spaces, null as empty."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(TASK_FIELDS)
    for t in tasks:
        d = t.to_dict()
        d["results"] = " ".join(d["results"])
        writer.writerow("" if d[f] is None else d[f] for f in TASK_FIELDS)
    return buf.getvalue()


def to_json(tasks: list[Task]) -> str:
    return json.dumps([t.to_dict() for t in tasks], indent=2, ensure_ascii=False) + "\n"


@command
def cmd_export(args: Any) -> int:
    store = open_store(args, readonly=True)
    try:
        tasks = store.tasks()
    finally:
        store.close()
    text = to_csv(tasks) if args.format == "csv" else to_json(tasks)
    if args.output:
        try:
            Path(args.output).write_text(text, encoding="utf-8", newline="")
        except OSError as exc:
            raise Fail(f"cannot write {args.output}: {exc.strerror or exc}") from None
        _say(f"wrote {len(tasks)} tasks to {args.output}")
    else:
        sys.stdout.write(text)
    return EXIT_OK


__all__ = ["cmd_add", "cmd_rm", "cmd_ls", "cmd_poll", "cmd_wait", "cmd_quota", "cmd_export",
           "read_ids", "table", "to_csv", "to_json", "wait_for"]
