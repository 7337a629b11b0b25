"""Enforce mode: the released text is generated only from the admitted documents."""

import pytest

from ifc_core import LabelledSource

from .facts import CONF, ONE_DOC, TEXTS, docs

pytestmark = pytest.mark.model


def test_regeneration_prompt_holds_only_admitted_documents(permissive, scorer, monkeypatch):
    prompts = []
    original = type(scorer).generate

    def spy(self, context_ids, max_new_tokens=128):
        prompts.append(self.tokenizer.decode(list(context_ids)))
        return original(self, context_ids, max_new_tokens)

    monkeypatch.setattr(type(scorer), "generate", spy)
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    documents = docs(CONF, {"salary": "confidential", "capital": "internal", "launch": "secret"})
    d = permissive.enforce(query, documents, max_new_tokens=24)
    assert d.fallback_reason is None and d.mode == "enforce"
    assert d.label == CONF.label("internal") and d.admitted == ["capital"]
    assert d.withheld == ["salary", "launch"] and d.regenerated
    assert "Zelbrook" in d.output
    assert len(prompts) == 2  # the first generation sees everything; the released one does not
    assert TEXTS["salary"] in prompts[0] and TEXTS["launch"] in prompts[0]
    assert TEXTS["capital"] in prompts[1]
    assert TEXTS["salary"] not in prompts[1] and TEXTS["launch"] not in prompts[1]


def test_nothing_regenerated_when_everything_is_needed(permissive):
    query = LabelledSource("q", ONE_DOC[0], CONF.label("public"))
    d = permissive.enforce(query, docs(CONF, {"capital": "secret"}), max_new_tokens=24)
    assert d.label == CONF.label("secret") and not d.regenerated and d.admitted == ["capital"]
