"""The task detail screen: the results first (a half-block preview of the
selected one, left/right to step, links as OSC 8 hyperlinks, expiry and the
downloaded files), then every field, the state history, the provider's error
text and the last raw answer as pretty JSON.

Everything shown comes from the store (``get``, ``history``, ``raw``); all
provider text is put in ``rich.text.Text`` objects, so it is never markup.
The preview is fetched by ``tui.preview.fetch_preview`` in an async worker (a
file host, never the provider's API, no credentials), so a keystroke is
answered while it loads; only a succeeded task's results are previewed.
"""

from __future__ import annotations

import json
import re
from typing import Any, Callable

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Static

from .. import actions
from ..model import SUCCEEDED, iso
from ..text import is_web_url
from ..widgets.cells import clean, redact
from ..widgets.cells import state_label
from ..widgets.picture import Picture, PictureStatic
from ..widgets.summary import rows_table, task_rows, time_facts

# Control characters json.dumps(ensure_ascii=False) leaves alone (C1, bidi, zero-width).
_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
RAW_LIMIT = 200_000  # characters of raw JSON shown
# a link whose path names an image file (where the detail's preview starts)
_IMAGE_NAME = re.compile(r"\.(?:png|jpe?g|webp|gif)(?:[?#]|$)", re.IGNORECASE)


def pretty_json(raw: Any, limit: int | None = RAW_LIMIT) -> str:
    """The raw answer as indented JSON, with every control character escaped and
    every API key of the config redacted; cut after ``limit`` characters (None: whole)."""
    try:
        text = json.dumps(raw, indent=2, ensure_ascii=False, default=str, sort_keys=False)
    except (TypeError, ValueError):
        text = json.dumps(str(raw))
    text = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    text = redact(text)
    if limit is not None and len(text) > limit:
        text = text[:limit] + "\n… (cut)"
    return text


