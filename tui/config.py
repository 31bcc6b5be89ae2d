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
from typing import Annotated, Any, Iterable, Mapping, NamedTuple
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)

from .model import PROVIDERS

from .paths import APP_NAME, _config_source, config_path, db_path  # noqa: F401  (re-exported)


# ---------------------------------------------------------------- errors


class ConfigError(Exception):
    """A bad or missing config.  ``str()`` is one line: ``file: key: reason``."""

    def __init__(self, file: str | os.PathLike | None, key: str | None, reason: str) -> None:
        self.file = str(file) if file is not None else "<config>"
        self.key = key
        self.reason = reason
        super().__init__(str(self))

    def __str__(self) -> str:
        line = f"{self.file}: {self.key}: {self.reason}" if self.key else f"{self.file}: {self.reason}"
        return _NEWLINES.sub(" ", line)  # one line, whatever the reason held


_NEWLINES = re.compile(r"[\r\n\t\v\f]+")
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
# tests/test_config.py checks that it agrees with the provider classes.
PROVIDER_DEFAULTS: dict[str, tuple[str | None, str, float, str | None]] = {
    "comfy": ("https://api.comfy.org", "30/m", 10.0, "image-relight"),
    "upscayl": ("https://api.upscayl.org", "100/h", 60.0, None),
    "qolaba": (None, "30/m", 5.0, None),
    "freepik": ("https://api.freepik.com", "10/s", 5.0, "text-to-image/hyperflux"),
    "evolink": ("https://api.evolink.ai", "60/m", 5.0, None),
}


# ---------------------------------------------------------------- models

# hide_input_in_errors: a ValidationError from direct construction never shows a key either.
_STRICT = ConfigDict(extra="forbid", strict=True, allow_inf_nan=False, validate_default=True,
                     hide_input_in_errors=True)


class ProviderConfig(BaseModel):
    """One ``[providers.NAME]`` table.  Missing keys get the provider's documented defaults."""

    model_config = _STRICT

    name: str
    api_key: SecretStr
    base_url: str
    poll_interval: float = Field(ge=0.1, le=86400)
    rate_limit: RateLimitField
    concurrency: int = Field(default=4, ge=1, le=64)
    timeout: float = Field(default=20.0, gt=0, le=600)
    enabled: bool = True
    discover: bool = False
    kinds: list[str] = Field(default_factory=list)
    balance_interval: float = Field(default=300.0, ge=0, le=86400)

    @model_validator(mode="before")
    @classmethod
    def _provider_defaults(cls, data: Any) -> Any:
        if not isinstance(data, dict) or data.get("name") not in PROVIDER_DEFAULTS:
            return data
        base_url, rate, interval, kind = PROVIDER_DEFAULTS[data["name"]]
        filled = {"rate_limit": rate, "poll_interval": interval, "kinds": [kind] if kind else []}
        if base_url:
            filled["base_url"] = base_url
        return {**filled, **data}

    @field_validator("name")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in PROVIDERS:
            raise ValueError(f"unknown provider '{value}'{_did_you_mean(value, PROVIDERS)};"
                             f" known: {', '.join(PROVIDERS)}")
        return value

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


class UIConfig(BaseModel):
    """The ``[ui]`` table."""

    model_config = _STRICT

    theme: str = Field(default="textual-dark", min_length=1)
    ansi_color: bool = False
    bell: bool = False
    notify: bool = True
    refresh_hz: float = Field(default=4.0, ge=0.5, le=60)
    saved_filters: dict[str, str] = Field(default_factory=dict)
    keymap: dict[str, str] = Field(default_factory=dict)

    @field_validator("keymap")
    @classmethod
    def _keys(cls, value: dict[str, str]) -> dict[str, str]:
        for binding, keys in value.items():
            if not keys.strip():
                raise ValueError(f"'{binding}' has no keys (give e.g. \"ctrl+f,f3\")")
        return value


class EngineConfig(BaseModel):
    """The ``[engine]`` table: knobs shared by every provider's worker."""

    model_config = _STRICT

    adaptive: bool = True
    max_interval: float = Field(default=600.0, ge=1, le=86400)
    max_backoff: float = Field(default=300.0, ge=1, le=86400)
    discover_interval: float = Field(default=60.0, ge=1, le=86400)


