"""Masking a secret in everything a provider sends back.

A server may echo our API key in an error, a task field or a debug dump, and
not always as we sent it: upper- or lower-cased, URL-encoded (once or twice),
base64 (standard or URL-safe, padded or not, alone or inside ``user:key`` as
HTTP Basic auth builds it), hex, JSON-escaped, or cut.  ``redact`` masks every
one of those forms; ``redact_value`` walks decoded JSON.  Everything a provider
answer carries goes through here before it is stored, logged or shown.

The forms masked, for a key ``k`` of ``n`` characters (keys under 4 characters
are left alone: masking them would blank ordinary words):

- ``k`` in any letter case (so upper, lower and mixed case);
- ``quote(k)``, ``quote(k, safe="")``, ``quote_plus(k)``, ``quote`` applied twice
  (escapes in either case), and ``k`` with ``/`` JSON-escaped as ``\\/``;
- base64 of any text holding ``k`` at any byte offset, standard or URL-safe: the
  characters that depend on ``k`` alone are found, and the whole base64 token
  around them is masked (``Basic dXNlcjprZXk=`` -> ``Basic ***``);
- the hex of ``k`` (either case);
- a prefix or a suffix of ``k`` of at least 12 characters, or of at least 60 %
  of a key of 16 characters or more (the part that matches is masked).
"""

from __future__ import annotations

import base64
import math
import re
from functools import lru_cache
from typing import Any
from urllib.parse import quote, quote_plus

from .text import strip_hidden

MASK = "***"
MIN_SECRET = 4  # shorter secrets are not masked
MIN_PIECE = 12  # a prefix/suffix this long is masked ...
PIECE_SHARE = 0.6  # ... or this share of a key of LONG_KEY characters or more
LONG_KEY = 16
MIN_ENCODED = 8  # an encoded form shorter than this is too common to mask
MAX_DEPTH = 64  # redact_value: deeper values are cut (kept for display only)

_B64_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/-_")

# kinds of needle: how far a match extends
_EXACT, _B64, _PREFIX, _SUFFIX = range(4)


def _b64_cores(secret: bytes) -> set[str]:
    """The base64 characters that depend on ``secret`` alone, at each of the
    three byte offsets it can sit at inside a longer text, both alphabets."""
    cores: set[str] = set()
    for offset in range(3):
        data = b"\0" * offset + secret
        first = -(-8 * offset // 6)  # characters that mix in bits of the bytes before
        last = 8 * len(data) // 6  # characters holding only known bits
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            core = encode(data).decode("ascii")[first:last]
            if len(core) >= MIN_ENCODED:
                cores.add(core)
    return cores


class _Masker:
    """The compiled search for one secret's forms."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        self.folded = secret.casefold()
        needles: dict[str, int] = {}

        def add(form: str, kind: int = _EXACT, minimum: int = MIN_SECRET) -> None:
            if len(form) >= minimum:
                needles.setdefault(form.casefold(), kind)

        n = len(secret)
        self.piece = 0  # the shortest prefix/suffix masked (0: none)
        if n > MIN_PIECE:
            self.piece = MIN_PIECE if n < LONG_KEY else min(MIN_PIECE, math.ceil(n * PIECE_SHARE))
            add(secret[: self.piece], _PREFIX)
            add(secret[-self.piece:], _SUFFIX)
        add(secret)
        for form in (quote(secret), quote(secret, safe=""), quote_plus(secret),
                     quote(quote(secret, safe=""), safe=""), secret.replace("/", "\\/")):
            add(form)
        raw = secret.encode("utf-8", "surrogatepass")
        for core in _b64_cores(raw):
            needles.setdefault(core.casefold(), _B64)
        add(raw.hex(), minimum=MIN_ENCODED)
        self.needles = needles
        self.lowered = tuple({n.lower() for n in needles})  # the quick check before the search
        self.shortest = min(len(n) for n in needles)
        ordered = sorted(needles, key=len, reverse=True)
        self.pattern = re.compile("|".join(re.escape(n) for n in ordered), re.IGNORECASE)

    def found(self, text: str) -> bool:
        """Might ``text`` hold a form?  (substring tests, much faster than the search)"""
        if len(text) < self.shortest:
            return False
        low = text.lower()
        return any(n in low for n in self.lowered)

    def __call__(self, text: str) -> str:
        pattern = self.pattern
        m = pattern.search(text)
        if m is None:
            return text
        out: list[str] = []
        pos = 0
        while m is not None:
            start, end = self._extent(text, m)
            out.append(text[pos:start])
            out.append(MASK)
            pos = end
            m = pattern.search(text, end)
        out.append(text[pos:])
        return "".join(out)

    def _extent(self, text: str, m: re.Match) -> tuple[int, int]:
        start, end = m.span()
        kind = self.needles.get(m.group().casefold(), _EXACT)
        if kind == _B64:  # the whole base64 token, padding included
            while start > 0 and text[start - 1] in _B64_CHARS:
                start -= 1
            while end < len(text) and text[end] in _B64_CHARS:
                end += 1
            while end < len(text) and text[end] == "=":
                end += 1
        elif kind == _PREFIX:  # as much more of the key as follows
            k = end - start
            folded = self.folded
            while end < len(text) and k < len(folded) and text[end].casefold() == folded[k]:
                end += 1
                k += 1
        elif kind == _SUFFIX:  # as much more of the key as precedes
            k = len(self.folded) - (end - start) - 1
            folded = self.folded
            while start > 0 and k >= 0 and text[start - 1].casefold() == folded[k]:
                start -= 1
                k -= 1
        return start, end


@lru_cache(maxsize=32)
def _masker(secret: str) -> _Masker:
    return _Masker(secret)


def redact(text: str, secret: str | None) -> str:
    """``text`` with every form of ``secret`` (see the module docstring) masked
    as ``***``.  What ``clean`` would remove (escape sequences, control and
    invisible characters) does not hide an echo either: when such a text holds
    one, it is returned without them, masked."""
    text = str(text)
    if not secret or len(secret) < MIN_SECRET:
        return text
    masker = _masker(secret)
    bare = strip_hidden(text)  # an echo with escapes, controls or invisible characters inside it
    if bare != text and masker.found(bare) and masker.pattern.search(bare):
        return masker(bare)
    return masker(text) if masker.found(text) else text


def redact_value(value: Any, secret: str | None, _depth: int = 0) -> Any:
    """Decoded JSON (dicts, lists, strings, numbers) with ``secret`` masked in
    every string, keys included.  Values nested deeper than 64 levels are cut
    (they are kept for display only)."""
    if not secret or len(secret) < MIN_SECRET:
        return value
    if isinstance(value, str):
        return redact(value, secret)
    if _depth > MAX_DEPTH:
        return "… (nested too deep)"
    if isinstance(value, dict):
        return {redact_value(k, secret, _depth + 1): redact_value(v, secret, _depth + 1) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact_value(v, secret, _depth + 1) for v in value]
    return value


def has_secret(text: str, secret: str | None) -> bool:
    """Does ``text`` hold any form of ``secret`` that ``redact`` would mask?"""
    return bool(secret) and len(secret) >= MIN_SECRET and redact(text, secret) != str(text)
