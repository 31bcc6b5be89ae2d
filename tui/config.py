"""The TOML config: where it lives, reading and validating it, saving one setting.

Read with stdlib ``tomllib`` (fast), validate with pydantic, write with
``tomlkit`` (imported only when saving) so the user's comments and layout
survive.  Every problem is a ``ConfigError`` whose text is one line,
``<file>: <dotted.key>: <reason>``, and never holds a secret's value.
Every key is documented in ``docs/config.md`` and ``config.example.toml``.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, Mapping, NamedTuple, TextIO
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .model import PROVIDERS
from .providers.catalogue import (
    DECLARATION_KEYS,
    Declaration,
    catalogue_entry,
    catalogue_names,
    catalogue_raw,
    merge,
)

from .paths import APP_NAME, _config_source, config_path, db_path  # noqa: F401  (re-exported)


# ---------------------------------------------------------------- errors


class ConfigError(Exception):
    """A bad or missing config.  ``str()`` is one line: ``file: key: reason``.

    When the file has several problems, this error is the first and ``more``
    holds the others: ``str()`` counts them on the same line, ``problems``
    gives every one as its own line (``tasktui config check`` prints them all).
    """

    def __init__(self, file: str | os.PathLike | None, key: str | None, reason: str,
                 more: Iterable[ConfigError] = ()) -> None:
        self.file = str(file) if file is not None else "<config>"
        self.key = key
        self.reason = reason
        self.more = list(more)
        super().__init__(str(self))

    def line(self) -> str:
        """This problem alone, on one line."""
        line = f"{self.file}: {self.key}: {self.reason}" if self.key else f"{self.file}: {self.reason}"
        return _one_line(line)

    @property
    def problems(self) -> list[str]:
        """Every problem, one line each, this one first."""
        return [self.line(), *(p.line() for p in self.more)]

    def __str__(self) -> str:
        if not self.more:
            return self.line()
        n = len(self.more)
        return (f"{self.line()} (and {n} more problem{'s' if n > 1 else ''};"
                " `tasktui config check` lists all)")


def _raise_all(problems: list[ConfigError]) -> None:
    if problems:
        first = problems[0]
        raise ConfigError(first.file, first.key, first.reason, more=problems[1:])


_NEWLINES = re.compile(r"[\r\n\t\v\f]+")
# other control and invisible characters a hostile file could put in a value we echo
_UNPRINTABLE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u206f\ufeff"
                          "\U000e0000-\U000e007f]")


def _one_line(text: str) -> str:
    """One line without terminal escapes or invisible characters, whatever the text held."""
    return _UNPRINTABLE.sub("?", _NEWLINES.sub(" ", text))
_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dotted(parts: Iterable[str | int]) -> str:
    """``["ui", "saved_filters", "my f"]`` -> ``ui.saved_filters."my f"`` (TOML spelling)."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
            continue
        text = part if _BARE_KEY.match(part) else json.dumps(part)
        out += f".{text}" if out else text
    return out


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


# ---------------------------------------------------------------- rate limits

_PERIODS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_RATE = re.compile(r"^\s*(\d+)\s*/\s*([smhd])\s*$")


class RateLimit(NamedTuple):
    """A request budget: ``count`` requests per ``per`` seconds.  ``str()`` gives ``"100/h"``."""

    count: int
    per: float

    @property
    def per_second(self) -> float:
        return self.count / self.per

    def __str__(self) -> str:
        unit = next((u for u, secs in _PERIODS.items() if secs == self.per), None)
        return f"{self.count}/{unit}" if unit else f"{self.count}/{self.per:g}s"


def parse_rate_limit(value: Any) -> RateLimit:
    """``"100/h"`` -> ``RateLimit(100, 3600.0)``; units s, m, h, d; count >= 1."""
    if isinstance(value, RateLimit):
        return value
    if not isinstance(value, str):
        raise ValueError('should be a string like "10/s", "60/m" or "100/h"')
    m = _RATE.match(value)
    if not m or int(m.group(1)) < 1:
        raise ValueError('should be "N/s", "N/m", "N/h" or "N/d" with N a whole number >= 1 (e.g. "100/h")')
    return RateLimit(int(m.group(1)), _PERIODS[m.group(2)])


RateLimitField = Annotated[RateLimit, PlainValidator(parse_rate_limit), PlainSerializer(str)]


# ---------------------------------------------------------------- provider defaults

# name -> (default_base_url, default_rate_limit, default_poll_interval, default_kind).
# Kept here so reading the config does not import httpx and the provider modules;
# tests/functional/test_config.py checks that it agrees with the provider classes.
PROVIDER_DEFAULTS: dict[str, tuple[str | None, str, float, str | None]] = {
    "comfy": ("https://api.comfy.org", "30/m", 10.0, "image-relight"),
    "upscayl": ("https://api.upscayl.org", "100/h", 60.0, None),
    "qolaba": (None, "30/m", 5.0, None),
    "freepik": ("https://api.freepik.com", "10/s", 5.0, "text-to-image/hyperflux"),
    "evolink": ("https://api.evolink.ai", "60/m", 5.0, None),
}


# ---------------------------------------------------------------- other defaults
# The one place these defaults live: the models below use them, and the engine
# and the HTTP layer read them from the config they are given (or from here).

