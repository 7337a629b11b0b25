"""Bad input to the scorers, the kNN-LM datastore, the evaluation harness and labelled stores
(issue 12): refused up front, the message starting with the field (no model is loaded)."""

from types import SimpleNamespace

import numpy as np
import pytest

from ifc_core import (
    Chain, ConfigurationError, ConfigurationTypeError, HFScorer, KNNDatastore, MockScorer, ModelLoadError, VLLMScorer)
from ifc_core.eval import EvalConfig, hard_cases, model_written_cases, news_cases, run_eval, synthetic_cases, write_report
from ifc_core.eval import _report
from ifc_core.eval._runner import EvalResult
from ifc_core.scoring import MemoScorer

from .test_validation import refused

CONF = Chain(["public", "secret"])
SCORER = MockScorer(lambda context, output: -0.1)
URL = "http://127.0.0.1:8011/v1"
TYPE, VALUE = ConfigurationTypeError, ConfigurationError
MODEL = SimpleNamespace(config=SimpleNamespace(), forward=lambda **kw: None, parameters=lambda: iter(()))


class Tokenizer:
    def __call__(self, text, **kw):
        return {"input_ids": []}

    def decode(self, ids, **kw):
        return ""


SCORERS = {
    "MockScorer logprobs": (lambda: MockScorer(-0.1), TYPE, "logprobs"),
    "MockScorer reply": (lambda: MockScorer(len, reply="Zelbrook."), TYPE, "reply"),
    "MockScorer max_context": (lambda: MockScorer(len, max_context=0), VALUE, "max_context"),
    "MockScorer model_id": (lambda: MockScorer(len, model_id=""), VALUE, "model_id"),
    "MemoScorer of None": (lambda: MemoScorer(None), VALUE, "inner"),
    "MemoScorer of a str": (lambda: MemoScorer("smollm2"), TYPE, "inner"),
    "VLLMScorer url number": (lambda: VLLMScorer(8011, model="m"), TYPE, "base_url"),
    "VLLMScorer url no scheme": (lambda: VLLMScorer("localhost:8011/v1", model="m"), VALUE, "base_url"),
    "VLLMScorer url bad port": (lambda: VLLMScorer("http://127.0.0.1:99999/v1", model="m"), VALUE, "base_url"),
    "VLLMScorer url no /v1": (lambda: VLLMScorer("http://127.0.0.1:8011", model="m"), VALUE, "base_url"),
    "VLLMScorer model None": (lambda: VLLMScorer(URL, model=None), TYPE, "model"),
    "VLLMScorer model empty": (lambda: VLLMScorer(URL, model=""), VALUE, "model"),
    "VLLMScorer timeout str": (lambda: VLLMScorer(URL, model="m", timeout="5"), TYPE, "timeout"),
    "VLLMScorer timeout nan": (lambda: VLLMScorer(URL, model="m", timeout=float("nan")), VALUE, "timeout"),
    "VLLMScorer api_key number": (lambda: VLLMScorer(URL, model="m", api_key=123), TYPE, "api_key"),
    "VLLMScorer max_connections": (lambda: VLLMScorer(URL, model="m", max_connections=0), VALUE, "max_connections"),
    "VLLMScorer transport": (lambda: VLLMScorer(URL, model="m", transport="tcp"), TYPE, "transport"),
    "VLLMScorer tokenizer folder": (lambda: VLLMScorer(URL, model="m", tokenizer="/no/such/tokenizer"), VALUE,
                                    "tokenizer"),
    "VLLMScorer tokenizer number": (lambda: VLLMScorer(URL, model="m", tokenizer=3), TYPE, "tokenizer"),
    "VLLMScorer.from_url model": (lambda: VLLMScorer.from_url(URL, model=3), TYPE, "model"),
    "generate no tokens": (lambda: SCORER.generate((1, 2), max_new_tokens=0), VALUE, "max_new_tokens"),
    "HFScorer of a str model": (lambda: HFScorer("SmolLM2", Tokenizer()), TYPE, "model"),
    "HFScorer of a str tokenizer": (lambda: HFScorer(MODEL, "tokenizer.json"), TYPE, "tokenizer"),
    "HFScorer model_id": (lambda: HFScorer(MODEL, Tokenizer(), model_id=3), TYPE, "model_id"),
    "HFScorer max_batch_tokens": (lambda: HFScorer(MODEL, Tokenizer(), max_batch_tokens=0), VALUE,
                                  "max_batch_tokens"),
    "HFScorer.load model number": (lambda: HFScorer.load(3), TYPE, "model"),
    "HFScorer.load device": (lambda: HFScorer.load(device="gpu"), VALUE, "device"),
    "HFScorer.load dtype": (lambda: HFScorer.load(dtype="int8"), VALUE, "dtype"),
    "HFScorer.load option": (lambda: HFScorer.load(max_batch=3), VALUE, "HFScorer.load"),
}


