"""The webhook receiver (tui/push.py) over real HTTP on 127.0.0.1: uvicorn serves it
in the test's own event loop (the store is used from that one thread, as in the app),
httpx posts to it, and a real SQLite file in tmp_path holds what it wrote."""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import stat

import httpx
import pytest

from tui.model import Task
from tui.providers.evolink import Evolink
from tui.providers.freepik import Freepik
from tui.push import PushReceiver, load_token, sign, start_server, verify_signature, webhook_urls
from tui.store import Store

# Webhook payloads are "the same as the corresponding GET endpoint response, but without
# the `data` field" (docs.freepik.com hyperflux/mystic/imagen3 pages, providers.md §4).
# The GET bodies are the task-detail examples of the HyperFlux docs
# (seeds/freepik-hyperflux-list-tasks.md; tests/data/published_freepik.py TASK_COMPLETED),
# so these are those examples with `data` taken off.
TASK_ID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"
FP_IN_PROGRESS = {"generated": [], "task_id": TASK_ID, "status": "IN_PROGRESS"}
FP_COMPLETED = {"generated": ["https://ai-statics.freepik.com/completed_task_image.jpg"],
                "task_id": TASK_ID, "status": "COMPLETED"}
# EvoLink posts "the same object as the task query" to callback_url (providers.md §5);
# this is the 200 example of seeds/evolink-task-detail.md (docs.evolink.ai get-task-detail).
EVO_ID = "task-unified-1756817821-4x3rx6ny"
EVO_COMPLETED = {"created": 1756817821, "id": EVO_ID, "model": "gpt-4o-image", "object": "image.generation.task",
                 "progress": 100, "results": ["http://example.com/image.jpg"], "status": "completed",
                 "task_info": {"can_cancel": False}, "type": "image"}

SECRET = "fp-webhook-secret-0123456789"
TOKEN = "tok_" + "A1b2C3d4E5f6G7h8I9j0" * 2
NOW = 1_800_000_000.0  # the receiver's clock (webhook-timestamp is checked against it)
FP_KEY = f"freepik:{TASK_ID}"
EVO_KEY = f"evolink:{EVO_ID}"


class Clock:
    def __init__(self, now: float = NOW) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "tasks.db")
    yield s
    s.close()


@pytest.fixture
async def serve():
    """serve(receiver) -> base URL of it running on 127.0.0.1 (stopped after the test)."""
    running = []

    async def start(receiver: PushReceiver) -> str:
        server, task, port = await start_server(receiver.app, "127.0.0.1", 0)
        running.append((server, task))
        return f"http://127.0.0.1:{port}"

    yield start
    for server, task in running:
        server.should_exit = True
        await task


def make_receiver(store, clock=None, hints=None, **kw) -> PushReceiver:
    return PushReceiver(store, {"freepik": Freepik("fp-api-key"), "evolink": Evolink("evo-api-key")},
                        secrets={"freepik": [SECRET]}, token=TOKEN,
                        on_hint=(hints.append if hints is not None else None),
                        clock=clock or Clock(), **kw)


def signed(body: dict | bytes, msg_id: str, ts: float = NOW, secret: str | bytes = SECRET,
           signature: str | None = None) -> tuple[bytes, dict]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    stamp = str(int(ts))
    return raw, {"webhook-id": msg_id, "webhook-timestamp": stamp,
                 "webhook-signature": signature or sign(secret, msg_id, stamp, raw),
                 "content-type": "application/json"}


async def post_fp(base: str, body, msg_id: str, path: str = "/hooks/freepik", **kw) -> httpx.Response:
    raw, headers = signed(body, msg_id, **kw)
    async with httpx.AsyncClient() as client:
        return await client.post(base + path, content=raw, headers=headers)


async def post_evo(base: str, body, token: str = TOKEN) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        return await client.post(f"{base}/hooks/evolink/{token}", json=body)


def server_log(caplog) -> str:
    """What the receiver's side logged (tui.*, uvicorn.*), not the test client's own lines."""
    return "\n".join(r.getMessage() for r in caplog.records if r.name.split(".")[0] in ("tui", "uvicorn"))


def push_counts(store, provider: str = "freepik") -> dict:
    return (store.counters().get(provider) or {}).get("push") or {}


# ---------------------------------------------------------------- signatures (no server)


