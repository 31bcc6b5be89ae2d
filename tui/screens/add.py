"""The add-task form: provider, kind, label, and many ids pasted at once.

Ids are read by the one rule of :mod:`tui.ids` (the same as ``tasktui add``).
As the user types or pastes, the form shows the ids it read and their count,
the invalid ones (never added), and ids whose shape does not fit the chosen
provider.  Until the user picks a provider, the one the ids point at (a
pasted URL's, or a shape unique to one provider) is chosen for them; a kind a
pasted URL names fills an empty kind field.  ``esc`` on a filled form asks
before discarding it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Footer, Input, Label, Select, Static, TextArea

from ..ids import ParsedIds, parse_ids
from ..ids import split_ids as _split_ids

PREVIEW_IDS = 12  # ids named in the preview line (the count covers them all)


@dataclass
class AddRequest:
    """What the form asks for; the app hands it to ``store.add``."""

    provider: str
    ids: list[str]
    kind: str | None
    label: str | None
    skipped: list[str] = field(default_factory=list)  # invalid tokens, not added ("why" included)
    warnings: list[str] = field(default_factory=list)  # ids whose shape does not fit the provider


def split_ids(text: str) -> list[str]:
    """Ids from pasted text, by the rule of :mod:`tui.ids` (kept for callers of the old name)."""
    return _split_ids(text)


def _quote(text: str, limit: int = 32) -> str:
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def preview(parsed: ParsedIds) -> str:
    """The preview line: ``3 ids: a, b, c`` (plus what else the paste said)."""
    ids = parsed.values
    if not ids:
        line = "no ids yet" if not parsed.invalid else "no valid ids"
    else:
        shown = ", ".join(ids[:PREVIEW_IDS]) + (", …" if len(ids) > PREVIEW_IDS else "")
        line = f"{len(ids):,} id{'s' if len(ids) != 1 else ''}: {shown}"
    extras = []
    if parsed.duplicates:
        extras.append(f"{parsed.duplicates:,} duplicate{'s' if parsed.duplicates != 1 else ''} dropped")
    if parsed.invalid:
        extras.append(f"{len(parsed.invalid):,} invalid")
    return line + (f"  ({', '.join(extras)})" if extras else "")


def problems(parsed: ParsedIds, provider: str | None) -> list[str]:
    """Warning lines for the form, most important first."""
    out = []
    if parsed.invalid:
        first = parsed.invalid[0]  # the reason first: a narrow form cuts the end
        out.append(f"⚠ {len(parsed.invalid):,} invalid, not added: {first.problem}: "
                   f"{_quote(first.source, 24)}")
    notes = []
    shape = parsed.warnings(provider)
    if shape:
        more = f" (+{len(shape) - 1:,} more like it)" if len(shape) > 1 else ""
        notes.append(f"{shape[0]}{more}")
    if len(parsed.kinds) > 1:
        notes.append(f"the URLs name {len(parsed.kinds)} kinds ({', '.join(parsed.kinds[:3])}): "
                     "add each kind on its own")
    if notes:
        out.append("⚠ " + "; ".join(notes))
    return out


class AddTaskScreen(ModalScreen[AddRequest | None]):
    """``a`` opens it; ``ctrl+s`` or the Add button submits; ``esc`` cancels (asking first
    when something was typed)."""

    DEFAULT_CSS = """
    #add-box #add-parsed { height: 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #add-box #add-warnings { height: auto; max-height: 2; color: $warning; text-wrap: nowrap;
                             text-overflow: ellipsis; }
    #add-box .buttons Button { height: 1; }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="add.cancel", priority=True),
        Binding("ctrl+s", "submit", "Add", id="add.submit"),
    ]

    def __init__(self, providers: list[str], default: str | None = None) -> None:
        super().__init__()
        self.providers = providers
        self.default = default if default in providers else (providers[0] if providers else None)
        self.parsed = ParsedIds()
        self._auto_provider = self.default  # the provider value the form itself last chose
        self.provider_chosen = False  # True once the user picked a provider
        self._auto_kind = ""  # the kind value the form itself filled in
        self._asking = False

    def compose(self) -> ComposeResult:
        with Vertical(id="add-box", classes="dialog"):
            yield Label("Track tasks", classes="dialog-title")
            with Horizontal(classes="field"):
                yield Label("provider", classes="field-name")
                yield Select([(p, p) for p in self.providers], value=self.default or Select.NULL,
                             allow_blank=False if self.providers else True, id="add-provider")
            with Horizontal(classes="field"):
                yield Label("kind", classes="field-name")
                yield Input(placeholder="optional, e.g. image-relight", id="add-kind")
            with Horizontal(classes="field"):
                yield Label("label", classes="field-name")
                yield Input(placeholder="optional, e.g. batch-7", id="add-label")
            yield Label("task ids or provider links: spaces, commas and newlines split them",
                        classes="hint", id="add-hint")
            yield TextArea(id="add-ids", soft_wrap=False)
            yield Static(Text(preview(self.parsed)), id="add-parsed")
            yield Static("", id="add-warnings")
            yield Label("", id="add-problem")
            with Horizontal(classes="buttons"):
                yield Button("Add (ctrl+s)", id="add", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#add-problem", Label).display = False
        self.query_one("#add-warnings", Static).display = False
        self.query_one("#add-ids", TextArea).focus()

    # ------------------------------------------------------------ live preview

    @property
    def provider(self) -> str | None:
        value = self.query_one("#add-provider", Select).value
        return value if isinstance(value, str) and value else None

    def on_text_area_changed(self, event: TextArea.Changed) -> None:
        self.parsed = parse_ids(event.text_area.text)
        self._choose_provider()
        self._fill_kind()
        self._show()

    def on_select_changed(self, event: Select.Changed) -> None:
        self._show()  # the warnings depend on the provider

    def on_input_changed(self, event: Input.Changed) -> None:
        if event.input.id == "add-kind" and event.value != self._auto_kind:
            self._auto_kind = ""  # typed by the user: theirs from now on

    def _choose_provider(self) -> None:
        """Until the user picks one, select the provider the ids point at (or go back
        to the default when they point nowhere in particular)."""
        if self.provider != self._auto_provider:
            self.provider_chosen = True  # changed by someone else than the form
        if self.provider_chosen:
            return
        guess = self.parsed.provider()
        want = guess if guess in self.providers else self.default
        if want is not None and want != self.provider:
            self._auto_provider = want
            self.query_one("#add-provider", Select).value = want

    def _fill_kind(self) -> None:
        """A kind the pasted URLs agree on fills an empty kind field (or one the form
        filled itself); it is cleared again when the URLs go."""
        kind_input = self.query_one("#add-kind", Input)
        if kind_input.value and kind_input.value != self._auto_kind:
            return
        want = self.parsed.kind or ""
        if want != kind_input.value:
            self._auto_kind = want
            kind_input.value = want

    def _show(self) -> None:
        typed = bool(self.parsed.ids or self.parsed.invalid)
        self.query_one("#add-hint", Label).display = not typed  # the preview says more (80x24 fit)
        self.query_one("#add-parsed", Static).update(Text(preview(self.parsed)))
        lines = problems(self.parsed, self.provider)
        warnings = self.query_one("#add-warnings", Static)
        warnings.update(Text("\n".join(lines)))
        warnings.display = bool(lines)
        self._say("")

    def _say(self, problem: str) -> None:
        label = self.query_one("#add-problem", Label)
        label.update(Text(problem))
        label.display = bool(problem)

    # ------------------------------------------------------------ submit, cancel

    def filled(self) -> bool:
        """Whether discarding the form would lose something the user typed."""
        return bool(self.query_one("#add-ids", TextArea).text.strip()
                    or self.query_one("#add-label", Input).value.strip()
                    or (self.query_one("#add-kind", Input).value.strip()
                        and self.query_one("#add-kind", Input).value != self._auto_kind))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self.action_submit()
        else:
            self.action_cancel()

    def action_cancel(self) -> None:
        select = self.query_one("#add-provider", Select)
        if select.expanded:  # esc first closes the open drop-down
            select.expanded = False
            return
        if not self.filled():
            self.dismiss(None)
            return
        from .confirm import ConfirmScreen

        count = len(self.parsed.values)
        what = f"the {count:,} id{'s' if count != 1 else ''} typed" if count else "what was typed"

        def answer(discard: bool | None) -> None:
            if discard:
                self.dismiss(None)

        self.app.push_screen(ConfirmScreen(f"Discard this form and {what}?\nNothing is added.",
                                           yes="Discard"), answer)

    def action_submit(self) -> None:
        provider = self.provider
        self.parsed = parse_ids(self.query_one("#add-ids", TextArea).text)
        if provider is None:
            self._say("Choose a provider.")
            return
        if not self.parsed.ids:
            bad = len(self.parsed.invalid)
            self._say("Paste at least one task id" + (f" ({bad} invalid, see above)." if bad else "."))
            return
        kind = self.query_one("#add-kind", Input).value.strip() or None
        label = self.query_one("#add-label", Input).value.strip() or None
        self.dismiss(AddRequest(provider, self.parsed.values, kind, label,
                                skipped=[f"{_quote(p.source, 80)}: {p.problem}" for p in self.parsed.invalid],
                                warnings=self.parsed.warnings(provider)))
