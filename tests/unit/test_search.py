"""Pure logic of the label search: candidates, lower covers, the tolerance test."""

import math
import re
from dataclasses import replace

import numpy as np
import pytest

from ifc_core import Chain, IFCError, LabelledSource, PermissivePropagator, Readers, ScoringError, Tags, Tolerance
from ifc_core.scoring import MockScorer
from ifc_core._prompt import ChatPrompt
from ifc_core._content import words_of
from ifc_core._tolerance import DEFAULT_CRITERION, AloneGains, token_view
from ifc_core._search import candidate_labels, lower_covers
from ifc_core.eval._hard_eval import ReferencePropagator

CONF = Chain(["public", "internal", "confidential", "secret"])


def test_chain_candidates_are_bottom_and_levels_present():
    cands = candidate_labels(CONF, [CONF.label("secret"), CONF.label("internal"), CONF.label("internal")])
    assert [c.to_json() for c in cands] == ["public", "internal", "secret"]
    assert lower_covers(CONF.label("secret"), cands) == [CONF.label("internal")]
    assert lower_covers(CONF.label("public"), cands) == []


def test_readers_candidates_are_the_join_closure():
    r = Readers(["a", "b", "c"])
    cands = candidate_labels(r, [r.label(["a", "b"]), r.label(["b", "c"])])
    assert {tuple(c.to_json()) for c in cands} == {("a", "b", "c"), ("a", "b"), ("b", "c"), ("b",)}
    covers = lower_covers(r.label(["b"]), cands)
    assert {tuple(c.to_json()) for c in covers} == {("a", "b"), ("b", "c")}


def test_candidate_explosion_is_refused():
    t = Tags([f"t{i}" for i in range(14)])
    with pytest.raises(IFCError, match="max_candidates"):
        candidate_labels(t, [t.label([f"t{i}"]) for i in range(14)], limit=1000)


def test_tolerance_mean_and_per_token():
    tol = Tolerance(lam=0.2, max_token_increase=2.0)
    root = np.array([-0.1, -0.1, -0.1, -0.1])
    assert tol.compare(root, root)[0]
    small = root - math.log1p(0.2) * 0.9
    assert tol.compare(root, small)[0]
    assert not tol.compare(root, root - math.log1p(0.2) * 1.1)[0]
    one_token = root.copy()
    one_token[2] -= 2.5  # the mean rises by only 0.625 nats, one token by 2.5
    ok, mean, worst = Tolerance(lam=10.0, max_token_increase=2.0).compare(root, one_token)
    assert not ok and worst == pytest.approx(2.5)
    assert Tolerance(lam=10.0, max_token_increase=None).compare(root, one_token)[0]
    with pytest.raises(ValueError, match="lam"):
        Tolerance(lam=float("nan"))


# --- search_label with fake scores -------------------------------------------------------------

from ifc_core import LabelledSource  # noqa: E402
from ifc_core._inputs import DecisionInputs  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from ifc_core._search import (  # noqa: E402
    CRITERIA, SearchBudget, SearchBudgetError, TokenView, exhaustive_label, search_label)
from ifc_core._tolerance import AloneGuard, ContentCopyGuard, ContentGuard, CopyGuard, content_mask  # noqa: E402

TAGS4 = Tags(["a", "b", "c", "d"])


def _tag_inputs():
    docs = [LabelledSource(t, f"doc {t}", TAGS4.label([t])) for t in "abcd"]
    return DecisionInputs(LabelledSource("q", "?", TAGS4.bottom), docs, TAGS4), docs


def _fake(passing: dict[frozenset[str], float], fail: float = -5.0):
    """score(sets): two-token outputs; a set in `passing` gets that log-prob per token."""
    calls: list[frozenset[str]] = []

    def score(sets):
        calls.extend(sets)
        return [np.full(2, passing.get(s, fail)) for s in sets]

    return score, calls


