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
