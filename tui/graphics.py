"""Pictures in the terminal with the Kitty graphics protocol or Sixel, where the
terminal speaks one; Unicode half-blocks (``tui.preview``) everywhere else.

Which one (``choose``): ``$TASKTUI_GRAPHICS`` or ``[results] graphics`` =
"auto" (the default), "kitty", "sixel" or "halfblocks".  "auto" asks the real
terminal once, before the dashboard takes the screen (``probe``): one write of
three queries, answered in the order they were asked:

- the Kitty graphics query ``ESC _G i=31,s=1,v=1,a=q,t=d,f=24;AAAA ESC \\``
  (kitty's graphics protocol page, "Querying support and available transmission
  mediums"): a terminal that speaks the protocol answers ``ESC _G i=31;OK ESC \\``;
- ``CSI 16 t`` (xterm's window operations): the cell's size in pixels,
  ``CSI 6 ; height ; width t``;
- Primary Device Attributes ``CSI c``, which every VT100-compatible terminal
  answers (``CSI ? 62 ; 4 ; 22 c``); a ``4`` among the attributes is Sixel
  graphics (VT330/VT340 Programmer Reference Manual, DA1).  Its answer ends the
  wait: a terminal that ignores the first two has said so by then.

Inside tmux the queries reach tmux, which answers DA1 itself (with ``4`` when it
was built with Sixel) and drops the graphics query, so "auto" picks what tmux can
pass.  kitty and Ghostty draw Kitty pictures through Unicode placeholders; WezTerm
and Konsole answer the query but do not draw placeholders, so Sixel (or
half-blocks) is used there.

Drawing:

- Kitty (``kitty_upload`` + ``kitty_placeholders``): the picture, scaled to the
  cells it will fill, is sent once as PNG (``a=t,f=100``, 4096-byte chunks, quiet
  ``q=2`` so the terminal never answers into the keyboard stream) with a virtual
  placement (``a=p,U=1``); the screen then holds ordinary cells, each the
  placeholder ``U+10EEEE`` with two diacritics naming its row and column and the
  image id as its 24-bit foreground colour (the protocol's "Unicode placeholders").
  Textual lays them out, clips and redraws them like text.  Each picture area
  keeps one image id, so a new picture replaces the old one in the terminal.
- Sixel (``sixel``): the picture quantised to at most 256 colours and written as
  a DCS string at the area's place after each frame that redrew the area.

Pillow is imported lazily.  Nothing here writes to the terminal except ``probe``.
"""

from __future__ import annotations

import base64
import io
import os
import re
import select
import time
from dataclasses import dataclass
from typing import Any, Callable, Mapping

SETTINGS = ("auto", "kitty", "sixel", "halfblocks")
DEFAULT_CELL = (10, 20)  # pixels of a cell (width, height) when the terminal does not say (a VT340's)
PROBE_TIMEOUT = 1.0  # seconds: a real terminal answers DA1 in milliseconds, over SSH in a round trip
QUERY_ID = 31
QUERY = (f"\x1b_Gi={QUERY_ID},s=1,v=1,a=q,t=d,f=24;AAAA\x1b\\"  # Kitty graphics
         "\x1b[16t"  # the cell's size in pixels
         "\x1b[c")  # Primary Device Attributes: always answered, ends the wait
CHUNK = 4096  # base64 bytes per Kitty graphics escape (the protocol's limit)
PLACEHOLDER = "\U0010eeee"
MAX_SPAN = 297  # rows or columns a placeholder can name (the diacritics below)

_KITTY_ANSWER = re.compile(rb"\x1b_Gi=" + str(QUERY_ID).encode() + rb";([^\x1b]*)\x1b\\")
_CELL_ANSWER = re.compile(rb"\x1b\[6;(\d+);(\d+)t")
_DA1_ANSWER = re.compile(rb"\x1b\[\?([\d;]*)c")