def test_search_returns_no_label_with_a_passing_label_below_it():
    # {a,b,c} passes but none of its lower covers do (noise), so the walk stops there; another path
    # ({a,b,d} -> {a,d} -> {a}) reaches {a}, the true minimum. {a,b,c} scores better than {a}, so
    # a lowest-score choice among "minimal" labels that include it would return a non-minimal label.
    inputs, docs = _tag_inputs()
    s = lambda *ids: frozenset(ids)  # noqa: E731
    passing = {s("a", "b", "c", "d"): -1.0, s("a", "b", "c"): -0.9, s("a", "b", "d"): -1.0,
               s("a", "d"): -1.0, s("a"): -1.1}
    score, _ = _fake(passing)
    label, admitted, cands = search_label(inputs, docs, score, Tolerance(lam=0.5), 4096)
    assert label == TAGS4.label(["a"]) and admitted == ["a"]
    passed = [TAGS4.label(c.label) for c in cands if c.similar]
    assert not any(p < label for p in passed)


def test_exhaustive_reference_finds_the_minimum_the_walk_cannot_reach():
    # {a,b,c,d} passes, every cover fails, {a} passes: the walk stops at the root, the reference does not
    inputs, docs = _tag_inputs()
    score, _ = _fake({frozenset("abcd"): -1.0, frozenset("a"): -1.0})
    assert search_label(inputs, docs, score, Tolerance(), 4096)[0] == TAGS4.top
    label, admitted, cands = exhaustive_label(inputs, docs, score, Tolerance())
    assert label == TAGS4.label(["a"]) and admitted == ["a"] and len(cands) == 16


def test_budget_exhaustion_raises_with_the_reason():
    inputs, docs = _tag_inputs()
    score, calls = _fake({frozenset("abcd"): -1.0})
    with pytest.raises(SearchBudgetError, match="more than 3 scored contexts"):
        search_label(inputs, docs, score, Tolerance(), budget=SearchBudget(max_scored=3))
    assert len(calls) == 1  # only the root was scored before the budget said no
    with pytest.raises(SearchBudgetError, match="candidate labels"):
        search_label(inputs, docs, score, Tolerance(), budget=SearchBudget(max_candidates=8))
    clock = iter([0.0, 0.0, 0.0, 99.0, 99.0, 99.0])

    def slow(sets):
        return [np.full(2, -1.0) for _ in sets]

    import ifc_core._search as search_module
    real = search_module.time.perf_counter
    search_module.time.perf_counter = lambda: next(clock, 99.0)
    try:
        with pytest.raises(SearchBudgetError, match="took over 5 s"):
            search_label(inputs, docs, slow, Tolerance(), budget=SearchBudget(seconds=5))
    finally:
        search_module.time.perf_counter = real
    with pytest.raises(ValueError, match="max_scored"):
        SearchBudget(max_scored=0)


def test_budget_falls_back_to_the_conservative_label_in_a_propagator():
    from ifc_core import PermissivePropagator

    class Run:
        output_ids = (1, 2)
        passes = tokens = 0

        def score(self, prompts):
            return [np.full(2, -1.0) for _ in prompts]

    class Scorer:
        model_id = "fake"

        def run(self, ids):
            return Run()

        def encode(self, text):
            return (1, 2)

        def decode(self, ids):
            return "x"

    class Prompt:
        def build(self, query, docs):
            from ifc_core import Prompt as P
            return P(tuple(range(len(docs) + 1)), {d.id: (i, i + 1) for i, d in enumerate(docs)})

    _, docs = _tag_inputs()
    prop = PermissivePropagator(Scorer(), prompt=Prompt(), lattice=TAGS4, budget=SearchBudget(max_scored=2))
    d = prop.label(LabelledSource("q", "?", TAGS4.bottom), docs, "x")
    assert d.label == TAGS4.top and "SearchBudgetError" in d.fallback_reason and d.settings["budget"]["max_scored"] == 2
    free = PermissivePropagator(Scorer(), prompt=Prompt(), lattice=TAGS4).label(
        LabelledSource("q", "?", TAGS4.bottom), docs, "x")
    assert free.fallback_reason is None and free.label == TAGS4.bottom


@settings(max_examples=40, deadline=None)
@given(st.lists(st.sets(st.sampled_from("abcde"), min_size=1), min_size=1, max_size=6))
def test_fast_closure_and_covers_match_the_definitions(sets):
    t = Tags(list("abcde"))
    present = [t.label(sorted(s)) for s in sets]
    cands = candidate_labels(t, present)
    naive = {t.bottom, *present}
    while True:
        more = {a.join(b) for a in naive for b in naive} - naive
        if not more:
            break
        naive |= more
    assert set(cands) == naive
    for lab in cands:
        below = [c for c in cands if c < lab]
        assert set(lower_covers(lab, cands)) == {c for c in below if not any(c < d for d in below)}


