"""Declared providers: the description (a pydantic model read from TOML) and
the built-in catalogue of them (``*.toml`` beside this file).

A declaration says where a task's status is asked and where in the answer
each fact lives; ``tui.providers.declared.DeclaredProvider`` turns it into a
``Provider``.  This module imports neither httpx nor the provider clients, so
reading the config stays light.

Paths into an answer are dotted names with list indexing: ``data.task_status``,
``output.results[0].url``, ``data.task_result.videos[*].url`` (``[*]``: every
item).  A field given a list of paths takes the first that points somewhere
(results take every link of every path).  Vocabularies map the provider's
words, compared case-insensitively, to our states.
"""

from __future__ import annotations

import re
import tomllib
from functools import lru_cache
from importlib.resources import files
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from ..vocabulary import NAMED_STATES, Vocabulary, normal

# Our states a vocabulary may name (``unknown`` is what an unlisted word gives).
STATE_NAMES: tuple[str, ...] = NAMED_STATES
ERROR_CLASSES: tuple[str, ...] = ("auth", "quota", "rate_limited", "not_found", "transient", "client", "bad_response")
PLACEHOLDERS = ("id", "kind")

_SEGMENT = re.compile(r"([^.\[\]\s]+)?((?:\[(?:\d+|\*)\])*)")
_INDEX = re.compile(r"\[(\d+|\*)\]")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smhd])\s*$")
_HEADER = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]+$")


