"""Provider clients, one module per provider.  Import lazily by name."""

from __future__ import annotations

import importlib

from ..model import PROVIDERS
from .base import Provider

_CLASSES = {
    "comfy": "Comfy",
    "upscayl": "Upscayl",
    "qolaba": "Qolaba",
    "freepik": "Freepik",
    "evolink": "Evolink",
}


def provider_class(name: str) -> type[Provider]:
    if name not in _CLASSES:
        raise KeyError(f"unknown provider {name!r}; known: {', '.join(PROVIDERS)}")
    module = importlib.import_module(f"{__name__}.{name}")
    return getattr(module, _CLASSES[name])


def make_provider(name: str, api_key: str, base_url: str | None = None) -> Provider:
    return provider_class(name)(api_key, base_url)
