"""Task ids from pasted text: the one rule the add form and ``tasktui add`` share.

How text becomes task ids
-------------------------
1. The text is split on whitespace (spaces, tabs, newlines) and commas.  A
   token that starts with ``#`` starts a comment: it and the rest of its line
   are ignored.
2. Quotes and brackets around a token are stripped: ``"id"``, ``'id'``,
   ```id```, ``“id”``, ``[id]``, ``(id)``, ``<id>`` (so a pasted JSON list
   ``["a", "b"]`` gives ``a`` and ``b``).
3. A token that is an ``http(s)://`` URL is a pasted provider link; the id is
   taken out of its path:

   * ``…/v1/ai/<kind>/<id>`` (Freepik/Magnific, and Comfy's proxy
     ``…/proxy/freepik/v1/ai/<kind>/<id>``) gives the id **and** its kind
     (``…/v1/ai/image-relight/<uuid>`` -> id ``<uuid>``, kind
     ``image-relight``).  When the last segment is not a UUID, a path of one
     segment after ``ai`` is a kind without an id (invalid); with more, the last
     segment is taken as the id (its shape is then checked, see 6).
   * ``…/tasks/<id>`` (EvoLink ``/v1/tasks/<id>``, Qolaba's platform API
     ``/api/v1/tasks/<id>``) gives the id.
   * a ``task_id``, ``taskId`` or ``id`` query parameter gives the id.
   * any other URL is invalid ("no task id found in this URL"): a pasted
     result link is not a task.  Upscayl and Qolaba's ``/getImage`` take the id
     in a POST body, so no link of theirs carries one.

   The provider a URL names comes from its host (``evolink.ai``,
   ``freepik.com``/``magnific.com``, ``comfy.org``, ``qolaba.ai``,
   ``upscayl.org``), else from its path (``/proxy/freepik/v1/ai/`` Comfy,
   ``/v1/ai/`` Freepik, ``/api/v1/tasks/`` Qolaba, ``/v1/tasks/`` EvoLink).
   A link to another vendor behind Comfy's proxy (``/proxy/kling/…``) names
   no provider: the id is still taken, the provider is yours to choose.
4. Duplicates are dropped, keeping the first occurrence and its order.
5. Invalid (never added, with the reason): longer than 200 characters,
   containing control or invisible characters, or ``.``/``..``.
6. Shape warnings (the id is still added): an EvoLink id that does not start
   with ``task-unified-`` (EvoLink refuses it: ``invalid_task_id``), a Comfy or
   Freepik id that is not a UUID (their docs give ``task_id`` as ``format:
   uuid``), or an id whose shape belongs to another provider.  Upscayl and
   Qolaba document no shape: any id is accepted without a warning.
7. The provider is guessed from an id only where the shape is unique: an id
   starting with ``task-unified-`` is EvoLink's.  A UUID may be Comfy's or
   Freepik's (ambiguous: no guess).

Pure functions, no I/O, no Textual: ``tasktui add`` uses them too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Iterable, TextIO
from urllib.parse import parse_qs, unquote, urlsplit

MAX_ID = 200  # characters; a longer token is not an id anyone was given

EVOLINK_PREFIX = "task-unified-"  # docs.evolink.ai get-task-detail: "must start with 'task-unified-'"
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_SPLIT = re.compile(r"[\s,]+")
_QUOTES = "\"'`“”‘’„«»[](){}<>"
_QUERY_KEYS = ("task_id", "taskId", "taskid", "id")
NAMES = {"comfy": "Comfy", "upscayl": "Upscayl", "qolaba": "Qolaba", "freepik": "Freepik",
         "evolink": "EvoLink"}

# host suffix -> provider
_HOSTS = (
    ("evolink.ai", "evolink"),
    ("freepik.com", "freepik"),
    ("magnific.com", "freepik"),
    ("comfy.org", "comfy"),
    ("qolaba.ai", "qolaba"),
    ("upscayl.org", "upscayl"),
    ("upscayl.com", "upscayl"),
)


@dataclass(frozen=True)
class ParsedId:
    """One token of the pasted text, read as a task id."""

    id: str  # the id ("" when none was found, e.g. a URL without one)
    source: str  # the token as it was pasted (quotes stripped)
    kind: str | None = None  # the kind a pasted URL names (``/v1/ai/<kind>/<id>``)
    provider: str | None = None  # the provider a pasted URL names (host or path)
    problem: str | None = None  # why it cannot be a task id; None = valid

    @property
    def valid(self) -> bool:
        return self.problem is None


@dataclass
class ParsedIds:
    """The outcome of :func:`parse_ids`."""

    ids: list[ParsedId] = field(default_factory=list)  # valid, de-duplicated, in order
    invalid: list[ParsedId] = field(default_factory=list)
    duplicates: int = 0

    @property
    def values(self) -> list[str]:
        """The valid ids, as plain strings."""
        return [p.id for p in self.ids]

    @property
    def kinds(self) -> list[str]:
        """The distinct kinds pasted URLs named, in order."""
        return list(dict.fromkeys(p.kind for p in self.ids if p.kind))

    @property
    def kind(self) -> str | None:
        """The one kind the URLs agree on (None when none or several)."""
        kinds = self.kinds
        return kinds[0] if len(kinds) == 1 else None

    def provider(self) -> str | None:
        """The provider every valid id points at (a URL's, else the id's shape), when
        they all agree and each one points somewhere; else None."""
        seen: set[str] = set()
        for p in self.ids:
            guess = p.provider or guess_provider(p.id)
            if guess is None:
                return None
            seen.add(guess)
        return seen.pop() if len(seen) == 1 else None

    def warnings(self, provider: str | None) -> list[str]:
        """Shape warnings of the valid ids for ``provider`` (one per id)."""
        out = []
        for p in self.ids:
            if provider and p.provider and p.provider != provider:
                out.append(f"{_short(p.id)}: the URL is {NAMES.get(p.provider, p.provider)}'s, "
                           f"not {NAMES.get(provider, provider)}'s")
                continue
            warning = shape_warning(provider, p.id) if provider else None
            if warning:
                out.append(f"{_short(p.id)}: {warning}")
        return out


def _short(text: str, limit: int = 40) -> str:
    """A one-line, printable, bounded form of ``text`` for messages."""
    text = "".join(ch if ch.isprintable() else "\ufffd" for ch in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_uuid(value: str) -> bool:
    return bool(_UUID.match(value))


def strip_quotes(token: str) -> str:
    """``token`` without the quotes and brackets around it."""
    return token.strip(_QUOTES)


def id_problem(task_id: str) -> str | None:
    """Why ``task_id`` cannot be a task id (rule 5), or None."""
    if not task_id:
        return "empty"
    if len(task_id) > MAX_ID:
        return f"longer than {MAX_ID} characters ({len(task_id):,})"
    if not task_id.isprintable():
        return "contains control or invisible characters"
    if task_id in (".", ".."):
        return "not a task id"
    return None


def _host_provider(host: str) -> str | None:
    host = host.lower().rstrip(".")
    for suffix, name in _HOSTS:
        if host == suffix or host.endswith("." + suffix):
            return name
    return None


def parse_url(url: str) -> ParsedId:
    """The task id (and kind, provider) in a pasted provider URL (rule 3)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
    except ValueError:
        return ParsedId("", url, problem="not a valid URL")
    segments = [unquote(s) for s in parts.path.split("/") if s]
    path = "/" + "/".join(segments)
    provider = _host_provider(host)
    if provider == "comfy" and path.startswith("/proxy/") and not path.startswith("/proxy/freepik/"):
        provider = None  # another vendor behind Comfy's proxy (Kling, Runway...): not the comfy provider
    task_id: str | None = None
    kind: str | None = None
    if "ai" in segments and segments.index("ai") > 0 and segments[segments.index("ai") - 1] == "v1":
        after = segments[segments.index("ai") + 1:]
        if provider is None:
            provider = "comfy" if path.startswith("/proxy/freepik/") else "freepik"
        if after and is_uuid(after[-1]):
            task_id, kind = after[-1], "/".join(after[:-1]) or None
        elif len(after) >= 2:
            task_id, kind = after[-1], "/".join(after[:-1])
        else:
            return ParsedId("", url, provider=provider,
                            problem="this URL names a kind but no task id")
    elif len(segments) >= 2 and segments[-2] == "tasks":
        task_id = segments[-1]
        if provider is None:
            if path.startswith("/api/v1/tasks/"):
                provider = "qolaba"
            elif path.startswith("/v1/tasks/"):
                provider = "evolink"
    else:
        query = parse_qs(parts.query)
        for name in _QUERY_KEYS:
            if query.get(name):
                task_id = query[name][0].strip()
                break
    if not task_id:
        return ParsedId("", url, provider=provider, problem="no task id found in this URL")
    return ParsedId(task_id, url, kind=kind, provider=provider, problem=id_problem(task_id))