DEFAULT_CONCURRENCY = 4
DEFAULT_TIMEOUT = 20.0  # seconds for one HTTP request
DEFAULT_MAX_BODY = 4 * 1024 * 1024  # bytes of a decoded answer body
DEFAULT_DAILY_LIMITS = True  # honour a provider's per-kind requests/day (Freepik)
DEFAULT_BALANCE_INTERVAL = 300.0
DEFAULT_MAX_INTERVAL = 600.0
DEFAULT_MAX_BACKOFF = 300.0
DEFAULT_DISCOVER_INTERVAL = 60.0
DEFAULT_MAX_RETRY_WAIT = 3600.0  # longest wait a provider's Retry-After can impose
DEFAULT_DISCOVER_MAX_ROUND = 1000  # tasks one list round may add
DEFAULT_DISCOVER_MAX_TOTAL = 10_000  # tasks discovery may add in all

# ---------------------------------------------------------------- [ui] names

# Textual's built-in themes (textual.theme.BUILTIN_THEMES), kept here so that
# reading the config never imports Textual; tests/functional/test_config.py checks them.
THEMES: tuple[str, ...] = (
    "textual-dark", "textual-light", "nord", "gruvbox", "catppuccin-mocha", "dracula", "tokyo-night",
    "monokai", "flexoki", "catppuccin-latte", "catppuccin-frappe", "catppuccin-macchiato",
    "solarized-light", "solarized-dark", "rose-pine", "rose-pine-moon", "rose-pine-dawn",
    "atom-one-dark", "atom-one-light", "ansi-dark", "ansi-light",
)

# The ids of the dashboard's bindings ([ui.keymap] keys).  tests/functional/test_config.py
# checks this against every Binding(id=...) of the app, its screens and widgets.
# Every binding id a [ui.keymap] may name: the one action table's (tui/actions.py,
# Textual-free), where a new key is added once (help, palette and README follow).
from .actions import binding_ids as _binding_ids  # noqa: E402

BINDING_IDS: tuple[str, ...] = _binding_ids()

MODIFIERS = ("ctrl", "shift", "alt", "meta", "super", "hyper")
# Key names Textual uses for keys that are not one printable character
# (textual.keys.Keys without modifiers, and its replacements of Unicode names).
NAMED_KEYS = frozenset({
    "escape", "enter", "return", "tab", "space", "backspace", "left", "right", "up", "down",
    "home", "end", "insert", "delete", "pageup", "pagedown", "newline",
    *(f"f{n}" for n in range(1, 25)),
    "slash", "backslash", "at", "minus", "plus", "underscore",
})
_REPLACEMENTS = {"solidus": "slash", "reverse_solidus": "backslash", "commercial_at": "at",
                 "hyphen_minus": "minus", "plus_sign": "plus", "low_line": "underscore"}
_HYPHENATED = {"hyphen_minus": "-", "less_than_sign": "<", "greater_than_sign": ">"}


def _character_to_key(char: str) -> str:
    """A character's key name as Textual gives it (``"?"`` -> ``"question_mark"``)."""
    import unicodedata

    if char.isalnum():
        return char
    try:
        name = unicodedata.name(char).lower().replace("-", "_").replace(" ", "_")
    except ValueError:
        name = {"\t": "tab"}.get(char, char)
    return _REPLACEMENTS.get(name, name)


def normalize_key(key: str) -> str:
    """``"ctrl+?"`` -> ``"ctrl+question_mark"``: one key as Textual names it, or ``ValueError``."""
    import unicodedata

    if key == "+":
        return "plus"
    parts = key.split("+")
    if any(not p.strip() for p in parts):
        raise ValueError(f"'{key}' is not a key (write e.g. \"ctrl+f\")")
    *mods, base = (p.strip() for p in parts)
    for mod in mods:
        if mod.lower() not in MODIFIERS:
            raise ValueError(f"unknown modifier '{mod}' in '{key}'{_did_you_mean(mod.lower(), MODIFIERS)};"
                             f" modifiers: {', '.join(MODIFIERS)}")
    mods = [m.lower() for m in mods]
    if len(base) == 1:
        if not base.isprintable():
            raise ValueError(f"'{key}' holds a control character (name the key, e.g. \"tab\")")
        name = _character_to_key(base)
    elif base.lower() in NAMED_KEYS:
        name = base.lower()
    else:
        low = base.lower()
        char = _HYPHENATED.get(low)
        if char is None:
            try:
                char = unicodedata.lookup(low.replace("_", " "))
            except KeyError:
                char = None
        if char is None or len(char) != 1 or not char.isprintable() or char.isspace() and char != " ":
            raise ValueError(f"unknown key '{base}'{_did_you_mean(low, NAMED_KEYS)}"
                             " (a character, a name such as escape, f5, pageup, question_mark,"
                             " with modifiers such as ctrl+)")
        name = _character_to_key(char)
    return "+".join([*mods, name])


def _binding_id(value: str) -> str:
    if value not in BINDING_IDS:
        raise ValueError(f"unknown binding id '{value}'{_did_you_mean(value, BINDING_IDS)};"
                         " the ids are listed in docs/config.md (and by `?` in the dashboard)")
    return value


def _key_list(value: str) -> str:
    keys = [k.strip() for k in value.split(",")] if value.strip() else []
    if not keys:
        raise ValueError('has no keys (give e.g. "ctrl+f,f3")')
    if any(not k for k in keys):
        raise ValueError(f"'{value}' has an empty key between commas")
    return ",".join(dict.fromkeys(normalize_key(k) for k in keys))


BindingId = Annotated[str, AfterValidator(_binding_id)]
KeyList = Annotated[str, AfterValidator(_key_list)]


# ---------------------------------------------------------------- models

# hide_input_in_errors: a ValidationError from direct construction never shows a key either.
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True,
                     hide_input_in_errors=True)


PUSH_OF = {"evolink": "callback", "freepik": "webhook"}  # [providers.X] push: the providers that can push