# The row/column diacritics of Kitty's Unicode placeholders, in order: index n names
# row or column n.  From kitty's rowcolumn-diacritics.txt, linked from the graphics
# protocol page (https://sw.kovidgoyal.net/kitty/graphics-protocol/#unicode-placeholders).
DIACRITICS = (
    0x0305, 0x030D, 0x030E, 0x0310, 0x0312, 0x033D, 0x033E, 0x033F, 0x0346, 0x034A, 0x034B, 0x034C,
    0x0350, 0x0351, 0x0352, 0x0357, 0x035B, 0x0363, 0x0364, 0x0365, 0x0366, 0x0367, 0x0368, 0x0369,
    0x036A, 0x036B, 0x036C, 0x036D, 0x036E, 0x036F, 0x0483, 0x0484, 0x0485, 0x0486, 0x0487, 0x0592,
    0x0593, 0x0594, 0x0595, 0x0597, 0x0598, 0x0599, 0x059C, 0x059D, 0x059E, 0x059F, 0x05A0, 0x05A1,
    0x05A8, 0x05A9, 0x05AB, 0x05AC, 0x05AF, 0x05C4, 0x0610, 0x0611, 0x0612, 0x0613, 0x0614, 0x0615,
    0x0616, 0x0617, 0x0657, 0x0658, 0x0659, 0x065A, 0x065B, 0x065D, 0x065E, 0x06D6, 0x06D7, 0x06D8,
    0x06D9, 0x06DA, 0x06DB, 0x06DC, 0x06DF, 0x06E0, 0x06E1, 0x06E2, 0x06E4, 0x06E7, 0x06E8, 0x06EB,
    0x06EC, 0x0730, 0x0732, 0x0733, 0x0735, 0x0736, 0x073A, 0x073D, 0x073F, 0x0740, 0x0741, 0x0743,
    0x0745, 0x0747, 0x0749, 0x074A, 0x07EB, 0x07EC, 0x07ED, 0x07EE, 0x07EF, 0x07F0, 0x07F1, 0x07F3,
    0x0816, 0x0817, 0x0818, 0x0819, 0x081B, 0x081C, 0x081D, 0x081E, 0x081F, 0x0820, 0x0821, 0x0822,
    0x0823, 0x0825, 0x0826, 0x0827, 0x0829, 0x082A, 0x082B, 0x082C, 0x082D, 0x0951, 0x0953, 0x0954,
    0x0F82, 0x0F83, 0x0F86, 0x0F87, 0x135D, 0x135E, 0x135F, 0x17DD, 0x193A, 0x1A17, 0x1A75, 0x1A76,
    0x1A77, 0x1A78, 0x1A79, 0x1A7A, 0x1A7B, 0x1A7C, 0x1B6B, 0x1B6D, 0x1B6E, 0x1B6F, 0x1B70, 0x1B71,
    0x1B72, 0x1B73, 0x1CD0, 0x1CD1, 0x1CD2, 0x1CDA, 0x1CDB, 0x1CE0, 0x1DC0, 0x1DC1, 0x1DC3, 0x1DC4,
    0x1DC5, 0x1DC6, 0x1DC7, 0x1DC8, 0x1DC9, 0x1DCB, 0x1DCC, 0x1DD1, 0x1DD2, 0x1DD3, 0x1DD4, 0x1DD5,
    0x1DD6, 0x1DD7, 0x1DD8, 0x1DD9, 0x1DDA, 0x1DDB, 0x1DDC, 0x1DDD, 0x1DDE, 0x1DDF, 0x1DE0, 0x1DE1,
    0x1DE2, 0x1DE3, 0x1DE4, 0x1DE5, 0x1DE6, 0x1DFE, 0x20D0, 0x20D1, 0x20D4, 0x20D5, 0x20D6, 0x20D7,
    0x20DB, 0x20DC, 0x20E1, 0x20E7, 0x20E9, 0x20F0, 0x2CEF, 0x2CF0, 0x2CF1, 0x2DE0, 0x2DE1, 0x2DE2,
    0x2DE3, 0x2DE4, 0x2DE5, 0x2DE6, 0x2DE7, 0x2DE8, 0x2DE9, 0x2DEA, 0x2DEB, 0x2DEC, 0x2DED, 0x2DEE,
    0x2DEF, 0x2DF0, 0x2DF1, 0x2DF2, 0x2DF3, 0x2DF4, 0x2DF5, 0x2DF6, 0x2DF7, 0x2DF8, 0x2DF9, 0x2DFA,
    0x2DFB, 0x2DFC, 0x2DFD, 0x2DFE, 0x2DFF, 0xA66F, 0xA67C, 0xA67D, 0xA6F0, 0xA6F1, 0xA8E0, 0xA8E1,
    0xA8E2, 0xA8E3, 0xA8E4, 0xA8E5, 0xA8E6, 0xA8E7, 0xA8E8, 0xA8E9, 0xA8EA, 0xA8EB, 0xA8EC, 0xA8ED,
    0xA8EE, 0xA8EF, 0xA8F0, 0xA8F1, 0xAAB0, 0xAAB2, 0xAAB3, 0xAAB7, 0xAAB8, 0xAABE, 0xAABF, 0xAAC1,
    0xFE20, 0xFE21, 0xFE22, 0xFE23, 0xFE24, 0xFE25, 0xFE26, 0x10A0F, 0x10A38, 0x1D185, 0x1D186, 0x1D187,
    0x1D188, 0x1D189, 0x1D1AA, 0x1D1AB, 0x1D1AC, 0x1D1AD, 0x1D242, 0x1D243, 0x1D244,
)
assert len(DIACRITICS) == MAX_SPAN

