"""Cleaning of text that came from a provider.

Everything a provider says is hostile until cleaned: it may carry ANSI / OSC
escape sequences (screen clears, OSC 52 clipboard writes), C0/C1 control
characters, bidi overrides, invisible characters (tags, zero-width and
format characters), or be absurdly long.  ``clean`` makes it inert
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
# C0 (except \t \n), DEL, C1, and lone surrogates (a JSON "\ud800" escape), which no
# encoder will write; then every invisible character (see _invisible_ranges).
_C0_C1 = "\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff"

# Unicode's Default_Ignorable_Code_Point set (DerivedCoreProperties.txt): characters
# that draw nothing and can hide text or change how it reads: soft hyphen, the
# combining grapheme joiner, Hangul fillers, Mongolian and other variation
# selectors, zero-width space/joiners, bidi marks, embeddings, overrides and
# isolates, word joiner and invisible operators (U+2060-U+2064), the BOM, tag
# characters (U+E0000-U+E007F, "ASCII smuggling") and the variation selectors
# supplement (U+E0100-U+E01EF, bytes hidden in an emoji).
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)


# Every format (Cf) character of Unicode 15 not listed above: Arabic number signs,
# interlinear annotation marks, Egyptian hieroglyph format controls, and the like.
_FORMAT = (
    (0x0600, 0x0605), (0x06DD, 0x06DD), (0x070F, 0x070F), (0x0890, 0x0891), (0x08E2, 0x08E2),
    (0xFFF9, 0xFFFB), (0x110BD, 0x110BD), (0x110CD, 0x110CD), (0x13430, 0x1343F),
)


def _invisible_ranges() -> str:
    """A regex class body of both sets.  All of them are dropped, the zero-width
    joiner too: an emoji ZWJ sequence falls apart into its visible emoji, which
    terminals draw at widths they agree on."""
    return "".join(chr(lo) if lo == hi else f"{chr(lo)}-{chr(hi)}" for lo, hi in _IGNORABLE + _FORMAT)


_INVISIBLE_CLASS = _invisible_ranges()
_INVISIBLE = re.compile(f"[{_INVISIBLE_CLASS}]")
_CONTROLS = re.compile(f"[{_C0_C1}{_INVISIBLE_CLASS}]")


def strip_invisible(text: str) -> str:
    """``text`` without invisible characters (the set ``clean`` removes, controls aside)."""
    return _INVISIBLE.sub("", text)


def strip_hidden(text: str) -> str:
    """``text`` without what ``clean`` removes silently: escape sequences, control
    and invisible characters (whitespace is left as it is)."""
    return _CONTROLS.sub("", _ESCAPES.sub("", text))


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