def test_content_tokens_are_numbers_names_and_number_words():
    pieces = ("The", " door", " code", " of", " Zel", "brook", " is", " forty", "-", "two", " 48", "21", ".")
    mask = content_mask(pieces)
    assert [p for p, m in zip(pieces, mask) if m] == [" Zel", "brook", " forty", "-", "two", " 48", "21"]


def test_content_words_are_read_in_any_script_and_never_skipped_when_unreadable():
    # names that start with a non-ASCII letter, caseless scripts, and a character split across
    # tokens (decoded alone as U+FFFD) are content: the leave-one-in test must look at them
    pieces = (" by", " Élodie", " and", " Øresund", ",", " 東京", " in", " Ł", "\ufffd", "\ufffd", "dź", " today")
    mask = content_mask(pieces)
    assert [p for p, m in zip(pieces, mask) if m] == [" Élodie", " Øresund", " 東京", " Ł", "\ufffd", "\ufffd", "dź"]
    # every part of a compound is read, any caseless letter counts, and number words include
    # ordinals and plurals
    pieces = (" mid", "-", "March", " ex", "-", "Google", " iPhone", "的主人是张三", " the", " fourteenth",
              " hundreds", " days", " \ufffd", "\ufffd")
    mask = content_mask(pieces)
    assert [p for p, m in zip(pieces, mask) if not m] == [" the", " days"]
    # an undecodable piece is never excused, whatever the question shows
    view = TokenView((1, 2), (" \ufffd", "\ufffd"), {}, query_words=words_of("\ufffd\ufffd?"))
    assert view.new_content().all()


def test_a_span_keeps_the_masks_of_the_whole_output():
    view = TokenView((1, 2, 3), (" Pa", "ris", " today"), {}).with_masks()
    span = view.sliced(np.array([1]))
    assert span.pieces == ("ris",) and span.content().tolist() == [True] and span.new_content().tolist() == [True]
    assert content_mask(("ris",)).tolist() == [False]  # read alone, the cut word would not be content


def test_content_guard_ignores_style_tokens_and_copy_guard_catches_copied_values():
    view = TokenView((10, 11, 12), (" keep", " the", " 4821"), {"d1": frozenset({12}), "d2": frozenset({10})},
                     frozenset({11}))
    root = np.array([-0.5, -0.5, -0.5])
    style = root - np.array([3.0, 0.0, 0.0])  # "keep" up 3 nats: mean +1.0
    assert not Tolerance(lam=2.0).compare(root, style, view.for_withheld(frozenset({"d2"})))[0]
    assert ContentGuard(lam=2.0).compare(root, style, view.for_withheld(frozenset({"d2"})))[0]
    assert not ContentGuard(lam=2.0).compare(root, style)[0]  # no view: the default criterion
    value = root - np.array([0.0, 0.0, 1.2])  # the copied value up 1.2 nats: under the 2-nat guard
    assert Tolerance().compare(root, value, view.for_withheld(frozenset({"d1"})))[0]
    assert not CopyGuard().compare(root, value, view.for_withheld(frozenset({"d1"})))[0]
    assert CopyGuard().compare(root, value, view.for_withheld(frozenset({"d2"})))[0]  # d2 does not hold it
    assert Tolerance.named("content+copy", 0.2).settings == {"criterion": "content+copy", "lam": 0.2,
                                                             "max_token_increase": 2.0}
    with pytest.raises(ValueError, match="criterion"):
        Tolerance.named("nope")
    assert set(CRITERIA) == {"mean+guard", "content", "copy", "content+copy", "alone"}


def _gains(each, asked=None):
    """`AloneGains` whose scores are `each[d]` for a document alone and zeros for none; `asked`
    records every set scored."""
    def score(sets):
        if asked is not None:
            asked.extend(sets)
        return [np.array(each[next(iter(s))]) if s else np.zeros(3) for s in sets]
    return AloneGains(score, list(each))


