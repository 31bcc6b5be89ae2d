"""One picture area of a widget (the detail's preview, the summary's thumbnail),
drawn the way the terminal can (``tui.graphics``; the app's ``graphics``).

``Picture.draw(data, url, width, height)`` returns the lines to show now:

- half-blocks: the picture itself (``tui.preview.render_halfblocks``);
- Kitty or Sixel: the half-block picture at once, while a worker thread scales
  and encodes the real one (never on a keystroke's path); when it is ready the
  owner is asked to draw again and gets the Kitty placeholder cells (the upload
  went to the terminal first, through the app's ``terminal_out``), or blank
  lines of the picture's size for Sixel, painted over them after every frame
  that redrew the area (``PaintsPictures.render_lines`` asks for it; ``paint``
  writes the DCS string at the area's place on the screen, cropped to the part
  that is visible).

While another screen covers the owner's (a modal such as the help, which dims
what it covers by blending the colours of its cells), a Kitty picture is drawn
as half-blocks: the image id rides on the placeholders' colour, and a dimmed
colour names no image.  ``app.screen_change_signal`` says when; the placeholders
come back (the terminal still holds the image) when the owner's screen is on top
again.

The owner calls ``release`` when it goes: a Kitty image is freed in the
terminal.  Nothing is written where the app has no terminal (``run_test``).
"""

from __future__ import annotations

import asyncio
import itertools
import os
from typing import Any, Callable

from textual.widgets import Static

from ..graphics import HALFBLOCKS, fit_cells, kitty_delete, kitty_placeholders, kitty_upload, png_bytes, scaled
from ..graphics import sixel as sixel_of
from ..graphics import sixel_at

# Kitty image ids of this process: 24 bits (placeholders carry the id as a colour);
# random high bits so two dashboards in one terminal do not share ids.
_IDS = itertools.count(((os.getpid() & 0x3FF) << 12 | 0x400000) + 1)


