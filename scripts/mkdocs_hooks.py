"""MkDocs hooks of the documentation site (`hooks:` in mkdocs.yml).

Two pages are generated from the code when the site is built, so they cannot drift from it:

- `reference/python-api.md` holds the line `<!-- odqa-api -->`, replaced by one mkdocstrings block per public
  name of `odqa` (`odqa.api.__all__`), grouped by the module that defines it;
- `reference/cli.md` holds `<!-- odqa-cli -->`, replaced by the help of every command of the `odqa` typer app
  (typer's own Markdown rendering, what `typer odqa.cli.main utils docs` prints).

It also renders the code blocks that the test suite runs: their fences carry pytest-markdown-docs options after
the language (```` ```python fixture:odqa_demo ````, `notest`, `continuation`), which Python-Markdown's fences do
not accept; `fence_languages` keeps the language alone, outside fenced blocks (an example of such a fence
shown inside a ````markdown block stays as written).
"""

from __future__ import annotations

import re
import sys
from collections import defaultdict
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
API_MARKER = "<!-- odqa-api -->"
CLI_MARKER = "<!-- odqa-cli -->"

# the headings of the generated page, in this order; a module not listed here goes under its own name
GROUPS = {
    "odqa.api.pipeline": "Pipelines",
    "odqa.api.config": "Pipeline settings",
    "odqa.api.retriever": "Retrieval without a reader",
    "odqa.types": "Results",
    "odqa.api.readers": "Readers",
    "odqa.api.indexes": "Indexes and retrieval evaluation",
    "odqa.api.evaluation": "Answer evaluation and prediction",
    "odqa.api.ensemble": "Ensembles",
    "odqa.api.calibration": "Calibration",
    "odqa.api.training": "Training",
    "odqa.api.models": "Shipped models",
    "odqa.api.demo": "Demo",
    "odqa.config": "Index configuration",
    "odqa.retrieval.base": "Queries",
    "odqa.device": "Devices",
    "odqa.errors": "Errors",
    "odqa.version": "Version",
}


def api_names() -> dict[str, list[str]]:
    """{defining module: [public names]} of `odqa.api`, in the order of GROUPS."""
    from odqa.api import _EXPORTS

    by_module: dict[str, list[str]] = defaultdict(list)
    for name, module in sorted(_EXPORTS.items()):
        by_module[module].append(name)
    order = list(GROUPS) + sorted(set(by_module) - set(GROUPS))
    return {m: by_module[m] for m in order if m in by_module}


def api_markdown() -> str:
    parts = []
    for module, names in api_names().items():
        parts.append(f"## {GROUPS.get(module, module)}\n")
        parts += [f"::: {module}.{name}\n" for name in names]
    return "\n".join(parts)


def cli_markdown() -> str:
    import typer
    from typer.cli import get_docs_for_click

    from odqa.cli.main import app

    command = typer.main.get_command(app)
    return get_docs_for_click(obj=command, ctx=typer.Context(command, info_name="odqa"), name="odqa", indent=1)


FENCE = re.compile(r"^(?P<indent>\s*)(?P<marker>`{3,}|~{3,})(?P<info>.*)$")


def fence_languages(markdown: str) -> str:
    """Top-level fences' info strings cut to their first word (```python fixture:odqa_demo -> ```python)."""
    out, open_marker = [], None
    for line in markdown.split("\n"):
        m = FENCE.match(line)
        if m and open_marker is None:
            open_marker = m["marker"]
            words = m["info"].split()
            if len(words) > 1 and not m["info"].lstrip().startswith("{"):
                line = f"{m['indent']}{m['marker']}{words[0]}"
        elif m and open_marker is not None and m["marker"][0] == open_marker[0] \
                and len(m["marker"]) >= len(open_marker) and not m["info"].strip():
            open_marker = None
        out.append(line)
    return "\n".join(out)


def on_config(config):
    """Document this checkout's odqa: the hooks below import it (MkDocs restores `sys.path` after loading hooks)."""
    if str(SRC) not in sys.path:
        sys.path.insert(0, str(SRC))
    return config


def on_page_markdown(markdown: str, page, config, files) -> str:
    if API_MARKER in markdown:
        markdown = markdown.replace(API_MARKER, api_markdown())
    if CLI_MARKER in markdown:
        markdown = markdown.replace(CLI_MARKER, cli_markdown())
    return fence_languages(markdown)