@pytest.mark.parametrize("name", SCORERS)
def test_scorer_arguments(name):
    refused(*SCORERS[name])


def test_cuda_asked_for_where_there_is_none():
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    refused(lambda: HFScorer.load(device="cuda"), VALUE, "device")


def test_a_missing_model_folder_is_a_load_error():
    with pytest.raises(ModelLoadError, match="does not exist"):
        HFScorer.load("/no/such/model")


def store(**over):
    kw = dict(doc_ids=["d1"], fingerprints=["f"], tags=[CONF.bottom], values=np.zeros(2, np.int64),
              owners=np.zeros(2, np.int64), keys=np.zeros((2, 4)), model_id="mock") | over
    return KNNDatastore(kw.pop("doc_ids"), kw.pop("fingerprints"), kw.pop("tags"), kw.pop("values"),
                        kw.pop("owners"), **kw)


DATASTORE = {
    "keys and index": (lambda: store(index=object()), VALUE, "keys, index"),
    "doc_ids a str": (lambda: store(doc_ids="d1"), TYPE, "doc_ids"),
    "fingerprints too few": (lambda: store(fingerprints=[]), VALUE, "fingerprints"),
    "tags JSON": (lambda: store(tags=["public"]), TYPE, "tags[0]"),
    "values and owners": (lambda: store(owners=np.zeros(3)), VALUE, "values, owners"),
    "model_id": (lambda: store(model_id=""), VALUE, "model_id"),
    "build without scorer": (lambda: KNNDatastore.build(None, []), VALUE, "scorer"),
    "build a str": (lambda: KNNDatastore.build(SCORER, "doc"), TYPE, "documents"),
    "build a str document": (lambda: KNNDatastore.build(SCORER, ["doc"]), TYPE, "documents[0]"),
    "build batch_size": (lambda: KNNDatastore.build(SCORER, [], batch_size=0), VALUE, "batch_size"),
    "build persistent": (lambda: KNNDatastore.build(SCORER, [], persistent="yes"), TYPE, "persistent"),
    "build progress": (lambda: KNNDatastore.build(SCORER, [], progress=1), TYPE, "progress"),
    "build counter": (lambda: KNNDatastore.build(SCORER, [], counter=()), TYPE, "counter"),
    "search k": (lambda: store().search(np.zeros((1, 4)), 0), VALUE, "k"),
    "restricted a str": (lambda: store().restricted("d1"), TYPE, "doc_ids"),
    "tag_of unknown": (lambda: store().tag_of("d9"), VALUE, "doc_id"),
    "load lattice": (lambda: KNNDatastore.load(".", "chain"), TYPE, "lattice"),
    "load no folder": (lambda: KNNDatastore.load("/no/such/store", CONF), VALUE, "path"),
}


@pytest.mark.parametrize("name", DATASTORE)
def test_datastore_arguments(name):
    refused(*DATASTORE[name])


def test_datastore_save_to_a_file_and_restricted_views(tmp_path):
    (tmp_path / "f").write_text("x")
    refused(lambda: store().save(tmp_path / "f"), VALUE, "path")
    assert list(store().restricted(["d1"]).entries) == [0, 1] and len(store().restricted([]).entries) == 0


EVAL = [("synthetic", -3), ("synthetic", 0), ("news_topics", 0), ("agent_user_tasks", 0), ("agent_injection_tasks", -1),
        ("agent_max_tokens", 0), ("enforce", -1), ("max_new_tokens", 0), ("scaling_cases", 0), ("peer", -1),
        ("peer_ablations", 0), ("seed", 1.5), ("hard", 0), ("synthetic", "200"), ("enforce", True)]
EVAL_LISTS = [("lambdas", (-1,), "lambdas[0]"), ("lambdas", (), "lambdas"), ("lambdas", "0.1", "lambdas"),
              ("scaling", (1,), "scaling[0]"), ("datasets", "news", "datasets"), ("datasets", (), "datasets"),
              ("datasets", ("imagenet",), "datasets"), ("propagators", ("oracle",), "propagators"),
              ("criteria", ("nope",), "criteria"), ("agent_suites", "banking", "agent_suites")]


@pytest.mark.parametrize("field, value", EVAL)
def test_eval_config_counts(field, value):
    refused(lambda: EvalConfig(**{field: value}), VALUE, field)  # VALUE: type errors are ones too


@pytest.mark.parametrize("field, value, named", EVAL_LISTS)
def test_eval_config_lists(field, value, named):
    refused(lambda: EvalConfig(**{field: value}), VALUE, named)