class ProviderConfig(BaseModel):
    """One ``[providers.NAME]`` table.  Missing keys get the provider's documented defaults."""

    model_config = _STRICT

    name: str
    api_key: SecretStr
    base_url: str
    poll_interval: float = Field(ge=0.1, le=86400)
    rate_limit: RateLimitField
    concurrency: int = Field(default=DEFAULT_CONCURRENCY, ge=1, le=64)
    timeout: float = Field(default=DEFAULT_TIMEOUT, gt=0, le=600)
    enabled: bool = True
    discover: bool = False
    kinds: list[str] = Field(default_factory=list)
    balance_interval: float = Field(default=DEFAULT_BALANCE_INTERVAL, ge=0, le=86400)
    daily_limits: bool = DEFAULT_DAILY_LIMITS
    max_body: int = Field(default=DEFAULT_MAX_BODY, ge=1024, le=1 << 30)
    # Freepik webhooks (tasktui listen): the signing secret(s), space-separated while rotating
    webhook_secret: SecretStr | None = None
    # issue 18: its tasks are created with a push address (EvoLink "callback", Freepik "webhook"): while
    # this process receives its pushes, a task is fed by push from first sight (docs/push.md)
    push: Literal["off", "callback", "webhook"] = "off"
    # A declared provider (tui/providers/catalogue) carries its description, from a
    # catalogue entry and/or the table's declaration keys; given as ``declaration=``
    # at construction (the reader does), or found in the catalogue by name.
    _declaration: Any = PrivateAttr(default=None)

    @model_validator(mode="wrap")
    @classmethod
    def _provider_defaults(cls, data: Any, handler: Any) -> Any:
        declaration = None
        if isinstance(data, dict):
            name = data.get("name")
            declaration = data.get("declaration")
            data = {k: v for k, v in data.items() if k != "declaration"}
            if declaration is not None and not isinstance(declaration, Declaration):
                raise ValueError("declaration: should be a provider description (Declaration)")
            if declaration is None and name not in PROVIDERS and isinstance(name, str) \
                    and name in catalogue_names():
                declaration = catalogue_entry(name)
            if declaration is not None:
                filled = {"rate_limit": declaration.rate_limit, "poll_interval": declaration.poll_interval,
                          "kinds": [declaration.default_kind] if declaration.default_kind else []}
                if declaration.base_url:
                    filled["base_url"] = declaration.base_url
                data = {**filled, **data}
            elif name in PROVIDER_DEFAULTS:
                base_url, rate, interval, kind = PROVIDER_DEFAULTS[name]
                filled = {"rate_limit": rate, "poll_interval": interval, "kinds": [kind] if kind else []}
                if base_url:
                    filled["base_url"] = base_url
                data = {**filled, **data}
            elif isinstance(name, str) and name not in PROVIDERS:
                known = known_provider_names()
                raise ValueError(f"unknown provider '{name}'{_did_you_mean(name, known)};"
                                 f" known: {', '.join(known)}")
        result = handler(data)
        if isinstance(data, dict):  # an instance given again keeps its own declaration
            result._declaration = declaration
        return result

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if not value or any(ch.isspace() or ord(ch) < 32 for ch in value):
            raise ValueError("a provider name is one word (letters, digits, - and _)")
        return value

    @model_validator(mode="after")
    def _push_mode(self) -> "ProviderConfig":
        wanted = PUSH_OF.get(self.name)
        if self.push != "off" and self.push != wanted:
            raise ValueError('push: only "off"' + (f' or "{wanted}"' if wanted else "") + f" for {self.name}"
                             " (EvoLink calls back: \"callback\"; Freepik signs webhooks: \"webhook\")")
        return self

    @property
    def declaration(self) -> Declaration | None:
        """The description of a declared provider (catalogue or the user's); None for the five."""
        return self._declaration

    @property
    def declared(self) -> bool:
        return self._declaration is not None

    @field_validator("api_key")
    @classmethod
    def _key(cls, value: SecretStr) -> SecretStr:
        key = value.get_secret_value()
        if not key.strip():
            raise ValueError("is empty")
        if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in key):
            raise ValueError("contains spaces or control characters (the value is not shown)")
        return value

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        value = value.strip()
        try:
            parts = urlsplit(value)
            host = parts.hostname
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError:
            host, parts = None, None
        if parts is not None and "@" in parts.netloc:
            raise ValueError("credentials in base_url are not allowed; use api_key")
        if parts is None or parts.scheme not in ("http", "https") or not host:
            raise ValueError('should be an http:// or https:// URL such as "https://api.evolink.ai"')
        if parts.query or parts.fragment or any(ch.isspace() for ch in value):
            raise ValueError("should be a plain server URL (no spaces, query or fragment)")
        return value.rstrip("/")

    @field_validator("kinds")
    @classmethod
    def _kinds(cls, value: list[str]) -> list[str]:
        out = []
        for kind in value:
            kind = kind.strip().strip("/")
            if not kind or any(ch.isspace() for ch in kind):
                raise ValueError('each kind should be a path such as "text-to-image/hyperflux"')
            out.append(kind)
        return out

    @property
    def key(self) -> str:
        """The API key in clear, for the request header (never for display)."""
        return self.api_key.get_secret_value()

    @property
    def default_kind(self) -> str | None:
        return self.kinds[0] if self.kinds else None


NOTIFY_MODES = ("off", "osc9", "osc777")  # [ui] notify as a string: the desktop notification


