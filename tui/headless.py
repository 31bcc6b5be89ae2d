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
import math
import signal
import sys
import time
from json.encoder import encode_basestring as _json_str  # the C function json.dumps uses (ensure_ascii=False)
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, TextIO

from .model import BAD_ENDS, HEALTH_FIELDS, PROVIDERS, TASK_FIELDS, Task, task_key

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

    config = config_mod.load_config(config_mod.config_path(getattr(args, "config", None)))
    config_mod.print_warnings(config)  # a literal key in a readable file: said once, by every command
    return config


def open_store(args: Any, readonly: bool = False, scope: str = "all"):
    """The task store; one clear line (``Fail``) when its folder cannot be made,
    or when a ``--db`` given by hand names a file that does not exist.

    ``scope`` is what it loads into memory: "all" (every task), "live" (the
    unfinished ones: what an engine needs) or "none" (nothing: a command that
    streams its rows, or adds and removes by id); a store without scopes loads all."""
    from .stores import is_pg_url, open_store as open_any, store_target

    given = getattr(args, "db", None)
    target = store_target(given, _store_url(args))
    if scope != "all" and _takes_scope(open_any) and _streams():
        open_any = functools.partial(open_any, scope=scope)
    if is_pg_url(target):
        return open_any(target, readonly=readonly)
    path = Path(target)
    if readonly:
        if given and not path.exists():
            raise Fail(f"{path}: the database file does not exist")
    else:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise Fail(f"cannot create the database folder {path.parent}: {exc.strerror or exc}") from None
    return open_any(path, readonly=readonly)


def _streams() -> bool:
    """The store reads its rows as a stream (``iter_tasks``): what a store that loads
    nothing needs to list anything."""
    from .store import Store

    return hasattr(Store, "iter_tasks")


def _takes_scope(func: Callable[..., Any]) -> bool:
    import inspect

    try:
        return "scope" in inspect.signature(func).parameters
    except (TypeError, ValueError):
        return False


def make_engine(config: Any, store: Any):
    from .engine import Engine

    try:
        return Engine(config, store)
    except (ValueError, KeyError) as exc:  # e.g. a provider without a base_url
        raise Fail(f"config: {exc}") from None


def matcher(query: str | None) -> Callable[[Task], bool]:
    """The filter's predicate (``FilterError`` on a malformed query); a value no
    task can have (``state:faild``) is a warning on stderr, with "did you mean"."""
    from . import filter as tfilter

    pred = tfilter.compile_filter(query or "", strict=True)
    for warning in getattr(tfilter, "check_query", lambda q: [])(query or ""):
        _say(f"tasktui: warning: {warning}")
    return pred


def dumps(value: Any, **kwargs: Any) -> str:
    """JSON that every parser reads: a non-finite number (inf, nan) is null."""
    return json.dumps(_finite(value), allow_nan=False, ensure_ascii=False, **kwargs)


def _json_float(v: float) -> str:
    return float.__repr__(v) if math.isfinite(v) else "null"


_SCALARS: dict[type, Callable[[Any], str]] = {  # what json.dumps writes for each, without its encoder
    str: _json_str, int: int.__repr__, float: _json_float, bool: lambda v: "true" if v else "false",
    type(None): lambda v: "null",
}


_HEADS: dict[tuple, tuple[str, ...]] = {}  # a dict's keys (in order) -> each key's JSON and ": "


def _json_block(value: Any, pad: str = "\n  ") -> str:
    """``dumps(value, indent=2)`` (non-finite numbers null), with every line after the
    first indented by ``pad`` minus its newline.  Flat members (the task's fields)
    go through the C encoder one by one: the indenting encoder is pure Python and
    was most of the cost of ``ls --json`` at scale.  The keys' JSON is made once per
    set of keys (every task has the same), a list of scalars (results) is joined here."""
    if isinstance(value, dict) and value:
        names = tuple(value)
        heads = _HEADS.get(names)
        if heads is None:
            if not all(type(k) is str for k in names):  # json.dumps turns such keys into strings its own way
                return dumps(value, indent=2).replace("\n", pad)
            heads = tuple(_json_str(k) + ": " for k in names)
            if len(_HEADS) < 256:
                _HEADS[names] = heads
        inner = pad + "  "
        parts: list[str] = []
        append = parts.append
        scalars = _SCALARS
        for head, v in zip(heads, value.values()):
            scalar = scalars.get(type(v))
            if scalar is not None:
                append(head + scalar(v))
            elif isinstance(v, (dict, list, tuple)):
                append(head + (_json_block(v, inner) if v else "{}" if isinstance(v, dict) else "[]"))
            else:
                append(head + dumps(v))
        return "{" + inner + ("," + inner).join(parts) + pad + "}"
    if isinstance(value, (list, tuple)) and value:
        scalars = _SCALARS
        writers = [scalars.get(type(v)) for v in value]
        if None not in writers:  # every item a scalar
            inner = pad + "  "
            return "[" + inner + ("," + inner).join(f(v) for f, v in zip(writers, value)) + pad + "]"
    return dumps(value, indent=2).replace("\n", pad)  # a JSON string holds no raw newline


