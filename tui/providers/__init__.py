"""Provider clients, one module per provider.  Import lazily by name.

The five seed providers are hand-written modules; every other provider is
declared (``tui.providers.declared``): a built-in catalogue entry
(``tui/providers/catalogue/*.toml``) or a ``[providers.NAME] type = "declared"``
table of the user's config.  This package's import stays light (no httpx):
the config reads the catalogue through it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ..model import PROVIDERS

if TYPE_CHECKING:
    from .base import Provider

_CLASSES = {
    "comfy": "Comfy",
    "upscayl": "Upscayl",
    "qolaba": "Qolaba",
    "freepik": "Freepik",
    "evolink": "Evolink",
}


def known_names() -> tuple[str, ...]:
    """The seed providers, then the catalogue's entries."""
    from .catalogue import catalogue_names

    return (*PROVIDERS, *(n for n in catalogue_names() if n not in PROVIDERS))


def provider_class(name: str, declaration: Any = None) -> type[Provider]:
    """The class of provider ``name``: ``declaration`` when given (a declared
    provider), else a seed provider's module, else a catalogue entry."""
    if declaration is not None:
        from .declared import declared_class

        return declared_class(name, declaration)
    if name in _CLASSES:
        module = importlib.import_module(f"{__name__}.{name}")
        return getattr(module, _CLASSES[name])
    from .catalogue import catalogue_names

    if name in catalogue_names():
        from .declared import catalogue_class

        return catalogue_class(name)
    raise KeyError(f"unknown provider {name!r}; known: {', '.join(known_names())}")


def make_provider(name: str, api_key: str, base_url: str | None = None, declaration: Any = None) -> Provider:
    return provider_class(name, declaration)(api_key, base_url)


def add_provider_parser(subparsers, parents=()) -> None:
    """``tasktui provider test NAME --sample FILE [--id ID] [--kind KIND] [--status N] [--json]``.

    Kept here, importing nothing heavy, so the CLI can build its parser without
    httpx or pydantic; the command is ``tui.providers.declared:cmd_provider_test``
    (the parsed arguments have ``command == "provider"``, ``provider_command == "test"``)."""
    provider = subparsers.add_parser("provider", parents=list(parents),
                                     help="check a provider's description against saved answers")
    sub = provider.add_subparsers(dest="provider_command", metavar="ACTION", required=True,
                                  help="what to do")
    test = sub.add_parser("test", parents=list(parents),
                          help="parse a saved status answer and print the task it yields",
                          description="Read a saved status answer (JSON) with provider NAME as the config"
                                      " describes it (one of the five, a catalogue entry or a declared"
                                      " provider) and print the task it yields and the declared paths that"
                                      " pointed nowhere.  No request is made.  Exit 0, or 2 with the error.")
    test.add_argument("name", metavar="NAME", help="provider name as in the config (or a catalogue entry)")
    test.add_argument("--sample", metavar="FILE", required=True, help="the saved answer: a JSON file, or - for stdin")
    test.add_argument("--id", default="sample-task", help="the task id to read it as (default: sample-task)")
    test.add_argument("--kind", default=None, help="the kind the task is polled on")
    test.add_argument("--status", type=int, default=200, help="the HTTP status it came with (default: 200)")
    test.add_argument("--json", action="store_true", help="print the task as JSON (the ls --json object)")
    test.set_defaults(func_path="tui.providers.declared:cmd_provider_test")