class UIConfig(BaseModel):
    """The ``[ui]`` table."""

    model_config = _STRICT

    theme: str = Field(default="textual-dark", min_length=1)
    ansi_color: bool = False
    bell: bool = False
    # true/false: finished-task news in the header; "off", "osc9", "osc777": news on, and a
    # terminal desktop notification (OSC 9 or OSC 777) when a filter's tasks have all ended
    notify: bool | Literal["off", "osc9", "osc777"] = True  # see _notify below
    readonly: bool = False  # open the database read-only: no add, forget or polling
    refresh_hz: float = Field(default=4.0, ge=0.5, le=60)
    columns: list[Literal["polled"]] = Field(default_factory=list)  # optional list columns (`L` toggles POLLED)
    saved_filters: dict[str, str] = Field(default_factory=dict)
    # binding id -> keys, stored as Textual names them ("?" -> "question_mark")
    keymap: dict[BindingId, KeyList] = Field(default_factory=dict)

    @field_validator("notify", mode="before")
    @classmethod
    def _notify(cls, value: Any) -> Any:
        if isinstance(value, bool) or value in NOTIFY_MODES:
            return value
        shown = value if isinstance(value, str) else repr(value)
        hint = _did_you_mean(value, NOTIFY_MODES) if isinstance(value, str) else ""
        raise ValueError(f"'{shown}' is not a notification mode{hint}; give true or false"
                         f" (news in the header) or one of: {', '.join(NOTIFY_MODES)}")

    @field_validator("theme")
    @classmethod
    def _theme(cls, value: str) -> str:
        if value not in THEMES:
            raise ValueError(f"unknown theme '{value}'{_did_you_mean(value, THEMES)};"
                             f" themes: {', '.join(THEMES)}")
        return value


class EngineConfig(BaseModel):
    """The ``[engine]`` table: knobs shared by every provider's worker."""

    model_config = _STRICT

    adaptive: bool = True
    max_interval: float = Field(default=DEFAULT_MAX_INTERVAL, ge=1, le=86400)
    max_backoff: float = Field(default=DEFAULT_MAX_BACKOFF, ge=1, le=86400)
    discover_interval: float = Field(default=DEFAULT_DISCOVER_INTERVAL, ge=1, le=86400)
    max_retry_wait: float = Field(default=DEFAULT_MAX_RETRY_WAIT, gt=0, le=86400)
    discover_max_round: int = Field(default=DEFAULT_DISCOVER_MAX_ROUND, ge=1, le=1_000_000)
    discover_max_total: int = Field(default=DEFAULT_DISCOVER_MAX_TOTAL, ge=1, le=10_000_000)


class ResultsConfig(BaseModel):
    """The ``[results]`` table: where downloads go, how large a preview may be."""

    model_config = _STRICT

    dir: str | None = Field(default=None, min_length=1)  # the `d` key's folder (default: the current one)
    preview_max_mb: float = Field(default=20.0, gt=0, le=2000)
    # download results as tasks succeed, into ``dir`` (the dashboard's and collect's
    # engine run tui/autopull.py), before the providers' links expire
    auto_download: bool = False
    # how pictures are drawn: "auto" asks the terminal (Kitty graphics, Sixel, else
    # half-blocks); "kitty", "sixel" or "halfblocks" say it (tui/graphics.py)
    graphics: Literal["auto", "kitty", "sixel", "halfblocks"] = "auto"

    @model_validator(mode="after")
    def _auto_download_has_a_dir(self) -> "ResultsConfig":
        if self.auto_download and self.dir is None:
            raise ValueError('auto_download needs dir (where the files go), e.g. dir = "~/renders"')
        return self


class ListenConfig(BaseModel):
    """The ``[listen]`` table of ``tasktui listen`` (the command line wins)."""

    model_config = _STRICT

    host: str = Field(default="127.0.0.1", min_length=1)
    port: int = Field(default=8787, ge=0, le=65535)
    path_prefix: str = ""
    public_url: str | None = Field(default=None, pattern=r"^https?://")
    token: SecretStr | None = None  # the EvoLink callback token (default: one made once, beside the database)
    forwarded_allow_ips: str | None = None
    # a task fed by push is polled only this often (seconds), and once near its predicted end
    safety_net: float = Field(default=600.0, gt=0, le=7 * 86400)


class StoreConfig(BaseModel):
    """The ``[store]`` table: the task database (--db and $TASKTUI_DB win)."""

    model_config = _STRICT

    url: str | None = Field(default=None, min_length=1)  # a SQLite path or a postgresql:// URL


