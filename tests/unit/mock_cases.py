"""Shared pieces of the MockScorer tests: invented facts and score functions."""

from ifc_core import Chain, LabelledSource, MockScorer

CONF = Chain(["public", "internal", "confidential", "secret"])
TEXTS = {
    "capital": "The capital of Freedonia is the city of Zelbrook.",
    "launch": "Project Heron will launch on the 14th of May.",
    "salary": "Marta Lindqvist earns 84,000 kroner per month.",
}
QUESTION = "What is the capital of Freedonia?"
ANSWER = "The capital of Freedonia is Zelbrook."


def docs(labels):
    """LabelledSources for {fact id: level}, in the given order."""
    return [LabelledSource(k, TEXTS[k], CONF.label(v)) for k, v in labels.items()]


def query(level="public", text=QUESTION):
    return LabelledSource("q", text, CONF.label(level))


def needs(*words, seen=-0.1, unseen=-5.0):
    """Scores: the output is likely only when every word is in the context."""
    return lambda context, output: seen if all(w in context for w in words) else unseen


def answering(generated=None):
    """A reply function that answers from the capital document when it is shown, and records
    every context it was asked to continue."""
    seen = [] if generated is None else generated

    def reply(context):
        seen.append(context)
        return "Zelbrook is the capital." if "Zelbrook" in context else "I do not know."

    reply.contexts = seen  # type: ignore[attr-defined]
    return reply


def scorer(*words, **kw):
    return MockScorer(needs(*words), reply=answering(), **kw)
