"""tui.ids: the one rule that reads task ids from pasted text (add form and ``tasktui add``).

Id shapes come from the providers' published docs (/work/shared/seeds):
- EvoLink: docs.evolink.ai get-task-detail (seeds/evolink-task-detail.md): example id
  ``task-unified-1756817821-4x3rx6ny``; a 400 ``invalid_task_id`` says "Invalid task ID format,
  must start with 'task-unified-'"; status is ``GET https://api.evolink.ai/v1/tasks/{task_id}``.
- Freepik: seeds/freepik-hyperflux-list-tasks.md, ``task_id: format: uuid``, example
  ``046b6c7f-0b8a-43b9-b35d-6489e6daee91``; status ``GET /v1/ai/<kind>/{task-id}``.
- Comfy: docs.comfy.org get-the-status-of-the-relight-task (seeds/comfy-freepik-relight-status.md):
  ``GET /proxy/freepik/v1/ai/image-relight/{task_id}``, ``task_id: format: uuid``.
- Qolaba API platform (providers.md §3 B): ``GET /api/v1/tasks/{task_id}``, example id
  ``task_1705312200000_abc123``.  Upscayl (seeds/upscayl-get-task-status.md) and Qolaba's
  ``/getImage`` take the id in a POST body: no shape, no link.
"""

from __future__ import annotations

import pytest

from tui.ids import (MAX_ID, guess_provider, guess_providers, id_problem, parse_ids, parse_url,
                     shape_warning, split_ids)

EVO = "task-unified-1756817821-4x3rx6ny"  # seeds/evolink-task-detail.md example
UUID = "046b6c7f-0b8a-43b9-b35d-6489e6daee91"  # seeds/freepik-hyperflux-list-tasks.md example
QOLABA = "task_1705312200000_abc123"  # providers.md §3 B (docs.qolaba.ai image-generation)


def test_splits_on_whitespace_commas_and_newlines_keeping_order_without_duplicates():
    text = "a b,c\n\nd\t e ,, f\r\ng a\n"
    assert split_ids(text) == ["a", "b", "c", "d", "e", "f", "g"]
    parsed = parse_ids(text)
    assert parsed.duplicates == 1 and parsed.invalid == []


def test_the_same_rule_for_arguments_and_stdin_lines():
    # tasktui add evolink ID ID -: several chunks, each read by the same rule
    assert split_ids(["x1", "x2,x3", "x4 x5\nx1\n"]) == ["x1", "x2", "x3", "x4", "x5"]


def test_comments_run_to_the_end_of_their_line():
    assert split_ids("# header line\nabc  # note, more\n#x\ndef") == ["abc", "def"]


@pytest.mark.parametrize("text", ['"abc"', "'abc'", "`abc`", "“abc”", "[abc]", "(abc)", "<abc>"])
def test_quotes_and_brackets_are_stripped(text):
    assert split_ids(text) == ["abc"]


def test_a_pasted_json_list_gives_its_ids():
    assert split_ids(f'["{EVO}", "task-unified-2"]') == [EVO, "task-unified-2"]


def test_evolink_status_url_gives_the_id_and_the_provider():
    p = parse_url(f"https://api.evolink.ai/v1/tasks/{EVO}")
    assert (p.id, p.provider, p.kind, p.problem) == (EVO, "evolink", None, None)
    assert split_ids("https://api.evolink.ai/v1/tasks/task-unified-abc") == ["task-unified-abc"]


def test_freepik_url_gives_the_uuid_and_the_kind():
    p = parse_url(f"https://api.freepik.com/v1/ai/text-to-image/hyperflux/{UUID}")
    assert (p.id, p.kind, p.provider) == (UUID, "text-to-image/hyperflux", "freepik")
    p = parse_url(f"https://api.magnific.com/v1/ai/image-relight/{UUID}?x=1#frag")
    assert (p.id, p.kind, p.provider) == (UUID, "image-relight", "freepik")


def test_comfy_proxy_url_gives_the_uuid_and_the_kind():
    p = parse_url(f"https://api.comfy.org/proxy/freepik/v1/ai/image-relight/{UUID}")
    assert (p.id, p.kind, p.provider) == (UUID, "image-relight", "comfy")
    p = parse_url(f"https://api.comfy.org/proxy/freepik/v1/ai/skin-enhancer/{UUID}/")
    assert (p.id, p.kind) == (UUID, "skin-enhancer")


def test_unknown_hosts_are_read_by_path():
    # a self-hosted base_url or the simulator: the provider comes from the path
    assert parse_url(f"http://127.0.0.1:8765/proxy/freepik/v1/ai/image-relight/{UUID}").provider == "comfy"
    assert parse_url(f"http://127.0.0.1:8765/v1/ai/image-relight/{UUID}").provider == "freepik"
    assert parse_url(f"http://127.0.0.1:8765/v1/tasks/{EVO}").provider == "evolink"
    p = parse_url(f"https://api.platform.qolaba.ai/api/v1/tasks/{QOLABA}")
    assert (p.id, p.provider) == (QOLABA, "qolaba")
    assert parse_url(f"http://localhost/api/v1/tasks/{QOLABA}").provider == "qolaba"