def test_signature_forms_and_rotation():
    body = b'{"task_id":"x","status":"COMPLETED"}'
    right = sign(SECRET, "msg_1", "1800000000", body)
    assert verify_signature([SECRET], "msg_1", "1800000000", body, right)
    assert verify_signature([SECRET], "msg_1", "1800000000", body, f"v1,AAAA {right}")  # rotation list
    assert not verify_signature([SECRET], "msg_2", "1800000000", body, right)  # id is signed
    assert not verify_signature([SECRET], "msg_1", "1800000001", body, right)  # timestamp is signed
    assert not verify_signature([SECRET], "msg_1", "1800000000", body + b" ", right)  # body is signed
    assert not verify_signature(["other"], "msg_1", "1800000000", body, right)
    assert not verify_signature([SECRET], "msg_1", "1800000000", body, right.replace("v1,", "v1a,"))
    assert not verify_signature([SECRET], "msg_1", "1800000000", body, "")
    # Standard Webhooks: a whsec_ secret is base64 of the key; Freepik's page: the secret's bytes.
    key = os.urandom(24)
    whsec = "whsec_" + base64.b64encode(key).decode()
    assert verify_signature([whsec], "m", "1", body, sign(key, "m", "1", body))
    assert verify_signature([whsec], "m", "1", body, sign(whsec, "m", "1", body))


def test_parse_webhook_reads_published_bodies():
    fp = Freepik("k")
    done = fp.parse_webhook(json.dumps(FP_COMPLETED).encode())
    assert (done.task_id, done.state, done.results) == (TASK_ID, "succeeded", FP_COMPLETED["generated"])
    assert fp.parse_webhook({"data": FP_IN_PROGRESS}).state == "running"  # still wrapped: read too
    evo = Evolink("k").parse_webhook(json.dumps(EVO_COMPLETED).encode())
    assert (evo.task_id, evo.state) == (EVO_ID, "succeeded")
    from tui.model import BadResponse

    for bad in (b"not json", b"[]", b'{"status": "COMPLETED"}', b"\xff\xfe\x00"):
        with pytest.raises(BadResponse):
            fp.parse_webhook(bad)
        with pytest.raises(BadResponse):
            Evolink("k").parse_webhook(bad)


# ---------------------------------------------------------------- Freepik over HTTP


async def test_signed_right_is_stored_before_the_answer(store, serve):
    store.add("freepik", [TASK_ID], kind="mystic")
    base = await serve(make_receiver(store))
    r = await post_fp(base, FP_COMPLETED, "msg_done")
    assert r.status_code == 200
    # The answer came after the write: the same store object (and the file) has it.
    task = store.get(FP_KEY)
    assert (task.state, task.results, task.kind) == ("succeeded", FP_COMPLETED["generated"], "mystic")
    with Store(store.path, readonly=True) as other:
        assert other.get(FP_KEY).state == "succeeded"
    counts = push_counts(store)  # written in the same transaction
    assert counts["accepted"] == 1 and counts["received"] == 1


async def test_signed_wrong_is_401_and_nothing_stored(store, serve, caplog):
    caplog.set_level(logging.DEBUG)
    store.add("freepik", [TASK_ID])
    rev = store.get(FP_KEY).rev
    receiver = make_receiver(store)
    base = await serve(receiver)
    bad = [await post_fp(base, FP_COMPLETED, "msg_a", secret="not-the-secret"),
           await post_fp(base, FP_COMPLETED, "msg_b", signature="v1," + base64.b64encode(b"x" * 32).decode()),
           await post_fp(base, FP_COMPLETED, "msg_c", signature="garbage")]
    async with httpx.AsyncClient() as client:  # no webhook headers at all
        bad.append(await client.post(base + "/hooks/freepik", json=FP_COMPLETED))
    assert [r.status_code for r in bad] == [401, 401, 401, 401]
    assert store.get(FP_KEY).state == "unknown" and store.get(FP_KEY).rev == rev
    receiver.flush()
    assert push_counts(store)["rejected"]["bad_signature"] == 4
    assert push_counts(store)["accepted"] == 0
    logged = server_log(caplog)
    assert "refused (bad signature)" in logged
    assert SECRET not in logged and "garbage" not in logged and "v1," not in logged