@dataclass
class Config:
    """The whole config.  ``path`` is None when no file was read."""

    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    ui: UIConfig = field(default_factory=UIConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    results: ResultsConfig = field(default_factory=ResultsConfig)
    listen: ListenConfig = field(default_factory=ListenConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)
    # providers whose api_key is (partly) written in the file, not only ${VAR}s
    literal_keys: list[str] = field(default_factory=list)
    # the warnings every command prints once (see print_warnings); also in ``warnings``
    secrecy_warnings: list[str] = field(default_factory=list)

    def enabled(self) -> dict[str, ProviderConfig]:
        """The providers to poll (``enabled = true``), in file order."""
        return {name: p for name, p in self.providers.items() if p.enabled}

    def redacted(self) -> dict[str, Any]:
        """The config as plain data with every API key masked (safe to print or log)."""
        return {
            "path": str(self.path) if self.path else None,
            "providers": {n: p.model_dump(mode="json") for n, p in self.providers.items()},
            "ui": self.ui.model_dump(mode="json"),
            "engine": self.engine.model_dump(mode="json"),
        }


SECTIONS = {"providers": None, "ui": UIConfig, "engine": EngineConfig, "results": ResultsConfig,
            "listen": ListenConfig, "store": StoreConfig}


# ---------------------------------------------------------------- environment


_REF = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def expand_env(value: Any, file: str, parts: list[str | int], environ: Mapping[str, str],
               problems: list[ConfigError] | None = None) -> Any:
    """Replace ``${VAR}`` in every string of ``value`` (``$$`` is a literal ``$``).

    A bad reference raises ``ConfigError``; with ``problems`` given it is added
    there instead and the string is kept as written.
    """
    if isinstance(value, str):
        def sub(m: re.Match) -> str:
            if m.group(0) == "$$":
                return "$"
            name = m.group(1)
            if name is None or not _NAME.match(name):
                raise ConfigError(file, dotted(parts), "malformed ${...} reference"
                                  " (write ${NAME}, or $$ for a literal $)")
            if name not in environ:
                raise ConfigError(file, dotted(parts), f"environment variable {name} is not set")
            return environ[name]

        try:
            return _REF.sub(sub, value)
        except ConfigError as exc:
            if problems is None:
                raise
            problems.append(exc)
            return value
    if isinstance(value, dict):
        return {k: expand_env(v, file, [*parts, k], environ, problems) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file, [*parts, i], environ, problems) for i, v in enumerate(value)]
    return value


def _references(value: str) -> list[str]:
    """The variable names ``${...}`` in ``value``."""
    return [m.group(1) for m in _REF.finditer(value) if m.group(1)]


def _literal_text(value: str) -> bool:
    """True when ``value`` holds text of its own besides ``${VAR}`` references
    (``"sk-${EMPTY}abc"`` and ``"$${VAR}"`` do: the file holds the key)."""
    rest = _REF.sub(lambda m: "$" if m.group(0) == "$$" else "", value)
    return bool(rest.strip())


# ---------------------------------------------------------------- reading the file

MAX_BYTES = 1 << 20  # a config is a few kB; anything this large is not one
MAX_DEPTH = 32  # tables, arrays and dotted-key parts nested in one another

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"))


def _not_regular(mode: int) -> str | None:
    if stat.S_ISREG(mode):
        return None
    kind = next((name for test, name in _KINDS if test(mode)), "not a file")
    return f"not a regular file ({kind}): refusing to read it"


def read_config_text(file: Path) -> str | None:
    """The file's text, or None when there is no file.

    Only a regular file is read: its type is checked with ``stat`` before it is
    opened, and it is opened non-blocking (a FIFO put in its place between the
    two cannot hang us) and checked again.  A UTF-8 BOM is dropped.
    """
    try:
        st = os.stat(file)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    if (why := _not_regular(st.st_mode)) is not None:
        raise ConfigError(file, None, why)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(file, flags)
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    try:
        if (why := _not_regular(os.fstat(fd).st_mode)) is not None:
            raise ConfigError(file, None, why)
        chunks, size = [], 0
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BYTES:  # read, not stat: a file may grow, /proc files say 0
                raise ConfigError(file, None, f"too large for a config (over {MAX_BYTES // 1024} KiB)")
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigError(file, None, "not UTF-8 text") from None


# Strings and comments (skipped), and the characters that nest or end a key.
# A string's closing quotes are optional so that no pattern ever fails after a
# long scan: an unterminated string ends the token (tomllib then says why), and
# the whole scan stays linear whatever the text (no retry from each quote).
_TOKENS = re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*(?:"{0,2}""")?'
                     r"|'''(?:[^']|'(?!''))*(?:'{0,2}''')?"
                     r'|"(?:[^"\\\n]|\\[^\n])*"?'
                     r"|'[^'\n]*'?"
                     r"|#[^\n]*"
                     r"|[\[\]{}=,.\n]", re.S)


def _check_nesting(text: str, file: str) -> None:
    """Refuse deep nesting before ``tomllib`` sees it: nested arrays and inline
    tables recurse (RecursionError), and a dotted key of n parts costs memory in
    n squared (``a.a.a...`` of 100,000 parts takes gigabytes)."""
    depth = dots = 0
    line = 1
    for m in _TOKENS.finditer(text):
        tok = m.group()
        first = tok[0]
        if first == "\n":
            line += 1
            dots = 0
        elif first in "\"'":
            line += tok.count("\n")
        elif first in "[{":
            depth += 1
            dots = 0
        elif first in "]}":
            depth = max(0, depth - 1)
            dots = 0
        elif first in "=,":
            dots = 0
        elif first == ".":
            dots += 1
        if depth > MAX_DEPTH or dots >= MAX_DEPTH:
            raise ConfigError(file, f"line {line}", f"nested more than {MAX_DEPTH} levels deep")


def _deepest(data: Any) -> list[str | int] | None:
    """The path to a value nested deeper than MAX_DEPTH (walked without recursion), or None."""
    stack: list[tuple[Any, list[str | int]]] = [(data, [])]
    while stack:
        value, path = stack.pop()
        if len(path) > MAX_DEPTH:
            return path
        if isinstance(value, dict):
            stack.extend((v, [*path, k]) for k, v in value.items())
        elif isinstance(value, list):
            stack.extend((v, [*path, i]) for i, v in enumerate(value))
    return None


# ---------------------------------------------------------------- loading