def test_eval_entry_points(tmp_path):
    refused(lambda: EvalConfig.quick(synthtic=3), VALUE, "synthtic")
    refused(lambda: run_eval("quick"), TYPE, "config")
    refused(lambda: run_eval(EvalConfig(), "smollm2"), TYPE, "scorer")
    refused(lambda: run_eval(EvalConfig(), SCORER, log="stderr"), TYPE, "log")
    refused(lambda: synthetic_cases(-1), VALUE, "n")
    refused(lambda: synthetic_cases(4, docs=1), VALUE, "docs")
    refused(lambda: news_cases(-1), VALUE, "topics")
    refused(lambda: news_cases(2, distractors=-1), VALUE, "distractors")
    refused(lambda: hard_cases("nope"), VALUE, "group")
    refused(lambda: hard_cases("paraphrase", -1), VALUE, "n")
    refused(lambda: model_written_cases(None), VALUE, "scorer")
    result = EvalResult(EvalConfig())
    (tmp_path / "file").write_text("x")
    refused(lambda: write_report("result", tmp_path / "r", "c"), TYPE, "result")
    refused(lambda: write_report(result, tmp_path / "file", "c"), VALUE, "folder")
    refused(lambda: write_report(result, tmp_path / "no" / "r", "c"), VALUE, "folder")
    refused(lambda: write_report(result, tmp_path / "r", 3), TYPE, "command")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_a_report_that_fails_leaves_the_folder_as_it_was(tmp_path, monkeypatch):
    result = EvalResult(EvalConfig())
    folder = tmp_path / "report"
    folder.mkdir()
    (folder / "README.md").write_text("the last report")

    def broken(result, where):
        (where / "lambda_sweep.png").write_bytes(b"half a plot")
        raise OSError("disk full")

    monkeypatch.setattr(_report, "_plots", broken)
    with pytest.raises(OSError, match="disk full"):
        write_report(result, folder, "c")
    with pytest.raises(OSError):
        write_report(result, tmp_path / "new", "c")
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # no new folder, no temporary one
    assert [p.name for p in folder.iterdir()] == ["README.md"] and (folder / "README.md").read_text() == "the last report"
    monkeypatch.setattr(_report, "_plots", lambda result, where: [])
    (folder / "notes.txt").write_text("mine")
    assert write_report(result, folder, "c").read_text().startswith("# llm-ifc evaluation report")
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "decisions.jsonl", "notes.txt"]
    assert write_report(result, tmp_path / "new", "c").parent == tmp_path / "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["new", "report"]


def test_labelled_store_arguments(tmp_path):
    chroma = pytest.importorskip("ifc_core.chroma")
    LabelledStore, MiniLMEmbedding = chroma.LabelledStore, chroma.MiniLMEmbedding
    (tmp_path / "file").write_text("x")
    ok = dict(insecure_dev_key=True, embedding_function=MiniLMEmbedding())  # the model loads only to embed
    for name, kw, error, field in [
            (3, {}, TYPE, "name"), ("a", {}, VALUE, "name"), ("bad name!", {}, VALUE, "name"),
            ("10.0.0.1", {}, VALUE, "name"), ("docs", {"lattice": "chain"}, TYPE, "lattice"),
            ("docs", {"path": tmp_path / "file"}, VALUE, "path"), ("docs", {"path": tmp_path / "no" / "db"}, VALUE, "path"),
            ("docs", {"url": "localhost:8000"}, VALUE, "url"), ("docs", {"url": "http://h:8000/api/v2"}, VALUE, "url"),
            ("docs", {"url": "http://h:99999"}, VALUE, "url"), ("docs", {"client": "chroma"}, TYPE, "client"),
            ("docs", {"client": object(), "path": tmp_path}, VALUE, "client"),
            ("docs", {"embedding_function": "minilm"}, TYPE, "embedding_function"),
            ("docs", {"insecure_dev_key": "yes"}, TYPE, "insecure_dev_key")]:
        kw = ok | kw
        refused(lambda: LabelledStore.open(name, kw.pop("lattice", CONF), **kw), error, field)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]  # nothing created on disk
    refused(lambda: LabelledStore("collection", CONF, insecure_dev_key=True), TYPE, "collection")
    store = LabelledStore.open("docs", CONF, **ok)
    refused(lambda: store.add("Zelbrook."), TYPE, "documents")
    refused(lambda: store.add([], metadata={"d1": "x"}), TYPE, "metadata")
    refused(lambda: store.query(3, "public"), TYPE, "text")
    refused(lambda: store.query("where?", "top-secret"), VALUE, "clearance")
    refused(lambda: store.query("where?", "public", k=0), VALUE, "k")
    refused(lambda: store.filter(["d1"], [], [], "public"), VALUE, "ids, texts")
    refused(lambda: store.knn_datastore(None), VALUE, "scorer")
    refused(lambda: store.gate(clearance=["public"]), VALUE, "clearance")
