"""Fuzzing the five providers' parsers with hypothesis.

Answers are built from each seed's response schema (documented fields with
plausible values, wrong types, nulls, missing and extra fields, hostile and huge
strings, nesting) and from far outside it (any JSON, random bytes, invalid
UTF-8, truncated bodies), with random status codes and headers (Retry-After
garbage included).  Whatever comes in, ``parse_status`` / ``parse_list`` /
``parse_balance`` must return a sane value (a ``Task`` with a known state,
progress in 0..100, result links as strings, no control characters anywhere,
JSON-able as ``ls --json`` prints it) or raise one of the typed
``ProviderError`` subclasses -- never anything else.

Derandomized (the same inputs on every run): 1,000 examples per provider for
``parse_status``, 500 for each list and balance parser.
"""

from __future__ import annotations

import json
import math
import unicodedata

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tui.model import ERROR_KINDS, MAX_EPOCH, STATES, Balance, ProviderError, Task
from tui.providers import make_provider

KEY = "sk-FUZZ-key-0123456789"
_B64 = __import__("base64").b64encode(KEY.encode()).decode()
KEY_ECHOES = [KEY, KEY.upper(), KEY.lower(), _B64, _B64.rstrip("="), KEY.encode().hex(), KEY[:15],
              f"Bearer {KEY}", KEY[:4] + "\u200b" + KEY[4:]]


def leaks_key(text: str) -> bool:
    low = text.lower()
    return KEY.lower() in low or _B64.rstrip("=").lower() in low or KEY[:12].lower() in low
FUZZ = settings(max_examples=1000, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
FUZZ_SIDE = settings(FUZZ, max_examples=500)  # list and balance parsers: smaller surfaces

BIDI = set("\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


# ---------------------------------------------------------------- values

HOSTILE = [
    "\x1b[2J\x1b[H", "\x1b]52;c;ZXZpbA==\x07", "\x1b]8;;https://evil.invalid\x1b\\click\x1b]8;;\x1b\\",
    "\x1b[31mred\x1b[0m", "\u202eevil\u202c", "\x9b31m", "\x9d0;title\x9c", "[red]x[/red]", "[link=x]y[/]",
    "\x00\x07\x08\x7f", "line1\nline2\r\n\ttab", "\ufeffbom", "😀" * 10, "m\ud800x", "\udfff",
    "\U000e0069\U000e0067\u2060\u2064\u00ad\U000e0100",  # invisible: tags, word joiner, soft hyphen ...
]
hostile_text = st.one_of(
    st.text(max_size=40),
    st.sampled_from(HOSTILE),
    st.lists(st.sampled_from(HOSTILE) | st.text(max_size=5), max_size=6).map("".join),
    st.text(alphabet=st.characters(min_codepoint=0, max_codepoint=0x9f), max_size=30),
    st.sampled_from(["", " ", "A" * 100_000, "\x1b[2J" * 5_000]),
    st.sampled_from(KEY_ECHOES),  # a server echoing our key, altered
)
numbers = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["40", "40.5", "40%", "", " 7 ", "1e400", "-1", "NaN", "inf", "abc"]),
)
scalars = st.one_of(st.none(), st.booleans(), numbers, hostile_text)
any_json = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=8,
)
url = st.one_of(st.just("https://cdn.example.invalid/r/1.png"), st.just("users/x/file.jpg"), hostile_text)
urls = st.one_of(st.lists(url, max_size=4), url, any_json)


def either(good, n_bad=1):
    """A documented value most of the time, else anything."""
    return st.one_of(good, any_json) if n_bad else good


def obj(required: dict | None = None, optional: dict | None = None) -> st.SearchStrategy:
    """A JSON object with the schema's fields (each maybe wrong) and maybe extra ones."""
    base = st.fixed_dictionaries({k: either(v) for k, v in (required or {}).items()},
                                 optional={k: either(v) for k, v in (optional or {}).items()})
    extra = st.one_of(st.just({}), st.dictionaries(st.text(max_size=8), any_json, max_size=2))
    return st.tuples(base, extra).map(lambda p: {**p[1], **p[0]})


