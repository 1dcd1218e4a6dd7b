"""The documentation site builds (`mkdocs build --strict`: no broken link, no missing page, no docstring the
API reference cannot render), its generated references cover the code, and the README keeps its shape."""

import html
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PROSE = [ROOT / "README.md", ROOT / "CHANGELOG.md", ROOT / "CONTRIBUTING.md", ROOT / "BENCHMARKS.md",
         *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    pytest.importorskip("mkdocs", reason="the docs packages are in the dev extra: pip install -e '.[dev]'")
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "PYTHONPATH": str(ROOT / "src")}
    run = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, f"mkdocs build --strict failed:\n{run.stderr[-6000:]}"
    return out


def text_of(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page.read_text(encoding="utf-8")))


def test_site_builds_with_every_page_of_the_nav(site):
    import yaml

    def pages(nav):
        for item in nav:
            for value in (item.values() if isinstance(item, dict) else [item]):
                yield from (pages(value) if isinstance(value, list) else [value])
    nav = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))["nav"]
    for page in pages(nav):
        built = site / (page.removesuffix(".md").removesuffix("index") + "/index.html").lstrip("/").replace("//", "/")
        assert built.exists(), f"{page} was not built"


def test_api_reference_documents_every_public_name(site):
    import odqa.api
    from odqa.api import _EXPORTS

    page = (site / "reference" / "python-api" / "index.html").read_text(encoding="utf-8")
    missing = [n for n in odqa.api.__all__ if f'id="{_EXPORTS[n]}.{n}"' not in page]
    assert not missing, f"not in the API reference: {missing}"


def test_cli_reference_documents_every_command(site):
    import typer

    from odqa.cli.main import app

    def commands(cmd, prefix):
        yield prefix
        for name, sub in getattr(cmd, "commands", {}).items():
            yield from commands(sub, f"{prefix} {name}")
    page = text_of(site / "reference" / "cli" / "index.html")
    missing = [c for c in commands(typer.main.get_command(app), "odqa") if c not in page]
    assert not missing, f"not in the CLI reference: {missing}"
    assert "--min-probability" in page and "--reader-runtime" in page


def test_readme_is_short_and_keeps_the_two_ci_commands():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 150
    blocks = re.findall(r"^```sh\n(.*?)\n```", text, re.M | re.S)
    assert blocks[0].startswith("python3.11 -m venv .venv") and blocks[0].endswith(".venv/bin/odqa demo")
    assert blocks[1] == ".venv/bin/python -m pytest"


@pytest.mark.parametrize("path", PROSE, ids=lambda p: str(p.relative_to(ROOT)))
def test_prose_describes_the_software_not_how_it_is_made(path):
    if not path.exists():
        pytest.skip(f"{path.name} is absent")
    text = path.read_text(encoding="utf-8").lower()
    # phrases about how the project is made, not what it does ("agent" or "session" alone are fair words for
    # software, e.g. an HTTP session or a LangChain agent)
    banned = [r"\b(this|that|a|third|second|end of) session\b", r"\bhelpers?\b", r"\blent\b", r"\bissue \d+",
              r"\bissue's\b", r"shared the cpu", r"during development", r"development (tool|machine|work)",
              r"\bthe lead\b", r"\bthis task\b"]
    found = [m.group(0) for b in banned for m in [re.search(b, text)] if m]
    assert not found, f"{path.name} speaks of how the project is developed: {found}"
