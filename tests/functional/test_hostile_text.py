"""Hostile provider text through the headless surface.

A throwaway server on 127.0.0.1 answers every provider with text built to
attack a terminal: ANSI CSI, OSC 52 clipboard writes, OSC 8 links, a screen
clear, bidi overrides, C1 controls, Rich markup and a 100 KB line -- in task
statuses, errors, models, result links, error bodies and HTML pages.  After
real engine rounds into a real store, the stored task and event text is clean,
and ``tasktui ls``, ``ls --json``, ``export`` (csv, json), ``poll`` and
``quota`` print no ESC, BEL, C1 or bidi control.  (The dashboard's rendering
is tested by the dashboard's own tests.)
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import unicodedata
from pathlib import Path
from typing import Any

import pytest

from tui.config import parse_config
from tui.engine import Engine
from tui.model import PROVIDERS, TASK_FIELDS
from tui.store import Store
from http_server import HttpServer, Reply, Seen

ROOT = Path(__file__).resolve().parents[2]
WALL0 = 1_800_000_000.0
MARKUP = "[red]x[/red][link=https://evil.invalid]y[/link]"
HOSTILE = (
    "\x1b[2J\x1b[H"  # clear the screen
    "\x1b]52;c;ZXZpbCBjbGlwYm9hcmQ=\x07"  # OSC 52: write the clipboard
    "\x1b]8;;https://evil.invalid\x1b\\click\x1b]8;;\x1b\\"  # OSC 8 link
    "\x1b[31mred\x1b[0m"  # CSI colour
    "\u202eevil\u202c\u2066x\u2069"  # bidi overrides and isolates
    "\x9b31m\x85\x90dcs\x9c"  # C1 controls (8-bit CSI, NEL, DCS, ST)
    "\x07\x08\x00\x7f"  # BEL, BS, NUL, DEL
    "\U000e0069\U000e0067\U000e006e\U000e007f"  # tag characters (text a reader cannot see)
    "\u2060\u2062\u2064\u200b\ufeff\u00ad\ufff9\U000e0100"  # word joiner, invisible operators, ZWSP, BOM ...
    f"{MARKUP}"
)
LONG = "L" * 100_000  # a 100 KB line
BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def bad_chars(text: str) -> list[str]:
    """ESC, BEL, every other C0/C1 control (tab and newline aside), bidi controls and
    invisible characters (format characters, tags, variation selectors) in ``text``."""
    return sorted({repr(ch) for ch in text
                   if ch not in "\t\n" and (unicodedata.category(ch) in ("Cc", "Cf") or ch in BIDI
                                             or 0xE0000 <= ord(ch) <= 0xE0FFF)})


# ---------------------------------------------------------------- the hostile server


def _provider_of(path: str) -> str:
    if path.startswith(("/proxy/freepik", "/customers")):
        return "comfy"
    if path.startswith("/get-"):
        return "upscayl"
    if path.startswith("/getImage"):
        return "qolaba"
    if path.startswith("/v1/ai"):
        return "freepik"
    return "evolink"


def task_body(provider: str, task_id: str, status: str, error: str | None, path: str) -> tuple[int, Any]:
    link = f"https://cdn.example.invalid/{HOSTILE}.png"
    body: Any = {
        "comfy": {"data": {"task_id": task_id, "status": status, "generated": [link], "error": error}},
        "freepik": {"data": {"task_id": task_id, "status": status, "generated": [link], "error": error}},
        "upscayl": {"status": "success", "data": {"status": status, "progress": "40", "error": error,
                                                  "model": HOSTILE, "files": [{"downloadLink": link}]}},
        "qolaba": {"task_id": task_id, "status": status, "error": error, "app_id": HOSTILE,
                   "output": {"result": [link]}},
        "evolink": {"id": task_id, "status": status, "progress": 40, "model": HOSTILE, "results": [link],
                    "error": {"code": HOSTILE, "message": error} if error else None},
    }[provider]
    if provider == "freepik" and path.rstrip("/").endswith("hyperflux"):  # the list
        body = {"data": [body["data"]]}
    if provider == "upscayl" and path.startswith("/get-upscayl-history"):
        body = {"status": "success", "data": [{"taskId": task_id, **body["data"]}]}
    return 200, body


FAILED = {"comfy": "FAILED", "freepik": "FAILED", "upscayl": "PROCESSING_FAILED", "qolaba": "FAILED",
          "evolink": "failed"}


def answer(mode: str, provider: str, path: str) -> tuple[int, dict, bytes]:
    from tui.sim import bodies

    task_id = f"{provider}-hostile"
    if mode == "status":  # the status word itself is hostile: state unknown, nothing terminal
        status, body = task_body(provider, task_id, HOSTILE + LONG, None, path)
    elif mode == "failed":
        status, body = task_body(provider, task_id, FAILED[provider], HOSTILE + LONG, path)
    elif mode == "html":
        page = f"<html><head><title>{HOSTILE}</title></head><body>{LONG}</body></html>"
        return 502, {"Content-Type": "text/html"}, page.encode()
    elif mode == "text":
        return 200, {"Content-Type": "text/plain"}, (HOSTILE + LONG).encode()
    else:  # an HTTP error status with the provider's own error body
        status = int(mode)
        body = bodies.error_body(provider, status, HOSTILE + LONG, fallback=HOSTILE)
        headers = {"Retry-After": "1"} if status == 429 else {}
        return status, headers, json.dumps(body).encode()
    return status, {}, json.dumps(body).encode()


class HostileServer:
    """Every provider path answered per ``mode`` (see ``answer``), on the shared
    test server (tests/http_server.py)."""

    def __init__(self) -> None:
        self.mode = "status"
        self.server = HttpServer(self.reply).start()
        self.base_url = self.server.url

    def reply(self, seen: Seen) -> Reply:
        status, headers, content = answer(self.mode, _provider_of(seen.path), seen.path)
        return Reply(status, content, headers)

    def close(self) -> None:
        self.server.close()


@pytest.fixture
def hostile():
    server = HostileServer()
    yield server
    server.close()


def config_text(base_url: str) -> str:
    return "\n".join(f'[providers.{p}]\napi_key = "k-{p}-123456"\nbase_url = "{base_url}"\n'
                     f'poll_interval = 1\nrate_limit = "600/m"\ntimeout = 10\n' for p in PROVIDERS)


def cli(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TASKTUI_")}
    env.update(TASKTUI_CONFIG=str(tmp_path / "config.toml"), TASKTUI_DB=str(tmp_path / "tasks.db"), CI="true")
    return subprocess.run([sys.executable, "-m", "tui", *argv], cwd=ROOT, env=env, input=b"",
                          capture_output=True, timeout=120)


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t

    def wall(self) -> float:
        return WALL0 + self.t


async def engine_rounds(base_url: str, store: Store, server: HostileServer, modes: list[str]) -> Engine:
    clock = Clock()
    engine = Engine(parse_config(config_text(base_url), "hostile.toml"), store, clock=clock, wall=clock.wall,
                    rand=lambda: 1.0)
    try:
        for mode in modes:
            server.mode = mode
            clock.t += 1000.0  # past every wait
            for p in PROVIDERS:
                engine.resume_provider(p)
            await engine.poll_once()
    finally:
        await engine.stop()
    return engine


# ---------------------------------------------------------------- tests


async def test_hostile_text_is_stored_clean_and_printed_inert(tmp_path, hostile):
    (tmp_path / "config.toml").write_text(config_text(hostile.base_url), encoding="utf-8")
    store = Store(tmp_path / "tasks.db")
    for p in PROVIDERS:
        store.add(p, [f"{p}-hostile"], label="hostile")
    # the status word first (tasks stay live), then errors of every shape, then failed tasks
    engine = await engine_rounds(hostile.base_url, store, hostile,
                                 ["status", "500", "429", "html", "text", "400", "failed"])

    # the store: every task and event string is clean and bounded
    tasks = store.tasks()
    # a 400 ends some tasks (comfy: refused, evolink: an id it does not know); "failed" ends the rest
    assert {t.state for t in tasks} <= {"failed", "not_found"}, [(t.key, t.state) for t in tasks]
    events = store.events(limit=100_000)
    assert {e.kind for e in events} >= {"transient", "client_error", "rate_limited", "bad_response"}
    texts = [str(v) for t in tasks for v in t.to_dict().values() if v is not None]
    texts += [u for t in tasks for u in t.results]
    texts += [e.message for e in events]
    texts += [str(q.get("last_error")) for q in engine.quota()]
    for text in texts:
        assert bad_chars(text) == [], text[:200]
        assert len(text) <= 5000
    assert any(MARKUP in t.error for t in tasks)  # markup is kept as plain text, not interpreted away
    for p in PROVIDERS:  # the hostile status word was read and stored, cleaned, in the history
        statuses = [s for _, _, s in store.history(f"{p}:{p}-hostile") if s]
        assert any("evil" in s for s in statuses), (p, statuses)
        assert all(bad_chars(s) == [] for s in statuses)
    store.close()

    # the command line: nothing that a terminal would act on
    hostile.mode = "500"  # poll prints the provider's trouble (its last error) on stderr
    runs = {"poll": cli(tmp_path, "poll"), "ls": cli(tmp_path, "ls"), "ls --json": cli(tmp_path, "ls", "--json"),
            "export csv": cli(tmp_path, "export", "--format", "csv"),
            "export json": cli(tmp_path, "export", "--format", "json"),
            "quota": cli(tmp_path, "quota"), "quota --json": cli(tmp_path, "quota", "--json")}
    for name, r in runs.items():
        assert r.returncode == 0, (name, r.stderr[-500:])
        out = r.stdout.decode("utf-8") + r.stderr.decode("utf-8")
        assert b"\x1b" not in r.stdout + r.stderr and b"\x07" not in r.stdout + r.stderr, name
        assert bad_chars(out) == [], name
    for name in ("ls --json", "export json"):  # no escaped control either (\u001b in JSON text)
        rows = json.loads(runs[name].stdout)
        assert len(rows) == len(PROVIDERS) and all(list(row)[:len(TASK_FIELDS)] == list(TASK_FIELDS) for row in rows)
        for row in rows:
            for value in row.values():
                assert bad_chars(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value) == []
    assert "evil" in runs["ls --json"].stdout.decode()  # the text is there, only made inert


async def test_lone_surrogates_do_not_break_a_round(tmp_path):
    """``"\\ud800"`` is valid JSON; the text it decodes to cannot be encoded as UTF-8."""
    body = b'{"id": "evolink-s", "status": "processing", "progress": 5, "model": "m\\ud800x"}'

    one = HttpServer(lambda seen: (200, body)).start()
    store = Store(tmp_path / "tasks.db")
    try:
        store.add("evolink", ["evolink-s"])
        config = parse_config(f'[providers.evolink]\napi_key = "k-evolink-1"\n'
                              f'base_url = "{one.url}"\n', "s.toml")
        engine = Engine(config, store)
        try:
            await engine.poll_once()
        finally:
            await engine.stop()
        task = store.get("evolink:evolink-s")
        assert task.state == "running" and task.model is not None
        task.model.encode("utf-8")
    finally:
        store.close()
        one.close()


def test_hostile_labels_and_ids_from_the_command_line(tmp_path):
    """What scripts pipe into ``tasktui add`` is not trusted either."""
    (tmp_path / "config.toml").write_text("", encoding="utf-8")
    # argv has no NUL; the store keeps printable characters (U+E0100.. are printable: its part)
    r = cli(tmp_path, "add", "evolink", "ok-1", "--label", HOSTILE.replace("\x00", "").replace("\U000e0100", ""))
    assert r.returncode == 0, r.stderr
    r = cli(tmp_path, "add", "evolink", "bad\x1b[2Jid")
    assert r.returncode == 2 and b"\x1b" not in r.stdout + r.stderr
    for argv in (["ls"], ["ls", "--json"], ["export", "--format", "csv"], ["export", "--format", "json"]):
        r = cli(tmp_path, *argv)
        assert r.returncode == 0, r.stderr
        assert bad_chars((r.stdout + r.stderr).decode("utf-8")) == [], argv
        assert b"\\u001b" not in r.stdout and b"bad" not in r.stdout, argv