def status_of(*names: str) -> st.SearchStrategy:
    variants = [*names, *(n.lower() for n in names), *(n.title() for n in names)]
    return st.one_of(st.sampled_from(variants), hostile_text)


# ---------------------------------------------------------------- bodies per provider (seeds)

FREEPIK_ENUM = ("CREATED", "IN_PROGRESS", "COMPLETED", "FAILED", "CANCELLED")
freepik_data = obj({"task_id": hostile_text, "status": status_of(*FREEPIK_ENUM)},
                   {"generated": urls, "has_nsfw": any_json, "error": any_json, "message": any_json})

upscayl_data = obj(
    {"status": status_of("ENHANCING", "PROCESSING", "PROCESSED", "PROCESSING_FAILED", "PENDING", "COMPLETED",
                         "FAILED")},
    {"progress": numbers, "files": st.lists(obj({}, {
        "fileName": hostile_text, "path": url, "downloadLink": url, "downloadUrl": url, "createdAt": numbers,
        "expiresAt": numbers}), max_size=3),
     "deductedCredits": numbers, "creditsDeducted": any_json, "model": hostile_text, "scale": numbers,
     "error": any_json, "createdAt": numbers})

error_bodies = st.one_of(
    obj({"message": hostile_text}, {"error": hostile_text}),
    obj({"error": obj({"code": numbers | hostile_text, "message": hostile_text},
                      {"type": hostile_text, "param": hostile_text, "fallback_suggestion": hostile_text})}),
    obj({"detail": st.one_of(hostile_text, st.lists(obj({"msg": hostile_text}, {"loc": any_json}), max_size=2))}),
    hostile_text,
)

STATUS_BODIES = {
    "comfy": st.one_of(obj({"data": freepik_data}), freepik_data),
    "freepik": st.one_of(obj({"data": freepik_data}), freepik_data,
                         obj({"data": st.lists(freepik_data, max_size=3)})),
    "upscayl": obj({"status": st.sampled_from(["success", "error"]), "data": upscayl_data},
                   {"error": hostile_text, "message": hostile_text}),
    "qolaba": obj({"status": status_of("PENDING", "STARTED", "RETRY", "SUCCESS", "FAILURE", "FAILED", "REVOKED")},
                  {"time_required": any_json, "error": any_json, "error_data": any_json, "input": any_json,
                   "output": st.one_of(obj({"result": urls}, {"Has_NSFW_Content": any_json}), urls),
                   "app_id": hostile_text, "task_id": hostile_text}),
    "evolink": obj({"status": status_of("pending", "processing", "completed", "failed")},
                   {"created": numbers, "id": hostile_text, "model": hostile_text, "object": hostile_text,
                    "progress": numbers, "results": urls,
                    "result_data": st.lists(obj({}, {"result_id": hostile_text, "image_url": urls,
                                                     "video_url": urls, "audio_url": urls}), max_size=2),
                    "task_info": obj({}, {"can_cancel": any_json, "estimated_time": numbers}),
                    "type": hostile_text,
                    "usage": obj({}, {"billing_rule": hostile_text, "credits_reserved": numbers}),
                    "error": st.one_of(obj({"code": hostile_text, "message": hostile_text}), hostile_text)}),
}
LIST_BODIES = {
    "freepik": obj({"data": st.lists(freepik_data, max_size=4)}),
}  # upscayl has no list: its history rows carry no task id (issue 11)
BALANCE_BODIES = {
    "comfy": obj({}, {"amount_micros": numbers, "effective_balance_micros": numbers,
                      "prepaid_balance_micros": numbers, "cloud_credit_balance_micros": numbers,
                      "currency": hostile_text}),
    "evolink": obj({}, {"success": any_json, "message": hostile_text, "data": obj({}, {
        "token": obj({}, {"remaining_credits": numbers, "used_credits": numbers, "unlimited_credits": any_json}),
        "user": obj({}, {"remaining_credits": numbers, "used_credits": numbers})})}),
}


# ---------------------------------------------------------------- responses

def encode(body, ascii: bool = False) -> bytes:
    """JSON bytes; ``ascii`` escapes non-ASCII, so a lone surrogate arrives as a valid ``\\ud800``."""
    return json.dumps(body, ensure_ascii=ascii).encode("utf-8", "surrogatepass")


