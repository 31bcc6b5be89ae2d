"""tui.graphics: how the terminal is asked which pictures it draws, the Kitty
upload and placeholder cells, the Sixel encoder (decoded back by the tests' own
reader of the format, tests/fake_terminal.py)."""

from __future__ import annotations

import base64
import io
import os
import re
import termios
import threading

import pytest
from PIL import Image
from rich.cells import cell_len

from fake_terminal import FakeTerminal, Personality, decode_sixel  # noqa: F401 - FakeTerminal for the pty tests
from tui import graphics
from tui.graphics import Answers, choose, fit_cells, kitty_placeholders, kitty_upload, read_answers, sixel


# ------------------------------------------------------------------ answers and choice

def test_answers_of_a_kitty_terminal_and_of_a_sixel_terminal():
    kitty = read_answers(b"\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;c")
    assert kitty == Answers(answered=True, kitty=True, sixel=False, cell=(10, 20))
    xterm = read_answers(b"\x1b[6;17;9t\x1b[?63;1;2;4;6;9;15;22c")  # xterm -ti vt340's DA1
    assert xterm == Answers(answered=True, kitty=False, sixel=True, cell=(9, 17))


def test_an_error_to_the_kitty_query_and_no_da1_are_read_as_such():
    assert not read_answers(b"\x1b_Gi=31;ENOTSUPPORTED:no graphics\x1b\\\x1b[?62;22c").kitty
    assert read_answers(b"").answered is False
    assert read_answers(b"\x1b[?1;2c").sixel is False  # VT100 with AVO: "2" is no Sixel
    assert read_answers(b"\x1b[?62;14c").sixel is False  # "14" holds a 4 but is not one


def ask(answers):
    return lambda fd_in, fd_out: answers


@pytest.mark.parametrize("env, answers, protocol, why", [
    ({"TERM": "xterm-kitty"}, Answers(True, True, False, (9, 18)), "kitty", "Kitty graphics query"),
    ({"TERM": "xterm-256color"}, Answers(True, False, True, None), "sixel", "Sixel"),
    ({"TERM": "xterm-256color", "TERM_PROGRAM": "WezTerm"}, Answers(True, True, True, None), "sixel",
     "WezTerm draws no Kitty placeholders"),
    ({"TERM": "xterm-256color", "KONSOLE_VERSION": "230401"}, Answers(True, True, False, None), "halfblocks",
     "Konsole"),
    ({"TERM": "xterm-256color"}, Answers(True, False, False, None), "halfblocks", "neither"),
    ({"TERM": "xterm-256color"}, Answers(), "halfblocks", "did not answer"),
    ({"TERM": "dumb"}, Answers(True, True, True, None), "halfblocks", "TERM=dumb"),
    ({"TERM": "xterm", "CI": "true"}, Answers(True, True, True, None), "halfblocks", "CI"),
])
def test_auto_picks_what_the_terminal_answered(env, answers, protocol, why):
    g = choose("auto", env, fd_in=-1, fd_out=-1, ask=ask(answers))
    assert g.protocol == protocol
    assert why in g.why
    if protocol != "halfblocks":
        assert g.cell == (answers.cell or graphics.DEFAULT_CELL)


def test_the_setting_and_the_environment_choose_without_asking():
    never = ask(None)  # asking would fail
    assert choose("halfblocks", {"TERM": "xterm"}, fd_in=0, fd_out=1, ask=never).protocol == "halfblocks"
    assert choose("sixel", {"TERM": "xterm"}, fd_in=-1, fd_out=-1, ask=never).protocol == "sixel"
    g = choose("sixel", {"TERM": "xterm", "TASKTUI_GRAPHICS": "kitty"}, fd_in=-1, fd_out=-1, ask=never)
    assert (g.protocol, g.why) == ("kitty", "TASKTUI_GRAPHICS = kitty")
    bad = choose("auto", {"TASKTUI_GRAPHICS": "ascii-art"}, fd_in=-1, fd_out=-1, ask=never)
    assert bad.protocol == "halfblocks" and "'ascii-art' is none of auto, kitty, sixel, halfblocks" in bad.why
    assert choose("kitty", {}, fd_in=None, fd_out=1, ask=never).why == "not a terminal"


