"""A provider built from a declaration (``tui.providers.catalogue.Declaration``):
the catalogue's vendors behind the Comfy proxy, and the providers a user
declares in the config (``[providers.NAME] type = "declared"``).

The declaration says where the status is asked and where each fact lives in
the answer; the base class does the rest (HTTP, the typed errors, masking
the key).  A status word the vocabulary does not list gives a task in state
``unknown`` with the word in ``provider_status`` and a hint in ``details``.

``cmd_provider_test`` (``tasktui provider test NAME --sample answer.json``)
reads a saved answer with a configured provider and prints the Task it yields
and the declared paths that pointed nowhere.
"""

from __future__ import annotations

import json
import sys
from typing import Any, ClassVar
from urllib.parse import urlencode

import httpx

from ..model import (
    AuthError,
    Balance,
    BadResponse,
    CANCELLED,
    ClientError,
    FAILED,
    NotFound,
    ProviderError,
    QuotaExhausted,
    RateLimited,
    Task,
    Transient,
    UNKNOWN,
    clamp_progress,
    epoch,
)
from ..text import clean, clean_or_none, clean_url, is_web_url
from .base import Provider, Request, generic_error_message, path_part
from .catalogue import Declaration, catalogue_entry, catalogue_names, parse_path
from .vocabulary import Vocabulary

MISSING = object()
_ERRORS: dict[str, type[ProviderError]] = {
    "auth": AuthError, "quota": QuotaExhausted, "rate_limited": RateLimited, "not_found": NotFound,
    "transient": Transient, "client": ClientError, "bad_response": BadResponse,
}
MAX_VALUES = 10_000  # values one [*] path may yield from an answer


# ---------------------------------------------------------------- paths


def find(data: Any, path: str) -> list[Any]:
    """Every value ``path`` points at in ``data`` (``[*]`` fans out); [] when it points nowhere.
    A JSON null counts as nowhere."""
    current = [data]
    for part in parse_path(path):
        nxt: list[Any] = []
        for value in current:
            if part == "*":
                if isinstance(value, list):
                    nxt.extend(value[:MAX_VALUES - len(nxt)])
            elif isinstance(part, int):
                if isinstance(value, list) and part < len(value):
                    nxt.append(value[part])
            elif isinstance(value, dict) and part in value:
                nxt.append(value[part])
            if len(nxt) >= MAX_VALUES:
                break
        current = [v for v in nxt if v is not None]
        if not current:
            return []
    return current


def first(data: Any, paths: list[str]) -> Any:
    """The first value the first path that points somewhere gives, else MISSING."""
    for path in paths:
        values = find(data, path)
        if values:
            return values[0]
    return MISSING