def write_json_array(items: Iterable[Any], out: TextIO) -> int:
    """The JSON array ``dumps(list(items), indent=2)`` and a newline, written one
    element at a time (constant memory however many there are); returns their number."""
    n = 0
    for item in items:
        out.write("[\n  " if n == 0 else ",\n  ")
        out.write(_json_block(item))
        n += 1
    out.write("[]\n" if n == 0 else "\n]\n")
    return n


def _each(store: Any, query: str | None = None, pred: Callable[[Task], bool] | None = None) -> Iterator[Task]:
    """Every stored task the filter ``query`` matches, in the order added, read as it
    goes: the store's streaming read (``iter_tasks``, the filter run by its SQL) where
    it has one, else its tasks in memory through ``pred`` (the query's predicate)."""
    iter_tasks = getattr(store, "iter_tasks", None)
    if iter_tasks is not None:
        return iter_tasks(query or None)
    source = store.tasks()
    if pred is None:
        return iter(source)
    return (t for t in source if pred(t))


def _finite(value: Any) -> Any:
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


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


def _config_if_any(args: Any) -> Any:
    """The config when there is a readable one, else None (add, rm and the db path work
    without one); read once per command, however many of its parts are asked for."""
    if args is None:
        return None
    cached = getattr(args, "_config_if_any", False)
    if cached is False:
        try:
            cached = load_config(args)
        except Exception:
            cached = None
        try:
            args._config_if_any = cached
        except AttributeError:  # an args object that takes no attributes: read again next time
            pass
    return cached


def _store_url(args: Any) -> str | None:
    """``[store] url`` of the config, when there is a readable one (--db and $TASKTUI_DB win)."""
    config = _config_if_any(args)
    return config.store.url if config is not None else None


def _configured(args: Any) -> dict[str, Any]:
    """The config's provider tables (none when there is no readable config: add and rm work without one)."""
    config = _config_if_any(args)
    return dict(config.providers) if config is not None else {}


def _check_provider(name: str, args: Any = None) -> None:
    """One of the five, a catalogue entry, or a provider the config declares."""
    from .providers import known_names

    known = (*known_names(), *(n for n in _configured(args) if n not in PROVIDERS))
    if name not in known:
        raise Fail(f"unknown provider {name!r}; known: {', '.join(dict.fromkeys(known))}")


def kind_warning(provider: str, kind: str | None, args: Any = None) -> str | None:
    """The provider's one-line warning about ``kind`` (unknown to it), else None.

    Asks the provider's ``check_kind``; a provider without one, or one that
    cannot be built here, has no opinion."""
    if not kind:
        return None
    try:
        from .providers import provider_class

        cfg = _configured(args).get(provider)
        cls = provider_class(provider, getattr(cfg, "declaration", None))
    except Exception:
        return None
    check = getattr(cls, "check_kind", None)
    if check is None:
        return None
    try:
        instance = cls("", None)
    except Exception:
        instance = cls.__new__(cls)
    try:
        warning = check(instance, kind)
    except Exception:
        return None
    return str(warning).splitlines()[0] if warning else None