class Picture:
    """See the module doc.  ``owner``: the widget that shows the lines;
    ``redraw()`` is called when an encoded picture is ready."""

    def __init__(self, owner: Any, redraw: Callable[[], None]) -> None:
        self.owner = owner
        self.redraw = redraw
        self.image_id = next(_IDS)
        self._want: tuple | None = None  # (protocol, url, width, height) asked for last
        self._ready: dict[str, Any] | None = None  # the encoded picture for _want
        self._uploaded: tuple | None = None  # what the terminal holds under image_id
        self._painted: tuple | None = None  # (crop, sixel text) of the last paint
        self._paint_asked = False
        self._watching = False  # subscribed to the app's screen changes
        self._was_covered = False
        self.top = 0  # lines of the owner's content above the picture

    @property
    def graphics(self) -> Any:
        app = getattr(self.owner, "app", None)
        return getattr(app, "graphics", HALFBLOCKS) or HALFBLOCKS

    def _protocol(self) -> str:
        g = self.graphics
        if g.protocol == "kitty":
            console = getattr(self.owner.app, "console", None)
            if getattr(console, "color_system", None) != "truecolor":
                return "halfblocks"  # the id rides on a 24-bit colour
        if g.protocol != "halfblocks" and getattr(self.owner.app, "terminal_out", None) is None:
            return "halfblocks"  # no terminal to write to (run_test, a web driver)
        return g.protocol

    def draw(self, data: bytes, url: str, width: int, height: int) -> list[Any]:
        """Rich ``Text`` lines for ``width`` x ``height`` cells (see the module doc).
        ``tui.preview.PreviewError`` for bytes that are no readable image."""
        from ..preview import image_size, render_halfblocks

        protocol = self._protocol()
        if protocol == "kitty":
            self._watch_screens()
            if self._covered():  # a modal's dimming would change the id's colour: see the module doc
                return render_halfblocks(data, width, height)
        want = (protocol, url, width, height)
        if protocol == "halfblocks":
            self._want, self._ready = want, None
            return render_halfblocks(data, width, height)
        if want == self._want and self._ready is not None:
            return self._lines(self._ready)
        if want != self._want:
            self._want, self._ready = want, None
            img_w, img_h = image_size(data)  # a bad image says so now, as half-blocks would
            cols, rows, px_w, px_h = fit_cells(img_w, img_h, width, height, self.graphics.cell)
            if cols and rows:
                self.owner.run_worker(self._encode(want, data, protocol, cols, rows, px_w, px_h),
                                      group=f"picture-{self.image_id}", exclusive=True, exit_on_error=False)
        return render_halfblocks(data, width, height)  # until the real picture is encoded

    async def _encode(self, want: tuple, data: bytes, protocol: str, cols: int, rows: int,
                      px_w: int, px_h: int) -> None:
        def work() -> dict[str, Any]:
            img = scaled(data, px_w, px_h)
            if protocol == "kitty":
                return {"protocol": protocol, "cols": cols, "rows": rows,
                        "upload": kitty_upload(png_bytes(img), self.image_id, cols, rows)}
            return {"protocol": protocol, "cols": cols, "rows": rows, "image": img, "sixel": sixel_of(img)}

        try:
            ready = await asyncio.to_thread(work)
        except Exception:  # noqa: BLE001 - the half-block picture stays
            return
        if want != self._want:
            return  # stepped on meanwhile
        self._ready = ready
        self._painted = None
        self.redraw()

    def _lines(self, ready: dict[str, Any]) -> list[Any]:
        from rich.text import Text

        cols, rows = ready["cols"], ready["rows"]
        if ready["protocol"] == "kitty":
            key = (self._want, cols, rows)
            if self._uploaded != key:
                out = getattr(self.owner.app, "terminal_out", None)
                if out is not None:
                    out(ready["upload"])  # queued ahead of the frame that shows the cells
                self._uploaded = key
            return kitty_placeholders(self.image_id, cols, rows)
        return [Text(" " * cols, end="") for _ in range(rows)]  # Sixel paints over these

    def _covered(self) -> bool:
        """Is another screen on top of the owner's?"""
        try:
            return self.owner.screen is not self.owner.app.screen
        except Exception:  # noqa: BLE001 - not mounted (any more)
            return False

    def _watch_screens(self) -> None:
        if self._watching:
            return
        try:
            self.owner.app.screen_change_signal.subscribe(self.owner, self._screen_changed)
        except Exception:  # noqa: BLE001 - not mounted yet: asked again at the next draw
            return
        self._watching = True
        self._was_covered = self._covered()

    def _screen_changed(self, _screen: Any) -> None:
        try:
            if self.owner.screen not in self.owner.app.screen_stack:
                return  # its screen is going (the detail closed): nothing to draw
        except Exception:  # noqa: BLE001 - not mounted (any more)
            return
        covered = self._covered()
        if covered != self._was_covered:
            self._was_covered = covered
            if self._want is not None and self._want[0] == "kitty":
                self.redraw()  # half-blocks while covered, the placeholders again after

    def clear(self) -> None:
        """No picture is shown now (nothing is painted until ``draw`` again)."""
        self._want = self._ready = self._painted = None

    # ------------------------------------------------------------ Sixel

    def frame(self) -> None:
        """The owner's lines are being drawn: paint the Sixel picture after the frame."""
        ready = self._ready
        if ready is None or ready["protocol"] != "sixel" or self._paint_asked:
            return
        self._paint_asked = True
        self.owner.call_after_refresh(self.paint)

    def paint(self) -> None:
        """Write the Sixel picture at its place on the screen, cropped to what is visible."""
        self._paint_asked = False
        ready = self._ready
        out = getattr(self.owner.app, "terminal_out", None)
        if ready is None or ready["protocol"] != "sixel" or out is None or self._want is None:
            return
        try:
            screen = self.owner.screen
            if not screen.is_active or not self.owner.display:
                return
            visible = screen.find_widget(self.owner).visible_region
        except Exception:  # noqa: BLE001 - not on the screen (any more)
            return
        region = self.owner.content_region
        x, y = region.x, region.y + self.top
        ch = self.graphics.cell[1]
        top = max(y, visible.y)
        bottom = min(y + ready["rows"], visible.bottom)
        if bottom <= top or x < visible.x or x + ready["cols"] > visible.right:
            return
        crop = (top - y, bottom - y)
        if crop == (0, ready["rows"]):
            self._painted = (crop, ready["sixel"])
        elif self._painted is None or self._painted[0] != crop:  # scrolled part way: encode the part shown
            img = ready["image"]
            img = img.crop((0, crop[0] * ch, img.size[0], min(img.size[1], crop[1] * ch)))
            self._painted = (crop, sixel_of(img))
        out(sixel_at(x, top, self._painted[1]))

    def release(self) -> None:
        """The owner goes: free the Kitty image in the terminal."""
        if self._uploaded is not None:
            out = getattr(self.owner.app, "terminal_out", None)
            if out is not None:
                out(kitty_delete(self.image_id))
            self._uploaded = None


class PaintsPictures:
    """A mixin for a widget with a ``picture`` (a ``Picture`` or None): each time its
    lines are drawn, a Sixel picture is painted after the frame."""

    picture: Picture | None = None

    def render_lines(self, crop: Any) -> Any:
        lines = super().render_lines(crop)  # type: ignore[misc]
        if self.picture is not None:
            self.picture.frame()
        return lines


class PictureStatic(PaintsPictures, Static):
    """A ``Static`` that may hold a picture (its ``picture``, set by its screen)."""