@dataclass
class Config:
    """The whole config.  ``path`` is None when no file was read."""

    providers: dict[str, ProviderConfig] = field(default_factory=dict)
    ui: UIConfig = field(default_factory=UIConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    path: Path | None = None
    warnings: list[str] = field(default_factory=list)

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


SECTIONS = {"providers": None, "ui": UIConfig, "engine": EngineConfig}


# ---------------------------------------------------------------- environment


_REF = re.compile(r"\$\$|\$\{([^}]*)\}|\$\{")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def expand_env(value: Any, file: str, parts: list[str | int], environ: Mapping[str, str]) -> Any:
    """Replace ``${VAR}`` in every string of ``value`` (``$$`` is a literal ``$``)."""
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

        return _REF.sub(sub, value)
    if isinstance(value, dict):
        return {k: expand_env(v, file, [*parts, k], environ) for k, v in value.items()}
    if isinstance(value, list):
        return [expand_env(v, file, [*parts, i], environ) for i, v in enumerate(value)]
    return value


# ---------------------------------------------------------------- loading


def load_config(path: str | os.PathLike | None = None, *, must_exist: bool = False,
                environ: Mapping[str, str] | None = None) -> Config:
    """Read, expand and validate the config file.

    A missing file gives an empty ``Config`` (no providers), or a
    ``ConfigError`` saying where we looked when ``must_exist``.
    """
    file, source = _config_source(path)
    if not file.exists():
        if must_exist:
            raise ConfigError(file, None, f"no config file here (path from {source}); copy"
                              " config.example.toml from the tasktui sources here and edit it"
                              " (keys: docs/config.md)")
        return Config()
    try:
        text = file.read_bytes().decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(file, None, "not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(file, None, f"cannot read: {exc.strerror or type(exc).__name__}") from None
    config = parse_config(text, file, environ=environ)
    config.warnings.extend(_permission_warnings(file, text, config))
    return config


def parse_config(text: str, file: str | os.PathLike = "<config>", *,
                 environ: Mapping[str, str] | None = None) -> Config:
    """Validate config ``text`` (the file's contents); ``file`` names it in errors."""
    name = str(file)
    environ = os.environ if environ is None else environ
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise _syntax_error(name, exc) from None
    for key in data:
        if key not in SECTIONS:
            raise ConfigError(name, dotted([key]), f"unknown key '{key}'{_did_you_mean(key, SECTIONS)}")
    config = Config(path=Path(file))
    providers = data.get("providers", {})
    if not isinstance(providers, dict):
        raise ConfigError(name, "providers", "should be tables like [providers.evolink]")
    for pname, table in providers.items():
        parts: list[str | int] = ["providers", pname]
        if pname not in PROVIDERS:
            raise ConfigError(name, dotted(parts), f"unknown provider '{pname}'"
                              f"{_did_you_mean(pname, PROVIDERS)}; known: {', '.join(PROVIDERS)}")
        if not isinstance(table, dict):
            raise ConfigError(name, dotted(parts), f"should be a table: [providers.{pname}]")
        if "name" in table:
            raise ConfigError(name, dotted([*parts, "name"]), "unknown key 'name'"
                              " (the table's name is the provider)")
        if "base_url" not in table and PROVIDER_DEFAULTS[pname][0] is None:
            raise ConfigError(name, dotted([*parts, "base_url"]),
                              f"required for {pname}: the provider documents no server URL")
        table = expand_env(table, name, parts, environ)
        config.providers[pname] = _validate(ProviderConfig, {**table, "name": pname}, name, parts)
    for section in ("ui", "engine"):
        if section in data:
            value = expand_env(data[section], name, [section], environ)
            setattr(config, section, _validate(SECTIONS[section], value, name, [section]))
    config.warnings.extend(_content_warnings(name, config))
    return config


_AT = re.compile(r"\s*\(at line (\d+), column (\d+)\)\s*$")


def _syntax_error(file: str, exc: tomllib.TOMLDecodeError) -> ConfigError:
    msg = str(exc)
    m = _AT.search(msg)
    where = f"line {m.group(1)}, column {m.group(2)}" if m else None
    reason = _AT.sub("", msg) if m else msg
    return ConfigError(file, where, f"TOML syntax error: {reason[:1].lower()}{reason[1:]}")


def _validate(model: type[BaseModel], data: Any, file: str, prefix: list[str | int]) -> Any:
    if not isinstance(data, dict):
        raise ConfigError(file, dotted(prefix), f"should be a table: [{dotted(prefix)}]")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        errors = exc.errors(include_input=False, include_url=False)
        first = errors[0]
        loc = [*prefix, *first["loc"]]
        reason = _reason(first, model)
        if len(errors) > 1:
            reason += f" (and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''})"
        raise ConfigError(file, dotted(loc), reason) from None


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


def _content_warnings(file: str, config: Config) -> list[str]:
    from .filter import problems

    out = []
    for name, p in config.providers.items():
        host = urlsplit(p.base_url).hostname or ""
        if p.base_url.startswith("http://") and host not in ("localhost", "127.0.0.1", "::1"):
            out.append(f"{file}: providers.{name}.base_url: plain http sends the API key unencrypted")
    for fname, query in config.ui.saved_filters.items():
        for problem in problems(query):
            out.append(f"{file}: {dotted(['ui', 'saved_filters', fname])}: {problem}")
    if not config.providers:
        out.append(f"{file}: no [providers.NAME] table: nothing will be polled")
    return out


def _permission_warnings(file: Path, text: str, config: Config) -> list[str]:
    """Warn when the file holds a literal key (not ${VAR}) and group/others can read it."""
    if os.name != "posix":
        return []
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except OSError:
        return []
    if not mode & 0o044:
        return []
    raw = tomllib.loads(text).get("providers", {})
    literal = [n for n in config.providers
               if isinstance(raw.get(n, {}).get("api_key"), str) and "${" not in raw[n]["api_key"]]
    return [f"{file}: providers.{n}.api_key is written in a file that other users can read"
            f" (mode {mode:04o}); run `chmod 600 {file}` or use api_key = \"${{VAR}}\""
            for n in literal]


# ---------------------------------------------------------------- saving


def save_setting(path: str | os.PathLike | None, key: str | Iterable[str], value: Any) -> Path:
    """Set one value (``None`` removes it) and rewrite the file, keeping comments and layout.

    ``key`` is dotted (``"ui.theme"``) or a sequence of parts (for names with dots,
    ``("ui", "saved_filters", "my.filter")``).  Tables are created as needed.
    ``[ui]`` and ``[engine]`` values are validated before anything is written.
    Returns the file written.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    file = config_path(path)
    parts = key.split(".") if isinstance(key, str) else list(key)
    if not parts or not all(parts):
        raise ConfigError(file, str(key), "empty key")
    try:
        text = file.read_text(encoding="utf-8") if file.exists() else ""
        doc = tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(file, None, f"TOML syntax error: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(file, None, f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
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
        _validate(SECTIONS[section], doc[section].unwrap(), str(file), [section])
    try:
        _write_atomic(file, tomlkit.dumps(doc))
    except OSError as exc:
        raise ConfigError(file, None, f"cannot write: {exc.strerror or type(exc).__name__}") from None
    return file


def _write_atomic(file: Path, text: str) -> None:
    file.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except OSError:
        mode = 0o600
    tmp = file.with_name(f".{file.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, file)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


# ---------------------------------------------------------------- `tasktui config check`


def cmd_check(args) -> int:
    """Validate the config: ``OK: ...`` and warnings, exit 0; or one error line, exit 2."""
    try:
        config = load_config(getattr(args, "config", None), must_exist=True)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 2
    names = [n if p.enabled else f"{n} [disabled]" for n, p in config.providers.items()]
    count = len(names)
    print(f"OK: {config.path}: {count} provider{'' if count == 1 else 's'} ({', '.join(names)})")
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    return 0
