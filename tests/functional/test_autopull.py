"""``[results] auto_download``: results are downloaded as their tasks succeed,
from the store's change feed, against a real file host on 127.0.0.1
(tests/file_server.py) and a real SQLite store in tmp_path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from tui.autopull import AutoPull, wants
from tui.model import Task
from tui.store import Store


@pytest.fixture
def store(tmp_path: Path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


async def settled(ap: AutoPull) -> None:
    """Let the change feed's hand-over run, then wait until every queued download ended."""
    await asyncio.sleep(0)
    await ap.idle()


async def test_a_task_that_succeeds_is_downloaded_and_its_files_recorded(file_host, store, tmp_path):
    dest = tmp_path / "out"
    store.add("evolink", ["task-unified-1"], label="batch")
    ap = AutoPull(store, dest)
    await ap.start()
    try:
        store.apply([Task("evolink", "task-unified-1", state="running", progress=50)])
        await settled(ap)
        assert file_host.requests == [] and ap.tried == set()  # running: nothing fetched
        store.apply([Task("evolink", "task-unified-1", state="succeeded",
                          results=[file_host.url("/img.png"), file_host.url("/clip.mp4")])])
        await settled(ap)
    finally:
        await ap.stop()
    task = store.get("evolink:task-unified-1")
    assert [Path(p).name for p in task.files] == ["task-unified-1-1.png", "task-unified-1-2.mp4"]
    assert Path(task.files[0]).read_bytes() == file_host.body("/img.png")
    assert ap.downloaded == 2 and ap.failed == 0
    assert file_host.violations == []  # no credential ever reached the file host


async def test_tasks_that_succeeded_before_it_started_are_left_to_pull(file_host, store, tmp_path):
    store.add("comfy", ["old"])
    store.apply([Task("comfy", "old", state="succeeded", results=[file_host.url("/img.png")])])
    ap = AutoPull(store, tmp_path / "out")
    await ap.start()
    try:
        store.add("comfy", ["new"])  # an unrelated change
        await settled(ap)
    finally:
        await ap.stop()
    assert file_host.requests == [] and store.get("comfy:old").files == []


async def test_an_expired_link_is_logged_once_and_not_retried(file_host, store, tmp_path):
    store.add("upscayl", ["u1"])
    ap = AutoPull(store, tmp_path / "out")
    await ap.start()
    try:
        store.apply([Task("upscayl", "u1", state="succeeded", results=[file_host.url("/expired410")])])
        await settled(ap)
        store.apply([Task("upscayl", "u1", state="succeeded", results=[file_host.url("/expired410")], model="m")])
        await settled(ap)
    finally:
        await ap.stop()
    assert len([s for s in file_host.requests if s.path == "/expired410"]) == 1
    events = [e for e in store.events() if e.kind == "download"]
    assert len(events) == 1 and events[0].task_id == "u1" and "expired" in events[0].message
    assert ap.failed == 1 and store.get("upscayl:u1").files == []


async def test_a_success_written_by_another_process_is_downloaded(file_host, store, tmp_path):
    dest = tmp_path / "out"
    ap = AutoPull(store, dest)
    await ap.start()
    try:
        with Store(tmp_path / "tasks.db") as other:  # another process's view of the same file
            other.add("freepik", ["fp-1"], kind="image-relight")
            other.apply([Task("freepik", "fp-1", state="succeeded", results=[file_host.url("/img.webp")])])
        store.sync()  # what the dashboard's and collector's timers do
        await settled(ap)
    finally:
        await ap.stop()
    assert (dest / "freepik/image-relight/fp-1-1.webp").read_bytes() == file_host.body("/img.webp")
    assert store.get("freepik:fp-1").files == [str((dest / "freepik/image-relight/fp-1-1.webp").resolve())]