def parse_path(text: str) -> tuple[str | int, ...]:
    """``"a.b[0].c[*]"`` -> ``("a", "b", 0, "c", "*")``; ``ValueError`` when it is no path.
    Integers are list indexes, ``"*"`` every item; other parts are object keys."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("an empty path (write e.g. \"data.status\")")
    text = text.strip()
    parts: list[str | int] = []
    for piece in text.split("."):
        m = _SEGMENT.fullmatch(piece)
        if not m or not (m.group(1) or m.group(2)) or (not m.group(1) and parts == [] and piece == ""):
            raise ValueError(f"'{text}' is not a path (dotted names with [0] or [*], e.g. data.items[*].url)")
        if m.group(1):
            parts.append(m.group(1))
        for index in _INDEX.findall(m.group(2) or ""):
            parts.append("*" if index == "*" else int(index))
    return tuple(parts)


def _path(value: Any) -> str:
    parse_path(value)
    return value.strip()


def _paths(value: Any) -> Any:
    """One path or a list of them; always a list."""
    return [value] if isinstance(value, str) else value


Path = Annotated[str, AfterValidator(_path)]
Paths = Annotated[list[Path], BeforeValidator(_paths)]


def _template(value: str) -> str:
    for name in _PLACEHOLDER.findall(value):
        if name not in PLACEHOLDERS:
            raise ValueError(f"unknown placeholder '{{{name}}}' in '{value}' (only {{id}} and {{kind}})")
    if value.count("{") != value.count("}"):
        raise ValueError(f"unbalanced braces in '{value}'")
    return value


def template_strings(value: Any) -> list[str]:
    """Every string in a JSON body template (keys too)."""
    out: list[str] = []
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            out.append(item)
        elif isinstance(item, dict):
            out.extend(str(k) for k in item)
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return out


_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, hide_input_in_errors=True,
                     frozen=True)


class StatusRequest(BaseModel):
    """How a task's status is asked: ``GET {base}{path}?{query}`` or a POST with a JSON body."""

    model_config = _STRICT

    method: Literal["GET", "POST"] = "GET"
    path: str
    query: dict[str, str] = Field(default_factory=dict)
    body: dict[str, Any] | None = None

    @field_validator("method", mode="before")
    @classmethod
    def _upper(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(ch.isspace() for ch in value) or "?" in value or "#" in value:
            raise ValueError("should be a path such as \"/v1/tasks/{id}\" (starting with /; query in"
                             " `query`)")
        return _template(value)

    @field_validator("query")
    @classmethod
    def _query(cls, value: dict[str, str]) -> dict[str, str]:
        for v in value.values():
            _template(v)
        return value

    @field_validator("body")
    @classmethod
    def _body(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        for text in template_strings(value):
            _template(text)
        return value

    def placeholders(self) -> set[str]:
        texts = [self.path, *self.query.values(), *template_strings(self.body)]
        return {name for text in texts for name in _PLACEHOLDER.findall(text)}

    @model_validator(mode="after")
    def _names_the_task(self) -> "StatusRequest":
        if "id" not in self.placeholders():
            raise ValueError(f"the path template '{self.path}' has no {{id}} (nor its query or body):"
                             " every task would get the same answer")
        return self


class AnswerPaths(BaseModel):
    """Where each fact of a task lives in a status answer (or a list row)."""

    model_config = _STRICT

    status: Paths
    progress: Paths = Field(default_factory=list)
    results: Paths = Field(default_factory=list)
    error: Paths = Field(default_factory=list)
    model: Paths = Field(default_factory=list)
    credits: Paths = Field(default_factory=list)
    created_at: Paths = Field(default_factory=list)
    task_id: Paths = Field(default_factory=list)  # in list rows: which task a row is
    details: dict[str, Paths] = Field(default_factory=dict)  # label -> path, shown in the detail view

    @field_validator("status")
    @classmethod
    def _some(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("needs at least one path")
        return value


class AnswerCode(BaseModel):
    """A 200 answer that is really an error: a code path and the codes that mean success
    (MiniMax ``base_resp.status_code`` 0, Pixverse ``ErrCode`` 0, Tripo ``code`` 0)."""

    model_config = _STRICT

    path: Path
    ok: list[str] = Field(default_factory=lambda: ["0"])
    message: Paths = Field(default_factory=list)
    errors: dict[str, Literal["auth", "quota", "rate_limited", "not_found", "transient", "client",
                              "bad_response"]] = Field(default_factory=dict)
    default: Literal["auth", "quota", "rate_limited", "not_found", "transient", "client",
                     "bad_response"] = "client"

    @field_validator("ok", mode="before")
    @classmethod
    def _texts(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [str(v) if isinstance(v, (int, str)) and not isinstance(v, bool) else v for v in value]
        return value


class ListEndpoint(BaseModel):
    """One request answering for every task of a kind."""

    model_config = _STRICT

    method: Literal["GET", "POST"] = "GET"
    path: str
    query: dict[str, str] = Field(default_factory=dict)
    items: Path  # the list of rows, e.g. "data" or "data.tasks"
    task_id: Path  # a row's task id, relative to the row

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(ch.isspace() for ch in value) or "?" in value:
            raise ValueError("should be a path such as \"/v1/tasks\" (starting with /)")
        value = _template(value)
        if "{id}" in value:
            raise ValueError("a list path names no task: {id} does not belong in it")
        return value


class BalanceEndpoint(BaseModel):
    """``GET {base}{path}``: what is left on the account."""

    model_config = _STRICT

    path: str
    remaining: Paths
    unit: str = "credits"
    scale: float = Field(default=1.0, gt=0)  # remaining = value * scale (cents -> 0.01)

    @field_validator("path")
    @classmethod
    def _path(cls, value: str) -> str:
        if not value.startswith("/") or any(ch.isspace() for ch in value) or "{" in value:
            raise ValueError("should be a path such as \"/v1/balance\" (starting with /, no placeholders)")
        return value


def _rate(value: str) -> str:
    m = _RATE.match(value)
    if not m or int(m.group(1)) < 1:
        raise ValueError('should be "N/s", "N/m", "N/h" or "N/d" with N a whole number >= 1 (e.g. "60/m")')
    return value


class Declaration(BaseModel):
    """One declared provider: a catalogue file, or the declaration keys of a
    ``[providers.NAME] type = "declared"`` table."""

    model_config = _STRICT

    title: str | None = None  # shown in messages; defaults to the name
    source: list[str] = Field(default_factory=list)  # where the shapes come from (docs, code)
    base_url: str | None = None
    auth_header: str = "Authorization"
    auth_scheme: Literal["bearer", "raw", "comfy"] = "bearer"  # comfy: X-API-KEY for comfyui- keys
    headers: dict[str, str] = Field(default_factory=dict)  # extra request headers (no secrets)
    rate_limit: Annotated[str, AfterValidator(_rate)] = "60/m"
    poll_interval: float = Field(default=10.0, ge=0.1, le=86400)
    stall_after: float = Field(default=1800.0, ge=1, le=30 * 86400)
    request: StatusRequest
    paths: AnswerPaths
    states: dict[str, list[str]]
    status_default: str | None = None  # the word when the status path points nowhere (Veo: done omitted)
    # the word for an HTTP status when the status path points nowhere, before status_default
    # (Stability: 202 = in progress, 200 = done, and its 200 example is a bare {})
    status_by_http: dict[str, str] = Field(default_factory=dict)
    progress_scale: float = Field(default=1.0, gt=0)  # progress = value * scale (Runway's 0..1 -> 100)
    error_fails: bool = False  # an answer with an error is a failed task whatever its status says
    # the error a failed or cancelled word gives when the answer carries no error text of its own
    # (Tripo's "expired" says nothing but the word: "expired: ...")
    status_errors: dict[str, str] = Field(default_factory=dict)
    answer_code: AnswerCode | None = None
    default_kind: str | None = None
    known_kinds: list[str] = Field(default_factory=list)
    poll_kinds: dict[str, str] = Field(default_factory=dict)  # create path -> poll path
    listing: ListEndpoint | None = None  # [listing]: one request for every task of a kind
    balance: BalanceEndpoint | None = None

    @field_validator("auth_scheme", mode="before")
    @classmethod
    def _lower(cls, value: Any) -> Any:
        return value.lower() if isinstance(value, str) else value

    @field_validator("auth_header")
    @classmethod
    def _header(cls, value: str) -> str:
        if not _HEADER.match(value):
            raise ValueError(f"'{value}' is not an HTTP header name")
        return value

    @field_validator("headers")
    @classmethod
    def _headers(cls, value: dict[str, str]) -> dict[str, str]:
        for name, text in value.items():
            if not _HEADER.match(name):
                raise ValueError(f"'{name}' is not an HTTP header name")
            if not re.fullmatch(r"[\x20-\x7e]*", text):
                raise ValueError(f"header {name}: holds characters a header cannot carry")
        return value

    @field_validator("base_url")
    @classmethod
    def _base(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.strip()
        if not value.startswith(("http://", "https://")) or any(ch.isspace() for ch in value):
            raise ValueError('should be an http:// or https:// URL such as "https://api.example.com"')
        return value.rstrip("/")

    @field_validator("states")
    @classmethod
    def _states(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        Vocabulary(value)  # the same checks the seed providers' vocabularies pass
        return value

    @field_validator("status_by_http")
    @classmethod
    def _by_http(cls, value: dict[str, str]) -> dict[str, str]:
        for code in value:
            if not (code.isdigit() and len(code) == 3 and 100 <= int(code) <= 599):
                raise ValueError(f"'{code}' is not an HTTP status code (e.g. \"202\")")
        return value

    @model_validator(mode="after")
    def _defaults_are_words(self) -> "Declaration":
        vocabulary = Vocabulary(self.states)
        for where, word in [("status_default", self.status_default),
                            *((f"status_by_http.{code}", w) for code, w in self.status_by_http.items())]:
            if word is not None and word not in vocabulary:
                raise ValueError(f"{where}: '{word}' is not one of the words in [states]")
        return self

    @model_validator(mode="after")
    def _status_errors(self) -> "Declaration":
        vocabulary = Vocabulary(self.states)
        for word, text in self.status_errors.items():
            if vocabulary.state(word) not in ("failed", "cancelled"):
                raise ValueError(f"status_errors.{word}: only a word in [states] failed or cancelled"
                                 " may carry an error")
            if not text.strip() or len(text) > 300 or not text.isprintable():
                raise ValueError(f"status_errors.{word}: should be one line of text (at most 300 characters)")
        return self

    def status_error(self, word: str | None) -> str | None:
        """The declared error of a status word (``status_errors``), compared as the vocabulary compares."""
        if not word or not self.status_errors:
            return None
        key = normal(word)
        return next((text for w, text in self.status_errors.items() if normal(w) == key), None)

    @field_validator("known_kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        return [_kind(k) for k in value]

    @field_validator("poll_kinds")
    @classmethod
    def _poll_kinds(cls, value: dict[str, str]) -> dict[str, str]:
        return {_kind(k): _kind(v) for k, v in value.items()}

    @field_validator("default_kind")
    @classmethod
    def _default_kind(cls, value: str | None) -> str | None:
        return None if value is None else _kind(value)

    def vocabulary(self) -> Vocabulary:
        """The provider's words and the states they mean."""
        return Vocabulary(self.states)

    def uses_kind(self) -> bool:
        return "kind" in self.request.placeholders()


def _kind(value: str) -> str:
    kind = value.strip().strip("/")
    if not kind or any(ch.isspace() for ch in kind) or any(s in (".", "..") for s in kind.split("/")):
        raise ValueError(f"'{value}' is not a kind (a path part such as \"videos/text2video\")")
    return kind


# Keys of a [providers.NAME] table that belong to the declaration (the rest are
# ProviderConfig's); base_url, rate_limit and poll_interval are both: the
# declaration's are the defaults, the table's the user's choice.
SHARED_KEYS = ("base_url", "rate_limit", "poll_interval")
DECLARATION_KEYS: tuple[str, ...] = tuple(k for k in Declaration.model_fields if k not in SHARED_KEYS)


# ---------------------------------------------------------------- the catalogue


class CatalogueError(ValueError):
    """A catalogue file that does not load (a packaging mistake, never the user's)."""


@lru_cache(maxsize=1)
def catalogue_names() -> tuple[str, ...]:
    """The names of the built-in entries (file stems), sorted."""
    root = files(__name__)
    return tuple(sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml")))


def catalogue_raw(name: str) -> dict[str, Any]:
    """The TOML table of one entry, as data (for merging with a user's overrides)."""
    if name not in catalogue_names():
        raise KeyError(name)
    text = files(__name__).joinpath(f"{name}.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


@lru_cache(maxsize=None)
def catalogue_entry(name: str) -> Declaration:
    """One built-in entry, validated (``KeyError`` for a name not in the catalogue)."""
    try:
        return Declaration.model_validate(catalogue_raw(name))
    except ValidationError as exc:
        raise CatalogueError(f"catalogue entry {name}: {exc}") from None


def merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """A catalogue table with a user's overrides: tables merged key by key, other values replaced."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict) and key not in ("states",):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out