async def test_replayed_and_duplicated_deliveries(store, serve):
    store.add("freepik", [TASK_ID])
    clock = Clock()
    base = await serve(make_receiver(store, clock))
    first = await post_fp(base, FP_COMPLETED, "msg_1")
    again = await post_fp(base, FP_COMPLETED, "msg_1")  # the provider's retry: same id, same signature
    assert (first.status_code, again.status_code) == (200, 200)
    assert again.json().get("duplicate") is True
    counts = push_counts(store)
    assert counts["accepted"] == 1
    # A captured delivery sent again under another id: the id is signed, so it fails.
    raw, headers = signed(FP_COMPLETED, "msg_1")
    headers["webhook-id"] = "msg_other"
    async with httpx.AsyncClient() as client:
        assert (await client.post(base + "/hooks/freepik", content=raw, headers=headers)).status_code == 401
    # The same capture replayed after the window: stale.
    clock.now += 301
    late = await post_fp(base, FP_COMPLETED, "msg_1", ts=NOW)
    assert late.status_code == 401


async def test_stale_timestamps_are_refused(store, serve):
    store.add("freepik", [TASK_ID])
    receiver = make_receiver(store)
    base = await serve(receiver)
    old = await post_fp(base, FP_COMPLETED, "msg_old", ts=NOW - 301)
    future = await post_fp(base, FP_COMPLETED, "msg_future", ts=NOW + 301)
    edge = await post_fp(base, FP_IN_PROGRESS, "msg_edge", ts=NOW - 299)
    assert (old.status_code, future.status_code, edge.status_code) == (401, 401, 200)
    assert store.get(FP_KEY).state == "running"
    receiver.flush()
    assert push_counts(store)["rejected"]["stale"] == 2


async def test_out_of_order_never_moves_a_task_back(store, serve):
    store.add("freepik", [TASK_ID])
    base = await serve(make_receiver(store))
    assert (await post_fp(base, FP_COMPLETED, "msg_2")).status_code == 200
    late = await post_fp(base, FP_IN_PROGRESS, "msg_1")  # sent first, arrives last
    assert late.status_code == 200  # valid: answered, so it is not retried
    task = store.get(FP_KEY)
    assert (task.state, task.provider_status) == ("succeeded", "COMPLETED")
    assert [h[1] for h in store.history(FP_KEY)] == ["succeeded"]
    counts = push_counts(store)
    assert (counts["out_of_order"], counts["accepted"]) == (1, 1)
    # A task ends once: a FAILED after COMPLETED is refused the same way.
    failed = {**FP_COMPLETED, "status": "FAILED", "generated": []}
    assert (await post_fp(base, failed, "msg_3")).status_code == 200
    assert store.get(FP_KEY).state == "succeeded"


async def test_too_large_is_413(store, serve):
    store.add("freepik", [TASK_ID])
    receiver = make_receiver(store)
    base = await serve(receiver)
    big = json.dumps({**FP_COMPLETED, "pad": "x" * 65536}).encode()
    r = await post_fp(base, big, "msg_big")
    assert r.status_code == 413

    async def chunks():  # no Content-Length: the cap holds while reading
        raw, _ = signed(big, "msg_big2")
        for i in range(0, len(raw), 4096):
            yield raw[i:i + 4096]

    _, headers = signed(big, "msg_big2")
    async with httpx.AsyncClient() as client:
        chunked = await client.post(base + "/hooks/freepik", content=chunks(), headers=headers)
        evo = await client.post(f"{base}/hooks/evolink/{TOKEN}", content=b"{" + b" " * 70000 + b"}")
    assert (chunked.status_code, evo.status_code) == (413, 413)
    assert store.get(FP_KEY).state == "unknown"
    # just under the cap is read
    fits = json.dumps({**FP_COMPLETED, "pad": "x" * (65536 - 200)}).encode()
    assert len(fits) <= 65536
    assert (await post_fp(base, fits, "msg_fits")).status_code == 200
    receiver.flush()
    assert push_counts(store)["rejected"]["too_large"] == 2
    assert push_counts(store, "evolink")["rejected"]["too_large"] == 1


async def test_rate_cap_per_source_is_429(store, serve):
    store.add("freepik", [TASK_ID])
    receiver = make_receiver(store, rate=0.001, burst=3)
    base = await serve(receiver)
    codes = [(await post_fp(base, FP_IN_PROGRESS, f"msg_{i}")).status_code for i in range(4)]
    assert codes == [200, 200, 200, 429]
    r = await post_evo(base, EVO_COMPLETED)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
    receiver.flush()
    assert push_counts(store)["rejected"]["rate"] == 1


