"""Deterministic scenarios for the dashboard tests (imported by test_app*.py and
test_snapshots.py).  No tests here: only builders and a polling helper."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Callable

from tui.config import Config, UIConfig, load_config
from tui.model import Event, Task
from tui.store import Store

NOW = 1_800_000_000.0  # 2027-01-15T08:00:00Z: the injected clock of every app test
PROVIDERS = ("comfy", "upscayl", "qolaba", "freepik", "evolink")
HOSTILE_LABEL = "[red]x[/red] [link=https://evil.example]click[/link]"
HOSTILE_ERROR = "boom \x1b[31mred\x1b[0m \x1b]52;c;aGFjaw==\x07 [bold]loud[/bold]"


def clock() -> float:
    return NOW


def make_config(tmp_path: Path | None = None, **ui) -> Config:
    """A config with all five providers; written to a file (with a comment) when tmp_path given."""
    if tmp_path is None:
        return Config(providers={}, ui=UIConfig(**ui))
    import tomlkit

    path = tmp_path / "config.toml"
    body = tomlkit.dumps({"ui": ui}) if ui else ""
    path.write_text("# my dashboard settings (this comment must survive)\n" + body, encoding="utf-8")
    return load_config(path)


def scenario_tasks() -> list[Task]:
    """Twenty tasks over the five providers, every state, fixed times."""
    states = ["running", "queued", "succeeded", "failed", "running", "cancelled",
              "not_found", "unknown", "succeeded", "running"]
    out = []
    for i in range(20):
        provider = PROVIDERS[i % 5]
        state = states[i % len(states)]
        out.append(Task(
            provider=provider,
            task_id=f"{provider}-task-{i:03d}",
            kind="image-relight" if provider == "comfy" else None,
            label="batch-7" if i % 3 == 0 else None,
            state=state,
            provider_status=state.upper(),
            progress=float((i * 13) % 100) if state == "running" else None,
            results=[f"https://cdn.example.com/{provider}/{i}.png"] if state == "succeeded" else [],
            error="simulated failure" if state == "failed" else None,
            model="flux-dev" if i % 2 else None,
            credits=1.5 if state == "succeeded" else None,
            created_at=NOW - 600 - 60 * i,
            updated_at=NOW - 5 * i - 1,
            raw={"status": state.upper(), "id": f"{provider}-task-{i:03d}"},
        ))
    return out


def fill_store(path: Path, tasks: list[Task] | None = None, *, events: bool = True) -> Store:
    """A real SQLite store at ``path`` holding ``tasks`` (default: the scenario)."""
    store = Store(path, clock=clock)
    tasks = scenario_tasks() if tasks is None else tasks
    for t in tasks:
        store.add(t.provider, [t.task_id], kind=t.kind, label=t.label)
    store.apply(tasks)
    if events:
        store.log([
            Event(time=NOW - 30, provider="evolink", message="Too many requests", task_id="evolink-task-004",
                  status=429, kind="rate_limited", retry_after=12.0),
            Event(time=NOW - 20, provider="upscayl", message="upstream exploded", task_id="upscayl-task-001",
                  status=502, kind="transient"),
            Event(time=NOW - 10, provider="comfy", message="Invalid API key", status=401, kind="auth_failed"),
        ])
    return store


async def wait_for(pilot, condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll ``condition`` (letting the app run) until it holds; fail after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not condition():
        if loop.time() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def screen_text(app) -> str:
    """The visible lines of the task list, as plain text."""
    tasks = app.task_list
    return "\n".join(tasks.render_line(y).text for y in range(tasks.size.height))


def plain(widget) -> str:
    """The text a Static/Label shows (Text, a Rich table or a plain string), uncoloured."""
    import io

    from rich.console import Console
    from rich.text import Text

    content = widget.content
    if isinstance(content, Text):
        return content.plain
    if isinstance(content, str):
        return content
    console = Console(width=200, file=io.StringIO(), color_system=None, record=True)
    console.print(content)
    return console.export_text()


def notices(app) -> list[tuple[str, str]]:
    """(title, message) of every notification raised from now on (screens and
    widgets notify through the app), read through the public ``App.notify``
    rather than Textual's private ``_notifications``."""
    seen: list[tuple[str, str]] = []
    real = app.notify

    def notify(message, *args, **kwargs):
        seen.append((str(kwargs.get("title") or ""), str(message)))
        return real(message, *args, **kwargs)

    app.notify = notify
    return seen
