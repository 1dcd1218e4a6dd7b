"""`odqa models`: the shipped models, and packing a checkpoint into their compact form."""

from __future__ import annotations

from pathlib import Path

import typer

from odqa.cli.common import JsonOpt, echo, emit_json

app = typer.Typer(invoke_without_command=True, help="Shipped models: list them (default), pack a checkpoint.")


@app.callback()
def models(ctx: typer.Context, json_out: bool = JsonOpt) -> None:
    """List the models that ship with odqa (name, kind, size, data, licence, figures).

    Example: odqa models --json
    """
    if ctx.invoked_subcommand is not None:
        return
    from odqa.api.models import list_models
    rows = list_models()
    if json_out:
        emit_json({"models": rows})
        return
    if not rows:
        echo("no shipped models installed")
    for m in rows:
        echo(f"{m['name']:<12} {m['kind']:<8} {m['size_mb']:>7.2f} MB  {m.get('licence', '?')}  {m['path']}")
        for key in ("data", "base", "figures"):
            if m.get(key):
                echo(f"    {key}: {m[key]}")


@app.command("pack")
def pack(
    checkpoint: Path = typer.Argument(..., help="Checkpoint folder (odqa train reader / re train OUT/best)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the compact model."),
    base: str = typer.Option("offline:multilingual-e5-small", "--base", help="The backbone the checkpoint was trained from."),
    precision: str = typer.Option("int8", "--precision", help="int8 (a scale per row) | int8g (a scale per 64 values) | int4 | fp16 | fp32 for the tensors training changed."),
    json_out: bool = JsonOpt,
) -> None:
    """Store only what training changed over the base backbone, at reduced precision.

    Example: odqa models pack runs/reader/best --out src/odqa/data/models/ko-reader --precision int8
    """
    from odqa.api.models import pack_model
    rec = pack_model(checkpoint, out, base, precision)   # type: ignore[arg-type]
    size = sum(f.stat().st_size for f in out.iterdir() if f.is_file())
    report = {"out": str(out), "precision": precision, "changed": len(rec["changed"]), "shared": len(rec["shared"]),
              "size_mb": round(size / 1e6, 2)}
    if json_out:
        emit_json(report)
        return
    echo(f"packed {checkpoint} -> {out}: {report['changed']} tensors stored ({precision}), {report['shared']} "
         f"rebuilt from {base}, {report['size_mb']} MB")
