"""Cleaning of text that came from a provider.

Everything a provider says is hostile until cleaned: it may carry ANSI / OSC
escape sequences (screen clears, OSC 52 clipboard writes), C0/C1 control
characters, bidi overrides, or be absurdly long.  ``clean`` makes it inert
plain text; rendering code must still never treat it as Rich markup.
"""

from __future__ import annotations

import re

MAX_TEXT = 4000  # characters kept of one provider string

# CSI, OSC (terminated by BEL or ST), and other ESC sequences.
_ESCAPES = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI ... final byte
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?"  # OSC ... BEL | ST
    r"|\x1b[PX^_][^\x1b]*(?:\x1b\\)?"  # DCS, SOS, PM, APC strings
    r"|\x1b[@-Z\\-_]"  # two-byte escapes
    r"|\x9b[0-?]*[ -/]*[@-~]"  # 8-bit CSI
    r"|\x9d[^\x07\x9c]*(?:\x07|\x9c)?"  # 8-bit OSC
)
# C0 (except \t \n), DEL, C1, bidi controls, zero-width joiners used for spoofing,
# and lone surrogates (a JSON "\ud800" escape), which no encoder will write.
_CONTROLS = re.compile(
    "[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff\ud800-\udfff]"
)


def clean(value: object, limit: int = MAX_TEXT) -> str:
    """Return ``value`` as inert single-paragraph text.

    Escape sequences and control characters are removed, tabs and newlines
    become spaces, runs of whitespace collapse, and the result is cut to
    ``limit`` characters (with an ellipsis).
    """
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    text = str(value)
    if len(text) > limit * 4:
        text = text[: limit * 4]
    text = _ESCAPES.sub("", text)
    text = _CONTROLS.sub("", text)
    text = " ".join(text.split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text


def clean_or_none(value: object, limit: int = MAX_TEXT) -> str | None:
    """``clean`` that keeps "nothing said" as ``None`` (empty strings too)."""
    if value is None:
        return None
    text = clean(value, limit)
    return text or None


def clean_url(value: object) -> str | None:
    """A result link, cleaned; ``None`` when empty or not one token.

    Links are kept as the provider gave them (Upscayl may give a storage path);
    whoever copies or opens one must check ``is_web_url`` first.
    """
    text = clean(value, 2048)
    if not text or " " in text:
        return None
    return text


def is_web_url(value: str | None) -> bool:
    """True only for http:// and https:// links: the only ones we copy or open."""
    return bool(value) and value.lower().startswith(("http://", "https://"))