def test_alone_guard_refuses_to_withhold_the_only_document_that_supports_a_content_token():
    # " four" restates d1's "4417": no token copied, and its score moves by only 1.2 nats when d1
    # is withheld, under the guard; shown alone, d1 raises it by 2.5 nats and nothing else does
    asked = []
    view = TokenView((10, 11, 12), (" code", " is", " four"), {"d1": frozenset({20}), "d2": frozenset({21})},
                     frozenset({10, 11}), alone=_gains({"d1": [0.1, 0.0, 2.5], "d2": [0.2, 0.1, 0.3]}, asked))
    root = np.array([-0.5, -0.5, -0.5])
    value = root - np.array([0.0, 0.0, 1.2])
    assert Tolerance().compare(root, value, view.for_withheld(frozenset({"d1"})))[0]
    assert asked == []  # the base test never asks for the gains
    assert AloneGuard().compare(root, value, view.for_withheld(frozenset({"d2"})))[0]  # d2 does not support it
    assert asked == [frozenset(), frozenset({"d2"})]  # lazily: none and the withheld d2 only, not the shown d1
    assert not AloneGuard().compare(root, value, view.for_withheld(frozenset({"d1"})))[0]
    assert sorted(asked, key=sorted) == [frozenset(), frozenset({"d1"}), frozenset({"d2"})]  # each scored once
    both = replace(view, alone=_gains({"d1": [0.0, 0.0, 2.5], "d2": [0.0, 0.0, 2.0]}))
    assert AloneGuard().compare(root, value, both.for_withheld(frozenset({"d1"})))[0]  # d2, shown, supports it too
    assert not AloneGuard().compare(root, value, both.for_withheld(frozenset({"d1", "d2"})))[0]  # not when withheld
    listed = replace(view, query_words=frozenset({"four"}))  # a number word in the question excuses nothing
    assert not AloneGuard().compare(root, value, listed.for_withheld(frozenset({"d1"})))[0]
    named = replace(view, pieces=(" code", " is", " Zelbrook"), query_words=frozenset({"zelbrook"}))
    assert AloneGuard().compare(root, value, named.for_withheld(frozenset({"d1"})))[0]  # the question names it
    assert AloneGuard().compare(root, value, replace(view, alone=None).for_withheld(frozenset({"d1"})))[0]  # no gains
    assert not AloneGuard(lam=0.5).compare(root, root - 3.0, view)[0]  # and the default test first
    span = replace(view, output_ids=(12,), pieces=(" four",), alone=view.alone.sliced(np.array([2])))
    assert Tolerance(lam=3.0).compare(root[2:], value[2:], span.for_withheld(frozenset({"d1"})))[0]
    assert not AloneGuard(lam=3.0).compare(root[2:], value[2:], span.for_withheld(frozenset({"d1"})))[0]  # a span
    with pytest.raises(ValueError, match="alone_gain"):
        AloneGuard(alone_gain=-1)
    broken = AloneGains(lambda sets: [np.full(3, np.nan) for _ in sets], ["d1"])
    with pytest.raises(ScoringError, match="non-finite"):
        broken.of(["d1"])


def test_only_whole_words_of_the_question_excuse_a_content_word():
    # SmolLM2 writes digits one token each: "412" in the question ("lab 412") excuses "412", not the 4s of "4417"
    pieces = (" The", " code", " is", " ", "4", "4", "1", "7", ",", " lab", " ", "4", "1", "2", ".")
    view = TokenView(tuple(range(len(pieces))), pieces, {}, query_words=words_of("What is the code of lab 412, Ana?"))
    assert view.new_content().tolist() == [False, False, False, False, True, True, True, True, False, False, False,
                                           False, False, False, False]
    assert words_of("It costs 4,417 kr.") == {"it", "costs", "4,417", "kr"}
    # numbers are whole with their separators: a date or "4, 417" in the question excuses neither
    # part of another number; one- and two-digit numbers and number words are never excused
    for question, output in (("Was it 2024-03-10?", " 2024-03-05"), ("Lab 4, room 417?", " 4,417"),
                             ("zero one two three four five six seven eight nine", " four four one seven"),
                             ("0 1 2 3 4 5 6 7 8 9 10 11 12", " 4 4 1 7"), ("Code 417?", " 417-9")):
        pieces = tuple(re.findall(r"\s?[^\s,-]+|[,-]", output))
        view = TokenView(tuple(range(len(pieces))), pieces, {}, query_words=words_of(question))
        assert view.new_content().all(), (question, pieces)
    same = TokenView((0, 1), (" 2024", "-03-05"), {}, query_words=words_of("What was on 2024-03-05?"))
    assert not same.new_content().any()  # the whole date, shown by the question


