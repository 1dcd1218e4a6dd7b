from pathlib import Path

import pytest
import yaml

from odqa.config import IndexConfig, apply_overrides, load_config
from odqa.errors import ConfigError, OdqaError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_documents_exactly_the_defaults():
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    assert data == IndexConfig().model_dump()


def test_overrides_are_typed():
    cfg = apply_overrides(IndexConfig(), ["bm25.k1=1.5", "analyzer.pos=NN,VV", "corpus.dedup=false"])
    assert cfg.bm25.k1 == 1.5 and cfg.analyzer.pos == ["NN", "VV"] and cfg.corpus.dedup is False
    with pytest.raises(OdqaError, match="config field 'bm25.k1': input should be a valid number.*got 'high'"):
        apply_overrides(IndexConfig(), ["bm25.k1=high"])
    with pytest.raises(OdqaError, match="unknown config field 'bm25.k3'"):
        apply_overrides(IndexConfig(), ["bm25.k3=1"])


def test_yaml_errors(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("bm25:\n  kk: 1\n")
    with pytest.raises(OdqaError, match="unknown config field 'bm25.kk'"):
        load_config(f)
    f.write_text("bm25: [1,\n")
    with pytest.raises(OdqaError, match="c.yaml:.*malformed YAML"):
        load_config(f)


@pytest.mark.parametrize("override,message", [
    ("bm25.k1=-1", "config field 'bm25.k1': input should be greater than 0, got -1"),
    ("bm25.b=5", "config field 'bm25.b': input should be less than or equal to 1, got 5"),
    ("bm25.method=atir", "config field 'bm25.method': input should be 'atire', 'robertson', 'lucene', 'bm25l' or 'bm25+', got 'atir'"),
    ("hybrid.alpha=1.5", "config field 'hybrid.alpha': input should be less than or equal to 1"),
    ("dense.quantize=int4", "config field 'dense.quantize'"),
    ("corpus.dedup=maybe", "config field 'corpus.dedup': input should be a valid boolean"),
    ("backend=solr", "config field 'backend'"),
])
def test_values_out_of_range_or_misspelt_are_refused_when_loaded(override, message):
    with pytest.raises(ConfigError) as e:
        load_config(None, [override])
    assert message in str(e.value) and len(str(e.value).splitlines()) == 1


def test_config_file_values_are_checked_too(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("corpus:\n  chunk_size: 100\n  chunk_overlap: 100\n")
    with pytest.raises(ConfigError, match="chunk_overlap \\(100\\) must be below corpus.chunk_size"):
        load_config(f)
    f.write_text("bm25:\n  k1: 0\n")
    with pytest.raises(ConfigError, match="'bm25.k1': input should be greater than 0"):
        load_config(f)


def test_assignment_is_checked_and_the_hybrid_section_is_used(corpus_file, index_root):
    cfg = IndexConfig()
    with pytest.raises(ConfigError, match="config field 'b': input should be less than or equal to 1"):
        cfg.bm25.b = 3
    from odqa.index.indexing import build_index, load_index
    build_index(corpus_file, "t", load_config(None, ["hybrid.alpha=0.8", "hybrid.method=rrf"]), index_root)
    hy = load_index("t", index_root).hybrid_config()
    assert hy.alpha == 0.8 and hy.method == "rrf"


@pytest.mark.parametrize("yaml_text, field, message", [
    ("bm25:\n  k1: -1\n", "bm25.k1", "input should be greater than 0, got -1"),
    ("bm25:\n  b: 5\n", "bm25.b", "input should be less than or equal to 1, got 5"),
    ("bm25:\n  method: okapi\n", "bm25.method", "input should be 'atire', 'robertson', 'lucene', 'bm25l' or 'bm25+'"),
    ("dense:\n  batch_size: 0\n", "dense.batch_size", "input should be greater than or equal to 1, got 0"),
    ("dense:\n  max_length: four\n", "dense.max_length", "input should be a valid integer"),
    ("analyzer:\n  name: mecab\n  workers: [1]\n", "analyzer.workers", "input should be a valid integer"),
    ("hybrid: 3\n", "hybrid", "input should be a valid dictionary"),
])
def test_a_bad_value_in_a_config_file_is_one_line_naming_its_field(tmp_path, yaml_text, field, message):
    f = tmp_path / "c.yaml"
    f.write_text(yaml_text)
    with pytest.raises(ConfigError) as e:
        load_config(f)
    assert str(e.value).startswith(f"config field '{field}': ") and message in str(e.value)
    assert len(str(e.value).splitlines()) == 1


def test_unknown_fields_are_refused_with_the_known_ones_named(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("dense:\n  enabled: true\n  encoder_name: x\n")
    with pytest.raises(ConfigError, match=r"^unknown config field 'dense.encoder_name' \(known: enabled, encoder, "):
        load_config(f)
    f.write_text("bm26:\n  k1: 1\n")
    with pytest.raises(ConfigError, match=r"^unknown config field 'bm26' \(known: corpus, analyzer, bm25, "):
        load_config(f)
    with pytest.raises(ConfigError, match="unknown config field 'bm25.k3'"):
        IndexConfig(bm25={"k3": 1})


def test_load_config_takes_any_section_and_refuses_other_classes(tmp_path):
    from odqa.training import TrainConfig
    f = tmp_path / "t.yaml"
    f.write_text("lr: 0.001\nbatch_size: 8\n")
    cfg = load_config(f, ["seed=3"], TrainConfig)
    assert (cfg.lr, cfg.batch_size, cfg.seed) == (0.001, 8, 3)
    with pytest.raises(ConfigError, match="config field 'grad_accum': input should be greater than or equal to 1"):
        load_config(f, ["grad_accum=0"], TrainConfig)
    with pytest.raises(TypeError, match="not a config model"):
        load_config(None, [], dict)


def test_analyzer_decompound_is_set_and_checked():
    from odqa.config import IndexConfig, apply_overrides
    assert IndexConfig().analyzer.decompound is None
    assert apply_overrides(IndexConfig(), ["analyzer.decompound=mixed"]).analyzer.decompound == "mixed"
    with pytest.raises(ConfigError, match="decompound"):
        apply_overrides(IndexConfig(), ["analyzer.decompound=split"])
    with pytest.raises(ConfigError, match="needs analyzer.name mecab"):
        apply_overrides(IndexConfig(), ["analyzer.name=kiwi", "analyzer.decompound=mixed"])
