"""The `odqa` command: thin typer wrappers over the library."""

from __future__ import annotations

import sys

import typer

from odqa import __version__
from odqa.cli import ask_cmd, demo_cmd, evaluate_cmd, index_cmd, retrieve_cmd, train_cmd
from odqa.cli import re_cmd
from odqa.cli import ensemble_cmd, pretrain_cmd
from odqa.errors import OdqaError

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Korean open-domain question answering: index a corpus, retrieve, evaluate.")
app.command("index")(index_cmd.index)
app.command("retrieve")(retrieve_cmd.retrieve)
app.command("ask")(ask_cmd.ask)
app.command("demo")(demo_cmd.demo)
app.add_typer(evaluate_cmd.app, name="evaluate")
app.add_typer(train_cmd.app, name="train")
app.add_typer(re_cmd.app, name="re")
app.command("pretrain")(pretrain_cmd.pretrain)
app.command("ensemble")(ensemble_cmd.ensemble)


@app.callback()
def _root(version: bool = typer.Option(False, "--version", help="Print the version and exit.")) -> None:
    if version:
        typer.echo(__version__)
        raise typer.Exit()


def main() -> None:
    try:
        app(standalone_mode=False)
    except OdqaError as e:
        typer.echo(f"odqa: error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        typer.echo("odqa: interrupted", err=True)
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as e:  # click usage errors arrive here in non-standalone mode
        import click
        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        if isinstance(e, click.exceptions.Abort):
            sys.exit(1)
        raise