def test_token_view_takes_the_question_words_from_the_question_only():
    scorer = MockScorer(lambda c, o: -0.1)
    docs = [LabelledSource("d1", "The code is 4417.", CONF.label("secret"))]
    view = token_view(ChatPrompt(scorer), scorer.decode, "Lab 9?", docs, ())
    assert view.query_words == {"lab", "9"}  # the question's words only: not the template's, not a document's


def test_alone_is_the_default_criterion_of_the_permissive_propagator():
    assert DEFAULT_CRITERION == "alone"
    scorer = MockScorer(lambda context, output: -0.1)
    assert PermissivePropagator(scorer).tolerance == AloneGuard()
    assert PermissivePropagator(scorer, tolerance=0.2).tolerance == AloneGuard(lam=0.2)
    assert type(PermissivePropagator(scorer, tolerance=Tolerance()).tolerance) is Tolerance  # asked for


def test_a_withheld_document_that_improves_the_score_is_noted():
    inputs, docs = _tag_inputs()
    view = TokenView((7, 8), (" Zelbrook", "."), {"a": frozenset({7}), "b": frozenset(), "c": frozenset(),
                                                  "d": frozenset()})
    score, _ = _fake({frozenset("abcd"): -1.0, frozenset("bcd"): -0.5, frozenset("bc"): -0.5,
                      frozenset("bd"): -0.5, frozenset("cd"): -0.5, frozenset("b"): -0.5})
    notes: list[str] = []
    search_label(inputs, docs, score, Tolerance(), view=view, notes=notes)
    assert len(notes) == 1 and "scorer limit" in notes[0] and "['a']" in notes[0]


def test_a_stricter_criterion_never_ends_below_the_base_criterions_label():
    # tags a, b (incomparable): the output restates A's code in words; B (an attacker's) lists the
    # same number words. Shown alone, B raises " seven" and A barely does, so "alone" fails {a}
    # (it withholds B, the only support of " seven") and would choose {b}, dropping tag a, where
    # mean+guard chooses {a}. The search joins the two.
    tags = Tags(["a", "b"])
    words = ("four", "one", "seven")

    def scores(context, output):
        a, b = "4417" in context, "Lucky" in context
        out = []
        for t in re.findall(r"\s+|\S+", output):  # MockScorer's tokens
            if t not in words:
                out.append(-0.2)
            elif a and b:
                out.append(-0.5)
            elif a:
                out.append(-1.5 if t == "seven" else -0.5)
            elif b:
                out.append(-1.0)
            else:
                out.append(-3.0 if t == "seven" else -4.0)
        return out

    docs = [LabelledSource("A", "The vault code is 4417.", tags.label(["a"])),
            LabelledSource("B", "Lucky words: four one seven.", tags.label(["b"]))]
    output = "The code is four four one seven"
    for query_tags, truth in (([], ["a"]), (["b"], ["a", "b"])):
        q = LabelledSource("q", "What is the vault code?", tags.label(query_tags))
        base = PermissivePropagator(MockScorer(scores), tolerance=Tolerance()).label(q, docs, output)
        alone = PermissivePropagator(MockScorer(scores)).label(q, docs, output)
        assert base.label == tags.label(truth)
        assert base.label <= alone.label == q.label.join(tags.label(["a", "b"]))
        assert any("their join" in n for n in alone.notes) and alone.admitted == ["A", "B"]
        reference = ReferencePropagator(MockScorer(scores)).label(q, docs, output)  # the eval's achievable line
        assert reference.label == alone.label


def test_every_criterion_that_only_adds_tests_names_the_one_it_adds_them_to():
    assert AloneGuard(lam=0.2, max_token_increase=None).base() == Tolerance(0.2, None)
    assert CopyGuard(lam=0.2).base() == Tolerance(0.2)
    assert ContentCopyGuard(lam=0.2).base() == ContentGuard(0.2)
    assert Tolerance().base() is None and ContentGuard().base() is None  # content relaxes the guard
    with pytest.raises(ValueError, match=r"Tolerance.named\('alone'\)"):
        PermissivePropagator(MockScorer(lambda c, o: -0.1), tolerance="alone")