# ------------------------------------------------------------------ choosing


@dataclass(frozen=True)
class Graphics:
    """How pictures are drawn: ``protocol`` "kitty", "sixel" or "halfblocks", the
    cell's size in pixels, and ``why`` (one line, for the help screen)."""

    protocol: str = "halfblocks"
    cell: tuple[int, int] = DEFAULT_CELL
    why: str = "not asked"

    def describe(self) -> str:
        name = {"kitty": "Kitty graphics", "sixel": "Sixel", "halfblocks": "half-blocks"}[self.protocol]
        return f"{name} ({self.why})"


HALFBLOCKS = Graphics()


@dataclass(frozen=True)
class Answers:
    """What the terminal said to ``QUERY``: whether DA1 came (``answered``), Kitty
    graphics "OK", Sixel among the attributes, the cell's size (width, height) in
    pixels or None."""

    answered: bool = False
    kitty: bool = False
    sixel: bool = False
    cell: tuple[int, int] | None = None


def read_answers(data: bytes) -> Answers:
    """The answers found in ``data`` (bytes read from the terminal)."""
    da1 = _DA1_ANSWER.search(data)
    kitty = _KITTY_ANSWER.search(data)
    cell = _CELL_ANSWER.search(data)
    attributes = set(da1.group(1).split(b";")) if da1 else set()
    size = None
    if cell:
        h, w = int(cell.group(1)), int(cell.group(2))
        if 0 < w < 1000 and 0 < h < 1000:
            size = (w, h)
    return Answers(answered=da1 is not None, kitty=bool(kitty and kitty.group(1) == b"OK"),
                   sixel=b"4" in attributes, cell=size)


def probe(fd_in: int, fd_out: int, timeout: float = PROBE_TIMEOUT) -> Answers:
    """Ask the terminal (``QUERY``) and read its answers until DA1 arrives or
    ``timeout`` passes.  Echo and line editing are off while it waits and restored
    after.  Never raises: a terminal that cannot be asked answered nothing."""
    import termios

    try:
        saved = termios.tcgetattr(fd_in)
    except (termios.error, OSError, ValueError):
        return Answers()
    data = b""
    try:
        quiet = termios.tcgetattr(fd_in)
        quiet[3] &= ~(termios.ICANON | termios.ECHO)
        quiet[6][termios.VMIN], quiet[6][termios.VTIME] = 0, 0
        termios.tcsetattr(fd_in, termios.TCSANOW, quiet)
        os.write(fd_out, QUERY.encode())
        deadline = time.monotonic() + timeout
        while not _DA1_ANSWER.search(data):
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([fd_in], [], [], left)
            if not ready:
                break
            chunk = os.read(fd_in, 4096)
            if not chunk:
                break
            data += chunk
    except OSError:
        pass
    finally:
        try:
            termios.tcsetattr(fd_in, termios.TCSADRAIN, saved)
        except (termios.error, OSError):
            pass
    return read_answers(data)