def load_config(path: str | os.PathLike | None = None, *, must_exist: bool = False,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the config file.

    A missing file gives an empty ``Config`` (no providers), or a
    ``ConfigError`` saying where we looked when ``must_exist``.  Every problem
    is found before one is raised (``ConfigError.problems``).
    """
    file, source = _config_source(path)
    text = read_config_text(file)
    if text is None:
        if must_exist:
            raise ConfigError(file, None, f"no config file here (path from {source});"
                              " run `tasktui config init` to write a commented example"
                              " (keys: docs/config.md)")
        return Config()
    config = parse_config(text, file, environ=environ)
    extra = permission_warnings(file, config)
    config.warnings.extend(extra)
    config.secrecy_warnings.extend(extra)
    return config


def parse_config(text: str, file: str | os.PathLike = "<config>", *,
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate config ``text`` (the file's contents); ``file`` names it in errors."""
    name = str(file)
    environ = os.environ if environ is None else environ
    text = text.removeprefix("\ufeff")
    _check_nesting(text, name)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(name, exc) from None
    except RecursionError:
        raise ConfigError(name, None, f"nested more than {MAX_DEPTH} levels deep") from None
    deep = _deepest(data)
    if deep is not None:
        raise ConfigError(name, dotted(deep[:4]) + "...", f"nested more than {MAX_DEPTH} levels deep")
    problems: list[ConfigError] = []
    config = Config(path=Path(file))
    for key, value in data.items():
        if key == "providers":
            _parse_providers(value, name, environ, config, problems)
        elif key in SECTIONS:
            result = _check_section(SECTIONS[key], value, name, [key], environ, problems)
            if result is not None:
                setattr(config, key, result)
        else:
            problems.append(ConfigError(name, dotted([key]),
                                        f"unknown key '{key}'{_did_you_mean(key, SECTIONS)}"))
    _raise_all(problems)
    config.secrecy_warnings.extend(_secrecy_warnings(name, config))
    config.warnings.extend([*config.secrecy_warnings, *_content_warnings(name, config)])
    return config


def _parse_providers(providers: Any, name: str, environ: Mapping[str, str], config: Config,
                     problems: list[ConfigError]) -> None:
    if not isinstance(providers, dict):
        problems.append(ConfigError(name, "providers", "should be tables like [providers.evolink]"))
        return
    for pname, table in providers.items():
        parts: list[str | int] = ["providers", pname]
        is_declared = isinstance(table, dict) and ("type" in table or "catalogue" in table)
        if pname not in PROVIDERS and not is_declared and pname not in catalogue_names():
            known = known_provider_names()
            problems.append(ConfigError(name, dotted(parts), f"unknown provider '{pname}'"
                                        f"{_did_you_mean(pname, known)}; known: {', '.join(known)}"
                                        " (or describe it: type = \"declared\", docs/config.md)"))
            continue
        if not isinstance(table, dict):
            problems.append(ConfigError(name, dotted(parts), f"should be a table: [providers.{pname}]"))
            continue
        if "name" in table:
            problems.append(ConfigError(name, dotted([*parts, "name"]), "unknown key 'name'"
                                        " (the table's name is the provider)"))
            table = {k: v for k, v in table.items() if k != "name"}
        if pname in PROVIDERS:
            for key in ("type", "catalogue", "declaration"):
                if key in table:
                    problems.append(ConfigError(name, dotted([*parts, key]), f"unknown key '{key}'"
                                                f" ({pname} is a built-in provider; to declare another,"
                                                " give its table another name)"))
            table = {k: v for k, v in table.items() if k not in ("type", "catalogue", "declaration")}
        else:
            found_decl: list[ConfigError] = []
            table = _declared_table(pname, table, name, parts, found_decl)
            problems.extend(found_decl)
            if table is None:
                continue
        raw_key = table.get("api_key")
        found: list[ConfigError] = []
        result = _check_section(ProviderConfig, {**table, "name": pname}, name, parts, environ, found)
        for problem in found:
            if problem.key == dotted([*parts, "base_url"]) and problem.reason == "required key is missing":
                problem.reason = f"required for {pname}: the provider documents no server URL"
            elif (problem.key == dotted([*parts, "api_key"]) and problem.reason == "is empty"
                  and isinstance(raw_key, str) and _references(raw_key)):
                refs = ", ".join(f"${{{r}}}" for r in dict.fromkeys(_references(raw_key)))
                problem.reason = f"is empty (from {refs}, empty in the environment)"
        problems.extend(found)
        if result is not None:
            config.providers[pname] = result
            if isinstance(raw_key, str) and _literal_text(raw_key):
                config.literal_keys.append(pname)


def known_provider_names() -> tuple[str, ...]:
    """The five built-in providers, then the catalogue's entries."""
    return (*PROVIDERS, *(n for n in catalogue_names() if n not in PROVIDERS))


_TYPE_KEYS = ("type", "catalogue")


def _declared_table(pname: str, table: dict[str, Any], file: str, parts: list[str | int],
                    problems: list[ConfigError]) -> dict[str, Any] | None:
    """A declared provider's table: its declaration (a catalogue entry and/or the
    table's declaration keys) validated and put under ``declaration``, the other
    keys left for ProviderConfig.  None (with problems) when it does not hold."""
    entry_names = catalogue_names()
    types = ("declared", *entry_names)
    base: dict[str, Any] = {}
    kind = table.get("type")
    entry = table.get("catalogue")
    bad = False
    if kind is not None and (not isinstance(kind, str) or kind not in types):
        problems.append(ConfigError(file, dotted([*parts, "type"]), f"unknown type {_show(kind)}"
                                    f"{_did_you_mean(str(kind), types)}; types: {', '.join(types)}"))
        bad = True
    if entry is not None and (not isinstance(entry, str) or entry not in entry_names):
        problems.append(ConfigError(file, dotted([*parts, "catalogue"]), f"unknown catalogue entry"
                                    f" {_show(entry)}{_did_you_mean(str(entry), entry_names)};"
                                    f" entries: {', '.join(entry_names)}"))
        bad = True
    if bad:
        return None
    source = entry if entry is not None else (kind if kind not in (None, "declared") else None)
    if source is None and kind is None:
        source = pname  # [providers.kling] with no type: the catalogue's own entry
    if source is not None:
        base = catalogue_raw(source)
    config_keys = set(ProviderConfig.model_fields) - {"name"}
    allowed = config_keys | set(DECLARATION_KEYS) | set(_TYPE_KEYS)
    rest: dict[str, Any] = {}
    over: dict[str, Any] = {}
    for key, value in table.items():
        if key == "declaration" or key not in allowed:
            choices = sorted(allowed)
            problems.append(ConfigError(file, dotted([*parts, key]),
                                        f"unknown key '{key}'{_did_you_mean(key, choices)}"))
        elif key in DECLARATION_KEYS:
            over[key] = value
        elif key not in _TYPE_KEYS:
            rest[key] = value
    found = _check(Declaration, merge(base, over), file, parts)
    if found:
        problems.extend(found)
        return None
    if any(p.key and p.key.startswith(dotted(parts)) for p in problems):
        return None
    return {**rest, "declaration": Declaration.model_validate(merge(base, over))}


def _show(value: Any) -> str:
    return f"'{value}'" if isinstance(value, str) else f"{type(value).__name__} {value!r}"[:80]


def _check_section(model: type[BaseModel], raw: Any, file: str, prefix: list[str | int],
                   environ: Mapping[str, str], problems: list[ConfigError]) -> Any:
    """Expand and validate one table; its problems go to ``problems`` (None returned then)."""
    if not isinstance(raw, dict):
        problems.append(ConfigError(file, dotted(prefix), f"should be a table: [{dotted(prefix)}]"))
        return None
    env_problems: list[ConfigError] = []
    value = expand_env(raw, file, prefix, environ, env_problems)
    found = _check(model, value, file, prefix)
    # a value left unexpanded is already reported: drop what validation said of it
    bad = {p.key for p in env_problems}
    found = [p for p in found if not any(p.key == b or (p.key or "").startswith((f"{b}.", f"{b}["))
                                         for b in bad)]
    problems.extend(sorted([*env_problems, *found], key=lambda p: _order(model, prefix, p)))
    if env_problems or found:
        return None
    return model.model_validate(value)


def _order(model: type[BaseModel], prefix: list[str | int], problem: ConfigError) -> int:
    """Problems of one table in the order of the model's fields (unknown keys last)."""
    head = dotted(prefix)
    rest = (problem.key or "")[len(head) + 1:]
    fields = list(model.model_fields)
    for i, fname in enumerate(fields):
        if rest == fname or rest.startswith((f"{fname}.", f"{fname}[")):
            return i
    return len(fields)


_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _syntax_error(file: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    msg = str(exc)
    m = _AT.search(msg)
    where = f"line {m.group(1)}, column {m.group(2)}" if m else None
    reason = _AT.sub("", msg) if m else msg
    return ConfigError(file, where, f"TOML syntax error: {reason[:1].lower()}{reason[1:]}")


def _check(model: type[BaseModel], data: Any, file: str, prefix: list[str | int]) -> list[ConfigError]:
    """Every validation problem of ``data`` as a ``model``, one ConfigError each."""
    try:
        model.model_validate(data)
    except ValidationError as exc:
        out = []
        for error in exc.errors(include_input=False, include_url=False):
            loc = [part for part in error["loc"] if part != "[key]"]
            out.append(ConfigError(file, dotted([*prefix, *loc]), _reason(error, model)))
        return out
    return []


def _validate(model: type[BaseModel], data: Any, file: str, prefix: list[str | int]) -> Any:
    """``data`` as a ``model``, or a ConfigError listing every problem."""
    if not isinstance(data, dict):
        raise ConfigError(file, dotted(prefix), f"should be a table: [{dotted(prefix)}]")
    _raise_all(_check(model, data, file, prefix))
    return model.model_validate(data)


def _reason(error: dict, model: type[BaseModel]) -> str:
    kind, msg = error["type"], error["msg"]
    if kind == "extra_forbidden":
        key = str(error["loc"][-1])
        fields = [f for f in model.model_fields if f != "name"]
        return f"unknown key '{key}'{_did_you_mean(key, fields)}"
    if kind == "missing":
        return "required key is missing"
    if kind in ("model_type", "dict_type"):
        return "should be a table"
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    msg = msg.removeprefix("Input ")
    return msg[:1].lower() + msg[1:]


# ---------------------------------------------------------------- warnings


def _secrecy_warnings(file: str, config: Config) -> list[str]:
    out = []
    for name, p in config.providers.items():
        host = urlsplit(p.base_url).hostname or ""
        if p.base_url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
            out.append(f"{file}: providers.{name}.base_url: plain http sends the API key unencrypted")
    return out


def _content_warnings(file: str, config: Config) -> list[str]:
    from .filter import problems

    out = []
    for fname, query in config.ui.saved_filters.items():
        for problem in problems(query):
            out.append(f"{file}: {dotted(['ui', 'saved_filters', fname])}: {problem}")
    if not config.providers:
        out.append(f"{file}: no [providers.NAME] table: nothing will be polled")
    return out


def permission_warnings(path: str | os.PathLike, config: Config) -> list[str]:
    """One warning per provider whose key is written in the file (wholly or in
    part: ``"sk-${EMPTY}abc"`` counts) when group or others can read the file."""
    if os.name != "posix" or not config.literal_keys:
        return []
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return []
    if not mode & 0o044:
        return []
    return [f"{path}: providers.{n}.api_key: the key is written in a file that other users can read"
            f" (mode {mode:04o}); run `chmod 600 {path}` or use api_key = \"${{VAR}}\""
            for n in config.literal_keys]


_printed: set[str] = set()


def print_warnings(config: Config, stream: TextIO | None = None, *, every: bool = False) -> None:
    """Print the config's secrecy warnings on stderr, each once per process.

    Every command calls this after loading the config; ``every=True`` prints
    all warnings (``config check``).
    """
    stream = stream or sys.stderr
    for warning in (config.warnings if every else config.secrecy_warnings):
        if warning in _printed and not every:
            continue
        _printed.add(warning)
        print(f"warning: {_one_line(warning)}", file=stream, flush=True)


# ---------------------------------------------------------------- saving


def save_setting(path: str | os.PathLike | None, key: str | Iterable[str], value: Any) -> Path:
    """Set one value (``None`` removes it) and rewrite the file, keeping comments and layout.

    ``key`` is dotted (``"ui.theme"``) or a sequence of parts (for names with dots,
    ``("ui", "saved_filters", "my.filter")``).  Tables are created as needed.
    ``[ui]`` and ``[engine]`` values are validated before anything is written.
    A symlinked config is followed (the link stays, its target is rewritten);
    the file written is private (0600, or its own mode if stricter).
    Returns the config path (the link, when it is one).
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    file = config_path(path)
    target = Path(os.path.realpath(file))
    parts = key.split(".") if isinstance(key, str) else list(key)
    if not parts or not all(parts):
        raise ConfigError(file, str(key), "empty key")
    text = read_config_text(target) or ""
    try:
        _check_nesting(text, str(file))
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(file, None, f"TOML syntax error: {exc}") from None
    except RecursionError:
        raise ConfigError(file, None, f"nested more than {MAX_DEPTH} levels deep") from None
    container: Any = doc
    for i, part in enumerate(parts[:-1]):
        if part not in container:
            if value is None:
                return file  # nothing to remove
            container[part] = tomlkit.table()
        container = container[part]
        if not isinstance(container, dict):
            raise ConfigError(file, dotted(parts[: i + 1]), "is not a table")
    if value is None:
        container.pop(parts[-1], None)
    else:
        container[parts[-1]] = value
    section = parts[0]
    if SECTIONS.get(section) is not None and section in doc:
        problems: list[ConfigError] = []
        _check_section(SECTIONS[section], doc[section].unwrap(), str(file), [section], os.environ, problems)
        # a ${VAR} unset here is not this change's business
        _raise_all([p for p in problems if "environment variable" not in p.reason])
    try:
        _write_atomic(target, tomlkit.dumps(doc))
    except OSError as exc:
        raise ConfigError(file, None, f"cannot write: {exc.strerror or type(exc).__name__}") from None
    return file


def _write_atomic(file: Path, text: str) -> None:
    """Replace ``file`` with ``text`` through a temporary file in its folder.

    The result is 0600, or the file's own mode where that is stricter; a new
    folder is 0700.
    """
    import tempfile

    file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        mode = stat.S_IMODE(os.stat(file).st_mode) & 0o600
    except OSError:
        mode = 0o600
    fd, tmp = tempfile.mkstemp(dir=file.parent, prefix=f".{file.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), mode)
        os.replace(tmp, file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- `tasktui config check` / `init`


def cmd_check(args) -> int:
    """Validate the config: ``OK: ...`` and warnings, exit 0; or every problem, one a line, exit 2."""
    try:
        config = load_config(getattr(args, "config", None), must_exist=True)
    except ConfigError as exc:
        for line in exc.problems:
            print(line, file=sys.stderr)
        return 2
    names = []
    for n, p in config.providers.items():
        tags = [] if p.enabled else ["disabled"]
        if p.declared:  # a catalogue entry as shipped, or a description of the user's
            shipped = n in catalogue_names() and p.declaration == catalogue_entry(n)
            tags.append("catalogue" if shipped else "declared")
        names.append(f"{n} [{', '.join(tags)}]" if tags else n)
    count = len(names)
    print(f"OK: {config.path}: {count} provider{'' if count == 1 else 's'} ({', '.join(names)})")
    print_warnings(config, every=True)
    return 0


def example_text() -> str:
    """The commented example config shipped in the package (same as config.example.toml)."""
    from importlib.resources import files

    return files("tui").joinpath("config.example.toml").read_text(encoding="utf-8")


def cmd_init(args) -> int:
    """Write the commented example to the config path (0600); never overwrite anything."""
    file, source = _config_source(getattr(args, "config", None))
    try:
        file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError as exc:
        print(f"{file}: cannot write: cannot make the folder {file.parent}"
              f" ({exc.strerror or type(exc).__name__})", file=sys.stderr)
        return 2
    try:
        # O_EXCL: never over anything already there, not even a dangling symlink or a FIFO
        fd = os.open(file, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o600)
    except FileExistsError:
        print(f"{file}: already exists (path from {source}); not overwritten"
              " (check it: `tasktui config check`)", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"{file}: cannot write: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(example_text())
    except OSError as exc:
        file.unlink(missing_ok=True)
        print(f"{file}: cannot write: {exc.strerror or type(exc).__name__}", file=sys.stderr)
        return 2
    print(f"wrote {file} (path from {source}): delete the providers you do not use, export the"
          " API keys it names (e.g. EVOLINK_API_KEY), then run `tasktui config check`")
    return 0
