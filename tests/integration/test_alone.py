"""The leave-one-in criterion ("alone", the default) on the embedded model: paraphrased answers
that the base criterion (mean+guard) labels below the truth get the truth, and copy-style answers
keep theirs."""

import pytest

from ifc_core import PermissivePropagator, Tolerance
from ifc_core.eval._hard import hard_cases
from ifc_core.eval._synthetic import synthetic_cases

pytestmark = pytest.mark.model

# seed 0: the paraphrase cases the base criterion labels below the truth (docs/eval/hard)
BELOW_WITH_THE_BASE = ("paraphrase-0", "paraphrase-3", "paraphrase-6")


def label(scorer, case, tolerance=None):
    prop = PermissivePropagator(scorer, tolerance=tolerance, lattice=case.lattice)
    return prop.label(case.query, case.documents, case.output, id=case.id)


def test_a_restated_value_keeps_the_label_of_the_only_document_that_supports_it(scorer):
    cases = [c for c in hard_cases("paraphrase", 7, seed=0) if c.id in BELOW_WITH_THE_BASE]
    assert len(cases) == 3
    for case in cases:
        base, alone = label(scorer, case, Tolerance()), label(scorer, case)
        assert not case.truth <= base.label, case.id  # what the mean and the 2-nat guard miss
        assert alone.label == case.truth, case.id
        assert alone.settings["criterion"] == "alone" and alone.fallback_reason is None


def test_copy_style_answers_are_labelled_as_with_the_default(scorer):
    for case in synthetic_cases(6, seed=0):
        alone = label(scorer, case)
        assert alone.label == case.truth == label(scorer, case, Tolerance()).label, case.id