def parse_token(token: str) -> ParsedId | None:
    """One split token -> a ParsedId (None when nothing is left after stripping)."""
    token = strip_quotes(token)
    if not token:
        return None
    if token[:8].lower().startswith(("http://", "https://")):
        return parse_url(token)
    return ParsedId(token, token, problem=id_problem(token))


def tokens(text: str) -> list[str]:
    """The tokens of ``text`` (rules 1): split, comments dropped."""
    out: list[str] = []
    for line in text.splitlines():
        for token in _SPLIT.split(line):
            if not token:
                continue
            if token.startswith("#"):
                break  # a comment: the rest of the line
            out.append(token)
    return out


def parse_ids(text: str | Iterable[str]) -> ParsedIds:
    """Every task id in ``text`` (a string, or several: command-line arguments,
    lines of stdin), by the rule of this module's docstring."""
    chunks = [text] if isinstance(text, str) else list(text)
    result = ParsedIds()
    seen: set[str] = set()
    for chunk in chunks:
        for token in tokens(chunk):
            parsed = parse_token(token)
            if parsed is None:
                continue
            if not parsed.valid:
                result.invalid.append(parsed)
                continue
            if parsed.id in seen:
                result.duplicates += 1
                continue
            seen.add(parsed.id)
            result.ids.append(parsed)
    return result


