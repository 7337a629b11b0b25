"""Invented facts (the model cannot know them) for label tests on the real model."""

from ifc_core import Chain, LabelledSource, Product, Readers

CONF = Chain(["public", "internal", "confidential", "secret"])
READERS = Readers(["alice", "bob", "carol", "dave"])
PRODUCT = Product(conf=Chain(["public", "internal", "confidential"]), integrity=Chain(["trusted", "untrusted"]))

TEXTS = {
    "capital": "The capital of Freedonia is the city of Zelbrook.",
    "mayor": "The mayor of Zelbrook is Ilsa Varn.",
    "river": "The river Quell flows through the town of Osterby.",
    "salary": "Marta Lindqvist earns 84,000 kroner per month.",
    "launch": "Project Heron will launch on the 14th of May.",
    "recipe": "The secret sauce of Brambles Diner uses smoked plum and ginger.",
}

ONE_DOC = ("What is the capital of Freedonia?", "The capital of Freedonia is Zelbrook.")
TWO_DOCS = ("What is the capital of Freedonia, and who is its mayor?",
            "The capital of Freedonia is Zelbrook, and its mayor is Ilsa Varn.")


def docs(lattice, labels):
    """LabelledSources for {fact id: JSON label}, in the given order."""
    return [LabelledSource(k, TEXTS[k], lattice.label(v)) for k, v in labels.items()]
