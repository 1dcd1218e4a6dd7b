"""The `odqa` command: thin typer wrappers over the library."""

from __future__ import annotations

import sys

import typer

from odqa.api import Interrupted, OdqaError, __version__
from odqa.cli import ask_cmd, demo_cmd, evaluate_cmd, index_cmd, retrieve_cmd, train_cmd
from odqa.cli import re_cmd
from odqa.cli import mcp_cmd, serve_cmd
from odqa.cli import ensemble_cmd, models_cmd, predict_cmd, pretrain_cmd
from odqa.cli.common import setup_logging
from odqa.cli.pipeline_options import as_flags

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
app.command("predict")(predict_cmd.predict)
app.add_typer(models_cmd.app, name="models")
app.command("serve")(serve_cmd.serve)
app.command("mcp")(mcp_cmd.mcp)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"odqa {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit."),
          verbose: bool = typer.Option(False, "--verbose", "-v", help="Log odqa's informational messages on stderr (odqa -v COMMAND)."),
          ) -> None:
    setup_logging(verbose)


def _flags(command) -> set[str]:
    """Every long option of the command tree (`--rerank`, `--train-embeddings`, ...)."""
    own = {o for p in getattr(command, "params", []) for o in (*getattr(p, "opts", []), *getattr(p, "secondary_opts", []))
           if o.startswith("--")}
    return own.union(*(_flags(c) for c in getattr(command, "commands", {}).values()))


def cli_message(message: str) -> str:
    """An error raised below the CLI, its API parameter names spelled as flags (`rerank` -> --rerank, and any
    `name` whose --name spelling is an option of some command)."""
    return as_flags(message, _flags(typer.main.get_command(app)))


def main() -> None:
    setup_logging()
    try:
        code = app(standalone_mode=False)
    except Interrupted as e:
        typer.echo(f"odqa: interrupted: {e}", err=True)
        sys.exit(e.exit_code)
    except OdqaError as e:
        typer.echo(f"odqa: error: {cli_message(str(e))}", err=True)
        sys.exit(e.exit_code)
    except (KeyboardInterrupt, typer.Abort):
        code = 130
    except typer.TyperException as e:      # usage errors: typer's own message and usage line, exit 2
        show = getattr(e, "show", None)
        if show is None:
            raise
        show()
        sys.exit(getattr(e, "exit_code", 2))
    if code == 130:                        # Ctrl-C: typer returns it as exit code 130 without a word
        typer.echo("odqa: interrupted (an index or checkpoint being written was left as it was before)", err=True)
        sys.exit(130)