def test_what_wants_downloading():
    ok = Task("comfy", "a", state="succeeded", results=["https://h/x.png"])
    assert wants(ok)
    assert not wants(None)
    assert not wants(ok.copy(state="failed"))
    assert not wants(ok.copy(results=[]))
    assert not wants(ok.copy(files=["/tmp/x.png"]))  # already downloaded
    assert not wants(ok.copy(results=["file:///etc/passwd", "javascript:alert(1)"]))  # nothing fetchable


# ---------------------------------------------------------------- through the config and the engine


def test_auto_download_needs_a_dir():
    from tui.config import ConfigError, parse_config

    with pytest.raises(ConfigError, match="auto_download needs dir"):
        parse_config("[results]\nauto_download = true\n", "cfg.toml")
    assert parse_config("[results]\nauto_download = true\ndir = \"/tmp/x\"\n", "cfg.toml").results.auto_download
    assert parse_config("", "cfg.toml").results.auto_download is False


async def test_the_engine_runs_it_when_the_config_says_so(file_host, sim_factory, sim_task, sim_scenario, tmp_path):
    """[results] auto_download: the engine polls the simulator, the task succeeds with
    links on a file host, and the files land in dir before anyone asks."""
    from tui.autopull import attach_from_config
    from tui.config import parse_config
    from tui.engine import Engine

    links = [file_host.url("/img.png"), file_host.url("/song.mp3")]
    sim = sim_factory(sim_scenario(sim_task("evolink", "task-unified-9", "succeeded", results=links)))
    dest = tmp_path / "renders"
    config = parse_config(f'[providers.evolink]\napi_key = "{sim.key("evolink")}"\nbase_url = "{sim.base_url}"\n'
                          f'poll_interval = 0.1\nrate_limit = "600/s"\n\n[results]\nauto_download = true\n'
                          f'dir = "{dest}"\n', "cfg.toml")
    file_host.secrets.append(sim.key("evolink"))  # the provider's key must never reach the file host
    store = Store(tmp_path / "tasks.db")
    off = Engine(parse_config("", "cfg.toml"), store)
    assert attach_from_config(off, store, parse_config("", "cfg.toml")) is None and off.services == []
    engine = Engine(config, store)
    puller = attach_from_config(engine, store, config)
    assert puller is not None and engine.services == [puller]
    store.add("evolink", ["task-unified-9"])
    await engine.start()
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 60
        while len(store.get("evolink:task-unified-9").files) < 2:  # the event: files recorded in the store
            assert loop.time() < deadline, "the results were never downloaded"
            await asyncio.sleep(0.02)
    finally:
        await engine.stop()
        store.close()
    assert not puller.running
    got = sorted(p.name for p in (dest / "evolink").rglob("*") if p.is_file())
    assert got == ["task-unified-9-1.png", "task-unified-9-2.mp3"]
    assert file_host.violations == []


def test_tasktui_collect_downloads_as_tasks_succeed(file_host, sim, sim_task, tmp_path):
    """The installed `tasktui collect` with [results] auto_download: a task the
    simulator ends with links on a file host has its files in dir, recorded in the
    store, and SIGTERM still exits 0."""
    import signal

    from test_collect import Collect, provider_table, stored, until

    sim.add([sim_task("evolink", "task-unified-c1", "succeeded", results=[file_host.url("/img.webp")])])
    store = Store(tmp_path / "tasks.db")
    store.add("evolink", ["task-unified-c1"])
    store.close()
    dest = tmp_path / "renders"
    c = Collect(tmp_path, provider_table("evolink", sim.base_url, balance_interval=0.0)
                + f'[results]\nauto_download = true\ndir = "{dest}"\n')
    try:
        until(lambda: stored(c.db, "evolink:task-unified-c1").files, "the file to be recorded")
        c.signal(signal.SIGTERM)
        assert c.wait() == 0
    finally:
        c.close()
    (path,) = stored(c.db, "evolink:task-unified-c1").files
    assert Path(path).read_bytes() == file_host.body("/img.webp") and Path(path).is_relative_to(dest)
    assert file_host.violations == []
