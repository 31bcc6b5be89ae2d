"""The dashboard's own Textual messages, in one place (Toolong's ``messages.py``
is the model).

Each carries ``control`` (the widget it is about, or None), so ``@on(Msg,
"#id")`` selectors work.  The frequent one, ``StoreChanged``, defines
``can_replace`` so a burst of store commits reaches a screen as one message.

Only Textual's ``Message`` is imported here: the store, the engine and the
headless commands never import this module (the store's feed is a plain
callback; the app turns it into a message).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from textual.dom import DOMNode


class StoreChanged(Message, bubble=False):
    """The task store committed changes: ``keys`` of the tasks that changed and
    the number of new log ``events``.

    Posted by the app when the store's feed calls it (thread-safe: Textual's
    ``post_message`` hands a message from another thread to the loop), and by
    the app to the screen on top when the main screen is covered.  Handled with
    ``on_store_changed``.  It does not bubble: a screen's copy never comes back
    to the app.

    Bursts coalesce: when the next message in a queue is a ``StoreChanged`` too,
    Textual drops this one and keeps that one, which takes this one's keys and
    events first (``can_replace``), so nothing is lost.
    """

    def __init__(self, keys: set[str] | frozenset[str] = frozenset(), events: int = 0,
                 control: DOMNode | None = None) -> None:
        super().__init__()
        self.keys: set[str] = set(keys)
        self.events = int(events)
        self._control = control

    @property
    def control(self) -> DOMNode | None:
        """The node whose store changed: the app, or None."""
        return self._control

    def can_replace(self, message: Message) -> bool:
        if not isinstance(message, StoreChanged) or message.control is not self.control:
            return False
        message.keys |= self.keys  # the newer message carries both
        message.events += self.events
        return True

    def __rich_repr__(self):
        yield "keys", len(self.keys)
        yield "events", self.events


class FilterDone(Message):
    """The user left the filter bar: ``cleared`` when by ``esc``."""

    def __init__(self, cleared: bool, control: DOMNode | None = None) -> None:
        super().__init__()
        self.cleared = cleared
        self._control = control

    @property
    def control(self) -> DOMNode | None:
        """The filter bar."""
        return self._control