class DetailScreen(Screen[None]):
    """One task, in full.  ``esc`` goes back; ``c`` copies the result shown, ``1``-``9``
    show and copy result n, ``i`` copies the task id, ``J`` the last answer as JSON
    (keys from ``tui.actions``)."""

    BINDINGS = [
        *actions.bindings(actions.DETAIL),
        Binding("j,down", "scroll('down')", "Down", show=False),
        Binding("k,up", "scroll('up')", "Up", show=False),
    ]

    def __init__(self, store, key: str, clock: Callable[[], float]) -> None:
        super().__init__()
        self.store = store
        self.key = key
        self.clock = clock
        self._shown_fields: list[tuple[str, str]] = []
        self.result_index = 0  # the result shown (left/right)
        self.preview: Any = None  # tui.preview.Preview of the shown result, once fetched
        self._preview_url: str | None = None  # the link being fetched or shown
        self._cache: Any = None
        self._result_text: str | None = None
        self._picture: Picture | None = None

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="detail-body"):
            yield Static(id="detail-title")
            yield Static(id="detail-result")
            yield PictureStatic(id="detail-preview")
            yield Static(id="detail-fields")
            yield Static(Text("State history", "bold"), classes="section")
            yield Static(id="detail-history")
            yield Static(Text("Last answer from the provider", "bold"), classes="section")
            yield Static(id="detail-raw")
        yield Footer()

    def on_mount(self) -> None:
        area = self.query_one("#detail-preview", PictureStatic)
        area.picture = self._picture = Picture(area, self._draw_preview)
        self.show()
        self.set_interval(1.0, self._tick, name="detail-ages")

    def _tick(self) -> None:
        """Once a second: the fields again, so "(12s ago)" keeps up with the clock
        (the history and the raw answer change only with the task)."""
        task = self.store.get(self.key)
        if task is None:
            return
        now = self.clock()
        rows = task_rows(task, now, full=True, **time_facts(self.store, task, now))
        shown = [(name, value.plain) for name, value in rows]
        if shown != self._shown_fields:  # redraw only when a time's text moved
            self._shown_fields = shown
            self.query_one("#detail-fields", Static).update(rows_table(rows))
        self._show_result(task)  # "expires in 3 h" moves on too (redrawn only when its text changed)

    def redraw_times(self) -> None:
        """The time key (relative/absolute) was pressed: the fields again, now."""
        self._tick()

    def show(self) -> None:
        """(Re)read the task from the store and draw it."""
        task = self.store.get(self.key)
        title = self.query_one("#detail-title", Static)
        if task is None:
            title.update(Text(f"{clean(self.key, 300)} is no longer tracked.", "bold"))
            return
        now = self.clock()
        head = Text(no_wrap=True, overflow="ellipsis")
        head.append(f"{task.provider} ", "bold")
        head.append(clean(task.task_id, 300), "bold")
        head.append(f"   {state_label(task.state)}")
        title.update(head)
        rows = task_rows(task, now, full=True, **time_facts(self.store, task, now))
        self._shown_fields = [(name, value.plain) for name, value in rows]
        self.query_one("#detail-fields", Static).update(rows_table(rows))
        self._show_result(task)
        self.query_one("#detail-history", Static).update(self._history())
        raw = self.store.raw(self.key)
        body = Text("(nothing received yet)", "dim") if raw is None else Text(pretty_json(raw))
        self.query_one("#detail-raw", Static).update(body)

    def on_store_changed(self, message) -> None:
        """The app's ``tui.messages.StoreChanged`` while this screen is on top."""
        if self.key in message.keys:
            self.show()

    # ------------------------------------------------------------ results

    def selected_url(self) -> str | None:
        """The result link shown now (``o`` opens it), or None."""
        task = self.store.get(self.key)
        if task is None or not task.results:
            return None
        return task.results[min(self.result_index, len(task.results) - 1)]

    def refresh_results(self) -> None:
        """Redraw the results block (the app calls it as a download moves on)."""
        task = self.store.get(self.key)
        if task is not None:
            self._show_result(task)

    # ------------------------------------------------------------ copy

    def _copy(self, text: str, title: str, shown: str | None = None) -> None:
        self.app.copy_to_clipboard(text)
        self.notify(clean(shown if shown is not None else text, 300), title=title, markup=False)

    def action_copy_result(self, n: int | None = None) -> None:
        """Copy the result shown, or (``n``) show result n and copy it (OSC 52)."""
        task = self.store.get(self.key)
        if task is None or not task.results:
            self.notify("This task has no result to copy.", severity="warning", markup=False)
            return
        if n is not None:
            if not 1 <= n <= len(task.results):
                self.notify(f"This task has {len(task.results)} result(s): no result {n}.",
                            severity="warning", markup=False)
                return
            self.result_index = n - 1
            self._show_result(task)
        url = task.results[min(self.result_index, len(task.results) - 1)]
        if not is_web_url(url):  # a javascript: or file: "result" is never copied
            self.notify("Not an http(s) link: not copied.", severity="warning", markup=False)
            return
        self._copy(url, f"Copied result {min(self.result_index, len(task.results) - 1) + 1}"
                        f" of {len(task.results)}")

    def action_copy_id(self) -> None:
        task = self.store.get(self.key)
        task_id = task.task_id if task is not None else self.key.split(":", 1)[-1]
        self._copy(task_id, "Copied the task id")

    def action_copy_raw(self) -> None:
        """The last answer as pretty JSON, every API key of the config redacted."""
        raw = self.store.raw(self.key)
        if raw is None:
            self.notify("Nothing received for this task yet.", severity="warning", markup=False)
            return
        text = pretty_json(raw, None)
        lines = text.count("\n") + 1
        self._copy(text, "Copied the last answer (JSON)", f"{lines} line(s), {len(text):,} characters")

    def action_step(self, delta: int) -> None:
        task = self.store.get(self.key)
        if task is None or len(task.results) < 2:
            return
        self.result_index = (self.result_index + delta) % len(task.results)
        self._show_result(task)

    def _show_result(self, task) -> None:
        """The results block: "result n of N", the link (OSC 8), expiry, downloaded
        files, download progress; and the preview of the selected link."""
        from ..results import expiry_text

        box = self.query_one("#detail-result", Static)
        area = self.query_one("#detail-preview", Static)
        results = list(task.results)
        if not results and not task.files:
            box.display = area.display = False
            return
        box.display = True
        if self._result_text is None:  # first drawing: start at the first image, by the link's name
            self.result_index = next((i for i, u in enumerate(results) if _IMAGE_NAME.search(u)), 0)
        self.result_index = min(self.result_index, max(len(results) - 1, 0))
        text = Text()
        if results:
            url = results[self.result_index]
            text.append(f"Result {self.result_index + 1} of {len(results)}", "bold")
            if len(results) > 1:
                text.append("   ← → step", "dim")
            text.append("\n")
            shown = clean(url, 2048)
            if is_web_url(url):
                text.append(shown, Style(link=shown, underline=True))  # an OSC 8 hyperlink
            else:
                text.append(shown)
                text.append("  (not a web link: never fetched or opened)", "dim")
        expiry = expiry_text(task, self.clock())
        if expiry:
            text.append(f"\n{expiry}", "bold red" if expiry.startswith("expired") else "yellow")
        for path in task.files:
            text.append("\nsaved ", "dim")
            text.append(clean(path, 1024))
        progress = getattr(self.app, "downloads", {}).get(self.key)
        if progress:
            text.append(f"\n{progress}", "dim")
        if text.plain != self._result_text:
            self._result_text = text.plain
            box.update(text)
        if not results or task.state != SUCCEEDED:
            area.display = False
            return
        area.display = True
        url = results[self.result_index]
        if url != self._preview_url:
            self._preview_url = url
            self.preview = None
            area.update(Text("loading…", "dim"))
            self.run_worker(self._fetch(url), group="preview", exclusive=True, exit_on_error=False)

    async def _fetch(self, url: str) -> None:
        from ..preview import DEFAULT_MAX_BYTES, PreviewCache, fetch_preview

        if self._cache is None:
            self._cache = PreviewCache()
        cfg = getattr(self.app, "config", None)
        results = getattr(cfg, "results", None)
        mb = results.get("preview_max_mb") if isinstance(results, dict) else getattr(results, "preview_max_mb", None)
        cap = int(float(mb) * 10**6) if mb else DEFAULT_MAX_BYTES
        try:
            preview = await fetch_preview(url, self._cache, cap)
        except Exception as exc:  # noqa: BLE001 - never a "loading…" that stays
            from ..preview import Preview

            preview = Preview(url, "error", message=f"no preview: {type(exc).__name__}: {exc}")
        if url != self._preview_url:  # stepped on meanwhile
            return
        self.preview = preview
        self._draw_preview()

    def _draw_preview(self) -> None:
        """The fetched preview at the size the preview area has now."""
        from ..preview import PreviewError, as_text

        p = self.preview
        if p is None:
            return
        area = self.query_one("#detail-preview", PictureStatic)
        if p.status == "ok" and p.kind == "image" and p.data:
            width, height = area.content_size
            if width <= 0 or height <= 0:
                self.call_after_refresh(self._draw_preview)
                return
            try:  # half-blocks, or Kitty/Sixel where the terminal has them (tui/widgets/picture.py)
                assert area.picture is not None
                area.update(as_text(area.picture.draw(p.data, p.url, width, height)))
                return
            except PreviewError as exc:
                area.update(Text(clean(str(exc), 300), "dim"))
                return
        line = Text(clean(p.describe(), 300), "bold red" if p.status == "expired" else "dim")
        if p.status == "ok" and p.kind in ("video", "audio"):
            line.append("   o opens it", "dim")
        area.update(line)

    def on_resize(self) -> None:
        if self.preview is not None:
            self.call_after_refresh(self._draw_preview)

    def on_unmount(self) -> None:
        if self._picture is not None:
            self._picture.release()  # a Kitty image is freed in the terminal

    def _history(self) -> Table | Text:
        rows = self.store.history(self.key)
        if not rows:
            return Text("(no state seen yet)", "dim")
        table = Table.grid(padding=(0, 2))
        table.add_column(style="dim", no_wrap=True)
        table.add_column(no_wrap=True)
        table.add_column()
        for when, state, status in rows:
            table.add_row(iso(when) or "-", state_label(state),
                          Text(clean(status, 200), "dim") if status else "")
        return table

    def action_scroll(self, direction: str) -> None:
        body = self.query_one("#detail-body", VerticalScroll)
        if direction == "down":
            body.scroll_down(animate=False)
        else:
            body.scroll_up(animate=False)
