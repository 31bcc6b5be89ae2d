"""The config: paths, loading, validation errors, secrets hygiene, saving, `config check`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
from pydantic import ValidationError

from tui import cli
from tui.config import (
    PROVIDER_DEFAULTS,
    Config,
    ConfigError,
    RateLimit,
    cmd_check,
    config_path,
    db_path,
    load_config,
    parse_config,
    parse_rate_limit,
    save_setting,
)
from tui.model import PROVIDERS

ROOT = Path(__file__).resolve().parents[2]
SECRET = "sk-SECRET-do-not-show-9f8e7d"
ENV_KEYS = {f"{p.upper()}_API_KEY": f"{SECRET}-{p}" for p in PROVIDERS}

GOOD = """\
# my providers
[providers.evolink]
api_key = "${EVOLINK_API_KEY}"   # from the environment
poll_interval = 2.5
rate_limit = "100/h"

[providers.freepik]
api_key = "${FREEPIK_API_KEY}"
discover = true
kinds = ["text-to-image/hyperflux", "/image-relight/"]

[providers.qolaba]
api_key = "${QOLABA_API_KEY}"
base_url = "http://127.0.0.1:8765/qolaba/"
enabled = false

[ui]
theme = "nord"
saved_filters = { failed = "state:bad" }

[engine]
max_backoff = 120
"""


@pytest.fixture(autouse=True)
def env(monkeypatch):
    for name in ("TASKTUI_CONFIG", "TASKTUI_DB"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ENV_KEYS.items():
        monkeypatch.setenv(name, value)
    return monkeypatch


def write(tmp_path: Path, text: str, name: str = "config.toml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def error_of(tmp_path: Path, text: str) -> str:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    msg = str(info.value)
    assert "\n" not in msg
    assert msg.startswith(f"{path}: "), msg
    assert SECRET not in msg and "literal-secret" not in msg
    return msg[len(str(path)) + 2:]


# ---------------------------------------------------------------- paths


def test_config_path_order(env, tmp_path):
    default = config_path()
    assert default.name == "config.toml" and "tasktui" in str(default)
    env.setenv("TASKTUI_CONFIG", str(tmp_path / "env.toml"))
    assert config_path() == tmp_path / "env.toml"
    assert config_path(str(tmp_path / "arg.toml")) == tmp_path / "arg.toml"
    env.setenv("TASKTUI_CONFIG", "")
    assert config_path() == default


def test_db_path_order(env, tmp_path):
    default = db_path()
    assert default.name == "tasks.db" and "tasktui" in str(default)
    env.setenv("TASKTUI_DB", str(tmp_path / "env.db"))
    assert db_path() == tmp_path / "env.db"
    assert db_path(tmp_path / "arg.db") == tmp_path / "arg.db"


def test_load_uses_tasktui_config(env, tmp_path):
    path = write(tmp_path, GOOD)
    env.setenv("TASKTUI_CONFIG", str(path))
    assert set(load_config().providers) == {"evolink", "freepik", "qolaba"}


# ---------------------------------------------------------------- good configs


def test_good_config(tmp_path):
    path = write(tmp_path, GOOD)
    config = load_config(path)
    assert config.path == path
    evo = config.providers["evolink"]
    assert evo.key == ENV_KEYS["EVOLINK_API_KEY"]
    assert evo.base_url == "https://api.evolink.ai"  # the provider's default
    assert evo.poll_interval == 2.5
    assert evo.rate_limit == RateLimit(100, 3600.0) and str(evo.rate_limit) == "100/h"
    assert evo.concurrency == 4 and evo.timeout == 20 and evo.discover is False
    fp = config.providers["freepik"]
    assert fp.rate_limit == (10, 1.0)  # the documented default
    assert fp.discover is True and fp.kinds == ["text-to-image/hyperflux", "image-relight"]
    assert fp.default_kind == "text-to-image/hyperflux"
    qo = config.providers["qolaba"]
    assert qo.base_url == "http://127.0.0.1:8765/qolaba" and qo.enabled is False
    assert list(config.enabled()) == ["evolink", "freepik"]
    assert config.ui.theme == "nord" and config.ui.saved_filters == {"failed": "state:bad"}
    assert config.ui.bell is False and config.ui.notify is True
    assert config.engine.max_backoff == 120 and config.engine.adaptive is True
    assert config.warnings == []


def test_missing_file_is_empty_config_unless_required(tmp_path):
    config = load_config(tmp_path / "nope.toml")
    assert config.providers == {} and config.path is None and config.ui.theme == "textual-dark"
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path / "nope.toml", must_exist=True)
    msg = str(info.value)
    assert str(tmp_path / "nope.toml") in msg and "tasktui config init" in msg and "--config" in msg


def test_example_config_is_valid_and_documents_every_key(tmp_path):
    config = load_config(ROOT / "config.example.toml")
    assert list(config.providers) == list(PROVIDERS)
    example = (ROOT / "config.example.toml").read_text()
    docs = (ROOT / "docs" / "config.md").read_text()
    from tui.config import EngineConfig, ProviderConfig, UIConfig
    for model in (ProviderConfig, UIConfig, EngineConfig):
        for key in model.model_fields:
            if key == "name":
                continue
            assert f"| `{key}` |" in docs, key
            assert f"{key} =" in example or f"[ui.{key}]" in example, key


def test_env_expansion_everywhere_and_dollar_escape(tmp_path, env):
    env.setenv("HOST", "127.0.0.1:9000")
    env.setenv("THEME", "gruvbox")
    config = load_config(write(tmp_path, """