def window_cell(fd: int) -> tuple[int, int] | None:
    """The cell's size in pixels from the terminal's window size (TIOCGWINSZ), where
    the terminal fills in the pixel fields."""
    import fcntl
    import struct
    import termios

    try:
        rows, cols, xpix, ypix = struct.unpack("HHHH", fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8))
    except (OSError, ValueError):
        return None
    if rows and cols and xpix and ypix:
        return (max(1, xpix // cols), max(1, ypix // rows))
    return None


def _no_placeholders(env: Mapping[str, str]) -> str | None:
    """The name of a terminal known to answer the Kitty query but not to draw
    Unicode placeholders, or None."""
    if env.get("TERM_PROGRAM", "").lower() == "wezterm" or "WEZTERM_EXECUTABLE" in env:
        return "WezTerm"
    if "KONSOLE_VERSION" in env:
        return "Konsole"
    return None


def choose(setting: str | None, env: Mapping[str, str], *, fd_in: int | None, fd_out: int | None,
           ask: Callable[[int, int], Answers] = probe) -> Graphics:
    """How pictures are drawn in this terminal (see the module doc).  ``fd_in`` /
    ``fd_out``: the terminal's keyboard and screen, None when either is no terminal."""
    chosen = (env.get("TASKTUI_GRAPHICS") or setting or "auto").strip().lower()
    source = "TASKTUI_GRAPHICS" if env.get("TASKTUI_GRAPHICS") else "[results] graphics"
    if chosen not in SETTINGS:
        return Graphics(why=f"{source} = {chosen!r} is none of {', '.join(SETTINGS)}")
    if chosen == "halfblocks":
        return Graphics(why=f"{source} = halfblocks")
    if fd_in is None or fd_out is None:
        return Graphics(why="not a terminal")
    cell = window_cell(fd_out)
    if chosen in ("kitty", "sixel"):
        return Graphics(chosen, cell or DEFAULT_CELL, f"{source} = {chosen}")
    if env.get("TERM", "") in ("dumb", "") or env.get("CI"):
        return Graphics(why="TERM=dumb, not asked" if env.get("TERM") == "dumb" else
                        ("CI, not asked" if env.get("CI") else "no TERM, not asked"))
    answers = ask(fd_in, fd_out)
    cell = cell or answers.cell or DEFAULT_CELL
    if not answers.answered:
        return Graphics(why="the terminal did not answer its attributes query")
    lacking = _no_placeholders(env)
    if answers.kitty and lacking is None:
        return Graphics("kitty", cell, "the terminal answered the Kitty graphics query")
    if answers.sixel:
        why = "the terminal has Sixel graphics"
        return Graphics("sixel", cell, why + (f" ({lacking} draws no Kitty placeholders)" if lacking else ""))
    if answers.kitty:
        return Graphics(why=f"{lacking} draws no Kitty placeholders and has no Sixel")
    return Graphics(why="the terminal answered neither Kitty graphics nor Sixel")


def terminal_fds() -> tuple[int | None, int | None]:
    """The keyboard and the screen Textual will use (stdin; stderr or stdout),
    None for either that is no terminal."""
    import sys

    def fd(stream: Any) -> int | None:
        try:
            n = stream.fileno()
        except (AttributeError, OSError, ValueError):
            return None
        return n if os.isatty(n) else None

    out = fd(sys.__stderr__)
    return fd(sys.__stdin__), out if out is not None else fd(sys.__stdout__)


# ------------------------------------------------------------------ sizing


def fit_cells(img_w: int, img_h: int, width: int, height: int, cell: tuple[int, int]) -> tuple[int, int, int, int]:
    """(columns, rows, pixel width, pixel height) of a picture fitted into
    ``width`` x ``height`` cells of ``cell`` pixels, aspect ratio kept."""
    cw, ch = cell
    width, height = min(width, MAX_SPAN), min(height, MAX_SPAN)
    if img_w <= 0 or img_h <= 0 or width <= 0 or height <= 0:
        return 0, 0, 0, 0
    scale = min(width * cw / img_w, height * ch / img_h)
    px_w = max(1, min(width * cw, round(img_w * scale)))
    px_h = max(1, min(height * ch, round(img_h * scale)))
    return min(width, -(-px_w // cw)), min(height, -(-px_h // ch)), px_w, px_h


def scaled(image_bytes: bytes, px_w: int, px_h: int, background: tuple[int, int, int] = (0, 0, 0)):
    """The picture as an RGB Pillow image of ``px_w`` x ``px_h`` (transparency over
    ``background``).  ``tui.preview.PreviewError`` for unreadable bytes."""
    from PIL import Image

    from .preview import PreviewError, _open

    img = _open(image_bytes)
    try:
        if img.format == "JPEG":
            img.draft("RGB", (px_w, px_h))
        img.seek(0)
        if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            base = Image.new("RGBA", rgba.size, (*background, 255))
            img = Image.alpha_composite(base, rgba).convert("RGB")
        elif img.mode != "RGB":
            img = img.convert("RGB")
        if img.size != (px_w, px_h):
            img = img.resize((px_w, px_h), Image.Resampling.LANCZOS, reducing_gap=3.0)
        img.load()
    except PreviewError:
        raise
    except Exception as exc:  # noqa: BLE001 - a damaged file fails at decode time
        raise PreviewError(f"the image cannot be decoded ({type(exc).__name__})") from None
    return img


# ------------------------------------------------------------------ Kitty


def kitty_upload(png: bytes, image_id: int, cols: int, rows: int) -> str:
    """The escapes that send ``png`` as image ``image_id`` and place it virtually over
    ``cols`` x ``rows`` cells (replacing whatever that id held)."""
    data = base64.standard_b64encode(png).decode("ascii")
    chunks = [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)] or [""]
    out = []
    for n, chunk in enumerate(chunks):
        more = int(n < len(chunks) - 1)
        keys = f"a=t,t=d,f=100,i={image_id},q=2,m={more}" if n == 0 else f"q=2,m={more}"
        out.append(f"\x1b_G{keys};{chunk}\x1b\\")
    out.append(f"\x1b_Ga=p,U=1,i={image_id},c={cols},r={rows},q=2\x1b\\")
    return "".join(out)


def kitty_delete(image_id: int) -> str:
    """The escape that frees image ``image_id`` and its placements in the terminal."""
    return f"\x1b_Ga=d,d=I,i={image_id},q=2\x1b\\"


def kitty_placeholders(image_id: int, cols: int, rows: int) -> list[Any]:
    """Rich ``Text`` lines of placeholder cells for image ``image_id`` (below 2**24:
    its colour is the id) over ``cols`` x ``rows`` cells."""
    from rich.color import Color
    from rich.style import Style
    from rich.text import Text

    style = Style(color=Color.from_rgb((image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255))
    column = [chr(DIACRITICS[c]) for c in range(cols)]
    return [Text("".join(PLACEHOLDER + chr(DIACRITICS[r]) + d for d in column), style, no_wrap=True,
                 overflow="crop", end="") for r in range(rows)]


def png_bytes(img: Any) -> bytes:
    """``img`` as PNG (fast compression: it crosses a terminal link once)."""
    out = io.BytesIO()
    img.save(out, "PNG", compress_level=1)
    return out.getvalue()


# ------------------------------------------------------------------ Sixel

_PLUS63 = bytes(min(126, b + 63) for b in range(256))  # a column's six bits as the sixel character
_RUN = re.compile(rb"(.)\1{3,}")
_BIT_TABLES: dict[tuple[int, int], bytes] = {}


def _bit_table(colour: int, row: int) -> bytes:
    table = _BIT_TABLES.get((colour, row))
    if table is None:
        t = bytearray(256)
        t[colour] = 1 << row
        table = _BIT_TABLES[(colour, row)] = bytes(t)
    return table


def _run(m: re.Match) -> bytes:
    return b"!%d%s" % (len(m.group(0)), m.group(1))


def sixel(img: Any, colours: int = 256) -> str:
    """A Pillow RGB image as one Sixel DCS string: raster attributes (1:1 pixels,
    its size), a palette of at most ``colours`` registers in RGB percent, then
    bands six pixels tall, one ``#n`` pass per colour present, runs of four or more
    as ``!count``."""
    from PIL import Image

    width, height = img.size
    q = img.quantize(colors=colours, method=Image.Quantize.FASTOCTREE, dither=Image.Dither.NONE)
    palette = q.getpalette() or []
    data = q.tobytes()
    out = [b'\x1bP0;1;0q"1;1;%d;%d' % (width, height)]
    used = sorted(set(data))
    for c in used:
        r, g, b = palette[3 * c:3 * c + 3] if len(palette) >= 3 * c + 3 else (0, 0, 0)
        out.append(b"#%d;2;%d;%d;%d" % (c, round(r * 100 / 255), round(g * 100 / 255), round(b * 100 / 255)))
    for top in range(0, height, 6):
        rows = [data[y * width:(y + 1) * width] for y in range(top, min(top + 6, height))]
        present: set[int] = set()
        for row in rows:
            present.update(row)
        passes = []
        for c in sorted(present):
            bits = 0
            for n, row in enumerate(rows):
                bits |= int.from_bytes(row.translate(_bit_table(c, n)), "big")
            line = bits.to_bytes(width, "big").translate(_PLUS63).rstrip(b"?")
            passes.append(b"#%d%s" % (c, _RUN.sub(_run, line)))
        out.append(b"$".join(passes))
        out.append(b"-" if top + 6 < height else b"")
    out.append(b"\x1b\\")
    return b"".join(out).decode("ascii")


def sixel_at(x: int, y: int, data: str) -> str:
    """``data`` drawn with its top left corner at cell (``x``, ``y``) (0-based), the
    cursor saved before and restored after (DECSC/DECRC)."""
    return f"\x1b7\x1b[{y + 1};{x + 1}H{data}\x1b8"
