"""The import-layer contract (.importlinter) and a thin CLI, checked on the source."""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest


SRC = Path(__file__).resolve().parents[1] / "src" / "odqa"
RENDER_CALLS = {"echo", "warn", "emit_json", "join", "replace", "items", "format", "get", "title", "round",
                "hit_json", "snippet", "highlight", "answer_json", "passage", "len", "str", "sorted", "enumerate",
                "zip", "list", "dict", "isinstance", "max", "min"}


CONTRACT = SRC.parents[1] / ".importlinter"


def lint_imports(cwd: Path, *env_path: Path) -> subprocess.CompletedProcess:
    """`lint-imports` on the contract, run in `cwd` (odqa found on `env_path` first, where given).
    import-linter is a dev dependency: without it the contract is not checked, so the test fails."""
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent)) or shutil.which("lint-imports")
    assert exe is not None, "import-linter is not installed: pip install -e '.[dev]'"
    env = dict(os.environ)
    if env_path:
        env["PYTHONPATH"] = os.pathsep.join(map(str, env_path))
    return subprocess.run([exe, "--no-cache", str(CONTRACT)], cwd=cwd, capture_output=True, text=True, env=env)


def test_import_layers_and_no_cycles():
    p = lint_imports(SRC.parents[1])
    assert p.returncode == 0, p.stdout[-3000:]
    contracts = sum(1 for line in CONTRACT.read_text(encoding="utf-8").splitlines() if line.startswith("[importlinter:contract:"))
    assert "BROKEN" not in p.stdout and p.stdout.count("KEPT") == contracts >= 3


def _sources_only(folder: str, names: list[str]) -> list[str]:
    return [n for n in names if not (n.endswith(".py") or os.path.isdir(os.path.join(folder, n)))]


@pytest.mark.parametrize("module,planted,message", [
    ("errors.py", "import odqa.api  # planted: base -> api", "odqa.errors is not allowed to import odqa.api"),
    ("reader/reader.py", "import odqa.relation  # planted: task -> sibling task",
     "odqa.reader is not allowed to import odqa.relation"),
    ("cli/render.py", "import odqa.index.store  # planted: face -> below the API",
     "odqa.cli.render -> odqa.index.store"),
])
def test_a_planted_import_breaks_the_contract(tmp_path, module, planted, message):
    """A copy of the package with one import the contract forbids (upwards, sideways, a face past the API)."""
    shutil.copytree(SRC, tmp_path / "odqa", ignore=_sources_only)
    with open(tmp_path / "odqa" / module, "a", encoding="utf-8") as f:
        f.write(f"\n{planted}\n")
    p = lint_imports(tmp_path, tmp_path)
    assert p.returncode != 0 and "BROKEN" in p.stdout, p.stdout[-3000:]
    assert message in p.stdout, p.stdout[-3000:]


def _called_names(node: ast.AST) -> set[str]:
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            out.add(f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else "?")
    return out


def test_cli_loops_only_render():
    """cli/ holds no loops over questions, passages or training steps: a loop there may only print."""
    offenders = []
    for path in sorted((SRC / "cli").glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.For, ast.While, ast.AsyncFor)):
                extra = _called_names(node) - RENDER_CALLS
                if extra or isinstance(node, ast.While):
                    offenders.append(f"{path.name}:{node.lineno} calls {sorted(extra)}")
    assert not offenders, offenders