def parse_args(items: Iterable[str], stdin: TextIO | None = None) -> ParsedIds:
    """Ids given on a command line (``tasktui add PROVIDER ID... [-]``): each argument
    is read by the rule; an argument ``-`` stands for the whole of ``stdin``, read by
    the same rule (so ``add -`` and the add form agree)."""
    chunks: list[str] = []
    for item in items:
        if item == "-":
            if stdin is None:
                import sys

                stdin = sys.stdin
            chunks.append(stdin.read())
        else:
            chunks.append(item)
    return parse_ids(chunks)


def split_ids(text: str | Iterable[str]) -> list[str]:
    """The valid ids of ``text``, de-duplicated, in order."""
    return parse_ids(text).values


def guess_providers(task_id: str) -> tuple[str, ...]:
    """The providers whose documented id shape ``task_id`` fits (rule 7); () when
    none documents a shape it fits."""
    if task_id.startswith(EVOLINK_PREFIX):
        return ("evolink",)
    if is_uuid(task_id):
        return ("comfy", "freepik")
    return ()


def guess_provider(task_id: str) -> str | None:
    """The provider of ``task_id`` where its shape is unique to one (EvoLink's
    ``task-unified-…``); None when ambiguous (a UUID: Comfy or Freepik) or unknown."""
    found = guess_providers(task_id)
    return found[0] if len(found) == 1 else None


def shape_warning(provider: str, task_id: str) -> str | None:
    """A one-line warning when ``task_id`` does not fit ``provider``'s documented
    id shape (rule 6); None when it fits or the provider documents none."""
    name = NAMES.get(provider, provider)
    if provider == "evolink":
        if not task_id.startswith(EVOLINK_PREFIX):
            return f"EvoLink ids start with {EVOLINK_PREFIX!r} (EvoLink refuses others)"
        return None
    if provider in ("comfy", "freepik"):
        if not is_uuid(task_id):
            other = guess_provider(task_id)
            if other and other != provider:
                return f"looks like an {NAMES.get(other, other)} id; {name} ids are UUIDs"
            return f"not a UUID; {name} task ids are UUIDs"
        return None
    other = guess_provider(task_id)
    if other and other != provider:
        return f"looks like an {NAMES.get(other, other)} id, not a {name} one"
    return None


__all__ = ["MAX_ID", "ParsedId", "ParsedIds", "guess_provider", "guess_providers", "id_problem",
           "is_uuid", "parse_args", "parse_ids", "parse_token", "parse_url", "shape_warning", "split_ids",
           "strip_quotes", "tokens"]