class _Signals:
    """SIGINT/SIGTERM during ``add``: before the commit they interrupt (nothing is
    stored); once the commit is under way they are held, and the command ends
    with its summary and exit code 0."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self.committing = False
        self.caught: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> "_Signals":
        try:
            for sig in self.SIGNALS:
                self._old[sig] = signal.signal(sig, self._handle)
        except ValueError:  # not the main thread: leave the defaults alone
            self._old.clear()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
        for sig, old in self._old.items():
            signal.signal(sig, old)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.committing:
            self.caught = signum
            return
        raise KeyboardInterrupt

    def hold(self) -> None:
        """From here on a signal waits: the write commits or rolls back whole."""
        self.committing = True
        if self._old and hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_BLOCK, self.SIGNALS)

    def release(self) -> None:
        if self._old and hasattr(signal, "pthread_sigmask"):
            signal.pthread_sigmask(signal.SIG_UNBLOCK, self.SIGNALS)  # a held signal lands now


SHOWN_WARNINGS = 5  # id warnings printed one by one; the rest are counted


ADD_BATCH = 1000  # ids per write transaction of ``add`` (``add -`` of a million ids: a thousand of them)


def _id_batches(args: Any, stdin: TextIO | None = None) -> Iterator[Any]:
    """The ids of ``add`` as ``tui.ids.ParsedIds`` of at most ADD_BATCH valid ids
    each, in the order given; stdin ('-') is read ADD_BATCH lines at a time (only
    the set of ids seen is kept, so an id given twice counts once).  (The rule of ``tui.ids``: split on
    whitespace and commas, '#' comments, quotes stripped, the id taken out of a
    pasted provider URL.)"""
    from .ids import ParsedIds, parse_ids

    seen: set[str] = set()  # ids of earlier batches (given twice: added and counted once)

    def sliced(parsed: ParsedIds) -> Iterator[ParsedIds]:
        fresh = [p for p in parsed.ids if p.id not in seen]
        seen.update(p.id for p in fresh)
        for start in range(0, max(len(fresh), 1), ADD_BATCH):
            yield ParsedIds(ids=fresh[start:start + ADD_BATCH], invalid=parsed.invalid if start == 0 else [])

    given: list[str] = []
    for item in args.ids:
        if item != "-":
            given.append(item)
            continue
        if given:
            yield from sliced(parse_ids(given))
            given = []
        lines: list[str] = []
        for line in (stdin or sys.stdin):
            lines.append(line)
            if len(lines) >= ADD_BATCH:
                yield from sliced(parse_ids(lines))
                lines = []
        if lines:
            yield from sliced(parse_ids(lines))
    if given:
        yield from sliced(parse_ids(given))


def _plural(n: int, word: str = "task") -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


@command
def cmd_add(args: Any) -> int:
    """Track the ids given, ADD_BATCH of them per write transaction.  An invalid
    token is skipped with its reason; an id whose shape does not fit the provider
    gets a warning (it is still added).  A kind named by pasted URLs is used when
    ``--kind`` is not given.  The store is opened without loading it."""
    _check_provider(args.provider, args)
    added = updated = given = invalid = shown = 0
    kind = args.kind
    store = None
    with _Signals() as signals:
        try:
            try:
                for parsed in _id_batches(args):
                    for bad in parsed.invalid:
                        invalid += 1
                        _say(f"tasktui: skipped {bad.source[:60]!r}: {bad.problem}")
                    if not parsed.ids:
                        continue
                    for line in parsed.warnings(args.provider):
                        shown += 1
                        if shown <= SHOWN_WARNINGS:
                            _say(f"tasktui: warning: {line}")
                    if store is None:  # the first ids: settle the kind, open the store
                        if kind is None and parsed.kind:
                            kind = parsed.kind
                            _say(f"tasktui: kind {kind!r} taken from the pasted URL")
                        warning = kind_warning(args.provider, kind, args)
                        if warning:
                            _say(f"tasktui: warning: {warning}")
                        store = open_store(args, scope="none")
                        signals.hold()  # from the first write on, a signal waits for the end
                    try:
                        new = store.add(args.provider, parsed.values, kind=kind, label=args.label)
                    except ValueError as exc:
                        raise Fail(str(exc)) from None
                    added += len(new)
                    updated += len(getattr(store, "last_updated_kinds", ()) or ())
                    given += len(parsed.ids)
            except KeyboardInterrupt:
                if store is None:
                    _say("tasktui: interrupted: nothing was added")
                    return 130
                raise
        finally:
            if store is not None:
                store.close()
        if shown > SHOWN_WARNINGS:
            _say(f"tasktui: warning: … and {shown - SHOWN_WARNINGS} more ids of the same kind")
        if store is None:
            raise Fail("no task ids given" if not invalid else "no valid task id given")
        known = given - added - updated
        parts = [f"added {added} {args.provider} task{'s' if added != 1 else ''}"]
        if updated:
            parts.append(f"updated kind of {_plural(updated)}")
        if known:
            parts.append(f"{known} already tracked")
        _say(", ".join(parts), sys.stdout)
        signals.release()
        if signals.caught is not None:
            return EXIT_OK  # the summary above is what was stored
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
    query = getattr(args, "filter", None)
    every = bool(getattr(args, "all", False))
    if query is not None or every:
        return _rm_matching(args, query or "", every)
    if not args.provider or not args.ids:
        raise Fail("rm: give PROVIDER and task ids, or --filter QUERY (or --all)")
    _check_provider(args.provider, args)
    ids = read_ids(args.ids)
    store = open_store(args, scope="none")  # by key: nothing is loaded
    try:
        removed = store.remove(task_key(args.provider, i) for i in ids)
    finally:
        store.close()
    missing = len(ids) - removed
    _say(f"removed {removed} task{'s' if removed != 1 else ''}"
         f"{f', {missing} not tracked' if missing else ''}", sys.stdout)
    return EXIT_OK


def _rm_matching(args: Any, query: str, every: bool) -> int:
    """``rm [PROVIDER] --filter QUERY``: remove every (provider's) task the filter
    matches; an empty filter removes everything, so it needs ``--all``."""
    if args.ids:
        raise Fail("rm: give task ids or --filter/--all, not both")
    if not query.strip() and not every:
        raise Fail("rm: an empty filter matches every task; add --all to remove them all")
    if args.provider:
        _check_provider(args.provider, args)
    pred = matcher(query)
    store = open_store(args, scope="none")
    try:
        keys = [t.key for t in _each(store, query, pred) if not args.provider or t.provider == args.provider]
        removed = store.remove(keys) if keys else 0
    finally:
        store.close()
    _say(f"removed {removed} task{'s' if removed != 1 else ''}"
         + ("" if keys else " (none matched)"), sys.stdout)
    return EXIT_OK


# ---------------------------------------------------------------- ls / poll


from .timefmt import ago  # noqa: E402  one formatter of ages for the whole app (12s, 4m, 3h, 2d, 3w)


def _cut(text: str, width: int) -> str:
    """``text`` in at most ``width`` terminal cells (an ellipsis when cut)."""
    from rich.cells import cell_len, set_cell_size

    if cell_len(text) <= width:
        return text
    return set_cell_size(text, width - 1).rstrip() + "…"


def health_mark(task: Task) -> str:
    """The mark of a live task that is not well: "⚠" stalled (it cannot progress),
    "!" its polls are failing; "" otherwise (and for an ended task)."""
    if task.terminal:
        return ""
    if task.stalled:
        return "⚠"
    if task.failed_polls:
        return "!"
    return ""


TABLE_HEAD = ("PROVIDER", "ID", "LABEL", "STATE", "PROGRESS", "AGE", "UPDATED")
_RIGHT = {4, 5}  # right-aligned columns


def _table_row(t: Task, now: float, marked: bool) -> tuple[str, ...]:
    from .text import clean

    progress = "-" if t.progress is None else f"{t.progress:.0f}%"
    age = ago(now - t.created_at) if t.created_at else "-"
    updated = ago(now - t.updated_at) + " ago" if t.updated_at else "-"
    state = f"{health_mark(t) or ' '} {t.state}" if marked else t.state
    return (t.provider, _cut(clean(t.task_id), 40), _cut(clean(t.label) if t.label else "-", 24),
            state, progress, age, updated)


def _table_line(row: tuple[str, ...], widths: list[int]) -> str:
    from rich.cells import cell_len

    out = []
    for i, text in enumerate(row):
        pad = " " * (widths[i] - cell_len(text))
        out.append(pad + text if i in _RIGHT else text + pad)
    return "  ".join(out).rstrip()


def table(tasks: list[Task], now: float | None = None) -> str:
    """The readable ls table: provider, id, label, state, progress, age, updated.

    Columns are aligned by terminal cells (CJK and emoji take two); a stalled
    task's state reads "⚠ queued", one with failing polls "! running"."""
    from rich.cells import cell_len

    now = time.time() if now is None else now
    marked = any(health_mark(t) for t in tasks)
    rows = [TABLE_HEAD] + [_table_row(t, now, marked) for t in tasks]
    widths = [max(cell_len(r[i]) for r in rows) for i in range(len(TABLE_HEAD))]
    return "\n".join(_table_line(r, widths) for r in rows)


def write_table(tasks: Callable[[], Iterable[Task]], out: TextIO, now: float | None = None) -> dict[str, int]:
    """``table`` of the tasks ``tasks()`` yields, in two passes over them (the
    widths, then the lines), so memory stays flat however many there are.
    Returns the counts the legend needs: rows, stalled ("⚠"), failing ("!")."""
    from rich.cells import cell_len

    now = time.time() if now is None else now
    widths = [cell_len(h) for h in TABLE_HEAD]
    counts = {"rows": 0, "⚠": 0, "!": 0}
    for t in tasks():
        mark = health_mark(t)
        if mark:
            counts[mark] += 1
        counts["rows"] += 1
        for i, text in enumerate(_table_row(t, now, False)):
            widths[i] = max(widths[i], cell_len(text))
    if not counts["rows"]:
        return counts
    marked = bool(counts["⚠"] or counts["!"])
    if marked:
        widths[3] += 2  # the mark and a space before the state
    out.write(_table_line(TABLE_HEAD, widths) + "\n")
    for t in tasks():
        out.write(_table_line(_table_row(t, now, marked), widths) + "\n")
    return counts


def _print_tasks(tasks: Iterable[Task], as_json: bool) -> None:
    if as_json:
        write_json_array((t.to_dict() for t in tasks), sys.stdout)
        return
    tasks = list(tasks)
    if tasks:
        print(table(tasks))


@command
def cmd_ls(args: Any) -> int:
    pred = matcher(args.filter)
    if args.json:  # rows written as they are read: constant memory however many are stored
        store = open_store(args, readonly=True, scope="none")
        try:
            write_json_array((t.to_dict() for t in _each(store, args.filter, pred)), sys.stdout)
        finally:
            store.close()
        return EXIT_OK
    store = open_store(args, readonly=True, scope="none")
    try:  # two passes over the store (widths, then lines): flat memory for the table too
        counts = write_table(lambda: _each(store, args.filter, pred), sys.stdout)
    finally:
        store.close()
    if not counts["rows"]:
        _say("no tasks" + (" match the filter" if args.filter else " tracked"))
    else:
        _legend(counts["⚠"], counts["!"])
    return EXIT_OK


def _legend(stalled: int, failing: int) -> None:
    """What the marks in the table mean, on stderr, when there are any."""
    parts = ([f"⚠ {stalled} stalled (cannot progress)"] if stalled else []) + \
            ([f"! {failing} with failing polls"] if failing else [])
    if parts:
        _say(" · ".join(parts) + " — the reasons: tasktui ls --json, or the task's detail in the dashboard")


def _views(engine: Any, names: Iterable[str]) -> dict[str, Any]:
    """name -> the provider's health now (``state``, ``last_error``, ``requests``), for
    the configured providers among ``names``: one object per provider, never per task.
    Read from ``engine.health()`` (no aggregate over the store); an engine without it
    (a test's stand-in) is asked ``status(name)``."""
    wanted = [n for n in dict.fromkeys(names) if n in engine.workers]
    if not wanted:
        return {}
    health = getattr(engine, "health", None)
    if health is not None:
        try:
            views = {h.name: h for h in health(learned=False)}
        except TypeError:
            views = {h.name: h for h in health()}
        return {n: views[n] for n in wanted if n in views}
    return {n: engine.status(n) for n in wanted}


def _trouble(views: dict[str, Any]) -> list[str]:
    """"name: state (last error)" for every provider that is not ok, by name."""
    out = []
    for name in sorted(views):
        s = views[name]
        if s.state != "ok":
            out.append(f"{name}: {s.state}" + (f" ({s.last_error})" if s.last_error else ""))
    return out


def _provider_trouble(engine: Any, providers: Iterable[str]) -> list[str]:
    return _trouble(_views(engine, providers))


@command
def cmd_poll(args: Any) -> int:
    import asyncio  # only the commands that poll pay for it

    config = load_config(args)
    pred = matcher(getattr(args, "filter", ""))
    store = open_store(args, scope="live")  # the engine's working set; the output is streamed
    try:
        engine = make_engine(config, store)
        if not engine.workers:
            raise Fail("no provider is configured: add a [providers.NAME] table to the config")

        async def one_round() -> None:
            try:
                await engine.poll_once()
            finally:
                await stop_engine(engine)

        asyncio.run(one_round())
        for line in _provider_trouble(engine, engine.workers):
            _say(line)
        _print_tasks(_each(store, getattr(args, "filter", ""), pred), args.json)
    finally:
        store.close()
    return EXIT_OK


# ---------------------------------------------------------------- wait


def _wait_code(tasks: list[Task]) -> int:
    return EXIT_BAD_END if any(t.state in BAD_ENDS for t in tasks) else EXIT_OK


# A provider in one of these states answers nothing until someone acts.
_DEAD_ENDS = {"auth_failed": "credentials refused", "quota_exhausted": "out of credits (quota exhausted)"}


class Watch:
    """The tasks ``wait`` waits for, kept current from the store's change feed.

    ``note(change)`` (the store's subscriber) collects the changed keys among
    the watched ones; ``refresh()`` reads only those again.  The counts a loop
    turn needs (live per provider, stalled per provider, done, failed) are kept
    up to date, so a turn costs O(changed tasks + providers), never O(watched).
    """

    def __init__(self, store: Any, keys: Iterable[str], tasks: Iterable[Task] | None = None) -> None:
        """``tasks``: the watched tasks as just read (then nothing is read again until
        the change feed names it)."""
        self.store = store
        self.order = {k: i for i, k in enumerate(dict.fromkeys(keys))}  # key -> position (messages in order)
        self.state: dict[str, Task | None] = dict.fromkeys(self.order)  # key -> task as last read (None: gone)
        self.live: dict[str, Task] = {}
        self.live_by: dict[str, int] = {}  # provider -> live tasks
        self.stalled_by: dict[str, int] = {}  # provider -> live stalled tasks
        self.present = 0  # watched tasks still tracked
        self.bad = 0  # of them, ended badly
        self.dirty: set[str] = set(self.order)
        self.newly_stalled: list[Task] = []  # live tasks whose stall reason is new (the reader empties it)
        if tasks is not None:
            for t in tasks:
                if t.key in self.state and self.state[t.key] is None:
                    self.state[t.key] = t
                    self._count(t, +1)
                    self.dirty.discard(t.key)
                    if not t.terminal and t.stalled:
                        self.newly_stalled.append(t)

    def note(self, change: Any) -> None:
        keys = getattr(change, "keys", None) or ()
        if len(keys) < len(self.order):
            self.dirty.update(k for k in keys if k in self.order)
        else:
            self.dirty.update(k for k in self.order if k in keys)

    def _count(self, t: Task | None, delta: int) -> None:
        if t is None:
            return
        self.present += delta
        if t.terminal:
            if t.state in BAD_ENDS:
                self.bad += delta
            return
        self.live_by[t.provider] = self.live_by.get(t.provider, 0) + delta
        if t.stalled:
            self.stalled_by[t.provider] = self.stalled_by.get(t.provider, 0) + delta
        if delta > 0:
            self.live[t.key] = t
        else:
            self.live.pop(t.key, None)

    def refresh(self) -> None:
        """Read the changed tasks again (in the order they were given)."""
        dirty, self.dirty = self.dirty, set()
        order = self.order
        for key in sorted(dirty, key=order.__getitem__) if len(dirty) > 1 else dirty:
            old, new = self.state[key], self.store.get(key)
            if new is old:
                continue
            self._count(old, -1)
            self._count(new, +1)
            self.state[key] = new
            if new is not None and not new.terminal and new.stalled and \
                    (old is None or old.terminal or old.stalled != new.stalled):
                self.newly_stalled.append(new)

    def tasks(self) -> list[Task]:
        """The watched tasks still tracked, in order (O(watched): at the end only)."""
        return [t for t in self.state.values() if t is not None]

    def live_in_order(self) -> list[Task]:
        return sorted(self.live.values(), key=lambda t: self.order[t.key])

    def stalled(self) -> int:
        return sum(self.stalled_by.values())

    def code(self) -> int:
        return EXIT_BAD_END if self.bad else EXIT_OK


def _stuck(engine: Any, live: list[Task], asked: dict[str, int]) -> list[str]:
    """"provider:id — reason" for every live task when none of them can
    progress (each is stalled, or its provider refuses us or is out of
    credits); [] while any one still can.  A stall mark counts once the engine
    has asked that provider again since ``wait`` began (``asked``: its request
    count then), so a mark left by an earlier run is checked first."""
    views = _views(engine, {t.provider for t in live})
    out = []
    for t in live:
        status = views.get(t.provider)
        state = getattr(status, "state", None)
        if state in _DEAD_ENDS:
            last = getattr(status, "last_error", None)
            out.append(f"{t.key} — {t.provider}: {_DEAD_ENDS[state]}" + (f" ({last})" if last else ""))
        elif t.stalled and (status is None or getattr(status, "requests", 0) > asked.get(t.provider, 0)):
            out.append(f"{t.key} — {t.stalled}")
        else:
            return []
    return out


def _can_be_stuck(watch: Watch, views: dict[str, Any], asked: dict[str, int]) -> bool:
    """What ``_stuck`` decides, from the per-provider counts: O(providers)."""
    for name, live in watch.live_by.items():
        if not live:
            continue
        status = views.get(name)
        if getattr(status, "state", None) in _DEAD_ENDS:
            continue
        if watch.stalled_by.get(name, 0) == live and \
                (status is None or getattr(status, "requests", 0) > asked.get(name, 0)):
            continue
        return False
    return True


async def wait_for(engine: Any, store: Any, keys: list[str], timeout: float | None,
                   progress: Callable[[str], None] | None = None,
                   notice: Callable[[str], None] | None = None,
                   watch: Watch | None = None) -> tuple[int, str | None]:
    """Run the engine until every task of ``keys`` is terminal.

    Returns (exit code, message): 0/1 by the end states; 2 with a reason on a
    timeout, when a provider refuses our credentials, when the engine cannot
    write answers to the store (``engine.store_problem``), or when nothing left
    can progress (the message then lists the stuck tasks, one a line).
    ``progress`` gets a "waiting: 3/5 done" line when it changes; ``notice``
    a line each time a task becomes stalled (or its reason changes).

    A loop turn reads again only the tasks the store's change feed named, and
    asks the engine for one health view per provider (:class:`Watch`).
    """
    import asyncio

    watch = watch if watch is not None else Watch(store, keys)
    watch.refresh()
    if not watch.live:
        return watch.code(), None  # nothing to ask anyone
    loop = asyncio.get_running_loop()
    deadline = None if timeout is None else loop.time() + timeout
    engine.focus = set(watch.order)  # spend requests on the tasks waited for only
    changed = asyncio.Event()

    def on_change(change: Any) -> None:
        watch.note(change)
        changed.set()

    unsubscribe = store.subscribe(on_change)
    last_line = None
    asked = {name: getattr(view, "requests", 0)
             for name, view in _views(engine, {t.provider for t in watch.live.values()}).items()}
    await engine.start()
    try:
        while True:
            store.sync()
            problem = getattr(engine, "store_problem", None)
            if problem:  # answers would end nowhere: a result stored nowhere is no result
                return EXIT_TROUBLE, str(problem)
            watch.refresh()
            if not watch.live:
                return watch.code(), None
            providers = [name for name, n in watch.live_by.items() if n]
            views = _views(engine, providers)
            refused = sorted(name for name in providers
                             if getattr(views.get(name), "state", None) == "auth_failed")
            if refused:
                reasons = "; ".join(
                    f"{name}: credentials refused ({views[name].last_error or 'auth failed'})"
                    for name in refused)
                return EXIT_TROUBLE, reasons
            if notice is not None:
                for t in watch.newly_stalled:
                    if watch.live.get(t.key) is t:  # (still so)
                        notice(f"{t.key} stalled: {t.stalled}")
            watch.newly_stalled = []
            if _can_be_stuck(watch, views, asked):
                stuck = _stuck(engine, watch.live_in_order(), asked)
                if stuck:
                    return EXIT_TROUBLE, "\n".join([f"nothing left can progress ({len(stuck)} of "
                                                     f"{watch.present} tasks stuck):", *stuck])
            if progress is not None:
                line = f"waiting: {watch.present - len(watch.live)}/{watch.present} done"
                trouble = _trouble(views)
                if trouble:
                    line += " · " + " · ".join(trouble)
                stalled = watch.stalled()
                if stalled:
                    line += f" · {stalled} stalled"
                if line != last_line:
                    progress(line)
                    last_line = line
            wait = 1.0
            if deadline is not None:
                left = deadline - loop.time()
                if left <= 0:
                    live = watch.live_in_order()
                    lines = [f"timed out with {len(live)} of {watch.present} tasks not finished"]
                    lines += [f"{t.key} — {t.stalled}" for t in live if t.stalled]
                    return EXIT_TROUBLE, "\n".join(lines)
                wait = min(wait, left)
            changed.clear()
            try:
                await asyncio.wait_for(changed.wait(), timeout=wait)
            except (asyncio.TimeoutError, TimeoutError):
                pass
    finally:
        try:
            await stop_engine(engine)
        finally:
            unsubscribe()  # after the stop: the watch hears what the engine wrote as it stopped


async def stop_engine(engine: Any, every: float = 0.5) -> None:
    """``engine.stop()``, asking its workers again while it waits.

    On Python 3.11 ``asyncio.wait_for`` returns instead of raising when the
    cancel arrives just as what it waits for is done (a worker's wake event,
    set by the store change of the last answer); that worker then keeps
    running and ``stop()`` awaits it for ever.  Cancelling again ends it."""
    import asyncio

    stop = asyncio.ensure_future(engine.stop())
    while True:
        done, _ = await asyncio.wait({stop}, timeout=every)
        if done:
            stop.result()
            return
        for worker in (getattr(engine, "workers", None) or {}).values():
            runner = getattr(worker, "runner", None)
            if runner is not None and not runner.done():
                runner.cancel()


def _started() -> float:
    """When this process started (``tui.cli`` notes it at import), monotonic."""
    started = getattr(sys.modules.get("tui.cli"), "STARTED", None)
    return started if isinstance(started, (int, float)) else time.monotonic()


def _timeout_left(timeout: float | None) -> float | None:
    """--timeout checked (a finite number of seconds, 0 or more) and counted
    from process start, so start-up is part of it."""
    if timeout is None:
        return None
    if not math.isfinite(timeout) or timeout < 0:
        raise Fail(f"--timeout must be a number of seconds, 0 or more (got {timeout!r})")
    return max(0.0, timeout - (time.monotonic() - _started()))


def _not_succeeded(tasks: list[Task]) -> list[str]:
    out = []
    for t in tasks:
        if t.state in BAD_ENDS:
            out.append(f"{t.key} {t.state}" + (f": {t.error}" if t.error else ""))
    return out


@command
def cmd_wait(args: Any) -> int:
    import asyncio  # only the commands that poll pay for it

    timeout = _timeout_left(args.timeout)
    config = load_config(args)
    pred = matcher(args.filter)
    store = open_store(args, scope="live")  # the engine's working set; the tasks waited for are read once
    try:
        found = list(_each(store, args.filter, pred))
        keys = [t.key for t in found]
        if not keys:
            _say("tasktui: no tasks match" + (f" the filter {args.filter!r}" if args.filter
                                               else ": nothing is tracked"))
            if args.json:
                print("[]")
            return EXIT_TROUBLE
        engine = make_engine(config, store)
        pending = {t.provider for t in found if not t.terminal}
        missing = sorted(pending - set(engine.workers))
        if missing:
            raise Fail(f"cannot refresh tasks of {', '.join(missing)}: not configured or disabled "
                       "(add a [providers.NAME] table to the config)")
        tty = sys.stderr.isatty()
        progress = (lambda line: _say(line)) if tty else None
        notice = (lambda line: _say(f"tasktui: {line}")) if tty or not args.json else None
        watch = Watch(store, keys, found)
        del found
        code, message = asyncio.run(wait_for(engine, store, keys, timeout, progress, notice, watch=watch))
        if message:
            _say(f"tasktui: {message}")
        watch.refresh()  # what the engine wrote as it stopped
        tasks = iter(watch.tasks())
        if args.json:
            _print_tasks(tasks, True)
        else:
            tasks = list(tasks)
            bad = _not_succeeded(tasks)
            if bad:
                _say(f"{len(bad)} of {len(tasks)} tasks did not succeed:")
                for line in bad:
                    _say(f"  {line}")
        return code
    finally:
        store.close()


# ---------------------------------------------------------------- quota


def quota_table(rows: list[dict], healths: dict | None = None, now: float | None = None) -> str:
    """The plain ``tasktui quota`` table.  STATE, REQUESTS, BALANCE and ANSWER are
    the dashboard's quota table's own words (tui/healthfmt.py: ``● ok``, ``✗ key
    refused``, ``12/100h``, ``1,234.50 credits``, ``3s``), built from the same
    stored provider health; the other columns are the stored counters."""
    from .healthfmt import table_row

    now = time.time() if now is None else now
    head = ("PROVIDER", "STATE", "REQUESTS", "BALANCE", "ANSWER", "ERRORS", "429S", "RETRY AT", "CREDITS",
            "TASKS")
    out = [head]
    for q in rows:
        tasks = " ".join(f"{k}={v}" for k, v in sorted(q["tasks"].items()) if v) or "-"
        h = (healths or {}).get(q["provider"])
        if h is not None:
            _, state, requests, balance, answered = table_row(h, now)
        else:
            state, requests = str(q["state"]), str(q["requests"])
            balance = "-" if q["balance"] is None else f"{q['balance']:g}"
            answered = "-"
        spent = q.get("credits_spent")
        out.append((q["provider"], state, requests, balance, answered, str(q["errors"]),
                    str(q["rate_limited"]), q["retry_at"] or "-",
                    "-" if not isinstance(spent, (int, float)) else f"{spent:g}", tasks))
    widths = [max(len(r[i]) for r in out) for i in range(len(head))]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(len(r))).rstrip() for r in out]
    from .text import clean

    for q in rows:  # another process holds the provider key's lease (tui/lease.py): say who polls
        if q.get("polled_by"):
            lines.append(f"{q['provider']}: {clean(str(q['polled_by']), 200)}")
    return "\n".join(lines)