def test_the_config_refuses_an_unknown_graphics_setting(tmp_path):
    from tui.config import ConfigError, load_config

    path = tmp_path / "config.toml"
    path.write_text('[results]\ngraphics = "sixel"\n', encoding="utf-8")
    assert load_config(path).results.graphics == "sixel"
    path.write_text('[results]\ngraphics = "ascii"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="graphics"):
        load_config(path)


# ------------------------------------------------------------------ asking a real pty

def _terminal(answer: bytes | None):
    """A pty: the program's side (fd) and a thread that answers the query like a terminal."""
    master, slave = os.openpty()
    seen = []

    def serve():
        data = b""
        while b"\x1b[c" not in data:
            chunk = os.read(master, 4096)
            if not chunk:
                return
            data += chunk
        seen.append(data)
        if answer is not None:
            os.write(master, answer)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    return master, slave, thread, seen


def test_probe_asks_once_reads_the_answers_and_restores_the_terminal():
    master, slave, thread, seen = _terminal(b"\x1b_Gi=31;OK\x1b\\\x1b[6;20;10t\x1b[?62;c")
    try:
        before = termios.tcgetattr(slave)
        answers = graphics.probe(slave, slave, timeout=30)  # ends at DA1's answer, long before
        assert answers == Answers(True, True, False, (10, 20))
        thread.join(10)
        assert seen == [graphics.QUERY.encode()]
        assert termios.tcgetattr(slave) == before  # echo and line editing back
    finally:
        os.close(master)
        os.close(slave)


def test_probe_of_a_terminal_that_answers_nothing_gives_up():
    master, slave, thread, seen = _terminal(None)
    try:
        assert graphics.probe(slave, slave, timeout=0.2) == Answers()
    finally:
        os.close(master)
        os.close(slave)


def test_probe_of_something_that_is_no_terminal_answers_nothing(tmp_path):
    with open(tmp_path / "f", "w+b") as f:
        assert graphics.probe(f.fileno(), f.fileno(), timeout=5) == Answers()


# ------------------------------------------------------------------ sizes

def test_fit_keeps_the_aspect_ratio_in_pixels():
    assert fit_cells(4000, 3000, 60, 20, (10, 20)) == (54, 20, 533, 400)  # height-bound
    assert fit_cells(1000, 100, 30, 20, (10, 20)) == (30, 2, 300, 30)  # width-bound
    assert fit_cells(0, 10, 30, 20, (10, 20)) == (0, 0, 0, 0)
    cols, rows, _, _ = fit_cells(10, 10, 1000, 1000, (1, 1))
    assert cols <= graphics.MAX_SPAN and rows <= graphics.MAX_SPAN


# ------------------------------------------------------------------ Kitty

def test_kitty_upload_chunks_the_png_and_places_it_virtually():
    png = os.urandom(10_000)
    text = kitty_upload(png, 0x41_02_03, 12, 5)
    escapes = re.findall(r"\x1b_G([^;\x1b]*)(?:;([^\x1b]*))?\x1b\\", text)
    first, *rest, place = escapes
    assert first[0] == "a=t,t=d,f=100,i=4260355,q=2,m=1"
    assert [k for k, _ in rest] == ["q=2,m=1"] * (len(rest) - 1) + ["q=2,m=0"]  # later chunks: only q and m
    assert all(len(chunk) <= graphics.CHUNK for _, chunk in [first, *rest])
    assert base64.standard_b64decode("".join(chunk for _, chunk in [first, *rest])) == png
    assert place == ("a=p,U=1,i=4260355,c=12,r=5,q=2", "")
    assert graphics.kitty_delete(7) == "\x1b_Ga=d,d=I,i=7,q=2\x1b\\"


def test_kitty_placeholders_name_each_cell_and_carry_the_id_as_colour():
    lines = kitty_placeholders(0x41_02_03, 4, 3)
    assert len(lines) == 3
    for r, line in enumerate(lines):
        assert cell_len(line.plain) == 4  # one cell each: Textual lays them out as text
        cells = re.findall("\U0010eeee(.)(.)", line.plain)
        assert [(ord(a), ord(b)) for a, b in cells] == [(graphics.DIACRITICS[r], graphics.DIACRITICS[c])
                                                        for c in range(4)]
        assert line.style.color.triplet == (0x41, 0x02, 0x03)


# ------------------------------------------------------------------ Sixel

def quadrants(w: int, h: int) -> Image.Image:
    img = Image.new("RGB", (w, h), (255, 255, 255))
    for x in range(w):
        for y in range(h):
            left, top = x < w // 2, y < h // 2
            img.putpixel((x, y), (255, 0, 0) if left and top else (0, 255, 0) if top else
                         (0, 0, 255) if left else (255, 255, 255))
    return img


@pytest.mark.parametrize("size", [(13, 7), (40, 24), (1, 1)])
def test_sixel_decodes_back_to_every_pixel(size):
    img = quadrants(*size)
    text = sixel(img)
    assert text.startswith("\x1bP0;1;0q") and text.endswith("\x1b\\")
    declared, pixels = decode_sixel(text[len("\x1bP0;1;0q"):-2].encode())
    assert declared == size
    assert len(pixels) == size[0] * size[1]  # every pixel set, none outside
    for (x, y), rgb in pixels.items():
        assert rgb == tuple(round(v * 100 / 255) for v in img.getpixel((x, y)))


def test_sixel_compresses_runs():
    text = sixel(Image.new("RGB", (300, 12), (10, 20, 30)))
    assert "!300" in text and len(text) < 100
    _, pixels = decode_sixel(text[len("\x1bP0;1;0q"):-2].encode())
    assert len(pixels) == 300 * 12


def test_scaled_reads_the_bytes_and_fits_them():
    buf = io.BytesIO()
    quadrants(64, 32).save(buf, "PNG")
    img = graphics.scaled(buf.getvalue(), 20, 10)
    assert img.size == (20, 10) and img.mode == "RGB"
    assert img.getpixel((0, 0)) == (255, 0, 0) and img.getpixel((19, 9)) == (255, 255, 255)
    from tui.preview import PreviewError

    with pytest.raises(PreviewError):
        graphics.scaled(b"not an image", 20, 10)