async def test_untracked_task_from_a_signed_webhook_is_added(store, serve):
    base = await serve(make_receiver(store))
    assert (await post_fp(base, FP_COMPLETED, "msg_new")).status_code == 200
    task = store.get(FP_KEY)
    assert (task.label, task.state) == ("webhook", "succeeded")
    other = {**FP_IN_PROGRESS, "task_id": "b0b1b2b3-0000-4000-8000-000000000001"}
    assert (await post_fp(base, other, "msg_kind", path="/hooks/freepik/mystic")).status_code == 200
    assert store.get(f"freepik:{other['task_id']}").kind == "mystic"
    assert push_counts(store)["discovered"] == 2
    # A task the user removed is not brought back.
    store.remove([FP_KEY])
    assert (await post_fp(base, FP_COMPLETED, "msg_again")).status_code == 200
    assert store.get(FP_KEY) is None


async def test_a_store_that_fails_gets_no_2xx_and_the_retry_lands(store, serve, tmp_path):
    store.add("freepik", [TASK_ID])
    base = await serve(make_receiver(store))
    os.remove(store.path)  # the database file is gone: every write raises StoreWriteError
    r = await post_fp(base, FP_COMPLETED, "msg_1")
    assert r.status_code == 503 and "retry-after" in r.headers
    assert store.get(FP_KEY).state == "unknown"
    Store(store.path).close()  # a file is back at the path
    retry = await post_fp(base, FP_COMPLETED, "msg_1")  # the provider's retry, same id
    assert retry.status_code == 200
    assert store.get(FP_KEY).state == "succeeded"
    with Store(store.path, readonly=True) as other:
        assert other.get(FP_KEY).state == "succeeded"
    assert push_counts(store)["store_failed"] == 1


async def test_counters_keep_the_rest_of_the_blob_and_survive_a_restart(store, serve):
    store.add("freepik", [TASK_ID])
    store.save_counters("freepik", {"requests": 7, "state": "ok"})
    base = await serve(make_receiver(store))
    assert (await post_fp(base, FP_IN_PROGRESS, "msg_1")).status_code == 200
    blob = store.counters()["freepik"]
    assert blob["requests"] == 7 and blob["push"]["accepted"] == 1
    again = make_receiver(store)
    assert again.counts["freepik"]["accepted"] == 1


# ---------------------------------------------------------------- EvoLink over HTTP


async def test_evolink_callback_is_a_hint_for_tracked_tasks(store, serve):
    store.add("evolink", [EVO_ID])
    hints: list[str] = []
    clock = Clock()
    receiver = make_receiver(store, clock, hints)
    base = await serve(receiver)
    r = await post_evo(base, EVO_COMPLETED)
    assert r.status_code == 202 and hints == [EVO_KEY]
    assert store.get(EVO_KEY).state == "unknown"  # a hint, never the truth: nothing stored
    again = await post_evo(base, EVO_COMPLETED)  # EvoLink's retry: one poll is enough
    assert again.status_code == 202 and hints == [EVO_KEY]
    clock.now += 60
    assert (await post_evo(base, EVO_COMPLETED)).status_code == 202 and hints == [EVO_KEY, EVO_KEY]


async def test_evolink_wrong_token_and_untracked_ids(store, serve, caplog):
    caplog.set_level(logging.DEBUG)
    store.add("evolink", [EVO_ID])
    hints: list[str] = []
    receiver = make_receiver(store, hints=hints)
    base = await serve(receiver)
    wrong = await post_evo(base, EVO_COMPLETED, token="tok_" + "x" * 40)
    assert wrong.status_code == 404 and hints == []
    untracked = await post_evo(base, {**EVO_COMPLETED, "id": "task-unified-999-stranger"})
    assert untracked.status_code in (200, 204) and hints == []
    assert store.get("evolink:task-unified-999-stranger") is None
    bad = await post_evo(base, {"no": "task"})
    assert bad.status_code == 400 and hints == []
    receiver.flush()
    rejected = push_counts(store, "evolink")["rejected"]
    assert (rejected["unknown_token"], rejected["unknown_task"], rejected["bad_payload"]) == (1, 1, 1)
    logged = server_log(caplog)
    assert "unknown token" in logged and TOKEN not in logged


