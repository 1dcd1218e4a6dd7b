"""Shared CLI plumbing: output in text or JSON, logging, index options, config loading."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any, Optional

import typer

from odqa.api import DEVICE_HELP, IndexConfig, load_config

JsonOpt = typer.Option(False, "--json", help="Print one JSON object on stdout (schema: docs/reference/json-output.md).")
IndexDirOpt = typer.Option(None, "--index-dir", help="Folder holding indexes (default: $ODQA_INDEX_DIR or ./indexes).")
QuietOpt = typer.Option(False, "--quiet", "-q", help="No progress bars.")
DeviceOpt = typer.Option("auto", "--device", help=f"Where models run: {DEVICE_HELP}.")
MixedPrecisionOpt = typer.Option("auto", "--mixed-precision", help="Training: auto (bf16 where the GPU supports it, "
                                 "else fp16 with a grad scaler; none on CPU) | no | bf16 | fp16 (ignored on CPU).")
EncodingOpt = typer.Option(None, "--encoding", help="Text encoding of the input files, e.g. cp949 "
                                                    "(default UTF-8; a BOM is skipped).")


_HANDLER: logging.Handler | None = None


class _OneLine(logging.Formatter):
    """`odqa: warning: ...` (the library's records, as the CLI prints its own warnings)."""

    def format(self, record: logging.LogRecord) -> str:
        return f"odqa: {record.levelname.lower()}: {record.getMessage()}"


def setup_logging(verbose: bool = False) -> None:
    """The CLI's logging: odqa's records on stderr, one line each (INFO with -v, else WARNING).
    Other libraries' loggers are left as they are."""
    global _HANDLER
    log = logging.getLogger("odqa")
    if _HANDLER is not None:
        log.removeHandler(_HANDLER)
    _HANDLER = logging.StreamHandler(sys.stderr)
    _HANDLER.setFormatter(_OneLine())
    log.addHandler(_HANDLER)
    log.setLevel(logging.INFO if verbose else logging.WARNING)
    log.propagate = False


def emit_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, ensure_ascii=False, indent=2) + "\n")


def echo(msg: str = "") -> None:
    typer.echo(msg)


def warn(msg: str) -> None:
    typer.echo(f"odqa: warning: {msg}", err=True)


def warn_stale(idx) -> None:
    for reason in idx.stale:
        warn(f"index '{idx.name}' is stale: {reason}")


def index_config(config: Optional[Path], overrides: list[str] | None, **flags: Any) -> IndexConfig:
    extra = [f"{k}={v}" for k, v in flags.items() if v is not None]
    return load_config(config, list(overrides or []) + extra, IndexConfig)


ModeOpt = typer.Option("sparse", "--mode", "-m", help="sparse | dense | hybrid | auto")
AlphaOpt = typer.Option(None, "--alpha", help="Hybrid: weight of the dense score (default: the index's hybrid.alpha).")
FusionOpt = typer.Option(None, "--fusion", help="Hybrid: minmax | zscore | rrf (default: the index's hybrid.method).")
EncoderOpt = typer.Option(None, "--encoder", help="Dense encoder spec; must match the one the index was built with.")
