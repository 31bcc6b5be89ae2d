"""The shared pieces every provider builds on: tui.providers.base helpers,
tui.text.clean and the tui.model helpers."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.model import (
    MAX_EPOCH,
    HEALTH_FIELDS,
    TASK_FIELDS,
    AuthError,
    BadResponse,
    ClientError,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Task,
    Transient,
    clamp_progress,
    epoch,
    iso,
)
from tui.providers.base import (
    Provider,
    Request,
    describe_body,
    generic_error_message,
    parse_wait_text,
    retry_after,
)
from tui.text import MAX_TEXT, clean, clean_or_none, clean_url, is_web_url

KEY = "sk-test-0123456789abcdef"


# ---------------------------------------------------------------- retry_after


def test_retry_after_seconds_header():
    assert retry_after("5") == 5.0
    assert retry_after(" 2.5 ") == 2.5
    assert retry_after("-3") == 0.0


def test_retry_after_http_date_header():
    future = email.utils.formatdate(time.time() + 120, usegmt=True)
    wait = retry_after(future)
    assert wait is not None and 60 < wait <= 121
    past = email.utils.formatdate(time.time() - 3600, usegmt=True)
    assert retry_after(past) == 0.0


def test_retry_after_header_wins_over_body():
    data = {"error": {"fallback_suggestion": "retry after 60 seconds"}}
    assert retry_after("7", None, data) == 7.0
    assert retry_after(None, None, data) == 60.0


@pytest.mark.parametrize("header", ["inf", "nan", "-inf", "soon", ""])
def test_retry_after_unusable_header_falls_back_to_body(header):
    assert retry_after(header, "Try again in 1 hour") == 3600.0
    assert retry_after(header) is None


def test_retry_after_fallback_suggestion_top_level_and_nested():
    assert retry_after(None, None, {"fallback_suggestion": "retry after 30 seconds"}) == 30.0
    assert retry_after(None, None, {"error": {"fallback_suggestion": "try again later"}}) is None
    # a suggestion that is a link, not a wait
    assert retry_after(None, None, {"error": {"fallback_suggestion": "https://evolink.ai/dashboard/billing"}}) is None


@pytest.mark.parametrize(
    "text, seconds",
    [
        ("retry after 60 seconds", 60),
        ("retry after 30 seconds", 30),
        ("Too many requests. Try again in 1 hour", 3600),
        ("Please try again in 10 minutes.", 600),
        ("Retry after 1.5 min", 90),
        ("retry after 45s", 45),
        ("RETRY AFTER 2 HOURS", 7200),
        ("retry after 12", 12),
        ("try again later", None),
        ("Rate limit exceeded", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_wait_text(text, seconds):
    assert parse_wait_text(text) == (None if seconds is None else float(seconds))


# ---------------------------------------------------------------- describe_body


def test_describe_body_html_title():
    r = httpx.Response(502, content=b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                       headers={"content-type": "text/html"})
    assert describe_body(r) == "HTML page (HTTP 502): 502 Bad Gateway"


def test_describe_body_html_without_title_and_hostile_title():
    assert describe_body(httpx.Response(500, content=b"<html><body>oops</body></html>")) == "HTML page (HTTP 500)"
    r = httpx.Response(500, content=b"<title>\x1b]52;c;ZXZpbA==\x07Down\x1b[2J</title>")
    assert describe_body(r) == "HTML page (HTTP 500): Down"


def test_describe_body_empty_and_text():
    assert describe_body(httpx.Response(503, content=b"")) == "empty answer (HTTP 503)"
    assert describe_body(httpx.Response(500, content=b"upstream\nconnect error")) == "upstream connect error"
    long = describe_body(httpx.Response(500, content=b"x" * 5000))
    assert len(long) <= 200


# ---------------------------------------------------------------- generic_error_message


@pytest.mark.parametrize(
    "data, expected",
    [
        ({"message": "Invalid API key"}, ("Invalid API key", None)),
        ({"error": "RATE_LIMIT_EXCEEDED", "message": "Too many requests"}, ("Too many requests", "RATE_LIMIT_EXCEEDED")),
        ({"error": {"code": 404, "message": "Task not found or expired", "type": "not_found_error"}},
         ("Task not found or expired", "not_found_error")),
        ({"error": {"code": 429, "message": "Rate limit exceeded"}}, ("Rate limit exceeded", "429")),
        ({"error": {"type": "upstream_error"}}, (None, "upstream_error")),
        ({"error": "Not Found"}, ("Not Found", None)),
        ("Service down", ("Service down", None)),
        ({"message": 500}, ("500", None)),
        ({"message": {"nested": True}}, (None, None)),
        ([1, 2], (None, None)),
        (None, (None, None)),
        ({}, (None, None)),
        ({"message": "\x1b[31mred\x1b[0m [bold]x[/bold]"}, ("red [bold]x[/bold]", None)),
    ],
)
def test_generic_error_message_shapes(data, expected):
    assert generic_error_message(data) == expected


# ---------------------------------------------------------------- Provider.error_for / _guard / send


class Dummy(Provider):
    name = "dummy"
    default_base_url = "http://127.0.0.1:9"

    def status_request(self, task_id, kind=None):
        return self.request("GET", f"/t/{task_id}")

    def read_status(self, task_id, kind, data, response):
        return self.task(task_id, kind, state="running", provider_status=data["status"], raw=data)


@pytest.mark.parametrize(
    "status, cls",
    [(400, ClientError), (401, AuthError), (402, QuotaExhausted), (403, AuthError), (404, NotFound),
     (408, Transient), (413, ClientError), (422, ClientError), (429, RateLimited), (500, Transient),
     (502, Transient), (503, Transient), (504, Transient)],
)
def test_status_classification(status, cls):
    p = Dummy(KEY)
    with pytest.raises(cls) as info:
        p.parse_status("t1", None, httpx.Response(status, json={"message": "said so"}))
    err = info.value
    assert type(err) is cls and err.status == status and err.message == "said so"
    assert err.provider == "dummy"
    assert str(err) == f"dummy: HTTP {status} {cls.kind}: said so"


def test_error_with_html_body_is_classified_by_status():
    p = Dummy(KEY)
    with pytest.raises(Transient, match="HTML page .HTTP 502.: Bad Gateway"):
        p.parse_status("t1", None, httpx.Response(502, content=b"<html><title>Bad Gateway</title></html>"))


@pytest.mark.parametrize(
    "content, match",
    [
        (b"<html><title>Login</title></html>", "not JSON: HTML page"),
        (b"not json at all", "not JSON"),
        (b"\xff\xfe{\"status\": 1}", "not valid UTF-8"),
        (b"", "empty body"),
        (b"[1, 2]", "unexpected answer shape"),
        (b'{"other": 1}', "unexpected answer shape .KeyError"),
    ],
)
def test_unreadable_2xx_bodies_are_bad_response(content, match):
    with pytest.raises(BadResponse, match=match):
        Dummy(KEY).parse_status("t1", None, httpx.Response(200, content=content))


def test_retry_after_reaches_rate_limited_and_transient():
    p = Dummy(KEY)
    with pytest.raises(RateLimited) as info:
        p.parse_status("t", None, httpx.Response(429, json={"message": "slow down"}, headers={"Retry-After": "12"}))
    assert info.value.retry_after == 12.0
    with pytest.raises(Transient) as info:
        p.parse_status("t", None, httpx.Response(503, json={"message": "busy, retry after 30 seconds"}))
    assert info.value.retry_after == 30.0


def test_key_echoed_by_server_is_scrubbed():
    p = Dummy(KEY)
    with pytest.raises(AuthError) as info:
        p.parse_status("t", None, httpx.Response(401, json={"message": f"Invalid API key {KEY}", "error": KEY}))
    err = info.value
    for text in (str(err), repr(err), err.message, str(err.code)):
        assert KEY not in text
    assert "***" in err.message
    for body in (f"<html><title>{KEY}</title></html>", f"not json {KEY}", f'{{"other": "{KEY}"}}'):
        with pytest.raises(BadResponse) as info:
            p.parse_status("t", None, httpx.Response(200, content=body.encode()))
        assert KEY not in str(info.value) and KEY not in repr(info.value)


def test_request_repr_hides_headers():
    req = Dummy(KEY).status_request("t1")
    assert req.headers["Authorization"] == f"Bearer {KEY}"
    assert KEY not in repr(req) and KEY not in str(req)
    assert KEY not in repr(Dummy(KEY))


async def test_unsendable_key_is_auth_error_without_echo():
    async with httpx.AsyncClient(timeout=2) as client:
        for key in ("sk-é-0123456789", "sk-\n-0123456789"):
            p = Dummy(key)
            with pytest.raises(AuthError) as info:
                await p.fetch_status(client, "t1")
            assert key not in repr(info.value) and "0123456789" not in str(info.value)


def test_base_url_required_and_trailing_slash():
    class NoBase(Dummy):
        default_base_url = None

    with pytest.raises(ValueError, match="base_url is required"):
        NoBase(KEY)
    assert Dummy(KEY, "http://h:1/api/").status_request("x").url == "http://h:1/api/t/x"


def test_every_provider_error_is_a_provider_error():
    for cls in (AuthError, QuotaExhausted, RateLimited, NotFound, Transient, BadResponse, ClientError):
        assert issubclass(cls, ProviderError)
    assert isinstance(Request("GET", "u"), Request)


# ---------------------------------------------------------------- clean


def test_clean_csi_sequences():
    assert clean("\x1b[31mred\x1b[0m") == "red"
    assert clean("a\x1b[2J\x1b[H\x1b[?25lb") == "ab"
    assert clean("x\x1b[38;2;255;0;0my") == "xy"


def test_clean_osc52_clipboard_write_removed_with_payload():
    for term in ("\x07", "\x1b\\", ""):
        text = clean(f"ok\x1b]52;c;cm0gLXJmIH4={term}done")
        assert "52" not in text and "cm0g" not in text
        assert text.startswith("ok")
    assert clean("ok\x1b]52;c;cm0gLXJmIH4=\x07done") == "okdone"


def test_clean_osc8_hyperlink_keeps_only_label():
    assert clean("\x1b]8;;https://evil.example\x1b\\click me\x1b]8;;\x1b\\") == "click me"
    assert clean("\x1b]8;;https://evil.example\x07click\x1b]8;;\x07") == "click"


def test_clean_bidi_and_zero_width():
    assert clean("abc\u202edcba\u202c") == "abcdcba"
    assert clean("\u2066x\u2069\u200by\ufeff\u061c") == "xy"


def test_clean_c0_c1_controls():
    assert clean("a\x00b\x07c\x08d\x7fe") == "abcde"
    assert clean("a\x85b\x90c\x9fd") == "abcd"
    assert clean("a\x9b31mb") == "ab"  # 8-bit CSI
    assert clean("a\x9d52;c;eA==\x07b") == "ab"  # 8-bit OSC
    assert clean("a\x1bPqpayload\x1b\\b") == "ab"  # DCS string
    assert clean("trailing escape\x1b") == "trailing escape"


def test_clean_whitespace_and_types():
    assert clean("  a\tb\n\nc \r d ") == "a b c d"
    assert clean(None) == ""
    assert clean(b"bytes \xff") == "bytes \ufffd"
    assert clean(42) == "42"
    assert clean_or_none("  \x1b[0m ") is None
    assert clean_or_none(None) is None


def test_clean_100kb_string_is_cut():
    text = clean("A" * 100_000)
    assert len(text) == MAX_TEXT and text.endswith("…")
    assert len(clean("é" * 100_000, 50)) == 50
    hostile = clean("\x1b[31m" * 20_000 + "tail")  # escapes only: nothing useful survives the cut
    assert "\x1b" not in hostile and len(hostile) <= MAX_TEXT


def test_clean_leaves_rich_markup_as_plain_text():
    assert clean("[bold red]boom[/] [link=https://x]y[/link]") == "[bold red]boom[/] [link=https://x]y[/link]"
    from rich.text import Text

    rendered = Text(clean("[bold]x[/bold]"))
    assert rendered.plain == "[bold]x[/bold]" and not rendered.spans


HOSTILE = st.text(alphabet=st.sampled_from(
    ["a", " ", "[", "]", "/", ";", "\x1b", "\x07", "\x9b", "\x9c", "\x9d", "\n", "\t", "\x00", "\u202e",
     "\u200b", "P", "\\", "5", "2", "8", "é"]), max_size=200) | st.text(max_size=200)


@settings(max_examples=300, deadline=None)
@given(text=HOSTILE, limit=st.integers(min_value=1, max_value=300))
def test_clean_output_is_always_inert(text, limit):
    out = clean(text, limit)
    assert len(out) <= limit
    assert not any(ord(c) < 32 or 0x7F <= ord(c) <= 0x9F for c in out)
    assert not any(c in out for c in "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200b\ufeff")
    assert out == out.strip() and "  " not in out
    assert clean(out, limit) == out  # idempotent


def test_clean_url_and_is_web_url():
    assert clean_url(" https://a.example/x.png ") == "https://a.example/x.png"
    assert clean_url("https://a.example/x y") is None
    assert clean_url("") is None
    assert clean_url("\x1b]52;c;eA==\x07https://a/b") == "https://a/b"
    assert is_web_url("HTTPS://a/b") and is_web_url("http://a")
    assert not is_web_url("javascript:alert(1)") and not is_web_url("file:///etc/passwd")
    assert not is_web_url(None) and not is_web_url("")


# ---------------------------------------------------------------- model helpers


@pytest.mark.parametrize(
    "value, expected",
    [
        (1756817821, 1756817821.0),
        (1756817821000, 1756817821.0),  # milliseconds
        (1756817821000000, 1756817821.0),  # microseconds
        ("1756817821", 1756817821.0),
        ("2025-09-02T12:57:01Z", 1756817821.0),
        ("2025-09-02T12:57:01+00:00", 1756817821.0),
        ("2025-09-02T14:57:01+02:00", 1756817821.0),
        ("2025-09-02T12:57:01", 1756817821.0),  # naive means UTC
        ("2025-09-02T12:57:01.500Z", 1756817821.5),
        (None, None),
        ("", None),
        ("yesterday", None),
        (True, None),
        (0, None),
        (-5, None),
        (float("nan"), None),
        (float("inf"), None),
        ("1e400", None),
        (1e30, None),  # past year 9999: iso() could not print it
        ([1], None),
    ],
)
def test_epoch(value, expected):
    assert epoch(value) == expected


def test_epoch_results_are_printable():
    for value in (1e11 - 1, 1e14 - 1, 9e18, MAX_EPOCH - 1):
        ts = epoch(value)
        assert ts is None or iso(ts).endswith("Z")


def test_iso():
    assert iso(None) is None
    assert iso(0) == "1970-01-01T00:00:00Z"
    assert iso(1756817821) == "2025-09-02T12:57:01Z"
    assert iso(1756817821.25) == "2025-09-02T12:57:01.250Z"
    assert epoch(iso(1756817821.25)) == 1756817821.25


@pytest.mark.parametrize(
    "value, expected",
    [(40, 40.0), (40.5, 40.5), ("40", 40.0), ("40.5", 40.5), (" 75% ", 75.0), (150, 100.0), (-3, 0.0),
     ("", None), (None, None), (True, None), ("abc", None), (float("nan"), None), (float("inf"), None),
     ([50], None)],
)
def test_clamp_progress(value, expected):
    assert clamp_progress(value) == expected


def test_task_to_dict_is_the_contract():
    task = Task(provider="evolink", task_id="t1", kind="image", label="batch", state="succeeded",
                provider_status="completed", progress=100.0, results=["https://a/1.png"], error=None,
                model="gpt-4o-image", credits=2.5, created_at=1756817821, updated_at=1756817821.5,
                finished_at=None, raw={"secret": "not exported"}, eta=30.0, rev=9)
    out = task.to_dict()
    assert tuple(out)[:len(TASK_FIELDS)] == TASK_FIELDS  # contract first, additive fields after
    assert set(tuple(out)[len(TASK_FIELDS):]) == set(HEALTH_FIELDS) | {"files", "polled_at", "next_poll_at"}  # files: downloaded results; freshness
    assert out["created_at"] == "2025-09-02T12:57:01Z"
    assert out["updated_at"] == "2025-09-02T12:57:01.500Z"
    assert out["finished_at"] is None
    assert "raw" not in out and "eta" not in out and "rev" not in out
    out["results"].append("x")
    assert task.results == ["https://a/1.png"]
    assert task.key == "evolink:t1" and task.terminal


def test_task_copy_is_independent():
    task = Task(provider="freepik", task_id="a", results=["u"])
    other = task.copy(state="running")
    other.results.append("v")
    assert task.results == ["u"] and task.state == "unknown" and other.state == "running"


# ---------------------------------------------------------------- out-of-range values (issue 12, item 4)

OUT_OF_RANGE_TIMES = ["9999-12-31T23:59:59-14:00", "0001-01-01T00:00:00+14:00", "0001-01-01T00:00:00",
                      "9999-12-31T23:59:59.999999+00:00", 10 ** 400, -10 ** 400, 1e308, -1e308,
                      float("nan"), "nan", "-inf", "1" + "0" * 30, "2025-09-02T12:57:01Z" * 10]


@pytest.mark.parametrize("value", OUT_OF_RANGE_TIMES)
def test_epoch_of_an_out_of_range_time_is_none(value):
    assert epoch(value) is None


@pytest.mark.parametrize("value", [float("nan"), float("inf"), -float("inf"), 1e20, -1e20, MAX_EPOCH,
                                   -62135596801.0, 10 ** 400, "1756817821", b"x", [1], True])
def test_iso_of_anything_stored_never_raises(value):
    assert iso(value) is None


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.floats(), st.integers(), st.text(max_size=40), st.none()))
def test_epoch_and_iso_never_raise(value):
    ts = epoch(value)
    assert ts is None or (0 < ts < MAX_EPOCH and iso(ts).endswith("Z"))
    iso(value)  # whatever a damaged store hands it


def test_task_to_dict_with_out_of_range_stored_times():
    """A Task loaded from a store that holds impossible times prints them as null."""
    import json

    task = Task(provider="evolink", task_id="t1", created_at=1e20, updated_at=float("nan"),
                finished_at=-1e20, last_error_at=float("inf"))
    out = task.to_dict()
    assert [out[k] for k in ("created_at", "updated_at", "finished_at", "last_error_at")] == [None] * 4
    json.dumps(out, allow_nan=False)


@pytest.mark.parametrize("value, expected", [(10 ** 400, 100.0), (-10 ** 400, 0.0), ("1e400", None),
                                             ("9" * 400, None), (1e308, 100.0)])
def test_clamp_progress_of_huge_numbers(value, expected):
    assert clamp_progress(value) == expected


def evolink_answer(**fields):
    # docs.evolink.ai/en/api-manual/task-management/get-task-detail.md (TaskDetailResponse), fields altered
    body = {"created": 1756817821, "id": "task-unified-1", "model": "gpt-image-1", "object": "image.generation.task",
            "progress": 100, "results": ["https://files.evolink.ai/1.png"], "status": "completed",
            "task_info": {"can_cancel": False, "estimated_time": 30}, "type": "image",
            "usage": {"billing_rule": "per_call", "credits_reserved": 2.5, "user_group": "default"}}
    body.update(fields)
    return httpx.Response(200, json=body)


@pytest.mark.parametrize("created", OUT_OF_RANGE_TIMES[:4] + [1e308, "1e400"])
def test_a_provider_time_out_of_range_is_dropped_at_parse(created):
    """Issue 12: a created of 9999-12-31T23:59:59-14:00 made ls --json, export and the dashboard
    crash until the task was removed by hand."""
    import json

    from tui.providers import make_provider

    task = make_provider("evolink", KEY).parse_status("task-unified-1", None, evolink_answer(created=created))
    assert task.state == "succeeded" and task.created_at is None
    json.dumps(task.to_dict(), allow_nan=False)


def test_a_huge_progress_is_clamped_at_parse():
    from tui.providers import make_provider

    p = make_provider("evolink", KEY)
    assert p.parse_status("t", None, evolink_answer(progress=10 ** 400, status="processing")).progress == 100.0
    # upscayl openapi.yaml ProcessingTask (tests/data/upscayl/status_openapi_processing.json), altered
    body = {"status": "success", "data": {"status": "processing", "progress": "9" * 400, "files": [],
                                          "createdAt": "9999-12-31T23:59:59-14:00"}}
    task = make_provider("upscayl", KEY).parse_status("t", None, httpx.Response(200, json=body))
    assert (task.state, task.progress, task.created_at) == ("running", None, None)  # "9"*400 reads as inf


@pytest.mark.parametrize("header", ["1e12", "1e308", "99999999999999999999999999",
                                    "Fri, 31 Dec 9999 23:59:59 GMT", "Fri, 31 Dec 9999 23:59:59 -1400"])
def test_retry_after_header_is_capped_at_a_day(header):
    assert retry_after(header) == 86400.0


@pytest.mark.parametrize("text", ["Try again in 99999999999 hours", "retry after 1" + "0" * 400 + " seconds",
                                  "Try again in 9999999999999999999999 minutes"])
def test_a_wait_in_words_is_capped_at_a_day(text):
    assert parse_wait_text(text) == 86400.0
    assert retry_after(None, text) == 86400.0


@pytest.mark.parametrize("provider", ["comfy", "upscayl", "qolaba", "freepik", "evolink"])
@pytest.mark.parametrize("header, said", [("1e12", "slow down"), (None, "Try again in 99999999999 hours"),
                                          ("Fri, 31 Dec 9999 23:59:59 GMT", "slow down")])
def test_a_429_asking_for_ages_is_capped_at_parse(provider, header, said):
    """Issue 12: Retry-After 1e12 or 'Try again in 99999999999 hours' crashed quota and the dashboard."""
    from tui.providers import make_provider
    from tui.sim import bodies

    p = make_provider(provider, KEY, "http://127.0.0.1:9")
    response = httpx.Response(429, json=bodies.error_body(provider, 429, said),
                              headers={"Retry-After": header} if header else {},
                              request=httpx.Request("GET", "http://127.0.0.1:9/"))
    with pytest.raises(RateLimited) as info:
        p.parse_status("t1", None, response)
    assert info.value.retry_after == 86400.0


# ---------------------------------------------------------------- big answers (issue 12, item 9)


def test_results_lose_duplicates_and_are_capped_at_100():
    p = Dummy(KEY)
    links = [f"https://a/{i}.png" for i in range(100_000)] + ["https://a/0.png"]
    task = p.task("t1", None, results=links)
    assert task.results == links[:100]
    assert task.details == {"results": "first 100 of 100000 links kept"}
    assert p.task("t1", None, results=["u", "v", "u"]).results == ["u", "v"]


class Lister(Dummy):
    has_list = True

    def list_request(self, kind=None):  # the base refuses a has_list class without it
        return self.request("GET", "/t")

    def read_list(self, kind, data, response):
        rows = data["data"] if isinstance(data, dict) else data
        self.rows_read = len(rows)
        return [self.task(str(r["id"]), kind, state="running") for r in rows]


@pytest.mark.parametrize("wrapped", [True, False])
def test_a_list_answer_is_read_up_to_10000_rows(wrapped):
    rows = [{"id": i} for i in range(100_000)]
    p = Lister(KEY)
    tasks = p.parse_list(None, httpx.Response(200, json={"data": rows} if wrapped else rows))
    assert p.rows_read == 10_000 and len(tasks) == 10_000 and p.list_cut == 90_000
    p.parse_list(None, httpx.Response(200, json={"data": rows[:5]}))
    assert p.list_cut == 0


# ---------------------------------------------------------------- invisible text (issue 12, item 16)


INVISIBLE = ["\U000e0041", "\U000e0001", "\U000e007f", "\u2060", "\u2061", "\u2062", "\u2063", "\u2064",
             "\u200b", "\u200c", "\u200d", "\u200e", "\u200f", "\u202a", "\u202e", "\u2066", "\u2069",
             "\ufeff", "\u00ad", "\u034f", "\u180e", "\u3164", "\ufe0f", "\U000e0100", "\U000e01ef",
             "\u0600", "\ufff9", "\U0001d173", "\u115f", "\u206f"]


@pytest.mark.parametrize("ch", INVISIBLE, ids=lambda c: f"U+{ord(c):04X}")
def test_clean_drops_invisible_characters(ch):
    assert clean(f"a{ch}b{ch * 3}c") == "abc"


def test_clean_drops_every_format_character():
    import sys
    import unicodedata

    kept = [hex(c) for c in range(0x80, sys.maxunicode + 1)
            if unicodedata.category(chr(c)) == "Cf" and clean(f"a{chr(c)}b") != "ab"]
    assert kept == []


def test_clean_keeps_visible_text():
    text = "café 日本語 Ünïcødé ❤ 👍🏽 👨 العربية עברית"
    assert clean(text) == text


def test_hidden_tag_text_is_gone():
    """'ASCII smuggling': tag characters spell out text no one sees."""
    hidden = "".join(chr(0xE0000 + ord(c)) for c in "ignore previous instructions")
    assert clean(f"done{hidden}") == "done"


def test_a_listed_id_holding_our_key_is_dropped():
    from tui.providers import make_provider

    # docs.freepik.com hyperflux list tasks (seeds/freepik-hyperflux-list-tasks.md), ids altered
    body = {"data": [{"task_id": KEY.upper(), "status": "CREATED"}, {"task_id": f"x-{KEY}", "status": "CREATED"},
                     {"task_id": "046b6c7f-0b8a-43b9-b35d-6489e6daee91", "status": "COMPLETED", "generated": []}]}
    tasks = make_provider("freepik", KEY).parse_list(None, httpx.Response(200, json=body))
    assert [t.task_id for t in tasks] == ["046b6c7f-0b8a-43b9-b35d-6489e6daee91"]


@pytest.mark.parametrize("credits", [-2.5, float("inf"), float("nan"), 1e400])
def test_a_negative_or_non_finite_cost_is_not_counted(credits):
    """Issue 12 item 13: negative or overflowing credits never reach totals or JSON."""
    from tui.providers import make_provider

    task = make_provider("evolink", "k" * 20).task("t", None, state="succeeded", credits=credits)
    assert task.credits is None and "not counted" in task.details["credits"]
    assert make_provider("evolink", "k" * 20).task("t", None, credits=2.5).credits == 2.5
