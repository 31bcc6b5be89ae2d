"""The dashboard: a Textual app over the store (and the engine, when online).

Data flows one way: the engine writes to the store, the store's change feed
tells the app which keys changed, and the app redraws those rows, in batches
of at most ~10 a second.  The app never makes an HTTP call; with
``engine=None`` it shows the stored state only.
"""

from __future__ import annotations

import asyncio
import atexit
import gc
import os
import signal
import sys
import time
from typing import Any, Callable, Iterable

from rich.text import Text
from textual import on
from textual.app import App, ComposeResult, SystemCommand
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer

from . import actions, timefmt
from . import filter as tfilter
from .messages import StoreChanged
from .model import PROVIDERS, TERMINAL
from .resources import stylesheet
from .notify import mode_of as notify_mode_of, notification
from .text import is_web_url
from .widgets.cells import clean, set_secrets
from .widgets.filter_bar import FilterBar
from .widgets.header import StatusHeader
from .widgets.quota import QuotaPane, info_from_counters, info_from_status, problem
from .widgets.summary import TaskSummary
from .widgets.task_list import TaskList

FLUSH_DELAY = 0.1  # coalesce store changes for this long (at most ~10 redraws a second)
SYNC_INTERVAL = 0.25  # pick up other processes' writes this often
TICK_INTERVAL = 1.0  # ages, quota pane, header troubles
HANGUP_GRACE = 3.0  # seconds the engine gets to stop when the terminal is gone
NOTIFY_EVERY = 2.0  # seconds: finished tasks are announced together, this often at most
LEASE_READ_EVERY = 2.0  # seconds between reads of who polls, without an engine (the header)
STUCK_AFTER = 180.0  # seconds without an answer while tasks are live: the poller looks stuck
NEWS_SHOW = 8.0  # seconds the header shows finished-task news (never a toast over the columns)


# What the help screen says about each of the dashboard's bindings (by binding id),
# from the one action table (tui/actions.py: keys, footer, palette and help come from it).
KEY_HELP = {a.id: a.description for a in actions.for_screen(actions.MAIN)}

# What --readonly (TASKTUI_READONLY=1, [ui] readonly) takes away: every action
# that writes to the task database or makes the engine ask a provider.
READONLY_OFF = frozenset({"add", "forget", "refresh", "pause", "download", "retry_provider"})