[providers.evolink]
api_key = "a$$b${EVOLINK_API_KEY}"
base_url = "http://${HOST}/evo"
[ui]
theme = "${THEME}"
saved_filters = { cost = "label:$$5" }
"""))
    evo = config.providers["evolink"]
    assert evo.key == "a$b" + ENV_KEYS["EVOLINK_API_KEY"]
    assert evo.base_url == "http://127.0.0.1:9000/evo"
    assert config.ui.theme == "gruvbox" and config.ui.saved_filters["cost"] == "label:$5"


def test_redacted_never_holds_keys(tmp_path):
    config = load_config(write(tmp_path, GOOD))
    text = repr(config.redacted()) + repr(config) + str(config.providers["evolink"])
    assert SECRET not in text
    assert config.redacted()["providers"]["evolink"]["rate_limit"] == "100/h"


# ---------------------------------------------------------------- bad configs


@pytest.mark.parametrize("text,key,reason", [
    ('[providers.openai]\napi_key = "x"\n', "providers.openai", "unknown provider 'openai'"),
    ('[providers.evolnk]\napi_key = "x"\n', "providers.evolnk", "did you mean 'evolink'?"),
    ("[providers.evolink]\npoll_interval = 5\n", "providers.evolink.api_key", "required key is missing"),
    ('[providers.evolink]\napi_key = "${NOT_SET_ANYWHERE}"\n', "providers.evolink.api_key",
     "environment variable NOT_SET_ANYWHERE is not set"),
    ('[providers.evolink]\napi_key = "${EVOLINK_API_KEY"\n', "providers.evolink.api_key", "malformed"),
    ('[providers.evolink]\napi_key = ""\n', "providers.evolink.api_key", "is empty"),
    ('[providers.evolink]\napi_key = "literal-secret with space"\n', "providers.evolink.api_key", "spaces"),
    ('[providers.evolink]\napi_key = 12345\n', "providers.evolink.api_key", "valid string"),
    ('[providers.evolink]\napi_key = "x"\npoll_interval = "fast"\n', "providers.evolink.poll_interval",
     "valid number"),
    ('[providers.evolink]\napi_key = "x"\nconcurrency = 2.5\n', "providers.evolink.concurrency", "integer"),
    ('[providers.evolink]\napi_key = "x"\nconcurrency = 100\n', "providers.evolink.concurrency", "64"),
    ('[providers.evolink]\napi_key = "x"\nenabled = "yes"\n', "providers.evolink.enabled", "boolean"),
    ('[providers.evolink]\napi_key = "x"\nbase_url = "ftp://host"\n', "providers.evolink.base_url", "http"),
    ('[providers.evolink]\napi_key = "x"\nbase_url = "not a url"\n', "providers.evolink.base_url", "http"),
    ('[providers.evolink]\napi_key = "x"\nbase_url = "https://"\n', "providers.evolink.base_url", "http"),
    ('[providers.evolink]\napi_key = "x"\nbase_url = "https://h:99999"\n', "providers.evolink.base_url",
     "http"),
    ('[providers.evolink]\napi_key = "x"\nrate_limit = "100 per hour"\n', "providers.evolink.rate_limit",
     "N/h"),
    ('[providers.evolink]\napi_key = "x"\nrate_limit = "0/s"\n', "providers.evolink.rate_limit", ">= 1"),
    ('[providers.evolink]\napi_key = "x"\nrate_limit = 100\n', "providers.evolink.rate_limit", "string"),
    ('[providers.evolink]\napi_key = "x"\npoll_interval = 0.05\n', "providers.evolink.poll_interval",
     "greater than or equal to 0.1"),
    ('[providers.evolink]\napi_key = "x"\npoll_interval = nan\n', "providers.evolink.poll_interval", "finite"),
    ('[providers.evolink]\napi_key = "x"\npoll_intervall = 3\n', "providers.evolink.poll_intervall",
     "unknown key 'poll_intervall' (did you mean 'poll_interval'?)"),
    ('[providers.evolink]\napi_key = "x"\nname = "y"\n', "providers.evolink.name", "unknown key 'name'"),
    ('[providers.evolink]\napi_key = "x"\nkinds = ["ok", ""]\n', "providers.evolink.kinds", "kind"),
    ('[providers.evolink]\napi_key = "x"\nkinds = [1]\n', "providers.evolink.kinds[0]", "string"),
    ('[providers.qolaba]\napi_key = "x"\n', "providers.qolaba.base_url", "required for qolaba"),
    ('providers = 3\n', "providers", "tables"),
    ('[providers]\nevolink = "x"\n', "providers.evolink", "should be a table"),
    ('[provider.evolink]\napi_key = "x"\n', "provider", "unknown key 'provider' (did you mean 'providers'?)"),
    ('[ui]\nthem = "nord"\n', "ui.them", "did you mean 'theme'?"),
    ('[ui]\nbell = 1\n', "ui.bell", "boolean"),
    ('[ui]\nrefresh_hz = 0\n', "ui.refresh_hz", "greater than or equal"),
    ('[ui]\nkeymap = { refresh = " " }\n', "ui.keymap.refresh", "has no keys"),
    ('[ui.saved_filters]\n"my f" = 3\n', 'ui.saved_filters."my f"', "string"),
    ('ui = 3\n', "ui", "should be a table"),
    ('[engine]\nmax_backoff = -1\n', "engine.max_backoff", "greater than or equal"),
    ('[engine]\nadaptve = true\n', "engine.adaptve", "did you mean 'adaptive'?"),
])
def test_bad_config_names_key_and_reason(tmp_path, text, key, reason):
    msg = error_of(tmp_path, text)
    assert msg.startswith(f"{key}: "), msg
    assert reason in msg, msg


def test_toml_syntax_error_gives_line_and_column(tmp_path):
    msg = error_of(tmp_path, '[providers.evolink]\napi_key = "x"\npoll_interval = = 5\n')
    assert msg.startswith("line 3, column ") and "TOML syntax error" in msg


def test_several_problems_are_counted_on_one_line(tmp_path):
    msg = error_of(tmp_path, '[providers.evolink]\napi_key = "x"\npoll_interval = "a"\nconcurrency = "b"\n')
    assert msg.startswith("providers.evolink.poll_interval: ") and "(and 1 more problem;" in msg
    assert "tasktui config check" in msg


MANY = """\
[providers.evolink]
api_key = "${NOPE_NOT_SET}"
rate_limit = "fast"
poll_intervall = 3
[providers.openai]
api_key = "x"
[providers.qolaba]
api_key = "x"
[providers.freepik]
api_key = "x"
base_url = "https://u:p@api.freepik.com"
[ui]
theme = "nordd"
bell = "loud"
keymap = { refersh = "r", quit = "ctrl+", sort = "ctl+s", help = "f1,escpae" }
[engine]
max_backoff = -1
[extra]
x = 1
"""


def test_all_problems_are_collected(tmp_path):
    path = write(tmp_path, MANY)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    problems = info.value.problems
    assert all(p.startswith(f"{path}: ") and "\n" not in p for p in problems), problems
    keys = [p[len(str(path)) + 2:].split(": ", 1)[0] for p in problems]
    assert keys == [
        "providers.evolink.api_key",
        "providers.evolink.rate_limit",
        "providers.evolink.poll_intervall",  # a table's unknown keys after its known ones
        "providers.openai",
        "providers.qolaba.base_url",
        "providers.freepik.base_url",
        "ui.theme",
        "ui.bell",
        "ui.keymap.refersh",
        "ui.keymap.quit",
        "ui.keymap.sort",
        "ui.keymap.help",
        "engine.max_backoff",
        "extra",
    ], keys
    assert str(info.value) == f"{problems[0]} (and {len(problems) - 1} more problems; `tasktui config check` lists all)"


def test_check_prints_every_problem_one_per_line(tmp_path, capsys):
    path = write(tmp_path, MANY)
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert out == "" and len(lines) == 14, lines
    assert all(line.startswith(f"{path}: ") for line in lines)
    text = "\n".join(lines)
    assert "environment variable NOPE_NOT_SET is not set" in text
    assert "unknown theme 'nordd' (did you mean 'nord'?); themes: textual-dark, textual-light, nord" in text
    assert "ui.keymap.refersh: unknown binding id 'refersh' (did you mean 'refresh'?)" in text
    assert "ui.keymap.quit: 'ctrl+' is not a key" in text
    assert "ui.keymap.sort: unknown modifier 'ctl' in 'ctl+s' (did you mean 'ctrl'?)" in text
    assert "ui.keymap.help: unknown key 'escpae' (did you mean 'escape'?)" in text
    assert "required for qolaba" in text and "credentials in base_url" in text


@pytest.mark.parametrize("theme", ["textual-dark", "nord", "gruvbox", "ansi-dark", "catppuccin-latte"])
def test_known_themes_are_fine(tmp_path, theme):
    assert load_config(write(tmp_path, f'[ui]\ntheme = "{theme}"\n')).ui.theme == theme


def test_theme_names_agree_with_textual():
    from textual.theme import BUILTIN_THEMES

    from tui.config import THEMES

    assert set(THEMES) == set(BUILTIN_THEMES)


def _binding_ids() -> set[str]:
    """Every binding id the dashboard's app, screens and widgets declare."""
    import importlib
    import pkgutil

    from textual.dom import DOMNode

    import tui
    import tui.screens
    import tui.widgets

    ids: set[str] = set()
    names = ["tui.app"] + [f"{pkg.__name__}.{m.name}" for pkg in (tui.screens, tui.widgets)
                           for m in pkgutil.iter_modules(pkg.__path__)]
    for name in names:
        module = importlib.import_module(name)
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, DOMNode) and obj.__module__ == name:
                for binding in obj.BINDINGS:
                    if getattr(binding, "id", None):
                        ids.add(binding.id)
    return ids