def test_query_parameter_ids():
    # ComfyUI comfy_api_nodes polls MiniMax at /proxy/minimax/query/video_generation?task_id={id}
    p = parse_url("https://api.comfy.org/proxy/minimax/query/video_generation?task_id=abc-9")
    assert p.id == "abc-9" and p.provider is None  # another vendor, not the comfy (Freepik) provider
    # ComfyUI comfy_api_nodes polls Runway at /proxy/runway/tasks/{id}
    p = parse_url("https://api.comfy.org/proxy/runway/tasks/rw-123")
    assert p.id == "rw-123" and p.provider is None


def test_urls_without_a_task_id_are_invalid_not_guessed():
    for url in ("https://cdn.example.com/out/image.png", f"https://api.freepik.com/v1/ai/image-relight",
                "https://upscayl.org/account/api-keys"):
        p = parse_url(url)
        assert p.id == "" and p.problem and "task id" in p.problem
    parsed = parse_ids("https://cdn.example.com/out/image.png good-1")
    assert parsed.values == ["good-1"] and len(parsed.invalid) == 1


def test_a_kind_with_a_non_uuid_last_segment_still_gives_an_id_whose_shape_is_then_warned():
    p = parse_url("https://api.freepik.com/v1/ai/image-relight/not-a-uuid")
    assert (p.id, p.kind) == ("not-a-uuid", "image-relight")
    assert "UUID" in shape_warning("freepik", p.id)


def test_invalid_ids_are_flagged_with_a_reason_and_not_returned():
    long = "x" * (MAX_ID + 100)
    parsed = parse_ids(f"ok-1 {long} bad\x07bell zero\u200bwidth . .. ok-2")
    assert parsed.values == ["ok-1", "ok-2"]
    reasons = [p.problem for p in parsed.invalid]
    assert reasons[0] == f"longer than {MAX_ID} characters (300)"
    assert reasons[1] == reasons[2] == "contains control or invisible characters"
    assert reasons[3] == reasons[4] == "not a task id"
    assert id_problem("x" * MAX_ID) is None  # 200 is fine


def test_guess_provider_only_where_the_shape_is_unique():
    assert guess_provider(EVO) == "evolink"
    assert guess_provider(UUID) is None  # Comfy or Freepik
    assert guess_providers(UUID) == ("comfy", "freepik")
    assert guess_provider(QOLABA) is None and guess_provider("abc") is None


def test_shape_warnings_follow_the_documented_shapes():
    assert shape_warning("evolink", EVO) is None
    assert "task-unified-" in shape_warning("evolink", "abc123")
    assert "task-unified-" in shape_warning("evolink", UUID)
    for p in ("comfy", "freepik"):
        assert shape_warning(p, UUID) is None
        assert shape_warning(p, UUID.upper()) is None
        assert "UUID" in shape_warning(p, "abc123")
        assert "EvoLink" in shape_warning(p, EVO)
    # undocumented shapes: lenient, except an id that is plainly another provider's
    assert shape_warning("upscayl", "whatever-42") is None
    assert shape_warning("qolaba", QOLABA) is None
    assert shape_warning("qolaba", UUID) is None
    assert "EvoLink" in shape_warning("upscayl", EVO)


def test_parsed_provider_and_kind_when_all_ids_agree():
    assert parse_ids(f"{EVO} task-unified-2").provider() == "evolink"
    assert parse_ids(f"{EVO} abc").provider() is None  # one id says nothing
    assert parse_ids(UUID).provider() is None  # ambiguous shape
    one = parse_ids(f"https://api.comfy.org/proxy/freepik/v1/ai/image-relight/{UUID}")
    assert one.provider() == "comfy" and one.kind == "image-relight"
    two = parse_ids(f"https://api.freepik.com/v1/ai/image-relight/{UUID} "
                    f"https://api.freepik.com/v1/ai/mystic/{UUID[:-1]}0")
    assert two.kind is None and two.kinds == ["image-relight", "mystic"]


def test_warnings_for_a_chosen_provider():
    parsed = parse_ids(f"abc {EVO} https://api.evolink.ai/v1/tasks/{EVO[:-1]}z")
    warnings = parsed.warnings("freepik")
    assert len(warnings) == 3
    assert warnings[0].startswith("abc: not a UUID")
    assert "EvoLink's, not Freepik's" in warnings[2]
    assert parsed.warnings("evolink") == ["abc: EvoLink ids start with 'task-unified-' (EvoLink refuses others)"]


def test_the_rule_is_documented_in_the_module():
    import tui.ids as ids

    doc = ids.__doc__
    for needle in ("whitespace", "comma", "Quotes", "/v1/ai/<kind>/<id>", "/tasks/<id>", "200 characters",
                   "task-unified-", "UUID"):
        assert needle in doc


def test_command_line_arguments_and_stdin_follow_the_same_rule():
    import io

    from tui.ids import parse_args

    stdin = io.StringIO(f"# ids from a script\n{EVO}, task-unified-2\n\"task-unified-3\"\n"
                        f"https://api.evolink.ai/v1/tasks/task-unified-4\n{'y' * 300}\n")
    parsed = parse_args(["task-unified-0", "-", "task-unified-2"], stdin)
    assert parsed.values == ["task-unified-0", EVO, "task-unified-2", "task-unified-3", "task-unified-4"]
    assert parsed.duplicates == 1 and len(parsed.invalid) == 1
    assert parsed.provider() == "evolink"


def test_the_module_imports_no_textual_or_rich():
    import subprocess
    import sys

    code = "import sys, tui.ids; bad = [m for m in sys.modules if m.split('.')[0] in ('textual', 'rich', 'httpx')]; print(bad)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