@command
def cmd_quota(args: Any) -> int:
    from .engine.health import quota

    config = load_config(args)
    store = open_store(args, readonly=True)
    now = time.time()
    try:  # provider health as the engines stored it: no engine is built, nothing is asked
        rows = quota(store, config)
        healths = {}
        if rows and not args.json:
            from .healthfmt import stored_health

            healths = {h.name: h for h in stored_health(store, config, [r["provider"] for r in rows], now)}
    finally:
        store.close()
    if args.json:
        print(dumps(rows, indent=2))
    elif rows:
        print(quota_table(rows, healths, now))
    else:
        _say("no provider is configured")
    return EXIT_OK


# ---------------------------------------------------------------- export


# A cell a spreadsheet would run as a formula (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
CSV_FIELDS: tuple[str, ...] = TASK_FIELDS + HEALTH_FIELDS  # the contract's columns, then the additive ones


def csv_cell(value: Any) -> str:
    """One CSV cell: null is empty, booleans are true/false, a number stays a
    number, and text starting with = + - @ tab or CR gets a leading ' so a
    spreadsheet shows it instead of running it."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return "" if isinstance(value, float) and not math.isfinite(value) else str(value)
    text = str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_lines(tasks: Iterable[Task]) -> Iterator[str]:
    """The CSV of ``to_csv``, one line (header first) at a time."""
    # The writer quotes a cell holding a character of its line terminator: with
    # "\r\n" that is CR and LF both (a cell with a bare CR stays in its row);
    # each row then ends in a plain "\n" as before.
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")

    def row(cells) -> str:
        buf.seek(0)
        buf.truncate()
        writer.writerow(cells)
        return buf.getvalue()[:-2] + "\n"

    yield row(CSV_FIELDS)
    for t in tasks:
        d = t.to_dict()
        d["results"] = " ".join(d["results"])
        d["details"] = dumps(d["details"]) if d["details"] else None
        yield row([csv_cell(d.get(f)) for f in CSV_FIELDS])


def to_csv(tasks: Iterable[Task]) -> str:
    """CSV with the TASK_FIELDS columns then HEALTH_FIELDS; results joined by
    spaces, details as a JSON object, null as empty, formulas escaped."""
    return "".join(csv_lines(tasks))


def to_json(tasks: Iterable[Task]) -> str:
    return dumps([t.to_dict() for t in tasks], indent=2) + "\n"


def write_export(tasks: Iterable[Task], fmt: str, out: TextIO) -> int:
    """``to_csv``/``to_json`` of ``tasks`` written to ``out`` row by row (constant
    memory); returns the number of tasks written."""
    if fmt == "csv":
        n = -1
        for n, line in enumerate(csv_lines(tasks)):
            out.write(line)
        return n
    return write_json_array((t.to_dict() for t in tasks), out)


@command
def cmd_export(args: Any) -> int:
    pred = matcher(getattr(args, "filter", ""))
    store = open_store(args, readonly=True, scope="none")
    try:
        if not args.output:
            write_export(_each(store, getattr(args, "filter", ""), pred), args.format, sys.stdout)
            return EXIT_OK
        try:
            out = open(args.output, "w", encoding="utf-8", newline="")
        except OSError as exc:
            raise Fail(f"cannot write {args.output}: {exc.strerror or exc}") from None
        try:
            with out:
                n = write_export(_each(store, getattr(args, "filter", ""), pred), args.format, out)
        except OSError as exc:
            raise Fail(f"cannot write {args.output}: {exc.strerror or exc}") from None
    finally:
        store.close()
    _say(f"wrote {n} tasks to {args.output}")
    return EXIT_OK


__all__ = ["cmd_add", "cmd_rm", "cmd_ls", "cmd_poll", "cmd_wait", "cmd_quota", "cmd_export",
           "read_ids", "table", "to_csv", "to_json", "wait_for", "write_json_array", "write_export"]
