"""The one vocabulary type shared by the five seed providers and the declared
ones: how words are compared, what a bad vocabulary says, and that every
provider reads an unlisted word as ``unknown`` with a hint naming it."""

from __future__ import annotations

import httpx
import pytest

from tui.model import FAILED, QUEUED, RUNNING, SUCCEEDED, UNKNOWN
from tui.providers import make_provider
from tui.providers.catalogue import catalogue_names
from tui.providers.vocabulary import Vocabulary, VocabularyError, normal

SEEDS = ("comfy", "evolink", "freepik", "qolaba", "upscayl")


@pytest.mark.parametrize("word,expected", [
    ("IN_PROGRESS", "in_progress"), ("in progress", "in_progress"), ("In-Progress", "in_progress"),
    ("  done ", "done"), ("processing_failed", "processing_failed"), ("a  -_ b", "a_b"), ("", ""),
    ("_x_", "x"),
])
def test_normal_form(word, expected):
    assert normal(word) == expected


def test_lookup_ignores_case_and_separator_spelling():
    v = Vocabulary({RUNNING: ["IN_PROGRESS"], SUCCEEDED: ["completed"]})
    assert v.state("in progress") == v.state("In-Progress") == v.state("IN_PROGRESS") == RUNNING
    assert v.state("COMPLETED") == SUCCEEDED
    assert v.state("paused") == v.state(None) == v.state("") == UNKNOWN
    assert "Completed" in v and "paused" not in v and None not in v


@pytest.mark.parametrize("states,message", [
    ({"finished": ["done"]}, "unknown state 'finished'"),
    ({"succeded": ["done"]}, "did you mean 'succeeded'"),
    ({SUCCEEDED: ["  "]}, "empty word"),
    ({SUCCEEDED: ["DONE"], FAILED: ["done"]}, "'done' is in both succeeded and failed"),
    ({SUCCEEDED: ["in progress"], RUNNING: ["IN_PROGRESS"]}, "is in both"),
    ({}, "maps no word"),
    ({UNKNOWN: ["x"]}, "unknown state 'unknown'"),
])
def test_bad_vocabularies_say_why(states, message):
    with pytest.raises(VocabularyError, match=message):
        Vocabulary(states)


def test_unlisted_word_hint_names_the_word_and_the_fix():
    v = Vocabulary({QUEUED: ["queued"]})
    assert v.unlisted("acme", "QUEUED") is None and v.details("acme", "queued") == {} and v.details("acme", None) == {}
    hint = v.unlisted("acme", "Paused", "add it to [providers.acme.states]")
    assert "'Paused'" in hint and "acme's vocabulary" in hint and hint.endswith("add it to [providers.acme.states]")
    assert v.details("acme", "Paused")["hint"].startswith("'Paused' is not in acme's vocabulary")


@pytest.mark.parametrize("name", SEEDS + tuple(catalogue_names()))
def test_every_provider_has_a_vocabulary(name):
    cls = type(make_provider(name, "k", "https://api.example.test"))
    assert isinstance(cls.vocabulary, Vocabulary)
    assert SUCCEEDED in cls.vocabulary.states  # every API says when a task ended well (veo fails by its error field)


# One answer per seed provider, in its published shape, with the status word
# replaced by one the provider does not document: the task is unknown, keeps the
# word, and says why in its details (it is polled on).  Shapes: comfy
# comfy_api_nodes apis/magnific TaskResponse {data:{task_id,status,generated}};
# evolink seeds/evolink task object; freepik docs.freepik.com GET task
# {data:{task_id,status,generated}}; qolaba seeds/qolaba {task_id,status,output};
# upscayl openapi.yaml GET /get-task-status {data:{status,files}}.
UNLISTED = {
    "comfy": {"data": {"task_id": "t1", "status": "PAUSED", "generated": []}},
    "evolink": {"id": "t1", "object": "video.generation.task", "status": "paused", "progress": 10, "results": []},
    "freepik": {"data": {"task_id": "t1", "status": "PAUSED", "generated": []}},
    "qolaba": {"task_id": "t1", "status": "PAUSED", "output": None},
    "upscayl": {"data": {"status": "PAUSED", "files": []}},
}


@pytest.mark.parametrize("name", SEEDS)
def test_seed_provider_reads_an_unlisted_word_as_unknown_with_a_hint(name):
    provider = make_provider(name, "k", "https://api.example.test")
    task = provider.parse_status("t1", None, httpx.Response(200, json=UNLISTED[name]))
    assert task.state == UNKNOWN and task.provider_status.lower() == "paused"
    assert f"not in {name}'s vocabulary" in task.details["hint"] and "polled on" in task.details["hint"]


@pytest.mark.parametrize("name,word,state", [
    ("comfy", "task_status: In Progress", None),  # not a word: stays unknown (guard for the normal form)
    ("freepik", "in progress", RUNNING), ("freepik", "IN_PROGRESS", RUNNING), ("comfy", "IN_PROGRESS", RUNNING),
    ("qolaba", "success", SUCCEEDED), ("upscayl", "processing failed", FAILED), ("evolink", "Completed", SUCCEEDED),
])
def test_seed_words_are_read_in_any_case_and_separator_spelling(name, word, state):
    cls = type(make_provider(name, "k", "https://api.example.test"))
    assert cls.vocabulary.state(word) == (state or UNKNOWN)
