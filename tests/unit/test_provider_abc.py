"""The provider base is an abstract class: what every provider must define is
checked when the class is made, not at its first poll (issue #14)."""

from __future__ import annotations

import inspect

import pytest

from tui.providers import base
from tui.providers.base import Provider


def test_a_provider_without_read_status_cannot_be_built():
    class Half(Provider):
        name = "half"
        default_base_url = "http://127.0.0.1:9"

        def status_request(self, task_id, kind=None):
            return self.request("GET", f"/t/{task_id}")

    with pytest.raises(TypeError, match="read_status"):
        Half("k")


def test_a_provider_without_status_request_cannot_be_built():
    class Half(Provider):
        name = "half"
        default_base_url = "http://127.0.0.1:9"

        def read_status(self, task_id, kind, data, response):
            return self.task(task_id, kind, state="running")

    with pytest.raises(TypeError, match="status_request"):
        Half("k")


def test_the_base_itself_cannot_be_built():
    with pytest.raises(TypeError):
        Provider("k", "http://127.0.0.1:9")


def test_a_list_claimed_without_its_methods_fails_at_class_creation():
    with pytest.raises(TypeError, match="has_list .*list_request, read_list"):
        class Lister(Provider):  # noqa: F841 - the class statement is the test
            name = "lister"
            has_list = True

            def status_request(self, task_id, kind=None):
                return self.request("GET", "/")

            def read_status(self, task_id, kind, data, response):
                return self.task(task_id, kind)


def test_a_balance_claimed_with_half_its_methods_fails_at_class_creation():
    with pytest.raises(TypeError, match="has_balance .*read_balance"):
        class Payer(Provider):  # noqa: F841
            name = "payer"
            has_balance = True

            def status_request(self, task_id, kind=None):
                return self.request("GET", "/")

            def read_status(self, task_id, kind, data, response):
                return self.task(task_id, kind)

            def balance_request(self):
                return self.request("GET", "/balance")


def test_the_five_and_every_catalogue_provider_still_build():
    from tui.providers import known_names, provider_class

    built = []
    for name in known_names():
        cls = provider_class(name)
        assert not inspect.isabstract(cls), name
        built.append(cls("k", cls.default_base_url or "http://127.0.0.1:9"))
    assert len(built) >= 5 + 10
    assert {p.name for p in built} >= {"comfy", "upscayl", "qolaba", "freepik", "evolink"}


def test_the_abstract_methods_are_exactly_the_two_every_provider_needs():
    assert Provider.__abstractmethods__ == frozenset({"status_request", "read_status"})
    assert base.Provider.__init_subclass__ is not object.__init_subclass__
