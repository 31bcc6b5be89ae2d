"""The simulator's other vendors (tui/sim/vendors.py) against the bodies the vendors
publish (tests/data/published_catalogue.py, sources beside each): the simulator
invents no field a vendor does not send, says each state with the vendor's own
word, and answers an unknown task as the vendor does.  Nothing here reads the
catalogue files: they are checked against the simulator elsewhere
(tests/functional/test_catalogue_sim.py)."""

from __future__ import annotations

import pytest

from tests.data.published_catalogue import CASES
from tui.sim import sim_task
from tui.sim import vendors

STATES = ("queued", "running", "succeeded", "failed", "cancelled")
# Fields the simulator sends that no published body in CASES shows, with their source.
EXTRA = {
    # docs.comfy.org/api-reference/api-nodes/get-proxyvidutasks-creations: creations[*] {cover_url, id,
    # moderation_url [..], url, watermarked_url}
    "vidu": {"creations[*].moderation_url[*]", "creations[*].watermarked_url"},
}
# Published words for a state the simulator says with another word of the same vendor for that state.
SAME_STATE = {
    ("runway", "THROTTLED"): "PENDING",  # both queued (RunwayTaskStatusEnum)
    ("tripo", "banned"): "failed",  # both failed (TripoTaskStatus)
    ("tripo", "expired"): "failed",  # both failed; the simulator says "expired" of a task it forgot (below)
    ("pixverse", 7): 8,  # contents moderation / failed (PixverseStatus); 7 when the error says moderation
}
STATUS_KEYS = {"task_status", "status", "state", "done", "finish_reason"}
# Keys whose values are an error's code, compared by value, not only by name (Tripo's 404 is code 2001).
CODE_KEYS = {"code", "ErrCode", "status_code", "reason", "name"}


def wall(t: float) -> float:
    return 1_750_000_000.0 + t


def leaves(x, pre: str = "") -> set[str]:
    """Dotted key paths of every leaf (lists as [*])."""
    if isinstance(x, dict):
        out: set[str] = set()
        for k, v in x.items():
            path = f"{pre}.{k}" if pre else k
            out |= leaves(v, path) or {path}
        return out
    if isinstance(x, list):
        out = set()
        for v in x:
            out |= leaves(v, pre + "[*]")
        return out or {pre + "[*]"}
    return {pre}


def status_words(x, pre: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(x, dict):
        for k, v in x.items():
            path = f"{pre}.{k}" if pre else k
            if k in STATUS_KEYS and not isinstance(v, (dict, list)):
                out[path] = v
            out.update(status_words(v, path))
    return out


def error_codes(x, pre: str = "") -> dict[str, object]:
    out: dict[str, object] = {}
    if isinstance(x, dict):
        for k, v in x.items():
            path = f"{pre}.{k}" if pre else k
            if k in CODE_KEYS and not isinstance(v, (dict, list)):
                out[path] = v
            out.update(error_codes(v, path))
    return out


def sim_body(vendor: str, state: str, results=("https://sim.invalid/a.mp4", "https://sim.invalid/b.png")):
    task = sim_task(vendor, "1001" if vendor == "pixverse" else "t1", state if state != "queued" else "queued",
                    results=list(results))
    return vendors.answer(vendor, task, state, 50.0, wall)


@pytest.mark.parametrize("vendor", vendors.PROXY_VENDORS)
def test_no_field_a_vendor_does_not_publish(vendor):
    published: set[str] = set()
    for _label, status, body, _exp in CASES[vendor]:
        if status < 300:
            published |= leaves(body)
    sent: set[str] = set()
    for state in STATES:
        status, body = sim_body(vendor, state)
        assert status in (200, 202)
        sent |= leaves(body)
    assert sent - published - EXTRA.get(vendor, set()) == set()


# Published variants the simulator does not send (the readers take them, tests/unit/test_catalogue.py):
# Seedance's "expired" (a timed-out task), Vidu's state under "status" on Baidu Qianfan's page, and
# Stability's bare {} bodies whose HTTP status alone says the state.
VARIANTS = {("seedance", "expired"), ("vidu", "success, status spelled 'status' (Qianfan page)"),
            ("stability", "success, bare {} (Stability's reference)"), ("stability", "running, bare {} (by its 202)")}
CASE_STATES = [(v, label, body, exp["state"]) for v in vendors.PROXY_VENDORS for label, status, body, exp in CASES[v]
               if status < 300 and exp.get("state") in STATES and (v, label) not in VARIANTS]


@pytest.mark.parametrize("vendor,label,body,state", CASE_STATES, ids=[f"{c[0]}-{c[1]}" for c in CASE_STATES])
def test_each_state_in_the_vendors_own_word(vendor, label, body, state):
    published = status_words(body)
    status, sent = sim_body(vendor, state)
    mine = status_words(sent)
    if not published:  # a running Vertex operation leaves ``done`` out
        assert vendor == "veo" and mine == {}
    for path, word in published.items():
        assert mine.get(path) == SAME_STATE.get((vendor, word), word), (path, word, mine)
    if vendor == "stability":  # 202 while running (platform.stability.ai Results)
        assert status == (202 if state == "running" else 200)


@pytest.mark.parametrize("vendor", vendors.PROXY_VENDORS)
def test_an_unknown_task_as_the_vendor_answers_it(vendor):
    published = [(status, body) for label, status, body, exp in CASES[vendor]
                 if label.startswith("not found") or "ClientError" == exp.get("raises") and label.startswith("error")]
    status, body = vendors.not_found(vendor, "t1")
    assert published, "no published not-found answer"
    assert (status, leaves(body)) in [(s, leaves(b)) for s, b in published]
    assert (status, error_codes(body)) in [(s, error_codes(b)) for s, b in published], error_codes(body)


@pytest.mark.parametrize("vendor,label", [("tripo", "expired"), ("pixverse", "not found (deleted)")])
def test_a_task_the_vendor_forgot(vendor, label):
    (body,) = [b for lab, s, b, _ in CASES[vendor] if lab == label]
    status, sent = vendors.not_found(vendor, "321", expired=True)
    assert status == 200 and status_words(sent) == status_words(body)