def test_leave_one_in_contexts_are_scored_in_chunks_within_the_time_budget():
    asked: list[int] = []

    def score(sets):
        asked.append(len(sets))
        return [np.zeros(2) for _ in sets]

    ticks: list[int] = []
    gains = AloneGains(score, [f"d{i}" for i in range(20)]).checked(lambda: ticks.append(1))
    assert len(gains.of(gains.ids)) == 20
    assert asked == [8, 8, 5] and len(ticks) == 3  # 21 contexts (20 alone, one with none)

    def late():
        raise IFCError("over time")

    with pytest.raises(IFCError, match="over time"):
        AloneGains(score, ["a", "b"]).checked(late).of(["a"])


def test_the_search_stops_between_chunks_of_leave_one_in_contexts_when_over_time():
    import time

    docs = [LabelledSource(f"d{i}", f"doc {i}", CONF.label("secret")) for i in range(20)]
    inputs = DecisionInputs(LabelledSource("q", "?", CONF.bottom), docs, CONF)
    chunks: list[int] = []

    def alone(sets):
        chunks.append(len(sets))
        time.sleep(0.3)
        return [np.zeros(2) for _ in sets]

    view = TokenView((1, 2), (" Code", " 4417"), {d.id: frozenset() for d in docs},
                     alone=AloneGains(alone, [d.id for d in docs]))
    score, _ = _fake({})  # every context scores alike: the candidate withholding all passes the base test
    with pytest.raises(SearchBudgetError, match="took over 0.4 s"):
        search_label(inputs, docs, score, AloneGuard(), view=view, budget=SearchBudget(seconds=0.4))
    assert chunks == [8, 8]  # 21 contexts: stopped after the second chunk, the third never scored


def test_the_base_criterions_walk_that_runs_out_says_so():
    inputs, docs = _tag_inputs()
    score, _ = _fake({frozenset("abcd"): -1.0, frozenset("bcd"): -1.0, frozenset("acd"): -1.0,
                      frozenset("abd"): -1.0, frozenset("abc"): -1.0})

    class Strict(AloneGuard):  # fails every candidate below the root: the base walk goes further
        def _holds(self, root, candidate, view):
            return False

    view = TokenView((1, 2), (" x", " y"), {d.id: frozenset() for d in docs})
    with pytest.raises(SearchBudgetError, match="check against the mean\\+guard criterion"):
        search_label(inputs, docs, score, Strict(), view=view, budget=SearchBudget(max_scored=5))


def test_copy_criteria_are_joined_with_their_base_in_the_walk_and_in_the_reference():
    # tags a, b: mean+guard chooses {a} (the better score); a copy test that fails withholding B
    # would choose {b}, dropping tag a. Both the walk and the exhaustive reference join the two.
    tags = Tags(["a", "b"])
    docs = [LabelledSource("A", "doc A", tags.label(["a"])), LabelledSource("B", "doc B", tags.label(["b"]))]
    inputs = DecisionInputs(LabelledSource("q", "?", tags.bottom), docs, tags)
    score, _ = _fake({frozenset("AB"): -1.0, frozenset("A"): -1.0, frozenset("B"): -1.2})
    view = TokenView((1, 2), (" x", " y"), {"A": frozenset(), "B": frozenset()})

    class KeepB(CopyGuard):
        def _holds(self, root, candidate, v):
            return "B" not in v.withheld

    class KeepBContent(ContentCopyGuard):
        def _holds(self, root, candidate, v):
            return "B" not in v.withheld

    assert search_label(inputs, docs, score, Tolerance(), view=view)[0] == tags.label(["a"])
    for crit in (KeepB(), KeepBContent()):
        notes: list[str] = []
        assert search_label(inputs, docs, score, crit, view=view, notes=notes)[0] == tags.label(["a", "b"])
        assert any("their join" in n for n in notes)
        assert exhaustive_label(inputs, docs, score, crit, view=view)[0] == tags.label(["a", "b"])