def test_keymap_binding_ids_agree_with_the_app():
    from tui.config import BINDING_IDS

    assert set(BINDING_IDS) == _binding_ids(), "update tui.config.BINDING_IDS (and docs/config.md)"


def test_docs_list_every_binding_id():
    from tui.config import BINDING_IDS

    row = next(line for line in (ROOT / "docs" / "config.md").read_text().splitlines()
               if line.startswith("| `keymap` |"))
    words = set(row.replace("`", " ").replace(",", " ").split())
    assert [b for b in BINDING_IDS if b not in words and not b.startswith("saved.")] == []


def test_keymap_keys_agree_with_textual():
    from textual.keys import Keys

    from tui.config import UIConfig

    keys = sorted({k.value for k in Keys if not k.value.startswith("<") and k.value != "ctrl-at"})
    for key in keys:
        UIConfig(keymap={"refresh": key})  # every key Textual names is accepted


@pytest.mark.parametrize("given,stored", [
    ("r,f5", "r,f5"),
    (" r , f5 ", "r,f5"),
    ("?", "question_mark"),
    ("ctrl+r, /", "ctrl+r,slash"),
    ("R,ctrl+shift+up,alt+x", "R,ctrl+shift+up,alt+x"),
    ("comma,full_stop,space,escape,pagedown", "comma,full_stop,space,escape,pagedown"),
])
def test_keymap_keys_are_normalised_as_textual_names_them(tmp_path, given, stored):
    config = load_config(write(tmp_path, f'[ui.keymap]\nrefresh = "{given}"\n"saved.3" = "f3"\n'))
    assert config.ui.keymap == {"refresh": stored, "saved.3": "f3"}