def _while_mounted(method: Callable) -> Callable:
    """For timer and message handlers: do nothing once the widgets are gone
    (a message or timer can still arrive while the app shuts down)."""

    def wrapper(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except NoMatches:
            if self.is_running:  # a real bug, not a late arrival
                raise
            return None

    wrapper.__name__ = method.__name__
    wrapper.__doc__ = method.__doc__
    return wrapper


def _ui(config: Any, name: str, default: Any = None) -> Any:
    ui = getattr(config, "ui", None)
    if ui is None:
        return default
    if isinstance(ui, dict):
        return ui.get(name, default)
    return getattr(ui, name, default)


def _secret_values(config: Any) -> list[str]:
    """Every API key in the config, as plain strings (to keep them off the screen)."""
    out = []
    for cfg in (getattr(config, "providers", None) or {}).values():
        key = cfg.get("api_key") if isinstance(cfg, dict) else getattr(cfg, "api_key", None)
        getter = getattr(key, "get_secret_value", None)
        value = getter() if getter else key
        if value:
            out.append(str(value))
    return out


def saved_filters(config: Any) -> list[tuple[str, str]]:
    """``[ui] saved_filters`` as (name, query) pairs; a dict or a list of queries."""
    raw = _ui(config, "saved_filters", None) or {}
    if isinstance(raw, dict):
        return [(str(k), str(v)) for k, v in raw.items()]
    out = []
    for item in raw:
        if isinstance(item, dict):
            out.append((str(item.get("name") or item.get("query")), str(item.get("query", ""))))
        else:
            out.append((str(item), str(item)))
    return out


class TaskTUI(App[None]):
    """tasktui's dashboard."""

    CSS_PATH = str(stylesheet("app.tcss"))
    TITLE = "tasktui"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (110, "-wide")]
    VERTICAL_BREAKPOINTS = [(0, "-short"), (16, "-tall")]  # under 16 rows the list takes them all
    ENABLE_COMMAND_PALETTE = True

    # every key of the main screen, from the one action table (tui/actions.py)
    BINDINGS = actions.bindings(actions.MAIN)
    # how pictures are drawn (tui.graphics.Graphics): run_dashboard asks the terminal;
    # None (half-blocks) otherwise
    graphics: Any = None

    def __init__(self, config: Any, store: Any, engine: Any = None, *, offline: bool = False,
                 clock: Callable[[], float] = time.time, config_path: Any = None,
                 manage_engine: bool = True, readonly: bool = False) -> None:
        super().__init__(ansi_color=True if _ui(config, "ansi_color", False) else None)
        self.config = config
        self.store = store
        # read-only: no engine (the store's change feed only, as offline), no add/forget/poll
        self.readonly = bool(readonly or _ui(config, "readonly", False))
        self.engine = None if self.readonly else engine
        self.offline = offline or self.engine is None
        self.clock = clock
        self.config_path = config_path if config_path is not None else getattr(config, "path", None)
        self.manage_engine = manage_engine
        self.hard_exit_on_hangup = False  # run_dashboard: leave at once when the terminal is gone
        self.filters = saved_filters(config)
        self.query_text = ""
        self._pending: set[str] = set()  # changed keys the list has not applied
        self._fresh: set[str] = set()  # changed keys since the last flush (for a screen on top)
        self._pending_events = 0
        self._flush_timer = None
        self._notify_timer = None
        self._finished: list[tuple[str, str]] = []
        self.notifications_on = bool(_ui(config, "notify", True))
        self.notify_mode = notify_mode_of(_ui(config, "notify", True))  # "osc9"/"osc777": desktop too
        # The terminal driver's write (set when the driver starts, see get_driver_class);
        # the desktop notifications go through it, in order with the frames.
        self.terminal_out: Callable[[str], None] | None = None
        self._reloading = False
        self._news: list[tuple[str, str]] = []  # finished tasks the header is showing
        self._news_timer = None
        self.follow = False  # the cursor goes to the most recently changed task
        self._started_at = clock()  # a provider that never answered is stuck this long after
        self._unsubscribe: Callable[[], None] | None = None
        self._header_key: tuple | None = None
        self._notice_shown: str | None = None  # the store's notice last shown
        self._health_read: tuple[float, list] | None = None  # (when, stored health) without an engine
        self._credits: tuple[int, dict[str, float]] = (-1, {})
        self._theme_ready = False
        self._store_problem: str | None = None  # the last store sync's failure
        set_secrets(_secret_values(config))
        # times start relative; the optional list columns as [ui] columns has them (`t`, `L` switch)
        timefmt.set_mode(timefmt.RELATIVE)
        from .widgets.cells import set_columns

        set_columns(_ui(config, "columns", None) or ())
        enabled = getattr(config, "enabled", None)
        providers = enabled() if callable(enabled) else getattr(config, "providers", None) or {}
        self.providers = list(providers)
        hz = _ui(config, "refresh_hz", None)
        self.sync_interval = 1.0 / float(hz) if hz else SYNC_INTERVAL
        theme = _ui(config, "theme", None)
        if theme and theme in self.available_themes:
            self.theme = theme
        keymap = _ui(config, "keymap", None)
        if keymap:
            self.set_keymap({str(k): str(v) for k, v in dict(keymap).items()})

    keymap: dict[str, str] = {}  # binding id -> keys, as [ui.keymap] asked (set by set_keymap)

    def set_keymap(self, keymap: dict[str, str]) -> None:
        """Textual's, keeping the keymap where the help and the palette can read it
        (``self.keymap``) instead of Textual's private ``_keymap`` / ``_bindings``."""
        self.keymap = {str(k): str(v) for k, v in dict(keymap).items()}
        super().set_keymap(keymap)

    def bound_keys(self) -> dict[str, list[str]]:
        """binding id -> the keys that run it now, as shown: the keymap's keys, else
        the default ones (a default key the keymap gave to another action no
        longer runs this one: Textual unbinds it)."""
        taken = {k.strip() for keys in self.keymap.values() for k in keys.split(",")}
        out: dict[str, list[str]] = {}
        for binding in self.BINDINGS:
            if not isinstance(binding, Binding) or not binding.id:
                continue
            if binding.id in self.keymap:
                keys = [k.strip() for k in self.keymap[binding.id].split(",") if k.strip()]
            else:
                keys = [k.strip() for k in binding.key.split(",") if k.strip() and k.strip() not in taken]
            shown = out.setdefault(binding.id, [])
            shown += [self.get_key_display(Binding(k, binding.action, binding.description)) for k in keys]
        return out

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield StatusHeader(id="header")
        bar = FilterBar(self.apply_filter, id="filter-bar", return_focus_to="#tasks")
        bar.display = False
        yield bar
        with Horizontal(id="main"):
            yield TaskList(self.store, self.clock, id="tasks")
            with Vertical(id="side"):
                yield TaskSummary(id="summary")
                yield QuotaPane(self.providers or self._stored_providers(), id="quota")
        yield Footer()

    def _stored_providers(self) -> list[str]:
        names = set(self.store.counts_by_provider())
        try:
            names |= set(self.store.counters())
        except Exception:
            pass
        return [p for p in PROVIDERS if p in names] + sorted(names - set(PROVIDERS))

    @property
    def task_list(self) -> TaskList:
        return self.query_one("#tasks", TaskList)

    @property
    def filter_bar(self) -> FilterBar:
        return self.query_one("#filter-bar", FilterBar)

    async def on_mount(self) -> None:
        tasks = self.task_list
        self._defer_live()
        tasks.rebuild()
        self._live_states_at_open()
        # The tasks just loaded live as long as the app: keep the cyclic garbage
        # collector from walking them (a full pass over 100,000 tasks stalls a
        # keystroke by ~100 ms; later objects are collected as usual).  The
        # command line turned it off for start-up (tui.cli.main): on again.
        gc.freeze()
        gc.enable()
        tasks.focus()
        self._unsubscribe = self.store.subscribe(self._on_store_change)
        self.screen_change_signal.subscribe(self, self._screen_changed)
        self.set_interval(self.sync_interval, self._sync, name="store-sync")
        self.set_interval(TICK_INTERVAL, self._tick, name="tick")
        self._update_header()
        self._update_summary()
        self._update_quota()
        self._theme_ready = True
        try:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._terminal_gone)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            pass
        if self.engine is not None and self.manage_engine:
            await self.engine.start()
        tasks.start_warming()
        self.call_after_refresh(self._read_live)

    # ---- the store's live tasks are read after the first frame (issue 15; tui/store.py load_live)

    def _defer_live(self) -> None:
        defer = getattr(self.store, "defer_live", None)
        if defer is not None and getattr(self.store, "live_pending", False):
            defer()  # the first frame comes from indexed queries; the engine waits for them

    def _live_states_at_open(self) -> None:
        if getattr(self.store, "live_pending", False):
            self.task_list.live_tasks_later()

    def _read_live(self) -> None:
        if not getattr(self.store, "live_pending", False):
            return
        loop = asyncio.get_running_loop()

        def read() -> None:  # from the store's reading thread
            try:
                loop.call_soon_threadsafe(self._live_read)
            except RuntimeError:  # the app has closed
                pass

        self.store.load_live(read)

    @_while_mounted
    def _live_read(self) -> None:
        """In memory now: the list learns the states of the live tasks (for the news of
        those that finish); those changed meanwhile it learned from the change feed."""
        try:
            read = self.store.finish_live()
        except Exception:  # the database cannot be read now (the sync says so): later
            self.set_timer(1.0, self._live_read)
            return
        if not read:  # a failed (or stale) read: read again in a moment, told again
            self.set_timer(1.0, self._read_live)
            return
        self.task_list.live_tasks_in()
        # as on_mount's: the live tasks live as long as the app; young, a full collection
        # walked them all (a key typed meanwhile took 60-100 ms instead of 25-50)
        gc.freeze()

    async def on_unmount(self) -> None:
        try:
            asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
        except (NotImplementedError, RuntimeError, ValueError, AttributeError):
            pass
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self.engine is not None and self.manage_engine:
            from .headless import stop_engine  # asks a worker that swallowed its cancel again

            await stop_engine(self.engine)

    def _terminal_gone(self) -> None:
        """SIGHUP: the terminal went away (a dropped SSH session), or, while the
        terminal still answers, someone asks for a config reload (``kill -HUP``)."""
        if self.terminal_alive():
            asyncio.get_running_loop().create_task(self.reload_config("SIGHUP"))
            return
        asyncio.get_running_loop().create_task(self._hang_up())

    def terminal_alive(self) -> bool:
        """True while our terminal answers (a hung-up tty fails every ioctl with
        EIO): a SIGHUP then is a reload request, not a lost session."""
        if self.is_headless:
            return False
        import termios

        for stream in (sys.__stderr__, sys.__stdout__, sys.__stdin__):  # Textual draws on stderr
            try:
                termios.tcgetattr(stream.fileno())
                return True
            except (termios.error, OSError, ValueError, AttributeError):
                continue
        return False

    def get_driver_class(self):
        """The platform's driver, which hands its ``write`` to ``terminal_out``
        (the public way to put a desktop notification in the output stream:
        Textual has no raw-write API; ``Driver.write`` queues it with the frames)."""
        base = super().get_driver_class()

        class NotifyingDriver(base):  # type: ignore[valid-type, misc]
            def __init__(self, app: Any, *args: Any, **kwargs: Any) -> None:
                super().__init__(app, *args, **kwargs)
                app.terminal_out = self.write

        NotifyingDriver.__name__ = f"Notifying{base.__name__}"
        return NotifyingDriver

    async def _hang_up(self) -> None:
        """Stop polling and leave.  Every acknowledged write is already in SQLite.

        Textual's normal shutdown writes terminal-reset sequences, which can
        block forever on a dead terminal; so ``run_dashboard`` sets
        ``hard_exit_on_hangup`` and the process ends here without them.
        """
        if self.engine is not None and self.manage_engine:
            try:
                from .headless import stop_engine

                await asyncio.wait_for(stop_engine(self.engine), HANGUP_GRACE)
            except Exception:
                pass
        if self.hard_exit_on_hangup:
            try:
                self.store.close()
                run_exit_funcs = getattr(atexit, "_run_exitfuncs", None)
                if run_exit_funcs is not None:
                    run_exit_funcs()  # temp dirs (the demo's) and other atexit cleanups
            finally:
                os._exit(128 + signal.SIGHUP)
        self.exit(return_code=128 + signal.SIGHUP)

    # ------------------------------------------------------------ live updates

    def _on_store_change(self, change: Any) -> None:
        """The store's feed (called by whichever thread committed): it reaches the
        app as a ``StoreChanged`` message.  ``post_message`` is Textual's thread-safe
        door (off the loop it hands the message over with ``call_soon_threadsafe``),
        and a burst coalesces in the queue (``StoreChanged.can_replace``)."""
        self.post_message(StoreChanged(getattr(change, "keys", ()) or (),
                                       int(getattr(change, "events", 0) or 0), control=self))

    def on_store_changed(self, message: StoreChanged) -> None:
        """Gather changed keys; they are applied together after FLUSH_DELAY."""
        self._pending |= message.keys
        self._fresh |= message.keys
        self._pending_events += message.events
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(FLUSH_DELAY, self._apply_pending, name="flush")

    def _sync(self) -> None:
        try:
            self.store.sync()
        except Exception as exc:  # a locked or vanished file: say so (header), keep going
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            if self._store_problem is None:
                self.log.warning(f"store sync failed: {exc}")
            self._store_problem = clean(first, 300)
        else:
            self._store_problem = None

    def store_problem(self) -> str | None:
        """Why the task database is not being read or written (None: it is fine):
        this process's last sync, or the engine's kept-in-memory answers."""
        return self._store_problem or getattr(self.engine, "store_problem", None)

    def _main_active(self) -> bool:
        return len(self.screen_stack) <= 1

    @_while_mounted
    def _apply_pending(self) -> None:
        """Apply the changes gathered since the last flush (skipped under a modal)."""
        self._flush_timer = None
        if not self._main_active():
            fresh, self._fresh = self._fresh, set()
            events, self._pending_events = self._pending_events, 0
            if fresh or events:  # the screen on top hears of it as a message
                screen = self.screen
                if hasattr(screen, "on_store_changed"):
                    screen.post_message(StoreChanged(fresh, events, control=self))
            return  # the list's rows wait until the main screen is back
        keys, self._pending = self._pending, set()
        self._fresh = set()
        self._pending_events = 0
        with self.batch_update():
            if keys:
                self._notify_finished(self.task_list.apply_changes(keys))
                if self.follow:
                    self._follow(keys)
                if self.task_list.cursor_key in keys:
                    self._update_summary()
            self._update_header()
            if self.filter_bar.display:
                self._update_count()

    @_while_mounted
    def _screen_changed(self, screen: Screen) -> None:
        """Back on the main screen: apply what changed meanwhile, at once."""
        if self._main_active() and (self._pending or self._pending_events):
            self._apply_pending()

    def _notify_finished(self, moves: list[tuple[str, str | None, str | None]]) -> None:
        """Gather tasks seen to finish (queued/running -> an end state); they are
        announced together, at most one round of toasts every NOTIFY_EVERY seconds."""
        self._finished += [(key, new) for key, old, new in moves
                           if new in TERMINAL and old in ("queued", "running")]
        if self._finished and self._notify_timer is None:
            self._notify_timer = self.set_timer(NOTIFY_EVERY, self._announce, name="announce")

    @_while_mounted
    def _announce(self) -> None:
        self._notify_timer = None
        finished, self._finished = self._finished, []
        if not finished or not self.notifications_on:
            return
        # One coalesced line in the header (a toast would cover the STATE, PROGRESS
        # and AGE columns); news arriving while it shows joins it.
        self._news += finished
        if self._news_timer is not None:
            self._news_timer.stop()
        self._news_timer = self.set_timer(NEWS_SHOW, self._clear_news, name="news")
        self._update_header()
        if _ui(self.config, "bell", False):
            self.bell()
        self._notify_desktop()

    def filter_ended(self) -> tuple[int, int] | None:
        """(tasks, not succeeded) when every task the current filter shows has
        ended; None while any is live (or none is shown)."""
        query = self.query_text.strip()
        if not query:
            counts = self.store.counts()
            if not sum(counts.values()) or any(n for st, n in counts.items() if st not in TERMINAL):
                return None
            return sum(counts.values()), sum(n for st, n in counts.items() if st != "succeeded")
        count_where = getattr(self.store, "count_where", None)
        if count_where is not None:  # in SQL: the store may hold only live tasks in memory
            if count_where(f"{query} state:active"):
                return None
            total = count_where(query)
            return (total, total - count_where(f"{query} state:succeeded")) if total else None
        pred = tfilter.compile_filter(query)
        total = bad = 0
        for task in self.store.tasks():
            if not pred(task):
                continue
            if task.state not in TERMINAL:
                return None
            total += 1
            bad += task.state != "succeeded"
        return (total, bad) if total else None

    def _notify_desktop(self) -> None:
        """OSC 9 / OSC 777 ([ui] notify) once the filter's tasks have all ended."""
        if self.notify_mode is None or self.terminal_out is None:
            return
        ended = self.filter_ended()
        if ended is None:
            return
        total, bad = ended
        body = f"{total} task{'s' if total != 1 else ''} ended: {total - bad} succeeded"
        body += f", {bad} did not" if bad else ""
        if self.query_text.strip():
            body += f" (filter {self.query_text.strip()})"
        text = notification(self.notify_mode, "tasktui", body)  # cleaned; tmux passthrough under $TMUX
        if text:
            self.terminal_out(text)

    def news_text(self) -> tuple[str, bool] | None:
        """The header's finished-task news (text, any failed), None when there is none."""
        from .widgets.cells import STATE_SYMBOL, STATE_WORD, fit_middle

        news = self._news
        if not news:
            return None
        bad = sum(1 for _, state in news if state != "succeeded")
        if len(news) == 1:
            key, state = news[0]
            name = clean(key.split(":", 1)[-1], 200)
            return (f"{STATE_SYMBOL.get(state, '·')} {fit_middle(name, min(len(name), 24))} "
                    f"{STATE_WORD.get(state, state)}", bool(bad))
        text = f"{len(news)} finished: ✓ {len(news) - bad}"
        return (text + (f" ✗ {bad}" if bad else ""), bool(bad))

    @_while_mounted
    def _clear_news(self) -> None:
        self._news_timer = None
        self._news = []
        self._update_header()

    def action_toggle_notify(self) -> None:
        self.notifications_on = not self.notifications_on
        if not self.notifications_on:
            self._finished = []
            self._clear_news()
        self.notify("Finished-task news on." if self.notifications_on else
                    "Finished-task news off (n turns it on).", timeout=1.5, markup=False)

    @_while_mounted
    def _tick(self) -> None:
        """Once a second: ages, the quota pane, the header's trouble signs."""
        if not self._main_active():
            return
        self.task_list.tick()
        self._update_summary()  # its "(12s ago)" moves on too (redrawn once a second at most)
        self._update_quota()
        self._update_header()
        notice = getattr(self.store, "notice", None)  # what the store says once about itself
        if notice and notice != self._notice_shown:  # (PostgreSQL without pg_trgm: filters scan)
            self._notice_shown = notice
            self.notify(clean(str(notice), 300), severity="warning", timeout=10, markup=False)

    # ------------------------------------------------------------ panes

    def _infos(self) -> dict[str, dict]:
        now = self.clock()
        if self.engine is not None:
            out = {}
            healths = {h.name: h for h in self.engine.health()}  # state, cause, daily budgets, endpoints off
            for name in self.engine.workers:
                try:
                    out[name] = info_from_status(self.engine.status(name), healths.get(name))
                except KeyError:  # gone with a config reload under way
                    continue
            return out
        try:
            saved = self.store.counters()
        except Exception:
            saved = {}
        credits = self._credit_totals()
        names = list(dict.fromkeys([*self.query_one("#quota", QuotaPane).providers, *saved]))
        out = {name: info_from_counters(saved.get(name) or {}, now, credits.get(name)) for name in names}
        for h in self._polled_elsewhere():  # another process polls it now: its state is current
            info = out.get(h.name)
            if info is not None:
                info.pop("last_state", None)
                info.update(state=h.state, cause=h.cause, polled_by=h.polled_by)
        return out

    def _stored_health(self) -> list:
        """The providers' health as stored, with who holds each key's lease now, read at
        most every LEASE_READ_EVERY s (a dashboard without an engine: read-only, offline)."""
        now = time.monotonic()
        read = self._health_read
        if read is None or now - read[0] >= LEASE_READ_EVERY:
            from .engine.health import read_health

            try:
                stored = read_health(self.store, self.config)
            except Exception:  # nothing readable says nothing
                stored = []
            read = self._health_read = (now, stored)
        return read[1]

    def _polled_elsewhere(self) -> list:
        """Without an engine: the stored health of the providers another process polls now
        (its lease is live), whose stored state is as current as its last round."""
        return [h for h in self._stored_health() if h.lease and h.lease.get("live") is True]

    def _credit_totals(self) -> dict[str, float]:
        rev = self.store.revision
        if self._credits[0] != rev:
            from .engine.health import credits_by_provider

            totals = getattr(self.store, "credits_by_provider", None)  # in SQL: every task, any scope
            self._credits = (rev, totals() if totals else credits_by_provider(self.store.tasks()))
        return self._credits[1]

    def _update_quota(self) -> None:
        pane = self.query_one("#quota", QuotaPane)
        if not pane.display or not pane.parent.display:
            return
        pane.show(self._infos(), self.store.counts_by_provider(), self.clock())

    def _update_header(self) -> None:
        healths = self.engine.health() if self.engine is not None else None  # once per update
        # each provider's state as its health says it: a key another process polls is
        # in the trouble that process stored (a rate limit, a refused key), not in our
        # idle worker's; the quota pane and `quota` read the same health
        # (without an engine: the providers another process polls now, as it stored them)
        current = healths if healths is not None else self._polled_elsewhere()
        troubles = [(h.name, word) for h in current if (word := problem({"state": h.state}))]
        answers = self._answers(healths)
        troubles += [(name, f"no answer for {age}") for name, age, kind in answers if kind == "stuck"]
        stored = self.store_problem()
        if stored:  # answers that end nowhere: louder than any provider's trouble
            troubles.insert(0, ("task database", clean(str(stored), 300)))
        paused = bool(getattr(self.engine, "paused", False))
        tasks = self.task_list
        shown = tasks.count if tasks.filtered else None
        counts = self.store.counts()
        marked = len(tasks.marks)
        news = self.news_text()
        pollers = self._pollers(healths)
        key = (tuple(sorted(counts.items())), len(self.store), paused, tuple(troubles),
               tasks.sort_mode, tasks.sort_reverse, shown, marked, news, tuple(answers), self.follow,
               tuple(pollers))
        if key == self._header_key:
            return
        self._header_key = key
        self.query_one("#header", StatusHeader).show(
            counts, total=len(self.store), paused=paused, offline=self.offline, readonly=self.readonly,
            troubles=troubles, sort=tasks.sort_mode, shown=shown, marked=marked, news=news,
            answers=answers, reverse=tasks.sort_reverse, follow=self.follow, pollers=pollers)

    def _pollers(self, healths: list | None) -> list[tuple[str, str | None, int | None, float | None]]:
        """Provider keys another process polls (issue 16): (provider, host, pid, since),
        from the providers' health (``lease`` live: another process holds the key): the
        engine's ``healths`` (its workers' last read of the lease rows: no query of ours),
        or without an engine (read-only: every lease is another process's) the stored
        health, read every LEASE_READ_EVERY s."""
        live = [h for h in healths if h.lease and h.lease.get("live") is True] if healths is not None \
            else self._polled_elsewhere()
        return [(h.name, h.lease.get("host"), h.lease.get("pid"), h.lease.get("since")) for h in live]

    def _answers(self, healths: list | None) -> list[tuple[str, str | None, str]]:
        """Per polled provider (``healths``: the engine's, None without one):
        (name, how long since its last answer, kind) where
        kind is "live" (tasks to poll, answering), "idle" (nothing to poll: quiet
        is fine) or "stuck" (tasks to poll, no answer for STUCK_AFTER seconds
        while polling runs and no known wait explains it)."""
        from .model import TERMINAL as ended
        from .widgets.cells import ago

        if self.engine is None or not healths:
            return []
        now = self.clock()
        paused = self.engine.paused
        by_provider = self.store.counts_by_provider()
        out = []
        for h in healths:  # provider health, as the engine reports (and stores) it
            name, at, state = h.name, h.last_answer_at, h.state
            age = ago(max(0.0, now - at)) if isinstance(at, (int, float)) else None
            live = any(n for st, n in (by_provider.get(name) or {}).items() if st not in ended)
            quiet_for = now - at if isinstance(at, (int, float)) else now - self._started_at
            if not live:
                kind = "idle"
            elif not paused and state in ("ok", "degraded") and quiet_for > STUCK_AFTER:
                kind = "stuck"
                age = age or ago(quiet_for)
            else:
                kind = "live"
            out.append((name, age, kind))
        return out

    def _update_summary(self) -> None:
        key = self.task_list.cursor_key
        task = self.store.get(key) if key else None
        self.query_one("#summary", TaskSummary).show(task, self.clock())

    @_while_mounted
    def on_task_list_cursor_moved(self, event: TaskList.CursorMoved) -> None:
        self._update_summary()

    def on_task_list_opened(self, event: TaskList.Opened) -> None:
        self._open_detail(event.key)

    @_while_mounted
    def on_task_list_order_read(self, event: TaskList.OrderRead) -> None:
        self._update_count()
        self._update_header()

    # ------------------------------------------------------------ filter

    def action_filter(self) -> None:
        bar = self.filter_bar
        bar.display = True
        bar.input.focus()
        self._update_count()

    def apply_filter(self, query: str) -> int:
        """Narrow the list to ``query`` (the filter language); returns the match count."""
        old = self.query_text
        if query == old:
            return self.task_list.count
        self.query_text = query
        words, category, pred = tfilter.plan_query(query)
        narrow = (bool(old.strip()) and bool(words or category or pred)
                  and tfilter.refines(old, query))
        count = self.task_list.set_filter(pred, words=words, category=category, narrow=narrow, query=query)
        self._update_count()
        self._update_header()
        self._update_summary()  # now, not one message later: one frame shows it all
        return count

    def _update_count(self) -> None:
        query = self.query_text
        probs = tfilter.problems(query) + tfilter.check_query(query)  # state:faild: did you mean
        tasks = self.task_list
        self.filter_bar.set_count(tasks.count, len(self.store), probs[0] if probs else None,
                                  exact=tasks.count_is_exact)

    @on(FilterBar.Done)
    def _filter_done(self, event: FilterBar.Done) -> None:
        if event.cleared or not self.query_text.strip():
            self.filter_bar.display = False
        self.task_list.focus()

    def action_clear_filter(self) -> None:
        if self.query_text:
            self.filter_bar.input.value = ""
            self.apply_filter("")
        self.filter_bar.display = False
        self.task_list.focus()

    def action_saved_filter(self, n: int) -> None:
        if not 1 <= n <= len(self.filters):
            self.notify(f"No saved filter {n} (set [ui] saved_filters in the config)",
                        severity="warning", markup=False)
            return
        name, query = self.filters[n - 1]
        self.use_filter(query)

    def use_filter(self, query: str) -> None:
        bar = self.filter_bar
        bar.display = True
        with bar.input.prevent(bar.input.Changed):
            bar.input.value = query
        self.apply_filter(query)
        self.task_list.focus()

    # ------------------------------------------------------------ actions

    def action_sort(self) -> None:
        mode = self.task_list.cycle_sort()
        self._update_header()
        self.notify(f"Sorted by {mode}", timeout=1.5, markup=False)

    def _sorted(self) -> None:
        tasks = self.task_list
        self._update_header()
        self._update_summary()
        self.notify(f"Sorted by {tasks.sort_mode}{', reversed' if tasks.sort_reverse else ''}",
                    timeout=1.5, markup=False)

    def action_sort_step(self, step: int) -> None:
        self.task_list.step_sort(step)
        self._sorted()

    def action_sort_reverse(self) -> None:
        tasks = self.task_list
        tasks.set_sort(tasks.sort_mode, not tasks.sort_reverse)
        self._sorted()

    @_while_mounted
    def on_task_list_sort_clicked(self, event: TaskList.SortClicked) -> None:
        """A click on a column title sorts by it; on the sorted column it reverses."""
        tasks = self.task_list
        if event.sort == tasks.sort_mode:
            tasks.set_sort(event.sort, not tasks.sort_reverse)
        else:
            tasks.set_sort(event.sort, False)
        self._sorted()

    def action_detail(self) -> None:
        key = self.task_list.cursor_key
        if key:
            self._open_detail(key)

    def _open_detail(self, key: str) -> None:
        from .screens.detail import DetailScreen

        self.push_screen(DetailScreen(self.store, key, self.clock))

    def action_help(self) -> None:
        from .screens.help import HelpScreen

        self.push_screen(HelpScreen(self.key_help(), [
            (str(i + 1), q) for i, (name, q) in enumerate(self.filters[:9])]))

    def key_help(self) -> list[tuple[str, str]]:
        """(keys, what) for the dashboard's own bindings, as the keymap has them now."""
        ours = {b.id for b in self.BINDINGS if isinstance(b, Binding) and b.id
                and not b.id.startswith("saved.")}
        keys: dict[str, list[str]] = {}
        what: dict[str, str] = {}
        bound = self.bound_keys()
        for binding in self.BINDINGS:
            if (isinstance(binding, Binding) and binding.id in ours and bound.get(binding.id)
                    and not (self.readonly and binding.action in READONLY_OFF)):
                keys[binding.id] = bound[binding.id]
                what[binding.id] = KEY_HELP.get(binding.id, binding.description)
        rows = [("j k ↑ ↓", "move"), ("PgUp PgDn Home End", "page, first, last")]
        rows += [(" ".join(dict.fromkeys(keys[i])), what[i]) for i in keys]
        rows.append(("1-9", "saved filters"))
        rows.append(("ctrl+p", "command palette (every action, saved filters, themes)"))
        return rows

    def action_add(self) -> None:
        from .screens.add import AddRequest, AddTaskScreen

        from .providers import known_names

        providers = self.providers or list(known_names())  # configured ones, else every built-in one

        def done(req: AddRequest | None) -> None:
            if req is None:
                return
            try:
                added = self.store.add(req.provider, req.ids, kind=req.kind, label=req.label)
            except Exception as exc:
                self.notify(clean(str(exc), 300), title="Not added", severity="error", markup=False)
                return
            known = len(req.ids) - len(added)
            extra = f" ({known} already tracked)" if known else ""
            skipped = list(getattr(req, "skipped", None) or [])
            warnings = list(getattr(req, "warnings", None) or [])
            if skipped:
                extra += f"; {len(skipped)} invalid id{'s' if len(skipped) != 1 else ''} skipped"
            if warnings:
                extra += f"; {len(warnings)} warning(s): " + clean(str(warnings[0]), 120)
            self.notify(f"Tracking {len(added)} new {req.provider} task(s){extra}",
                        severity="warning" if skipped or warnings else "information", markup=False)
            if self.engine is not None and added:
                self.engine.refresh_now(added)

        current = self.store.get(self.task_list.cursor_key) if self.task_list.cursor_key else None
        self.push_screen(AddTaskScreen(providers, current.provider if current else None), done)

    def action_forget(self) -> None:
        from .screens.confirm import ConfirmScreen

        marked = self.task_list.marked
        if marked:
            self._forget_marked(marked)
            return
        key = self.task_list.cursor_key
        if not key:
            return
        question = Text("Forget ")
        question.append(clean(key, 200), "bold")
        question.append("?\nIt is no longer tracked here; the provider is not told.")

        def done(yes: bool | None) -> None:
            if yes:
                n = self.store.remove([key])
                self.notify(f"Forgot {clean(key, 80)}" if n else "Already gone", markup=False)

        self.push_screen(ConfirmScreen(question, yes="Forget"), done)

    def _forget_marked(self, keys: list[str]) -> None:
        from .screens.confirm import ConfirmScreen

        n = len(keys)
        question = Text("Forget ")
        question.append(f"{n} marked task{'s' if n != 1 else ''}", "bold")
        shown = set(self.task_list.index)
        hidden = sum(1 for k in keys if k not in shown)
        if hidden:
            question.append(f" ({hidden} hidden by the filter)")
        question.append("?\nThey are no longer tracked here; the providers are not told.")

        def done(yes: bool | None) -> None:
            if yes:
                gone = self.store.remove(keys)
                self.task_list.marks.difference_update(keys)
                self._update_header()
                self.notify(f"Forgot {gone} task{'s' if gone != 1 else ''}", markup=False)

        self.push_screen(ConfirmScreen(question, yes=f"Forget {n}"), done)

    def action_copy_url(self) -> None:
        """Copy the selected task's first web result link (OSC 52)."""
        screen = self.screen
        key = getattr(screen, "key", None) if not self._main_active() else self.task_list.cursor_key
        marked = self.task_list.marked if self._main_active() else []
        if marked:  # the marked tasks' ids, one a line (what `tasktui add PROVIDER -` reads)
            ids = "\n".join(k.split(":", 1)[1] for k in marked)
            self.copy_to_clipboard(ids)
            self.notify(f"{len(marked)} task id(s), one a line", title="Copied the marked ids",
                        markup=False)
            return
        task = self.store.get(key) if key else None
        if task is None:
            return
        url = next((u for u in task.results if is_web_url(u)), None)
        if url is None:
            self.notify("This task has no http(s) result link to copy.", severity="warning",
                        markup=False)
            return
        self.copy_to_clipboard(url)
        self.notify(clean(url, 300), title="Copied result URL", markup=False)

    # ------------------------------------------------------------ results

    def _result_target(self) -> tuple[Any, int]:
        """(task, result index) the results keys act on: the detail's task and the
        result it shows, else the list's selected task and its first result."""
        if self._main_active():
            key, index = self.task_list.cursor_key, 0
        else:
            key, index = getattr(self.screen, "key", None), int(getattr(self.screen, "result_index", 0) or 0)
        task = self.store.get(key) if key else None
        return task, index

    def action_open_result(self) -> None:
        """Open the selected result locally; over SSH or with no display, copy its
        URL (OSC 52) and say so.  A link that is not http(s) is never opened."""
        from . import preview

        task, index = self._result_target()
        if task is None:
            return
        if not task.results:
            self.notify("This task has no result to open.", severity="warning", markup=False)
            return
        url = task.results[min(index, len(task.results) - 1)]
        if not is_web_url(url):
            self.notify("Not an http(s) link: not opened.", severity="warning", markup=False)
            return
        if preview.can_open_locally() and preview.open_url(url):
            self.notify(clean(url, 300), title="Opened", markup=False)
            return
        self.copy_to_clipboard(url)
        self.notify(clean(url, 300), title="No display here: copied the URL instead", markup=False)

    def _results_dir(self) -> str:
        results = getattr(self.config, "results", None)
        folder = results.get("dir") if isinstance(results, dict) else getattr(results, "dir", None)
        return str(folder) if folder else os.getcwd()

    def action_download(self) -> None:
        """Download the results (``tui.results.pull``) of the marked tasks in the list,
        else of the selected task (the detail's), in a worker."""
        marked = list(getattr(self.task_list, "marked", None) or []) if self._main_active() else []
        if marked:
            chosen = [t for t in (self.store.get(k) for k in marked) if t is not None]
        else:
            task, _ = self._result_target()
            chosen = [task] if task is not None else []
        if not chosen:
            return
        tasks = [t for t in chosen if t.state == "succeeded" and t.results]
        if not tasks:
            self.notify("Only a succeeded task's results can be downloaded.", severity="warning", markup=False)
            return
        if not hasattr(self, "downloads"):
            self.downloads: dict[str, str] = {}  # task key -> progress line (the detail shows it)
        busy = [t for t in tasks if not self.downloads.get(t.key, "download done").startswith("download done")]
        tasks = [t for t in tasks if t not in busy]
        if not tasks:
            self.notify("Already downloading.", timeout=2, markup=False)
            return
        for t in tasks:
            self.downloads[t.key] = f"downloading 0 of {len(t.results)} files…"
        self.run_worker(self._download(tasks, self._results_dir()), group="download", exit_on_error=False)

    async def _download(self, tasks: list, folder: str) -> None:
        from .results import human_bytes, pull

        files = {t.key: len(t.results) for t in tasks}
        finished: dict[str, int] = {}
        rows = self.task_list.downloads  # key -> percent, drawn in the task's row
        for t in tasks:
            rows[t.key] = 0.0
            self.task_list.redraw(t.key)

        def progress(p: Any) -> None:
            if p.finished is not None:
                finished[p.key] = finished.get(p.key, 0) + 1
            part = p.done / p.total if p.total and p.finished is None else 0.0
            share = 100.0 * (finished.get(p.key, 0) + min(part, 1.0)) / max(files.get(p.key, 1), 1)
            if p.key in rows and int(share) != int(rows[p.key]):
                rows[p.key] = share
                self.task_list.redraw(p.key)
            done = human_bytes(p.done) + (f" of {human_bytes(p.total)}" if p.total else "")
            self.downloads[p.key] = (f"downloading {finished.get(p.key, 0)} of {files.get(p.key, 0)} files…"
                                     f" (file {p.n}: {done})")
            if getattr(self.screen, "key", None) == p.key:
                getattr(self.screen, "refresh_results", lambda: None)()

        try:
            results = await pull(self.store, tasks, folder, on_progress=progress)
        except Exception as exc:  # a folder that cannot be made, a store that cannot be written
            for t in tasks:
                self.downloads[t.key] = "download done: failed"
                rows.pop(t.key, None)
                self.task_list.redraw(t.key)
            self.notify(clean(f"{type(exc).__name__}: {exc}", 300), title="Download failed",
                        severity="error", markup=False)
            return
        good = [r for r in results if r.ok]
        bad = [r for r in results if not r.ok]
        for t in tasks:
            mine = [r for r in results if r.key == t.key]
            ok = sum(r.ok for r in mine)
            self.downloads[t.key] = f"download done: {ok} of {len(mine)} files"
            rows.pop(t.key, None)
            self.task_list.redraw(t.key)
        getattr(self.screen, "refresh_results", lambda: None)()
        message = f"{len(good)} file(s) in {clean(folder, 300)}"
        if bad:
            message += "; " + ", ".join(f"{r.status}: {clean(r.message or r.url, 120)}" for r in bad[:3])
        self.notify(message, title="Downloaded", severity="warning" if bad else "information", markup=False)

    def action_refresh(self) -> None:
        if self.engine is None:
            self._sync()
            self.notify("Offline: re-read the store.", timeout=2, markup=False)
            return
        marked = self.task_list.marked
        if marked:
            self.engine.refresh_now(marked)
            self.notify(f"Refreshing {len(marked)} marked task(s).", timeout=2, markup=False)
            return
        self.engine.refresh_now()
        self.notify("Refreshing every live task.", timeout=2, markup=False)

    def action_pause(self) -> None:
        if self.engine is None:
            self.notify("Offline: nothing is being polled.", severity="warning", markup=False)
            return
        if self.engine.paused:
            self.engine.resume()
            self.notify("Polling resumed.", timeout=2, markup=False)
        else:
            self.engine.pause()
            self.notify("Polling paused (r still refreshes once).", timeout=2, markup=False)
        self._update_header()
        self._update_quota()

    def action_errors(self) -> None:
        from .screens.errors import ErrorLogScreen

        self.push_screen(ErrorLogScreen(self.store), self.go_to_task)

    def go_to_task(self, key: str | None) -> None:
        """Put the cursor on ``key`` (the error log's jump), clearing the filter
        when it hides that task; focus the list and show the task's summary."""
        if not key or self.store.get(key) is None:
            return
        tasks = self.task_list
        if not tasks.select(key):
            self.action_clear_filter()
            tasks.select(key)
        tasks.focus()
        self._update_summary()

    def _follow(self, keys: set[str]) -> None:
        """Follow mode: put the cursor on the changed task updated last (if shown)."""
        tasks = self.task_list
        rows = tasks.tasks
        shown = [rows[k] for k in keys if k in rows]
        if not shown:
            return
        latest = max(shown, key=lambda t: t.updated_at or t.created_at or 0.0)
        if tasks.select(latest.key):
            self._update_summary()

    def action_toggle_follow(self) -> None:
        self.follow = not self.follow
        self._update_header()
        self.notify("Follow on: the cursor goes to the latest change." if self.follow
                    else "Follow off.", timeout=1.5, markup=False)

    def action_toggle_quota(self) -> None:
        self.screen.toggle_class("-show-quota")
        self._update_quota()
        self._focus_quota_table()

    # ------------------------------------------------------------ times, columns, quota table (helper U1)

    def _focus_quota_table(self) -> None:
        """After ``v``: the quota table takes the keys when it shows (enter opens a
        provider's card, esc comes back), the list when it hides."""
        def focus() -> None:
            try:
                table = self.query_one("#quota-table")
            except NoMatches:
                return
            if table.region.height > 0:
                table.focus()
            elif table.has_focus or self.focused is None:  # hidden with the keys: back to the list
                self.task_list.focus()

        self.call_after_refresh(focus)

    def action_toggle_time(self) -> None:
        """Relative ("12s ago") or absolute ("07:59:48") times in the list, the summary and the detail."""
        mode = timefmt.toggle_mode()
        self.task_list.clear_cache()
        self._update_summary()
        redraw = getattr(self.screen, "redraw_times", None)
        if redraw is not None:
            redraw()
        self.notify("Times are absolute (UTC)." if mode == timefmt.ABSOLUTE else "Times are relative.",
                    timeout=1.5, markup=False)

    def action_toggle_polled_column(self) -> None:
        """Show or hide the POLLED column (when each task was last asked)."""
        from .widgets import cells

        shown = cells.toggle_column("polled")
        self.task_list.clear_cache()  # the list lays its columns out again (tui.widgets.cells.extra_width)
        self.notify("POLLED column shown." if shown else "POLLED column hidden.", timeout=1.5, markup=False)

    # ------------------------------------------------------------ recovering a provider

    def action_retry_provider(self) -> None:
        """Retry now the provider of the quota table's selected row (when the
        table has the focus), else of the selected task (the detail's task): a
        refused key, an empty account or a backoff is forgotten and one probe goes."""
        picked = getattr(self.focused, "selected", None)  # the quota table's row
        name = picked() if callable(picked) and self._main_active() else None
        if not isinstance(name, str) or not name:
            key = self.task_list.cursor_key if self._main_active() else getattr(self.screen, "key", None)
            task = self.store.get(key) if key else None
            if task is None:
                return
            name = task.provider
        if self.engine is None:
            self.notify("Read-only: nothing is polled." if self.readonly else "Offline: nothing is polled.",
                        severity="warning", markup=False)
            return
        try:
            self.engine.retry_now(name)
        except KeyError:
            self.notify(f"{clean(name, 60)} is not polled: add or enable [providers.{clean(name, 60)}] in the"
                        " config, then reload it (ctrl+r).", severity="warning", markup=False)
            return
        self.notify(f"Retrying {clean(name, 60)} now.", timeout=2, markup=False)
        self._header_key = None
        self._update_header()
        self._update_quota()

    async def action_reload_config(self) -> None:
        await self.reload_config("ctrl+r")

    async def reload_config(self, why: str = "") -> list[str] | None:
        """Read the config file again and apply it without restarting: provider
        keys, rates and intervals, providers added or removed (the engine's
        ``reload``), theme, keymap, saved filters, notifications.  A config that
        does not load keeps the old one and says why in one line.  Returns the
        changes (None: not reloaded)."""
        from .config import ConfigError, load_config

        if self._reloading:
            self.notify("A config reload is already under way.", timeout=2, markup=False)
            return None
        self._reloading = True
        try:
            path = self.config_path
            # a file read at start and gone now: keep what runs (no file at start: an empty
            # config, and a file written since is read like any other)
            if path is not None and not os.path.exists(path) and getattr(self.config, "path", None):
                self.notify(f"{clean(str(path), 200)} is gone: kept the config in use.",
                            title="Config not reloaded", severity="error", markup=False)
                return None
            try:
                config = load_config(path)
            except ConfigError as exc:
                said = str(exc).splitlines()[0] if str(exc) else "bad config"
                if path is not None:  # the file's name is enough here (the title says which file)
                    said = said.replace(str(path), os.path.basename(str(path)))
                self.notify(clean(said, 300) +
                            " (kept the config in use)", title="Config not reloaded", severity="error",
                            markup=False)
                return None
            set_secrets(_secret_values(self.config) + _secret_values(config))  # old and new keys stay hidden
            changes: list[str] = []
            if self.engine is not None:
                try:
                    changes = list(await self.engine.reload(config))
                    if self.manage_engine:  # idempotent: starts a provider added to an engine that had none
                        await self.engine.start()
                except Exception as exc:  # the engine keeps what it could apply
                    self.log.error(f"engine reload failed: {exc!r}")
                    self.notify(clean(f"{type(exc).__name__}: {exc}", 300) + " (kept the config in use)",
                                title="Config not reloaded", severity="error", markup=False)
                    return None
            changes += self._apply_ui_config(config)
            old_store = getattr(getattr(self.config, "store", None), "url", None)
            if getattr(getattr(config, "store", None), "url", None) != old_store:
                changes.append("store: a new [store] url takes a restart")
            self.config = config
            if self.engine is not None:
                self.providers = list(self.engine.workers)
            self._header_key = None
            self._update_header()
            self._update_quota()
            said = "; ".join(changes[:3]) + (f"; and {len(changes) - 3} more" if len(changes) > 3 else "")
            self.notify(clean(said, 300) if changes else "Nothing changed.",
                        title=f"Config reloaded{f' ({why})' if why else ''}", timeout=4, markup=False)
            return changes
        finally:
            self._reloading = False

    def _apply_ui_config(self, config: Any) -> list[str]:
        """The ``[ui]`` part of a reload; one line per change."""
        out = []
        filters = saved_filters(config)
        if filters != self.filters:
            self.filters = filters
            out.append(f"ui: {len(filters)} saved filter(s)")
        mode = notify_mode_of(_ui(config, "notify", True))
        if mode != self.notify_mode:
            self.notify_mode = mode
            out.append(f"ui: desktop notifications {mode or 'off'}")
        keymap = {str(k): str(v) for k, v in dict(_ui(config, "keymap", None) or {}).items()}
        old = {str(k): str(v) for k, v in dict(_ui(self.config, "keymap", None) or {}).items()}
        if keymap != old:
            self.set_keymap(keymap)
            out.append("ui: keymap")
        theme = _ui(config, "theme", None)
        if theme and theme != self.theme and theme in self.available_themes:
            self.theme = theme
            out.append(f"ui: theme {theme}")
        return out

    MAIN_ONLY = frozenset({"filter", "detail", "sort", "add", "forget", "errors", "toggle_quota",
                           "saved_filter", "clear_filter", "toggle_mark", "mark_all", "clear_marks",
                           "sort_step", "sort_reverse", "toggle_follow", "toggle_polled_column"})

    # ------------------------------------------------------------ marks (daily-driver)

    def action_toggle_mark(self) -> None:
        """Mark or unmark the selected task, then move down (marking a run of rows is quick)."""
        tasks = self.task_list
        if tasks.toggle_mark() is None:
            return
        tasks.action_cursor_down()
        self._update_header()

    def action_mark_all(self) -> None:
        n = self.task_list.mark_shown()
        self._update_header()
        self.notify(f"{n} task(s) marked", timeout=1.5, markup=False)

    def action_clear_marks(self) -> None:
        n = self.task_list.clear_marks()
        self._update_header()
        if n:
            self.notify(f"Unmarked {n} task(s)", timeout=1.5, markup=False)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """List actions work (and show in the footer) only on the main screen;
        read-only, nothing that writes or polls works or shows."""
        if self.readonly and action in READONLY_OFF:
            return False
        if action in self.MAIN_ONLY and not self._main_active():
            return False
        if action in ("open_result", "download") and not self._main_active():
            return hasattr(self.screen, "result_index")  # results keys: the list and the detail only
        return True

    # ------------------------------------------------------------ palette, theme

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        for command in self._our_commands():
            if not (self.readonly and getattr(command.callback, "__name__", "").removeprefix("action_")
                    in READONLY_OFF):
                yield command

    def _our_commands(self) -> Iterable[SystemCommand]:
        """The palette's commands: every action of the table marked for it (title,
        help and the key bound now, as the keymap has it), then the saved filters."""
        bound = self.bound_keys()  # the keys bound now (public: BINDINGS and self.keymap)
        keymap = self.keymap  # what set_keymap ([ui.keymap]) asked for
        for action in actions.palette(actions.MAIN):
            if action.id in keymap:
                shown = [actions.key_display(k) for k in str(keymap[action.id]).split(",")]
            else:
                shown = bound.get(action.id) or [actions.keys_display(action)]
            keys = " ".join(dict.fromkeys(shown))
            yield SystemCommand(action.title or action.label, f"{action.description} ({keys})",
                                self._action_callback(action.action))
        for name, query in self.filters:
            yield SystemCommand(f"Saved filter: {name}", query,
                                lambda q=query: self.use_filter(q))

    def _action_callback(self, action: str) -> Callable[[], Any]:
        """A palette callback for a table action: the bound ``action_*`` method
        itself when it takes no argument, else one that runs the action string."""
        name, _, args = action.partition("(")
        method = getattr(self, f"action_{name}", None)
        if method is not None and not args:
            return method
        return lambda: self.run_action(action)

    def watch_theme(self, theme: str) -> None:
        if not self._theme_ready:
            return
        try:
            self.task_list.clear_cache()
        except Exception:
            pass
        if self.config_path is None:
            return
        try:
            from .config import save_setting

            save_setting(self.config_path, "ui.theme", theme)
        except Exception as exc:
            self.notify(f"Theme not saved: {clean(str(exc), 200)}", severity="warning", markup=False)