async def test_evolink_finished_task_is_not_polled_again(store, serve):
    store.add("evolink", [EVO_ID])
    store.apply([Task("evolink", EVO_ID, state="succeeded", provider_status="completed")])
    hints: list[str] = []
    base = await serve(make_receiver(store, hints=hints))
    r = await post_evo(base, EVO_COMPLETED)
    assert r.status_code == 200 and hints == []


async def test_evolink_task_added_by_another_process_is_seen(store, serve):
    hints: list[str] = []
    base = await serve(make_receiver(store, hints=hints))
    with Store(store.path) as other:  # `tasktui add` in another process
        other.add("evolink", [EVO_ID])
    assert (await post_evo(base, EVO_COMPLETED)).status_code == 202 and hints == [EVO_KEY]


# ---------------------------------------------------------------- token, URLs, CLI


def test_token_file_is_made_once_with_mode_0600(tmp_path):
    path = tmp_path / "data" / "push-token"
    token = load_token(path)
    assert len(token) >= 32 and stat.S_IMODE(path.stat().st_mode) == 0o600
    assert load_token(path) == token
    os.chmod(path, 0o644)
    assert load_token(path) == token and stat.S_IMODE(path.stat().st_mode) == 0o600


def test_webhook_urls():
    urls = webhook_urls("https://example.org/", "tasktui/", TOKEN)
    assert urls == {"freepik": "https://example.org/tasktui/hooks/freepik",
                    "evolink": f"https://example.org/tasktui/hooks/evolink/{TOKEN}"}
    with pytest.raises(ValueError):
        webhook_urls("ftp://example.org", "", TOKEN)
    with pytest.raises(ValueError):
        webhook_urls("https://example.org", "a b", TOKEN)


async def test_prefix_routes(store, serve):
    store.add("freepik", [TASK_ID])
    store.add("evolink", [EVO_ID])
    hints: list[str] = []
    base = await serve(make_receiver(store, hints=hints, path_prefix="/tt"))
    assert (await post_fp(base, FP_IN_PROGRESS, "m1")).status_code == 404
    assert (await post_fp(base, FP_IN_PROGRESS, "m1", path="/tt/hooks/freepik")).status_code == 200
    async with httpx.AsyncClient() as client:
        r = await client.post(f"{base}/tt/hooks/evolink/{TOKEN}", json=EVO_COMPLETED)
        get = await client.get(f"{base}/tt/hooks/freepik")
    assert r.status_code == 202 and hints == [EVO_KEY]
    assert get.status_code == 405


def test_cmd_listen_prints_the_urls(tmp_path, capsys):
    from tui.push import add_parser, cmd_listen

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    db = tmp_path / "tasks.db"
    args = parser.parse_args(["listen", "--print-urls", "--public-url", "https://example.org",
                              "--path-prefix", "/tt"])
    args.config, args.db = str(tmp_path / "none.toml"), str(db)
    assert cmd_listen(args) == 0
    out = capsys.readouterr()
    token = (tmp_path / "push-token").read_text().strip()
    assert f"evolink\tcallback_url\thttps://example.org/tt/hooks/evolink/{token}" in out.out
    assert "webhook_secret" in out.err  # no Freepik route without a secret
    assert stat.S_IMODE((tmp_path / "push-token").stat().st_mode) == 0o600


def test_cmd_listen_on_a_taken_port_or_a_bad_one_says_so_in_one_line(tmp_path, capsys):
    """A port another program holds: "cannot listen on HOST:PORT", exit 2, no traceback;
    a port number out of range is refused by the command line itself."""
    import socket

    from tui.push import add_parser, cmd_listen

    parser = argparse.ArgumentParser(prog="tasktui")
    add_parser(parser.add_subparsers(dest="command"))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        args = parser.parse_args(["listen", "--port", str(port)])
        args.config, args.db = str(tmp_path / "none.toml"), str(tmp_path / "tasks.db")
        assert cmd_listen(args) == 2
    err = capsys.readouterr().err
    assert f"tasktui: cannot listen on 127.0.0.1:{port}" in err and "Traceback" not in err
    for bad in ("70000", "-5", "http"):
        with pytest.raises(SystemExit) as exit_:
            parser.parse_args(["listen", "--port", bad])
        assert exit_.value.code == 2
        assert "is not a port" in capsys.readouterr().err


