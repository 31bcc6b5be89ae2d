"""A provider's status words and the states they mean: the one declarative
piece every provider shares, hand-written or declared.

The five seed providers, the catalogue's vendors and the providers a user
declares all say the same thing the same way: ``{state: [words]}``.  A word
is compared after :func:`normal` (case, surrounding space, and the spelling
of separators: ``IN_PROGRESS``, ``in progress`` and ``In-Progress`` are one
word), so a provider that changes case between its docs and its answers, as
Freepik's docs (``IN_PROGRESS``) and ComfyUI's lower-cased comparison do, is
read the same.  A word the vocabulary does not list gives ``unknown``, and
:meth:`Vocabulary.unlisted` says so in words fit for the task's details.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from ..model import STATES, UNKNOWN

# Our states a vocabulary may name (``unknown`` is what an unlisted word gives).
NAMED_STATES: tuple[str, ...] = tuple(s for s in STATES if s != UNKNOWN)


def normal(word: str) -> str:
    """The form words are compared in: lower case, one ``_`` for any run of
    spaces, hyphens or underscores, no surrounding space."""
    out: list[str] = []
    gap = False
    for ch in word.strip().lower():
        if ch in " \t-_":
            gap = True
            continue
        if gap and out:
            out.append("_")
        gap = False
        out.append(ch)
    return "".join(out)


class VocabularyError(ValueError):
    """A vocabulary that names an unknown state, an empty word, or one word twice."""


class Vocabulary:
    """``{state: [words]}`` as given, and the lookup it makes."""

    __slots__ = ("states", "_table")

    def __init__(self, states: Mapping[str, Iterable[str]]) -> None:
        table: dict[str, str] = {}
        kept: dict[str, tuple[str, ...]] = {}
        for state, words in states.items():
            if state not in NAMED_STATES:
                close = [s for s in NAMED_STATES if state and s.startswith(state[:3].lower())]
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise VocabularyError(f"unknown state '{state}'{hint}; states: {', '.join(NAMED_STATES)}")
            words = tuple(words)
            for word in words:
                key = normal(word)
                if not key:
                    raise VocabularyError(f"{state}: an empty word")
                if table.get(key, state) != state:
                    raise VocabularyError(f"'{word}' is in both {table[key]} and {state}")
                table[key] = state
            kept[state] = words
        if not table:
            raise VocabularyError('maps no word to a state (e.g. succeeded = ["SUCCEEDED"])')
        self.states = kept
        self._table = table

    def state(self, word: str | None) -> str:
        """Our state for a provider's word; ``unknown`` for a word not listed (or none)."""
        if not word:
            return UNKNOWN
        return self._table.get(normal(word), UNKNOWN)

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and normal(word) in self._table

    def table(self) -> dict[str, str]:
        """normal(word) -> state, for every word listed."""
        return dict(self._table)

    def unlisted(self, provider: str, word: str, fix: str | None = None) -> str | None:
        """None for a listed word; else one line for the task's details saying the
        word is not known, that the task keeps being polled, and ``fix`` (how to
        teach it the word) when given."""
        if word in self:
            return None
        line = f"{word!r} is not in {provider}'s vocabulary; the task stays unknown and is polled on"
        return f"{line}: {fix}" if fix else line

    def details(self, provider: str, word: str | None) -> dict[str, str]:
        """``{"hint": ...}`` for a word given but not listed, else ``{}``: what a
        hand-written provider merges into its task's details."""
        hint = self.unlisted(provider, word) if word else None
        return {"hint": hint} if hint else {}
