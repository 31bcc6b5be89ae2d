"""The installed dashboard on a pseudo-terminal that speaks a graphics protocol
(tests/fake_terminal.py answers the queries as kitty, as a Sixel xterm, or as a
terminal with neither): the detail's preview reaches the terminal as a Kitty
upload with placeholder cells, as a Sixel image at the preview's place, or as
half-blocks; the picture is the result's (its four coloured quadrants)."""

from __future__ import annotations

import io
import os
import re
import shlex
import shutil
import sys

import pytest
from PIL import Image

from fake_terminal import KITTY, PLAIN, XTERM_SIXEL, FakeTerminal, decode_sixel, kitty_uploads, PLACE
from test_app_fixtures import NOW, fill_store
from tui.model import Task

COLS, ROWS = 140, 40
QUADRANTS = {(0.25, 0.25): (255, 0, 0), (0.75, 0.25): (0, 255, 0), (0.25, 0.75): (0, 0, 255),
             (0.75, 0.75): (255, 255, 255)}  # tests/file_server.py's /img.png


def start(tmp_path, file_host, personality, **extra) -> FakeTerminal:
    task = Task("evolink", "e-picture", state="succeeded", provider_status="completed",
                results=[file_host.url("/img.png")], created_at=NOW - 60, updated_at=NOW - 30,
                finished_at=NOW - 30)
    fill_store(tmp_path / "tasks.db", [task], events=False).close()
    (tmp_path / "config.toml").write_text("# offline\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "TMUX", "TASKTUI_GRAPHICS", "TERM_PROGRAM",
                                                            "KONSOLE_VERSION", "WEZTERM_EXECUTABLE")}
    env.update({"TASKTUI_DB": str(tmp_path / "tasks.db"), "TASKTUI_CONFIG": str(tmp_path / "config.toml"),
                "TASKTUI_CACHE": str(tmp_path / "cache"), "TERM": "xterm-256color", "COLORTERM": "truecolor"},
               **extra)
    return FakeTerminal([sys.executable, "-m", "tui", "--offline"], env, personality, COLS, ROWS)


def open_detail(term: FakeTerminal) -> int:
    """Open the task's detail once the list has the focus; the output's length before."""
    term.wait_for(lambda out: b"e-picture" in out and "⏎".encode() in out and b"Detail" in out)
    mark = term.mark()
    term.send(b"\r")
    term.wait_for(lambda out: b"Result 1 of 1" in out[mark:])
    return mark


def quadrant_colours(pixel, width: int, height: int) -> None:
    for (fx, fy), rgb in QUADRANTS.items():
        assert pixel(int(width * fx), int(height * fy)) == rgb, (fx, fy)


