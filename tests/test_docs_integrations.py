"""The runnable examples of docs/integrations/ir-metrics.md and wheel.md (the LangChain, Haystack and MCP
pages are run by their own tests)."""

import pytest

from tests.docs_examples import python_blocks, run_examples


def test_the_ir_metrics_example_runs_and_agrees_with_ranx(demo_env):
    pytest.importorskip("ranx", reason="ranx is a dev dependency: pip install -e '.[dev]'")
    ns = run_examples("integrations/ir-metrics.md")
    assert ns["trec"]["questions"] == 30 and ns["trec"]["recall@100"] == 1.0
    assert (ns["out"] / "run.trec").read_text(encoding="utf-8").split()[5] == "odqa-sparse"


def test_the_wheel_page_example_runs():
    ns = run_examples("integrations/wheel.md")
    assert ns["defaults"]["bm25"]["k1"] > 0


def test_every_integration_page_has_a_runnable_example():
    for page in ("langchain", "haystack", "mcp", "ir-metrics", "wheel"):
        assert python_blocks(f"integrations/{page}.md"), page
