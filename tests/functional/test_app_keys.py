"""The help screen lists the keys that run each action now, keymap included,
read from the app's public ``keymap`` and ``BINDINGS`` (not Textual's private
``_bindings``; issue #14)."""

from __future__ import annotations

import re

from test_app_fixtures import clock, fill_store, make_config, plain, wait_for
from tui.app import make_app
from tui.screens.help import HelpScreen


def _help_keys(text: str, what: str) -> str | None:
    """The keys on the help line that describes ``what``."""
    for line in text.splitlines():
        if what in line:
            return re.split(r"\s{2,}", line.strip(), maxsplit=1)[0]
    return None


async def _help_text(tmp_path, **ui) -> tuple[str, object]:
    store = fill_store(tmp_path / "tasks.db")
    app = make_app(make_config(tmp_path, **ui), store, clock=clock)
    async with app.run_test(size=(160, 60)) as pilot:
        await pilot.press("question_mark" if "help" not in ui.get("keymap", {}) else "f1")
        await wait_for(pilot, lambda: isinstance(app.screen, HelpScreen))
        return plain(app.screen.query_one("#help-text")), app


async def test_help_shows_the_default_keys(tmp_path):
    text, app = await _help_text(tmp_path)
    assert _help_keys(text, "cycle sort") == "s"
    assert _help_keys(text, "open the result") == "o"
    assert _help_keys(text, "quit") == "q ^c"


async def test_help_shows_the_keymaps_keys_and_drops_a_default_key_taken_from_another_action(tmp_path):
    text, app = await _help_text(tmp_path, keymap={"sort": "o", "help": "f1,question_mark"})
    assert app.keymap == {"sort": "o", "help": "f1,question_mark"}
    assert _help_keys(text, "cycle sort") == "o"  # remapped
    assert _help_keys(text, "open the result") is None  # its o now sorts: it has no key left
    assert _help_keys(text, "this screen") == "f1 ?"