def test_keymap_still_drives_the_app(tmp_path):
    """A normalised punctuation key reaches the binding (Textual's keymap does not normalise it)."""
    import asyncio

    from tui.app import make_app
    from tui.store import Store

    config = load_config(write(tmp_path, '[ui.keymap]\nhelp = "!"\n'))

    async def go():
        store = Store(tmp_path / "t.db")
        app = make_app(config, store, offline=True)
        try:
            async with app.run_test(size=(100, 30)) as pilot:
                await pilot.press("exclamation_mark")
                await pilot.pause()
                return type(app.screen).__name__
        finally:
            store.close()

    assert "Help" in asyncio.run(go())


def test_bad_values_never_echo_a_secret(tmp_path, env):
    env.setenv("EVOLINK_API_KEY", f"{SECRET} with space")
    msg = error_of(tmp_path, '[providers.evolink]\napi_key = "${EVOLINK_API_KEY}"\n')
    assert "api_key" in msg
    msg = error_of(tmp_path, f'[providers.evolink]\napi_key = "x"\nbase_url = "{SECRET}"\n')
    assert "base_url" in msg


def test_not_utf8(tmp_path):
    path = tmp_path / "config.toml"
    path.write_bytes(b'[ui]\ntheme = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_rate_limit_parsing():
    assert parse_rate_limit("10/s") == RateLimit(10, 1.0)
    assert parse_rate_limit(" 60 / m ") == RateLimit(60, 60.0)
    assert parse_rate_limit("100/h").per_second == pytest.approx(100 / 3600)
    assert str(parse_rate_limit("1250/d")) == "1250/d"
    for bad in ("", "10", "10/x", "-1/s", "1.5/s", "ten/s", "0/m"):
        with pytest.raises(ValueError):
            parse_rate_limit(bad)


def test_provider_defaults_agree_with_provider_classes():
    from tui.providers import provider_class

    for name in PROVIDERS:
        cls = provider_class(name)
        assert PROVIDER_DEFAULTS[name] == (cls.default_base_url, cls.default_rate_limit,
                                           cls.default_poll_interval, cls.default_kind), name


def test_provider_config_direct_construction_fills_defaults():
    from tui.config import ProviderConfig

    p = ProviderConfig(name="upscayl", api_key="k")
    assert p.base_url == "https://api.upscayl.org" and str(p.rate_limit) == "100/h"
    with pytest.raises(ValidationError):
        ProviderConfig(name="nope", api_key="k", base_url="http://x", poll_interval=1, rate_limit="1/s")
    with pytest.raises(ValidationError) as info:
        ProviderConfig(name="evolink", api_key=f"{SECRET} x", concurrency="many")
    assert SECRET not in str(info.value) and SECRET not in repr(info.value)


# ---------------------------------------------------------------- warnings


LITERAL = '[providers.evolink]\napi_key = "literal-secret"\n[providers.freepik]\napi_key = "${FREEPIK_API_KEY}"\n'


@pytest.mark.skipif(os.name != "posix", reason="file modes are POSIX")
def test_permission_warning_for_literal_key_in_readable_file(tmp_path):
    config = load_config(write(tmp_path, LITERAL, mode=0o644))
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert "providers.evolink.api_key" in warning and "chmod 600" in warning
    assert "literal-secret" not in warning
    assert load_config(write(tmp_path, LITERAL, mode=0o600)).warnings == []
    # keys from the environment in a readable file: fine
    assert load_config(write(tmp_path, GOOD, mode=0o644)).warnings == []


def test_other_warnings(tmp_path):
    config = load_config(write(tmp_path, """
[providers.evolink]
api_key = "${EVOLINK_API_KEY}"
base_url = "http://evolink.example.com"
[ui.saved_filters]
broken = "provider: state:done"
"""))
    text = " | ".join(config.warnings)
    assert "providers.evolink.base_url: plain http" in text
    assert "ui.saved_filters.broken: 'provider:' has no value" in text
    assert any("nothing will be polled" in w for w in load_config(write(tmp_path, "[ui]\n")).warnings)


# ---------------------------------------------------------------- saving


def test_save_setting_keeps_everything_else_byte_for_byte(tmp_path):
    path = write(tmp_path, GOOD, mode=0o640)
    save_setting(path, "ui.theme", "gruvbox")
    after = path.read_text()
    before_lines, after_lines = GOOD.splitlines(), after.splitlines()
    assert len(before_lines) == len(after_lines)
    changed = [(b, a) for b, a in zip(before_lines, after_lines) if b != a]
    assert changed == [('theme = "nord"', 'theme = "gruvbox"')]
    assert after.endswith("\n")
    assert oct(path.stat().st_mode & 0o777) == oct(0o600)  # private, whatever it was
    assert load_config(path).ui.theme == "gruvbox"


def test_save_setting_creates_tables_and_removes_keys(tmp_path):
    text = "# top comment\n[providers.evolink]\napi_key = \"${EVOLINK_API_KEY}\"  # keep me\n"
    path = write(tmp_path, text)
    save_setting(path, ("ui", "saved_filters", "my.f"), "-state:done")
    save_setting(path, "ui.theme", "nord")
    after = path.read_text()
    assert after.startswith(text)  # everything before is untouched
    config = load_config(path)
    assert config.ui.saved_filters == {"my.f": "-state:done"} and config.ui.theme == "nord"
    save_setting(path, ("ui", "saved_filters", "my.f"), None)
    assert load_config(path).ui.saved_filters == {}
    save_setting(path, "engine.nothing_here", None)  # removing what is not there: no-op
    assert path.read_text().startswith(text)


def test_save_setting_on_missing_file_and_inline_tables(tmp_path):
    path = tmp_path / "new" / "dir" / "config.toml"
    save_setting(path, "ui.theme", "nord")
    assert load_config(path).ui.theme == "nord"
    if os.name == "posix":
        assert path.stat().st_mode & 0o077 == 0  # a new file is private
    path2 = write(tmp_path, GOOD)
    save_setting(path2, "ui.saved_filters.mine", "flux")  # saved_filters is an inline table in GOOD
    assert load_config(path2).ui.saved_filters == {"failed": "state:bad", "mine": "flux"}


def test_save_setting_refuses_invalid_values(tmp_path):
    path = write(tmp_path, GOOD)
    with pytest.raises(ConfigError, match=r"ui\.bell"):
        save_setting(path, "ui.bell", "loud")
    with pytest.raises(ConfigError, match="not a table"):
        save_setting(path, "ui.theme.x", "y")
    assert path.read_text() == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]  # no temp file left