def make_app(config: Any, store: Any, engine: Any = None, *, offline: bool = False,
             clock: Callable[[], float] = time.time, config_path: Any = None,
             readonly: bool = False) -> TaskTUI:
    """Build the dashboard without running it (tests, snapshots, the demo)."""
    return TaskTUI(config, store, engine, offline=offline, clock=clock, config_path=config_path,
                   readonly=readonly)


def run_dashboard(config_path: Any, db_path: Any, offline: bool, readonly: bool = False,
                  listen: bool = False) -> int:
    """Load the config, open the store, start polling unless offline or
    read-only (then the store is opened read-only too), run the app."""
    from .config import ConfigError, config_path as find_config, load_config, print_warnings
    from .stores import open_store, store_target

    try:
        cpath = find_config(config_path)
        config = load_config(cpath)
    except ConfigError as exc:
        print(f"tasktui: {exc}", file=sys.stderr)
        return 2
    print_warnings(config)  # a literal key in a readable config: said before the screen takes over
    readonly = readonly or config.ui.readonly
    try:  # a SQLite file or a postgresql:// URL (--db, $TASKTUI_DB, [store] url)
        store = open_store(store_target(db_path, config.store.url), readonly=readonly, scope="live")
    except Exception as exc:
        print(f"tasktui: {exc}", file=sys.stderr)
        return 2
    try:
        engine = None
        if not offline and not readonly:
            from .engine import Engine

            engine = Engine(config, store)
            if listen:  # --listen: the push receiver runs with the engine (tui/push.py, [listen] table)
                from types import SimpleNamespace

                from .push import listen_with

                listen_with(engine, SimpleNamespace(db=db_path))
            from .autopull import attach_from_config

            attach_from_config(engine, store, config)  # [results] auto_download: results fetched as tasks succeed
        app = make_app(config, store, engine, offline=offline, config_path=cpath, readonly=readonly)
        app.hard_exit_on_hangup = True
        from .graphics import choose, terminal_fds

        fd_in, fd_out = terminal_fds()  # asked before Textual reads the keyboard
        app.graphics = choose(config.results.graphics, os.environ, fd_in=fd_in, fd_out=fd_out)
        app.run()
        return int(app.return_code or 0)
    finally:
        store.close()


def cmd_dashboard(args: Any) -> int:
    """``tasktui [--config PATH] [--db PATH] [--offline] [--readonly]``."""
    return run_dashboard(getattr(args, "config", None), getattr(args, "db", None),
                         bool(getattr(args, "offline", False)), bool(getattr(args, "readonly", False)),
                         bool(getattr(args, "listen", False)))