def placed(out: bytes, start: int = 0, skip: tuple[int, ...] = ()):
    """The first virtual placement in ``out[start:]`` of an image id not in ``skip``,
    once the placeholder cells of that id follow it (a frame drawn after it)."""
    for place in PLACE.finditer(out, start):
        image_id = int(place.group(1))
        rgb = ((image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255)
        colour = re.compile(rb"\x1b\[(?:[0-9;]*;)?38;2;%d;%d;%d(?:;[0-9;]*)?m" % rgb
                            + re.escape("\U0010eeee".encode()))  # a cell in the id's colour
        if image_id not in skip and colour.search(out, place.end()):
            return place
    return None


def uploaded(out: bytes, image_id: int) -> Image.Image:
    (keys, png), = [(k, p) for k, p in kitty_uploads(out) if k["i"] == str(image_id)]
    assert keys["f"] == "100" and keys["q"] == "2"  # PNG, and the terminal never answers into the keys
    return Image.open(io.BytesIO(png)).convert("RGB")


def test_kitty_terminal_gets_the_picture_uploaded_and_placeholder_cells(tmp_path, file_host):
    term = start(tmp_path, file_host, KITTY)
    try:
        # the summary pane's thumbnail first (the cursor rests on the only task)
        term.wait_for(lambda out: b"e-picture" in out and "⏎".encode() in out and b"Detail" in out)
        out = term.wait_for(lambda out: placed(out) is not None)
        thumb = placed(out)
        thumb_id, cols, rows = (int(g) for g in thumb.groups())
        img = uploaded(out, thumb_id)
        assert img.size[0] <= cols * 10 and img.size[1] <= rows * 20  # fitted to the cells (10x20 px each)
        quadrant_colours(lambda x, y: img.getpixel((x, y)), *img.size)
        # then the detail's own picture, another image
        mark = open_detail(term)
        out = term.wait_for(lambda out: placed(out, mark, skip=(thumb_id,)) is not None)
        place = placed(out, mark, skip=(thumb_id,))
        image_id, cols, rows = (int(g) for g in place.groups())
        img = uploaded(out, image_id)
        assert img.size[0] <= cols * 10 and img.size[1] <= rows * 20
        assert cols > 20 and rows > 8  # the detail's area is larger than the thumbnail's
        quadrant_colours(lambda x, y: img.getpixel((x, y)), *img.size)
        frame = out[place.end():].decode("utf-8", "replace")
        first = re.search("\U0010eeee([\u0300-\U0001d244])([\u0300-\U0001d244])", frame)
        assert first is not None and ord(first.group(1)) == 0x0305 and ord(first.group(2)) == 0x0305  # row 0, col 0
        # leaving the detail frees its image in the terminal
        mark = term.mark()
        term.send(b"\x1b")
        term.wait_for(lambda out: b"\x1b_Ga=d,d=I,i=%d,q=2\x1b\\" % image_id in out[mark:])
    finally:
        term.close()


def test_a_kitty_picture_under_a_modal_is_half_blocks_and_comes_back_after(tmp_path, file_host):
    """The help dims what it covers by blending colours, and the placeholders' colour is
    the image id: while it is open the detail's picture is half-blocks; once it closes,
    the placeholder cells are back, with no second upload (the terminal kept the image)."""
    term = start(tmp_path, file_host, KITTY)
    try:
        term.wait_for(lambda out: b"e-picture" in out and "⏎".encode() in out and b"Detail" in out)
        thumb = placed(term.wait_for(lambda out: placed(out) is not None))
        mark = open_detail(term)
        out = term.wait_for(lambda out: placed(out, mark, skip=(int(thumb.group(1)),)) is not None)
        image_id = int(placed(out, mark, skip=(int(thumb.group(1)),)).group(1))
        rgb = ((image_id >> 16) & 255, (image_id >> 8) & 255, image_id & 255)
        cell = re.compile(rb"\x1b\[(?:[0-9;]*;)?38;2;%d;%d;%d(?:;[0-9;]*)?m" % rgb
                          + re.escape("\U0010eeee".encode()))
        mark = term.mark()
        term.send(b"?")
        out = term.wait_for(lambda out: b"this screen" in out[mark:] and "\u2580".encode() * 8 in out[mark:])
        # no cell of the image once the help is drawn (before it, a frame of the detail may be)
        assert not cell.search(out, out.index(b"this screen", mark))
        mark = term.mark()
        term.send(b"\x1b")
        out = term.wait_for(lambda out: cell.search(out, mark) is not None)
        assert not [k for k, _ in kitty_uploads(out[mark:]) if k.get("i") == str(image_id)]  # not sent again
    finally:
        term.close()


def sixels(out: bytes):
    return re.finditer(rb"\x1b7\x1b\[(\d+);(\d+)H\x1bP0;1;0q(.*?)\x1b\\\x1b8", out, re.DOTALL)


def detail_sixel(out: bytes):
    """The first Sixel painted at the left edge (the detail's preview; the summary's
    thumbnail is at the right of the list)."""
    return next((m for m in sixels(out) if int(m.group(2)) <= 3), None)


def test_sixel_terminal_gets_the_picture_painted_at_the_preview(tmp_path, file_host):
    term = start(tmp_path, file_host, XTERM_SIXEL)
    try:
        # the summary pane's thumbnail first, right of the list
        out = term.wait_for(lambda out: any(int(m.group(2)) > COLS // 3 for m in sixels(out)))
        thumb = next(m for m in sixels(out) if int(m.group(2)) > COLS // 3)
        (width, height), pixels = decode_sixel(thumb.group(3))
        assert pixels[(width // 4, height // 4)][0] > 90  # red, top left
        mark = open_detail(term)
        out = term.wait_for(lambda out: detail_sixel(out[mark:]) is not None)
        m = detail_sixel(out[mark:])
        row, col = int(m.group(1)), int(m.group(2))
        assert 1 < row < ROWS and 1 <= col < COLS  # inside the screen, below the detail's title
        (width, height), pixels = decode_sixel(m.group(3))
        assert width <= COLS * 10 and height + (row - 1) * 20 <= ROWS * 20  # never past the screen's bottom
        percent = {rgb: tuple(round(v * 100 / 255) for v in rgb) for rgb in QUADRANTS.values()}
        for (fx, fy), rgb in QUADRANTS.items():  # 256 colours of the scaled picture: near the quadrant's
            got = pixels[(int(width * fx), int(height * fy))]
            assert all(abs(a - b) <= 4 for a, b in zip(got, percent[rgb])), (got, rgb)
        assert b"\x1b_Ga=t" not in out  # no Kitty upload to a terminal without it
    finally:
        term.close()


def test_a_terminal_with_neither_gets_half_blocks(tmp_path, file_host):
    term = start(tmp_path, file_host, PLAIN)
    try:
        mark = open_detail(term)
        term.wait_for(lambda out: "\u2580".encode() * 8 in out[mark:])
        out = term.output
        assert b"\x1b_Ga=t" not in out and b"\x1bP0;1;0q" not in out
    finally:
        term.close()


@pytest.mark.parametrize("personality", [KITTY, XTERM_SIXEL])
def test_the_setting_halfblocks_is_obeyed_without_asking(tmp_path, file_host, personality):
    term = start(tmp_path, file_host, personality, TASKTUI_GRAPHICS="halfblocks")
    try:
        mark = open_detail(term)
        term.wait_for(lambda out: "\u2580".encode() * 8 in out[mark:])
        out = term.output
        assert b"\x1b_Gi=31" not in out  # never asked
        assert b"\x1b_Ga=t" not in out and b"\x1bP0;1;0q" not in out
    finally:
        term.close()


async def test_the_help_screen_says_how_previews_are_drawn_and_why(tmp_path):
    from test_app_fixtures import clock, make_config, plain, wait_for
    from tui.app import make_app
    from tui.graphics import Graphics
    from tui.screens.help import HelpScreen

    app = make_app(make_config(), fill_store(tmp_path / "tasks.db", [], events=False), clock=clock)
    async with app.run_test(size=(160, 200)) as pilot:  # no terminal here: half-blocks, and it says so
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Previews  half-blocks (not asked: no terminal)" in plain(app.screen.query_one("#help-text"))
        await pilot.press("escape")
        app.graphics = Graphics("sixel", (10, 20), "the terminal has Sixel graphics")
        await pilot.press("question_mark")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        assert "Previews  Sixel (the terminal has Sixel graphics)" in plain(app.screen.query_one("#help-text"))


@pytest.mark.tmux
@pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
def test_inside_tmux_the_question_goes_to_tmux_and_half_blocks_are_drawn(tmp_path, file_host):
    """tmux answers DA1 itself (no Sixel in this build) and drops the Kitty query:
    the dashboard starts at once, draws half-blocks, and the help says why."""
    from test_tmux import Tmux

    task = Task("evolink", "e-picture", state="succeeded", provider_status="completed",
                results=[file_host.url("/img.png")], created_at=NOW - 60, updated_at=NOW - 30, finished_at=NOW - 30)
    fill_store(tmp_path / "tasks.db", [task], events=False).close()
    (tmp_path / "config.toml").write_text("# offline\n", encoding="utf-8")
    env = {"TASKTUI_DB": str(tmp_path / "tasks.db"), "TASKTUI_CONFIG": str(tmp_path / "config.toml"),
           "TASKTUI_CACHE": str(tmp_path / "cache"), "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    term = Tmux(COLS, ROWS, f"env -u CI -u TASKTUI_GRAPHICS {shlex.quote(sys.executable)} -m tui --offline", env)
    try:
        term.wait_for("⏎ Detail")
        term.press("Enter")
        term.wait_for("Result 1 of 1")
        term.wait_for("▀▀▀▀▀▀▀▀")
        term.press("?")
        term.wait_for("Keys")
        term.press("End")  # the line is at the help's foot
        term.wait_for("Previews  half-blocks (")
        screen = term.wait_for("$TASKTUI_GRAPHICS")  # the line's end: scrolled into view whole
        # the modal wraps the line: join the wrapped halves of the help's column
        column = " ".join(" ".join(line.split("│")[1].split()) for line in screen.splitlines() if line.count("│") >= 2)
        assert "Previews half-blocks (the terminal answered neither Kitty graphics nor Sixel)" in column, screen
    finally:
        term.kill()