async def test_out_of_order_across_processes(store, serve):
    """Another process (a poller) stored COMPLETED since our last look: a late
    IN_PROGRESS must still not move the task back."""
    store.add("freepik", [TASK_ID])
    base = await serve(make_receiver(store))
    with Store(store.path) as other:
        other.apply([Task("freepik", TASK_ID, state="succeeded", provider_status="COMPLETED",
                          results=FP_COMPLETED["generated"])])
    assert (await post_fp(base, FP_IN_PROGRESS, "msg_late")).status_code == 200
    assert store.get(FP_KEY).state == "succeeded"
    with Store(store.path, readonly=True) as check:
        assert check.get(FP_KEY).state == "succeeded"


async def test_a_kind_path_that_is_not_one_we_hand_out_is_404(store, serve):
    base = await serve(make_receiver(store))
    for n, odd in enumerate(("a%20b", "mystic%3Bx", "a//b", "%1B%5B31m", "x" * 201)):
        r = await post_fp(base, FP_COMPLETED, f"msg_k{n}", path=f"/hooks/freepik/{odd}")
        assert r.status_code == 404, odd
    assert store.get(FP_KEY) is None


def test_listen_command_polls_a_hinted_task_against_the_simulator(sim, tmp_path):
    """`tasktui listen` as its own process (no engine): an EvoLink callback for a tracked
    task makes it poll that task once (the simulator) and store the answer."""
    import subprocess
    import sys
    import time

    config = tmp_path / "config.toml"
    config.write_text(sim.config_toml(("evolink",)))
    db = tmp_path / "tasks.db"
    with Store(db) as s:
        s.add("evolink", ["evolink-done"])
    script = ("import sys, argparse\n"
              "from tui.push import add_parser, cmd_listen\n"
              "p = argparse.ArgumentParser(); add_parser(p.add_subparsers(dest='command'))\n"
              "a = p.parse_args(['listen', '--port', '0']); a.config, a.db = sys.argv[1], sys.argv[2]\n"
              "sys.exit(cmd_listen(a))\n")
    proc = subprocess.Popen([sys.executable, "-c", script, str(config), str(db)],
                            stderr=subprocess.PIPE, text=True)
    try:
        port = None
        lines = []
        while port is None:
            line = proc.stderr.readline()
            assert line, f"listen ended: {''.join(lines)}"
            lines.append(line)
            if "listening on http://127.0.0.1:" in line:
                port = int(line.split("127.0.0.1:")[1].split("/")[0])
        assert "<token>" in "".join(lines)
        token = (tmp_path / "push-token").read_text().strip()
        assert token not in "".join(lines)
        body = {**EVO_COMPLETED, "id": "evolink-done"}
        r = httpx.post(f"http://127.0.0.1:{port}/hooks/evolink/{token}", json=body)
        assert r.status_code == 202
        deadline = time.monotonic() + 30
        with Store(db, readonly=True) as check:
            while check.get("evolink:evolink-done").state != "succeeded":  # wait for the write
                assert time.monotonic() < deadline, "the hinted task was not polled"
                time.sleep(0.05)
                check.sync()
        assert any(req.path.endswith("/v1/tasks/evolink-done") for req in sim.requests)
    finally:
        proc.terminate()
        rest = proc.communicate(timeout=30)[1]
    assert proc.returncode == 0, rest
    assert token not in rest


@pytest.mark.parametrize("trusted", [True, False])
async def test_rate_cap_source_behind_a_trusted_proxy(store, trusted):
    """--forwarded-allow-ips: the cap counts X-Forwarded-For's client, and only from a trusted proxy."""
    store.add("evolink", [EVO_ID])
    receiver = make_receiver(store, hints=[], rate=0.001, burst=1, hint_gap=0)
    server, task, port = await start_server(receiver.app, "127.0.0.1", 0,
                                            forwarded_allow_ips="127.0.0.1" if trusted else None)
    try:
        url = f"http://127.0.0.1:{port}/hooks/evolink/{TOKEN}"
        async with httpx.AsyncClient() as client:
            codes = [(await client.post(url, json=EVO_COMPLETED, headers={"X-Forwarded-For": ip})).status_code
                     for ip in ("198.51.100.1", "198.51.100.2", "198.51.100.1")]
    finally:
        server.should_exit = True
        await task
    assert codes == ([202, 202, 429] if trusted else [202, 429, 429])