def mangle(data: bytes, how: str, where: int) -> bytes:
    """Break a body: cut it, splice invalid UTF-8 bytes into it, or leave it."""
    if not data or how == "keep":
        return data
    i = where % len(data)
    if how == "cut":
        return data[:i]
    return data[:i] + b"\xff\xfe\xc3(\xed\xa0\x80" + data[i:]


STATUSES = st.one_of(
    st.just(200), st.just(200),
    st.sampled_from([201, 202, 204, 400, 401, 402, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503, 504]),
    st.integers(min_value=100, max_value=599),
)
header_text = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7e), max_size=30)
RETRY_AFTER = st.one_of(
    header_text,
    st.sampled_from(["0", "-5", "7", "1.5", "1e400", "inf", "nan", "99999999999999999999", "Wed, 21 Oct 2015 07:28:00 GMT",
                     "Fri, 31 Dec 9999 23:59:59 GMT", "Sun, 06 Nov 1994 08:49:37", "soon", ""]),
    st.integers(min_value=-10**12, max_value=10**12).map(str),
)
HEADERS = st.fixed_dictionaries({}, optional={
    "retry-after": RETRY_AFTER,
    "content-type": st.sampled_from(["application/json", "text/html", "text/plain", "application/octet-stream",
                                     "application/json; charset=latin-1", ""]) | header_text,
    "x-ratelimit-remaining": header_text,
})


def responses(bodies: st.SearchStrategy) -> st.SearchStrategy:
    body_bytes = st.one_of(
        st.tuples(st.one_of(bodies, bodies, error_bodies, any_json),
                  st.sampled_from(["keep", "keep", "keep", "cut", "utf8"]),
                  st.integers(min_value=0, max_value=10**6), st.booleans())
        .map(lambda t: mangle(encode(t[0], t[3]), t[1], t[2])),
        st.binary(max_size=200),
        st.sampled_from([b"", b"<html><title>502 Bad Gateway</title></html>", b"null", b"[]", b"{}", b'"x"',
                         b"NaN", b"1e400", b"[" * 50 + b"]" * 50, b"[" * 100_000, b'{"a":' * 100_000]),
    )
    return st.builds(lambda status, headers, content: httpx.Response(status, headers=headers, content=content),
                     STATUSES, HEADERS, body_bytes)


# ---------------------------------------------------------------- checks

def assert_inert(text: str, where: str) -> None:
    for ch in text:
        assert unicodedata.category(ch) not in ("Cc", "Cs", "Cf"), f"{where}: control {ch!r} in {text[:80]!r}"
        assert not 0xE0000 <= ord(ch) <= 0xE0FFF, f"{where}: invisible {ch!r} in {text[:80]!r}"
        assert ch not in BIDI, f"{where}: bidi {ch!r} in {text[:80]!r}"


def check_task(task: Task, provider: str, task_id: str) -> None:
    assert isinstance(task, Task)
    assert task.provider == provider and task.task_id == task_id
    assert task.state in STATES
    assert task.progress is None or (isinstance(task.progress, float) and 0.0 <= task.progress <= 100.0)
    assert isinstance(task.results, list) and all(isinstance(u, str) and u for u in task.results)
    for name in ("provider_status", "error", "model", "kind"):
        value = getattr(task, name)
        assert value is None or isinstance(value, str), name
        if value:
            assert_inert(value, name)
            assert len(value) <= 5000, name
    for u in task.results:
        assert_inert(u, "results")
    for name in ("credits", "created_at", "finished_at", "eta"):
        value = getattr(task, name)
        assert value is None or (isinstance(value, (int, float)) and math.isfinite(value)), (name, value)
    for name in ("created_at", "finished_at"):  # every kept time can be printed
        value = getattr(task, name)
        assert value is None or 0 < value < MAX_EPOCH, (name, value)
    assert len(task.results) <= 100 and len(set(task.results)) == len(task.results)
    shown = json.dumps(task.to_dict(), allow_nan=False)  # what `ls --json` prints
    assert not leaks_key(shown), shown[:300]
    assert not leaks_key(json.dumps(task.raw, default=str)), "raw"


