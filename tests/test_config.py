import dataclasses
from pathlib import Path

import pytest
import yaml

from odqa.config import IndexConfig, apply_overrides, load_config
from odqa.errors import OdqaError

ROOT = Path(__file__).resolve().parents[1]


def test_default_yaml_documents_exactly_the_defaults():
    data = yaml.safe_load((ROOT / "configs" / "default.yaml").read_text(encoding="utf-8"))
    assert data == dataclasses.asdict(IndexConfig())


def test_overrides_are_typed():
    cfg = apply_overrides(IndexConfig(), ["bm25.k1=1.5", "analyzer.pos=NN,VV", "corpus.dedup=false"])
    assert cfg.bm25.k1 == 1.5 and cfg.analyzer.pos == ["NN", "VV"] and cfg.corpus.dedup is False
    with pytest.raises(OdqaError, match="config field 'bm25.k1': expected float"):
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