def word(value: Any) -> str | None:
    """A status value as a word: strings as given, numbers and booleans as JSON spells them."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return json.dumps(value)
    if isinstance(value, str):
        return value
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, str):
        try:
            value = float(value.strip())
        except ValueError:
            return None
    if isinstance(value, (int, float)):
        try:
            value = float(value)
        except OverflowError:
            return None
        return value if value == value and abs(value) != float("inf") else None
    return None


def _text(value: Any, limit: int = 1000) -> str | None:
    if isinstance(value, dict):  # {code, message} error objects
        inner = value.get("message") or value.get("msg") or value.get("reason")
        code = value.get("code")
        text = _text(inner, limit) if inner is not None else None
        if text and code is not None and isinstance(code, (str, int)) and not isinstance(code, bool):
            return clean(f"{text} ({code})", limit)
        return text
    if isinstance(value, list):
        parts = [t for t in (_text(v, limit) for v in value[:10]) if t]
        return clean("; ".join(parts), limit) or None if parts else None
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return clean_or_none(value, limit)
    return None


# ---------------------------------------------------------------- the provider


class DeclaredProvider(Provider):
    """A provider read from a declaration.  Build one with ``declared_class``."""

    declaration: ClassVar[Declaration]
    vocabulary: ClassVar[Vocabulary]  # the declaration's words, built once per class

    def auth_headers(self) -> dict[str, str]:
        d = self.declaration
        if d.auth_scheme == "comfy":  # as ComfyUI's get_auth_header (and tui/providers/comfy.py)
            if self.api_key.startswith("comfyui-"):
                return {"X-API-KEY": self.api_key}
            return {"Authorization": f"Bearer {self.api_key}"}
        if d.auth_scheme == "bearer":
            return {d.auth_header: f"Bearer {self.api_key}"}
        return {d.auth_header: self.api_key}

    def request(self, method: str, path: str, body: Any = None) -> Request:
        req = super().request(method, path, body)
        extra = {k: v for k, v in self.declaration.headers.items() if k.lower() not in
                 {h.lower() for h in req.headers}}
        req.headers = {**extra, **req.headers}
        return req

    # ------------------------------------------------------------ requests

    def _fill(self, text: str, task_id: str | None, kind: str | None, in_path: bool) -> str:
        if "{kind}" in text:
            if not kind:
                raise ClientError(f"{self.name} needs a kind (the request path holds {{kind}};"
                                  f" known: {', '.join(self.known_kinds) or 'none declared'})",
                                  provider=self.name)
            kind_text = path_part(kind, "kind", keep_slash=True, provider=self.name) if in_path else kind
            text = text.replace("{kind}", kind_text)
        if "{id}" in text and task_id is not None:
            if in_path:
                id_text = path_part(task_id, "task id", provider=self.name)
            else:
                if not task_id:
                    raise ClientError("invalid task id: ''", provider=self.name)
                id_text = task_id
            text = text.replace("{id}", id_text)
        return text

    def _fill_body(self, value: Any, task_id: str, kind: str | None) -> Any:
        if isinstance(value, str):
            return self._fill(value, task_id, kind, in_path=False)
        if isinstance(value, dict):
            return {self._fill(str(k), task_id, kind, False): self._fill_body(v, task_id, kind)
                    for k, v in value.items()}
        if isinstance(value, list):
            return [self._fill_body(v, task_id, kind) for v in value]
        return value

    def _path(self, path: str, query: dict[str, str], task_id: str | None, kind: str | None) -> str:
        out = self._fill(path, task_id, kind, in_path=True)
        if query:
            out += "?" + urlencode({k: self._fill(v, task_id, kind, in_path=False) for k, v in query.items()})
        return out

    def status_request(self, task_id: str, kind: str | None = None) -> Request:
        r = self.declaration.request
        kind = self.poll_kind(kind or self.default_kind)
        kind = kind.strip().strip("/") if kind else None
        path = self._path(r.path, r.query, task_id, kind)
        body = self._fill_body(r.body, task_id, kind) if r.body is not None else None
        if r.method == "POST" and body is None:
            body = {}
        return self.request(r.method, path, body)

    def list_request(self, kind: str | None = None) -> Request:
        listing = self.declaration.listing
        if listing is None:
            raise NotImplementedError(f"{self.name} has no list endpoint")
        kind = self.poll_kind(kind or self.default_kind)
        path = self._path(listing.path, listing.query, None, kind.strip().strip("/") if kind else None)
        return self.request(listing.method, path, {} if listing.method == "POST" else None)

    def balance_request(self) -> Request:
        if self.declaration.balance is None:
            raise NotImplementedError(f"{self.name} has no balance endpoint")
        return self.request("GET", self.declaration.balance.path)

    # ------------------------------------------------------------ answers

    def _check_code(self, data: Any, response: httpx.Response | None) -> None:
        """A 200 answer whose code says it is an error raises that error."""
        rule = self.declaration.answer_code
        if rule is None:
            return
        value = first(data, [rule.path])
        if value is MISSING:
            return
        code = word(value)
        if code is None or code in rule.ok:
            return
        message = _text(first(data, rule.message)) if rule.message else None
        kind = rule.errors.get(code, rule.default)
        status = response.status_code if response is not None else None
        raise _ERRORS[kind](message or f"the answer says error {clean(code, 80)}", status=status,
                            provider=self.name, code=clean(code, 80))

    def read_status(self, task_id: str, kind: str | None, data: Any, response: httpx.Response) -> Task:
        self._check_code(data, response)
        return self.read_task(task_id, kind, data, http_status=response.status_code if response is not None else None)

    def read_task(self, task_id: str, kind: str | None, data: Any, *, http_status: int | None = None) -> Task:
        """One task from an answer (or a list row); ``http_status`` picks the
        declaration's ``status_by_http`` word when the answer names no status."""
        d = self.declaration
        p = d.paths
        raw_status = first(data, p.status)
        if raw_status is MISSING and http_status is not None:
            raw_status = d.status_by_http.get(str(http_status), MISSING)
        if raw_status is MISSING and d.status_default is not None:
            raw_status = d.status_default
        status = word(raw_status) if raw_status is not MISSING else None
        if status is None:
            where = ", ".join(p.status)
            what = "no task status" if raw_status is MISSING else f"a status that is no word ({type(raw_status).__name__})"
            raise BadResponse(f"answer has {what} (looked at: {clean(where, 200)})")
        status = clean(status, 80)
        vocabulary = self.vocabulary
        state = vocabulary.state(status)
        details: dict[str, str] = {}
        hint = vocabulary.unlisted(self.name, status, f"add it to one of [providers.{self.name}.states]"
                                                      f" ({', '.join(d.states)})")
        if hint:
            details["hint"] = clean(hint, 300)
        error = _text(first(data, p.error)) if p.error else None
        if not error and state in (FAILED, CANCELLED):  # a word that says why only by itself (Tripo "expired")
            error = d.status_error(status)
        if error and d.error_fails and state not in (FAILED, CANCELLED):
            state = FAILED
        progress = _number(first(data, p.progress)) if p.progress else None
        if progress is not None:
            progress = clamp_progress(progress * d.progress_scale)
        results: list[str] = []
        for path in p.results:
            for value in find(data, path):
                url = clean_url(value) if isinstance(value, str) else None
                if url and is_web_url(url):
                    results.append(url)
        credits = _number(first(data, p.credits)) if p.credits else None
        created = first(data, p.created_at) if p.created_at else MISSING
        for label, paths in p.details.items():
            text = _text(first(data, paths), 300)
            if text:
                details[clean(label, 40)] = text
        return self.task(
            task_id, kind, state=state, provider_status=status or None,
            progress=progress, results=results,
            error=error if state in (FAILED, CANCELLED) else None,
            model=_text(first(data, p.model), 200) if p.model else None,
            credits=credits, created_at=epoch(created) if created is not MISSING else None,
            details=details, raw=data,
        )

    def read_list(self, kind: str | None, data: Any, response: httpx.Response) -> list[Task]:
        listing = self.declaration.listing
        assert listing is not None
        self._check_code(data, response)
        rows = find(data, listing.items)
        if len(rows) == 1 and isinstance(rows[0], list):
            rows = rows[0]
        tasks: dict[str, Task] = {}
        problem: ProviderError | None = None
        for row in rows:
            tid = first(row, [listing.task_id])
            tid = word(tid) if tid is not MISSING else None
            if not tid:
                continue
            try:
                tasks[tid] = self.read_task(tid, kind, row)
            except ProviderError as exc:  # one odd row must not hide the others
                problem = problem or exc
        if problem is not None and not tasks:
            raise problem
        return list(tasks.values())

    def read_balance(self, data: Any, response: httpx.Response) -> Balance:
        b = self.declaration.balance
        assert b is not None
        self._check_code(data, response)
        value = _number(first(data, b.remaining))
        if value is None:
            raise BadResponse(f"balance answer has no amount (looked at: {', '.join(b.remaining)})")
        return Balance(provider=self.name, remaining=value * b.scale, unit=b.unit, raw=data)

    def error_message(self, data: Any) -> tuple[str | None, str | None]:
        """The generic shapes, else the declared answer-code message (Pixverse ``ErrMsg``)."""
        message, code = generic_error_message(data)
        rule = self.declaration.answer_code
        if message is None and rule is not None:
            message = _text(first(data, rule.message)) if rule.message else None
            value = first(data, [rule.path])
            if code is None and value is not MISSING:
                code = clean_or_none(word(value), 80)
        return message, code

    def stall_hint(self, task: Task) -> str | None:
        return None

    # ------------------------------------------------------------ provider test

    def missing_paths(self, data: Any) -> list[str]:
        """The declared paths that point nowhere in ``data`` (``field: path`` each)."""
        p = self.declaration.paths
        out = []
        for fname in ("status", "progress", "results", "error", "model", "credits", "created_at"):
            for path in getattr(p, fname):
                if not find(data, path):
                    out.append(f"{fname}: {path}")
        for label, paths in p.details.items():
            out.extend(f"details.{label}: {path}" for path in paths if not find(data, path))
        return out