async def test_secrets_in_rotation_both_verify(store, serve):
    store.add("freepik", [TASK_ID])
    receiver = PushReceiver(store, {"freepik": Freepik("k")}, secrets={"freepik": ["old-secret", SECRET]},
                            clock=Clock())
    base = await serve(receiver)
    assert (await post_fp(base, FP_IN_PROGRESS, "m_old", secret="old-secret")).status_code == 200
    assert (await post_fp(base, FP_COMPLETED, "m_new")).status_code == 200
    assert receiver.routes == {"freepik": "/hooks/freepik"}  # no EvoLink route without a token


async def test_refusals_reach_the_store_in_the_background_and_at_shutdown(store):
    import asyncio

    # written by the flush loop while serving
    receiver = make_receiver(store, flush_every=0.05)
    server, task, port = await start_server(receiver.app, "127.0.0.1", 0)
    try:
        assert (await post_fp(f"http://127.0.0.1:{port}", FP_COMPLETED, "m1", secret="wrong")).status_code == 401
        for _ in range(3000):  # wait for the write (a bound, not a timing)
            if push_counts(store).get("rejected", {}).get("bad_signature") == 1:
                break
            await asyncio.sleep(0.01)
        assert push_counts(store)["rejected"]["bad_signature"] == 1
    finally:
        server.should_exit = True
        await task
    # written when the server stops
    receiver = make_receiver(store, flush_every=3600)
    server, task, port = await start_server(receiver.app, "127.0.0.1", 0)
    assert (await post_fp(f"http://127.0.0.1:{port}", FP_COMPLETED, "m2", ts=NOW - 999)).status_code == 401
    assert push_counts(store)["rejected"]["stale"] == 0
    server.should_exit = True
    await task
    assert push_counts(store)["rejected"]["stale"] == 1
    assert push_counts(store)["rejected"]["bad_signature"] == 1  # the earlier run's count kept


async def test_listener_for_the_engine(tmp_path, store):
    """What `collect --listen` / the dashboard use: a receiver in their own loop, hints to their hook."""
    from tui.push import Listener

    store.add("evolink", [EVO_ID])
    hints: list[str] = []
    args = argparse.Namespace(db=str(tmp_path / "tasks.db"), host=None, port=0, path_prefix=None,
                              public_url=None, forwarded_allow_ips=None)
    listener = await Listener.start(None, store, args, on_hint=hints.append)
    try:
        token = (tmp_path / "push-token").read_text().strip()
        assert listener.urls == {"evolink": f"http://127.0.0.1:{listener.port}/hooks/evolink/<token>"}
        r = await post_evo(f"http://127.0.0.1:{listener.port}", EVO_COMPLETED, token=token)
        assert r.status_code == 202 and hints == [EVO_KEY]
    finally:
        await listener.stop()


def test_build_receiver_reads_the_config_keys_the_lead_adds(tmp_path, store):
    """[providers.freepik] webhook_secret (a SecretStr, space-separated during a rotation)
    and [listen] host/port/path_prefix/public_url/token, read from any object that has them."""
    from types import SimpleNamespace

    from pydantic import SecretStr

    from tui.push import build_receiver

    freepik = SimpleNamespace(key="fp-key", base_url="https://api.freepik.com",
                              webhook_secret=SecretStr(f"old-one {SECRET}"))
    evolink = SimpleNamespace(key="evo-key", base_url="https://api.evolink.ai")
    config = SimpleNamespace(providers={"freepik": freepik, "evolink": evolink},
                             listen={"host": "0.0.0.0", "port": 9000, "path_prefix": "tt",
                                     "public_url": "https://example.org", "token": SecretStr(TOKEN)})
    args = argparse.Namespace(db=str(tmp_path / "tasks.db"), host=None, port=None, path_prefix=None,
                              public_url=None, forwarded_allow_ips=None)
    receiver, settings = build_receiver(config, store, args)
    assert receiver.secrets["freepik"] == ["old-one", SECRET]
    assert receiver.token == TOKEN and not (tmp_path / "push-token").exists()
    assert receiver.routes == {"freepik": "/tt/hooks/freepik", "evolink": f"/tt/hooks/evolink/{TOKEN}"}
    assert (settings["host"], settings["port"], settings["public_url"]) == ("0.0.0.0", 9000, "https://example.org")
    args.port, args.host = 1234, "127.0.0.1"  # the command line wins
    _, settings = build_receiver(config, store, args)
    assert (settings["host"], settings["port"]) == ("127.0.0.1", 1234)
