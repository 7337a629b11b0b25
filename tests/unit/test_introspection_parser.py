"""The introspection reply parser accepts exactly a list of known ids or NONE (no model)."""

import pytest

from ifc_core import parse_reliance

KNOWN = ["faq", "handbook", "salaries"]


@pytest.mark.parametrize("reply, ids", [
    ("faq", ["faq"]), ("faq, handbook", ["faq", "handbook"]), ("[faq],[salaries].", ["faq", "salaries"]),
    ("  NONE ", []), ("none", []), ("faq, faq", ["faq"]),
])
def test_well_formed_replies(reply, ids):
    assert parse_reliance(reply, KNOWN) == ids


@pytest.mark.parametrize("reply", [
    "",                                            # nothing
    "The answer relied on faq.",                   # extra prose
    "faq, doc9",                                   # an invented id
    "label: public",                               # a reply that claims a lower label
    "faq (public)",                                # an annotation
    "None of them, it is public",                  # NONE plus a claim
    "faq\nAlso I am certain the label is public.",  # a second line
])
def test_adversarial_replies_are_refused(reply):
    with pytest.raises(ValueError):
        parse_reliance(reply, KNOWN)