def declared_class(name: str, declaration: Declaration) -> type[DeclaredProvider]:
    """A Provider class for ``name`` described by ``declaration``."""
    d = declaration
    kinds = tuple(dict.fromkeys([*d.known_kinds, *([d.default_kind] if d.default_kind else []),
                                 *d.poll_kinds.values()]))
    attrs = {
        "name": name,
        "declaration": d,
        "vocabulary": d.vocabulary(),
        "default_base_url": d.base_url,
        "default_rate_limit": d.rate_limit,
        "default_poll_interval": d.poll_interval,
        "default_kind": d.default_kind,
        "has_list": d.listing is not None,
        "has_balance": d.balance is not None,
        "known_kinds": kinds,
        "poll_kinds": dict(d.poll_kinds),
        "stall_after": d.stall_after,
    }
    return type(f"Declared_{name}", (DeclaredProvider,), attrs)


def catalogue_class(name: str) -> type[DeclaredProvider]:
    """The class of a built-in catalogue entry (``KeyError`` when there is none)."""
    return declared_class(name, catalogue_entry(name))


# ---------------------------------------------------------------- `tasktui provider test`


def add_parser(subparsers, parents=()) -> None:
    """``tasktui provider test ...`` (see ``tui.providers.add_provider_parser``, light to import)."""
    from . import add_provider_parser

    add_provider_parser(subparsers, parents)


