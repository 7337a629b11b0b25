"""Lattice laws (property-based) and the JSON forms of labels and specifications."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ifc_core import Chain, LatticeError, Product, Readers, Tags, UnknownElementError, lattice_from_spec

CONF = Chain(["public", "internal", "confidential", "secret"])
READERS = Readers(["alice", "bob", "carol", "dave"])
TAGS = Tags(["hr", "pii", "finance"])
PRODUCT = Product(conf=CONF, integrity=Chain(["trusted", "untrusted"]), readers=READERS)


def labels_of(lattice):
    if isinstance(lattice, Chain):
        return st.sampled_from(lattice.levels).map(lattice.label)
    if isinstance(lattice, (Readers, Tags)):
        return st.sets(st.sampled_from(lattice.atoms)).map(lambda s: lattice.label(sorted(s)))
    return st.fixed_dictionaries(
        {n: labels_of(c).map(lambda lab: lab.to_json()) for n, c in lattice.components.items()}
    ).map(lattice.label)


LATTICES = [CONF, READERS, TAGS, PRODUCT]
triples = st.sampled_from(LATTICES).flatmap(lambda l: st.tuples(labels_of(l), labels_of(l), labels_of(l)))


@settings(max_examples=300, deadline=None)
@given(triples)
def test_lattice_laws(abc):
    a, b, c = abc
    assert (a | b) | c == a | (b | c) and (a & b) & c == a & (b & c)  # associativity
    assert a | b == b | a and a & b == b & a  # commutativity
    assert a | a == a and a & a == a  # idempotence
    assert a | (a & b) == a and a & (a | b) == a  # absorption
    assert (a <= b) == (a | b == b) == (a & b == a)  # order consistent with join and meet
    assert a.lattice.bottom <= a <= a.lattice.top
    assert a <= a | b and b <= a | b
    if a < b:
        assert a.lattice.rank(a) < a.lattice.rank(b)


@settings(max_examples=100, deadline=None)
@given(triples)
def test_json_round_trip(abc):
    a = abc[0]
    spec = json.loads(json.dumps(a.lattice.spec()))
    lattice = lattice_from_spec(spec)
    assert lattice == a.lattice
    assert lattice.label(json.loads(json.dumps(a.to_json()))) == a


def test_orders_of_the_builtin_lattices():
    assert CONF.label("internal") < CONF.label("secret")
    r = READERS.label
    assert r(["alice", "bob"]) | r(["bob", "carol"]) == r(["bob"])  # join is intersection
    assert r(["alice", "bob", "carol"]) <= r(["alice"])  # fewer readers is higher
    assert READERS.bottom == r(["alice", "bob", "carol", "dave"]) and READERS.top == r([])
    assert TAGS.label(["hr"]) | TAGS.label(["pii"]) == TAGS.label(["hr", "pii"])
    p = PRODUCT.label({"conf": "internal", "integrity": "untrusted", "readers": ["alice"]})
    q = PRODUCT.label({"conf": "secret", "integrity": "trusted", "readers": ["alice", "bob"]})
    assert not p <= q and not q <= p
    assert (p | q).to_json() == {"conf": "secret", "integrity": "untrusted", "readers": ["alice"]}


@pytest.mark.parametrize(
    "lattice, value, name",
    [(CONF, "top-secret", "top-secret"), (READERS, ["mallory"], "mallory"), (TAGS, ["hr", "ops"], "ops"),
     (PRODUCT, {"conf": "public", "integrity": "trusted", "readers": [], "extra": "x"}, "extra")],
)
def test_unknown_elements_are_named(lattice, value, name):
    with pytest.raises(UnknownElementError, match=repr(name)):
        lattice.label(value)


def test_wrong_shapes_and_missing_components():
    with pytest.raises(LatticeError, match="one level name"):
        CONF.label(["public"])
    with pytest.raises(LatticeError, match="list of principals"):
        READERS.label("alice")
    with pytest.raises(LatticeError, match=r"missing component\(s\) \['readers'\]"):
        PRODUCT.label({"conf": "public", "integrity": "trusted"})


def test_labels_of_different_lattices_do_not_mix():
    with pytest.raises(LatticeError, match="different lattices"):
        CONF.label("public") <= Chain(["public", "secret"]).label("public")


@pytest.mark.parametrize(
    "spec, field",
    [({"type": "lattice"}, "lattice.type"),
     ({"type": "chain"}, "lattice.levels"),
     ({"type": "chain", "levels": ["a", "a"]}, "duplicate"),
     ({"type": "readers", "principals": "alice"}, "lattice.principals"),
     ({"type": "product", "components": {"c": {"type": "tags", "tags": []}}}, "lattice.components.c.tags"),
     ({"type": "chain", "levels": ["a"], "extra": 1}, "unexpected key"),
     ("chain", "lattice")],
)
def test_bad_specs_name_the_field(spec, field):
    with pytest.raises(LatticeError, match=field):
        lattice_from_spec(spec)


def test_lattice_identity_is_computed_once(monkeypatch):
    """Equality and hashing of lattices must not re-serialise the spec (issue 12: 170 s)."""
    a, b = Tags(["x", "y"]), Tags(["x", "y"])
    assert a == b and hash(a) == hash(b) and a != Tags(["y", "x"]) and a != Readers(["x", "y"])
    calls = []
    monkeypatch.setattr(Tags, "spec", lambda self: calls.append(1) or {"type": "tags", "tags": ["x", "y"]})
    for _ in range(100):
        assert a == b and a.label(["x"]) <= b.label(["x", "y"])
        hash(a.label(["y"]))
    assert calls == []
