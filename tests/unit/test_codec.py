"""Labels as flat metadata and clearance `where` filters (no Chroma needed)."""

import json

import pytest
from hypothesis import given, settings

from ifc_core import Chain, LabelCodec, Product, Readers, Tags

from .test_lattice import PRODUCT, labels_of

LAT = Product(conf=Chain(["public", "internal", "secret"]), readers=Readers(["alice", "bob"]), tags=Tags(["hr"]))


@settings(max_examples=100, deadline=None)
@given(labels_of(PRODUCT))
def test_round_trip_and_flat_values(label):
    codec = LabelCodec(PRODUCT)
    meta = codec.encode(label)
    assert all(isinstance(v, (str, int, bool)) for v in meta.values())  # what every chromadb 1.x takes
    assert codec.decode(json.loads(json.dumps(meta))) == label


@pytest.mark.parametrize("meta", [None, {}, {"ifc_label": 3}, {"ifc_label": "not json"},
                                  {"ifc_label": '"public"'}, {"ifc_label": '{"conf":"public"}'}])
def test_missing_or_unparseable_labels_decode_to_none(meta):
    assert LabelCodec(LAT).decode(meta) is None


def test_where_filters_match_the_order():
    codec = LabelCodec(LAT)
    clearance = LAT.label({"conf": "internal", "readers": ["alice"], "tags": []})
    assert codec.where(clearance) == {"$and": [
        {"ifc_conf_level": {"$lte": 1}}, {"ifc_readers_reader_alice": True}, {"ifc_tags_tag_hr": False}]}
    assert LabelCodec(Chain(["a", "b"])).where(Chain(["a", "b"]).top) is None


def _matches(where, meta):
    if where is None:
        return True
    if "$and" in where:
        return all(_matches(w, meta) for w in where["$and"])
    (key, cond), = where.items()
    if isinstance(cond, dict):
        return key in meta and meta[key] <= cond["$lte"]
    return meta.get(key) == cond


@settings(max_examples=200, deadline=None)
@given(labels_of(PRODUCT), labels_of(PRODUCT))
def test_where_filter_selects_exactly_the_labels_below_the_clearance(label, clearance):
    codec = LabelCodec(PRODUCT)
    assert _matches(codec.where(clearance), codec.encode(label)) == (label <= clearance)