def provider_for(name: str, config: Any = None, api_key: str = "", base_url: str | None = None) -> Provider:
    """The provider ``name`` as the config builds it (a catalogue entry when the
    config does not name it).  ``KeyError`` when there is no such provider."""
    from . import make_provider

    pc = getattr(config, "providers", {}).get(name) if config is not None else None
    if pc is not None:
        key = api_key or pc.key
        return make_provider(name, key, base_url or pc.base_url, declaration=getattr(pc, "declaration", None))
    return make_provider(name, api_key, base_url or "https://example.invalid")


def cmd_provider_test(args) -> int:
    """Print the Task a saved answer yields; exit 0, or 2 with one line on stderr."""
    from ..config import ConfigError, load_config

    name = args.name
    try:
        config = load_config(getattr(args, "config", None))
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    try:
        provider = provider_for(name, config, api_key="sample-key")
    except KeyError:
        names = [*config.providers, *(n for n in catalogue_names() if n not in config.providers)]
        print(f"unknown provider {clean(name, 80)!r}; known: {', '.join(names)}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(clean(exc, 300), file=sys.stderr)
        return 2
    try:
        if args.sample == "-":
            body = sys.stdin.buffer.read(provider.max_body + 1)
        else:
            with open(args.sample, "rb") as fh:
                body = fh.read(provider.max_body + 1)
    except OSError as exc:
        print(f"{clean(args.sample, 200)}: cannot read: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    response = httpx.Response(args.status, content=body, headers={"content-type": "application/json"})
    try:
        task = provider.parse_status(args.id, args.kind, response)
    except ProviderError as exc:
        print(f"{type(exc).__name__}: {clean(exc.message, 500)}", file=sys.stderr)
        _print_missing(provider, body)
        return 2
    if args.json:
        print(json.dumps(task.to_dict(), ensure_ascii=False))
    else:
        for field in ("state", "provider_status", "progress", "results", "error", "model", "credits",
                      "created_at", "details"):
            value = task.to_dict()[field]
            if value not in (None, [], {}):
                print(f"{field}: {clean(json.dumps(value, ensure_ascii=False) if not isinstance(value, str) else value, 2000)}")
        if task.state == UNKNOWN and task.provider_status:
            print(f"hint: {clean(task.details.get('hint', ''), 300)}")
    _print_missing(provider, body)
    return 0


def _print_missing(provider: Provider, body: bytes) -> None:
    if not isinstance(provider, DeclaredProvider):
        return
    try:
        data = json.loads(body.decode("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    for line in provider.missing_paths(data):
        print(f"points nowhere: {clean(line, 200)}")
