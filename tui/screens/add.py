"""The add-task form: provider, kind, label, and many ids pasted at once."""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, TextArea


@dataclass
class AddRequest:
    """What the form asks for; the app hands it to ``store.add``."""

    provider: str
    ids: list[str]
    kind: str | None
    label: str | None


def split_ids(text: str) -> list[str]:
    """Ids from pasted text: one per line, or separated by spaces or commas."""
    out: list[str] = []
    for token in text.replace(",", " ").split():
        token = token.strip()
        if token and token not in out:
            out.append(token)
    return out


class AddTaskScreen(ModalScreen[AddRequest | None]):
    """``a`` opens it; ``ctrl+s`` or the Add button submits; ``esc`` cancels."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="add.cancel", priority=True),
        Binding("ctrl+s", "submit", "Add", id="add.submit"),
    ]

    def __init__(self, providers: list[str], default: str | None = None) -> None:
        super().__init__()
        self.providers = providers
        self.default = default if default in providers else (providers[0] if providers else None)

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
            yield Label("task ids: one per line, or paste many (spaces and commas also split)",
                        classes="hint")
            yield TextArea(id="add-ids", soft_wrap=False)
            yield Label("", id="add-problem")
            with Horizontal(classes="buttons"):
                yield Button("Add (ctrl+s)", id="add", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#add-ids", TextArea).focus()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "add":
            self.action_submit()
        else:
            self.dismiss(None)

    def action_cancel(self) -> None:
        select = self.query_one("#add-provider", Select)
        if select.expanded:  # esc first closes the open drop-down
            select.expanded = False
            return
        self.dismiss(None)

    def action_submit(self) -> None:
        provider = self.query_one("#add-provider", Select).value
        ids = split_ids(self.query_one("#add-ids", TextArea).text)
        problem = self.query_one("#add-problem", Label)
        if not isinstance(provider, str) or not provider:
            problem.update("Choose a provider.")
            return
        if not ids:
            problem.update("Paste at least one task id.")
            return
        kind = self.query_one("#add-kind", Input).value.strip() or None
        label = self.query_one("#add-label", Input).value.strip() or None
        self.dismiss(AddRequest(provider, ids, kind, label))
