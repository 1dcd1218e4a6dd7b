"""The import-layer contract (.importlinter) and a thin CLI, checked on the source."""

import ast
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "odqa"
RENDER_CALLS = {"echo", "warn", "emit_json", "join", "replace", "items", "format", "get", "title", "round",
                "hit_json", "snippet", "highlight", "answer_json", "passage", "len", "str", "sorted", "enumerate",
                "zip", "list", "dict", "isinstance", "max", "min"}


def test_import_layers_and_no_cycles():
    exe = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if exe is None:
        pytest.skip("import-linter is not installed (pip install -e '.[dev]')")
    p = subprocess.run([exe, "--config", str(SRC.parents[1] / ".importlinter")], cwd=SRC.parents[1],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:]
    assert "BROKEN" not in p.stdout and p.stdout.count("KEPT") == 2


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
