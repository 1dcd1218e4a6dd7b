"""Shared CLI plumbing: output in text or JSON, index options, config loading."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from odqa.config import IndexConfig, load_config

JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout (schema in README).")
IndexDirOpt = typer.Option(None, "--index-dir", help="Folder holding indexes (default: $ODQA_INDEX_DIR or ./indexes).")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def echo(msg: str = "") -> None:
    typer.echo(msg)


def warn(msg: str) -> None:
    typer.echo(f"odqa: warning: {msg}", err=True)


def index_config(config: Optional[Path], overrides: list[str] | None, **flags: Any) -> IndexConfig:
    extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return load_config(config, list(overrides or []) + extra, IndexConfig)


ModeOpt = typer.Option("sparse", "--mode", "-m", help="sparse | dense | hybrid")
AlphaOpt = typer.Option(None, "--alpha", help="Hybrid: weight of the dense score (default from config, 0.5).")
FusionOpt = typer.Option(None, "--fusion", help="Hybrid: minmax | zscore | rrf.")
EncoderOpt = typer.Option(None, "--encoder", help="Dense encoder spec; must match the one the index was built with.")


def hybrid_config(alpha: float | None, fusion: str | None):
    from odqa.config import HybridConfig
    cfg = HybridConfig()
    if alpha is not None:
        cfg.alpha = alpha
    if fusion is not None:
        cfg.method = fusion
    return cfg
