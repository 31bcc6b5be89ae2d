"""The simulator serves its result files (SimServer(files=True), `tasktui simulate
--files`, the demo): links rewritten to its own address, real pictures, typed
video and audio, 410 once expired, Range, and the whole path from an engine poll
to a preview and a download."""

from __future__ import annotations

import io

import httpx
import pytest

from tui import results as R
from tui.model import Task
from tui.preview import fetch_preview, render_halfblocks
from tui.sim.files import MARKER, file_bytes


@pytest.fixture
def files_sim(sim_factory, sim_scenario, sim_task):
    links = [f"{MARKER.decode()}evolink/task-unified-f1/{n}.{ext}" for n, ext in enumerate(("png", "mp4", "mp3"))]
    return sim_factory(sim_scenario(
        sim_task("evolink", "task-unified-f1", "succeeded", results=links),
        sim_task("evolink", "task-unified-f2", "succeeded", results=[f"{MARKER.decode()}evolink/task-unified-f2/0.jpg"],
                 expires=50.0),
    ), files=True)


def status(sim, task_id: str) -> httpx.Response:
    return httpx.get(f"{sim.base_url}/v1/tasks/{task_id}", headers={"Authorization": f"Bearer {sim.key('evolink')}"})


def test_links_point_at_the_simulator_and_serve_real_files(files_sim):
    answer = status(files_sim, "task-unified-f1").json()
    links = answer["results"]
    assert links == [f"{files_sim.base_url}/_sim/files/evolink/task-unified-f1/{n}.{ext}"
                     for n, ext in enumerate(("png", "mp4", "mp3"))]
    png, mp4, mp3 = (httpx.get(u) for u in links)
    assert png.headers["content-type"] == "image/png" and png.content.startswith(b"\x89PNG")
    from PIL import Image

    assert Image.open(io.BytesIO(png.content)).size == (96, 64)
    assert mp4.headers["content-type"] == "video/mp4" and mp4.content[4:8] == b"ftyp"
    assert mp3.headers["content-type"] == "audio/mpeg" and mp3.content.startswith(b"ID3")
    assert httpx.get(links[0]).content == png.content  # the same path, the same bytes
    part = httpx.get(links[0], headers={"Range": "bytes=10-"})
    assert part.status_code == 206 and part.content == png.content[10:]
    assert part.headers["content-range"] == f"bytes 10-{len(png.content) - 1}/{len(png.content)}"
    assert httpx.get(f"{files_sim.base_url}/_sim/files/evolink/nobody/0.png").status_code == 404


def test_an_expired_link_answers_410(files_sim):
    link = status(files_sim, "task-unified-f2").json()["results"][0]
    assert httpx.get(link).status_code == 200
    files_sim.advance(60)  # past the task's expiry in sim time
    assert httpx.get(link).status_code == 410


def test_without_files_nothing_changes(sim_factory, sim_scenario, sim_task):
    sim = sim_factory(sim_scenario(sim_task("evolink", "task-unified-n1", "succeeded",
                                            results=[f"{MARKER.decode()}evolink/task-unified-n1/0.png"])))
    assert status(sim, "task-unified-n1").json()["results"] == ["https://sim.tasktui.invalid/evolink/task-unified-n1/0.png"]
    assert httpx.get(f"{sim.base_url}/_sim/files/evolink/task-unified-n1/0.png").status_code == 404


async def test_preview_and_pull_work_against_the_simulator(files_sim, tmp_path):
    links = status(files_sim, "task-unified-f1").json()["results"]
    preview = await fetch_preview(links[0])
    assert preview.status == "ok" and preview.kind == "image"
    assert "\u2580" in "".join(line.plain for line in render_halfblocks(preview.data, 40, 10))
    video = await fetch_preview(links[1])
    assert video.kind == "video" and video.duration is not None
    task = Task("evolink", "task-unified-f1", state="succeeded", results=links)
    got = await R.pull(None, [task], tmp_path)
    assert [r.status for r in got] == ["downloaded"] * 3


def test_file_bytes_are_deterministic_and_typed():
    assert file_bytes("a/b/0.png") == file_bytes("a/b/0.png")
    assert file_bytes("a/b/0.png")[0] != file_bytes("a/c/0.png")[0]
    assert file_bytes("a/b/0.exe") is None
