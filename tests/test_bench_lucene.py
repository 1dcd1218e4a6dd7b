"""scripts/bench_lucene.py: without java, javac or the Lucene jars it says which in one line and exits 0."""

import importlib.util
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "bench_lucene.py"


def _script():
    spec = importlib.util.spec_from_file_location("bench_lucene", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_missing_java_is_one_line_and_exit_0(tmp_path):
    env = {"PATH": str(tmp_path), "PYTHONPATH": str(ROOT / "src")}       # a PATH without java
    proc = subprocess.run([sys.executable, str(SCRIPT), "--bench", str(tmp_path)], capture_output=True,
                          text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().splitlines() == ["bench_lucene: skipped: no `java` on PATH (install a JDK, e.g. "
                                                "apt-get install default-jdk-headless)"]


def test_missing_jars_are_named(tmp_path, monkeypatch):
    mod = _script()
    monkeypatch.setattr(mod.shutil, "which", lambda tool: f"/usr/bin/{tool}")
    cp, why = mod.lucene_classpath(tmp_path)
    assert cp is None and why == f"no lucene-core-8*.jar in {tmp_path} (apt-get install liblucene8-java)"
    for name in mod.JARS:
        (tmp_path / f"{name}-8.7.0.jar").write_bytes(b"")
    cp, why = mod.lucene_classpath(tmp_path)
    assert why == "" and cp.split(":") == [str(tmp_path / f"{n}-8.7.0.jar") for n in mod.JARS]


def test_escaped_lines_round_trip():
    mod = _script()
    text = "제목\n본문\t탭 \\ 역슬래시\r끝"
    assert "\n" not in mod.escape(text)
    assert mod.escape(text) == "제목\\n본문\\t탭 \\\\ 역슬래시\\r끝"