def test_save_setting_respects_tasktui_config(env, tmp_path):
    path = write(tmp_path, GOOD)
    env.setenv("TASKTUI_CONFIG", str(path))
    assert save_setting(None, "ui.bell", True) == path
    assert load_config().ui.bell is True


# ---------------------------------------------------------------- `tasktui config check`


def test_check_ok_via_cli_main(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert cli.main(["config", "check", "--config", str(path)]) == 0
    out, err = capsys.readouterr()
    assert out.strip() == f"OK: {path}: 3 providers (evolink, freepik, qolaba [disabled])"
    assert err == ""


def test_check_config_before_command(tmp_path, capsys):
    path = write(tmp_path, GOOD)
    assert cli.main(["--config", str(path), "config", "check"]) == 0
    assert capsys.readouterr().out.startswith(f"OK: {path}:")


def test_check_warnings_go_to_stderr(tmp_path, capsys):
    path = write(tmp_path, LITERAL, mode=0o644)
    assert cmd_check(SimpleNamespace(config=str(path))) == 0
    out, err = capsys.readouterr()
    assert out.startswith("OK: ") and "warning: " in err and "literal-secret" not in out + err


def test_check_errors(tmp_path, capsys):
    path = write(tmp_path, '[providers.evolink]\napi_key = "${NOPE_NOT_SET}"\n')
    assert cli.main(["config", "check", "--config", str(path)]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err == f"{path}: providers.evolink.api_key: environment variable NOPE_NOT_SET is not set\n"
    assert cmd_check(SimpleNamespace(config=str(tmp_path / "missing.toml"))) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "missing.toml") in err and "tasktui config init" in err


def test_check_missing_file_via_env(env, tmp_path, capsys):
    env.setenv("TASKTUI_CONFIG", str(tmp_path / "from-env.toml"))
    assert cmd_check(SimpleNamespace(config=None)) == 2
    err = capsys.readouterr().err
    assert "from-env.toml" in err and "$TASKTUI_CONFIG" in err


def run_check(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    full_env = {k: v for k, v in os.environ.items() if k not in ("TASKTUI_CONFIG", "TASKTUI_DB")}
    full_env.update(env or {})
    full_env["CI"] = "true"
    return subprocess.run([sys.executable, "-m", "tui", "config", "check", *args], cwd=ROOT, env=full_env,
                          stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)


def test_check_subprocess(tmp_path):
    good = write(tmp_path, GOOD, name="good.toml")
    res = run_check("--config", str(good))
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith(f"OK: {good}: 3 providers")

    bad = write(tmp_path, '[providers.evolink]\napi_key = "${NOPE_NOT_SET}"\nrate_limit = "fast"\n',
                name="bad.toml")
    res = run_check("--config", str(bad))
    assert res.returncode == 2
    assert "Traceback" not in res.stderr and res.stderr.strip().splitlines() == [
        f"{bad}: providers.evolink.api_key: environment variable NOPE_NOT_SET is not set",
        f"{bad}: providers.evolink.rate_limit: should be \"N/s\", \"N/m\", \"N/h\" or \"N/d\" with N a whole number"
        " >= 1 (e.g. \"100/h\")"]

    syntax = write(tmp_path, "[ui\n", name="syntax.toml")
    res = run_check(env={"TASKTUI_CONFIG": str(syntax)})
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.startswith(f"{syntax}: line 1, column ")

    res = run_check("--config", str(tmp_path / "missing.toml"))
    assert res.returncode == 2 and "Traceback" not in res.stderr and "tasktui config init" in res.stderr


def test_empty_config_object():
    config = Config()
    assert config.enabled() == {} and config.redacted()["providers"] == {}


def test_simulator_config_validates():
    """The config the simulator writes for the demo passes validation, without warnings."""
    from tui.sim.generate import generate
    from tui.sim.serve import config_toml

    text = config_toml("http://127.0.0.1:9", generate(7, 5, budgets={"upscayl": "100/h"}))
    config = parse_config(text, "sim.toml")
    assert list(config.providers) == list(PROVIDERS) and config.warnings == []
    assert str(config.providers["upscayl"].rate_limit) == "100/h"


def test_save_setting_unwritable_place_is_a_config_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(ConfigError, match="cannot write"):
        save_setting(blocker / "config.toml", "ui.theme", "nord")