def check_error(exc: Exception) -> None:
    assert type(exc) in ERROR_KINDS, f"{type(exc).__name__}: {exc!r}"
    assert isinstance(exc.message, str)
    assert_inert(str(exc), "error")
    assert exc.status is None or 100 <= exc.status <= 599
    assert exc.retry_after is None or (math.isfinite(exc.retry_after) and 0 <= exc.retry_after <= 86400), \
        exc.retry_after
    assert not leaks_key(str(exc)) and not leaks_key(repr(exc.args)) and not leaks_key(str(exc.code))


def outcome(call):
    try:
        return call(), None
    except ProviderError as exc:
        return None, exc
    # anything else propagates: hypothesis reports it with the input


# ---------------------------------------------------------------- the properties


@pytest.mark.parametrize("provider", list(STATUS_BODIES))
def test_parse_status_returns_a_task_or_a_typed_error(provider):
    p = make_provider(provider, KEY, "https://api.example.invalid")

    @FUZZ
    @given(response=responses(STATUS_BODIES[provider]),
           task_id=st.sampled_from(["t-1", "046b6c7f-0b8a-43b9-b35d-6489e6daee91"]),
           kind=st.sampled_from([None, "image-relight", "ref:abc", "text-to-image/hyperflux", "video"]))
    def run(response, task_id, kind):
        task, exc = outcome(lambda: p.parse_status(task_id, kind, response))
        if exc is not None:
            check_error(exc)
        else:
            check_task(task, provider, task_id)

    run()



@pytest.mark.parametrize("provider", [
    pytest.param(p) for p in LIST_BODIES])
def test_parse_list_returns_tasks_or_a_typed_error(provider):
    p = make_provider(provider, KEY, "https://api.example.invalid")

    @FUZZ_SIDE
    @given(response=responses(LIST_BODIES[provider]))
    def run(response):
        tasks, exc = outcome(lambda: p.parse_list(None, response))
        if exc is not None:
            check_error(exc)
            return
        assert isinstance(tasks, list)
        for t in tasks:
            assert isinstance(t.task_id, str) and t.task_id
            assert_inert(t.task_id, "task_id")  # a listed id comes from the provider
            check_task(t, provider, t.task_id)
        assert len({t.task_id for t in tasks}) == len(tasks)

    run()


@pytest.mark.parametrize("provider", list(BALANCE_BODIES))
def test_parse_balance_returns_a_balance_or_a_typed_error(provider):
    p = make_provider(provider, KEY, "https://api.example.invalid")

    @FUZZ_SIDE
    @given(response=responses(BALANCE_BODIES[provider]))
    def run(response):
        balance, exc = outcome(lambda: p.parse_balance(response))
        if exc is not None:
            check_error(exc)
            return
        assert isinstance(balance, Balance) and balance.provider == provider
        for value in (balance.remaining, balance.used):
            assert value is None or (isinstance(value, (int, float)) and math.isfinite(value)), value
        assert isinstance(balance.unit, str)
        assert_inert(balance.unit, "unit")

    run()


def test_the_strategies_reach_both_outcomes():
    """Guard against a fuzzer that only ever builds garbage (or only good answers)."""
    p = make_provider("evolink", KEY, "https://api.example.invalid")
    seen = set()

    @settings(max_examples=300, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(response=responses(STATUS_BODIES["evolink"]))
    def run(response):
        task, exc = outcome(lambda: p.parse_status("t-1", None, response))
        seen.add("task" if task is not None else exc.kind)

    run()
    assert "task" in seen and "bad_response" in seen and len(seen) >= 4, seen


# ---------------------------------------------------------------- found by fuzzing, kept as regressions


@pytest.mark.parametrize("provider", list(STATUS_BODIES))
@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 100_000], ids=["arrays", "objects"])
def test_deeply_nested_json_is_a_bad_response(provider, body):
    p = make_provider(provider, KEY, "https://api.example.invalid")
    with pytest.raises(ProviderError):
        p.parse_status("t-1", None, httpx.Response(200, content=body))


