"""The options every training command shares (`odqa train ...`, `odqa re train`, `odqa pretrain`), declared once.

Each is a function of the command's default (the task's own, or None where a config file supplies it, as
`odqa re train` does) so that one declaration serves every command."""

from __future__ import annotations

from typing import Any

import typer


def epochs_opt(default: Any = 1.0):
    return typer.Option(default, "--epochs")


def lr_opt(default: Any, help: str | None = None):
    return typer.Option(default, "--lr", help=help)


def max_steps_opt(default: Any = 0):
    return typer.Option(default, "--max-steps", help="Stop after this many optimizer steps (0 = epochs).")


def time_budget_opt(default: Any = 0.0, then: str = "evaluate and save"):
    return typer.Option(default, "--time-budget", help=f"Minutes; stop, {then} when reached.")


def stop_after_opt(default: Any = 0):
    return typer.Option(default, "--stop-after", help="Stop at this step, keeping the schedule of --epochs "
                        "(compare settings at a shared budget; 0 = off).")


def freeze_embeddings_opt(default: Any = True, help: str | None = None):
    return typer.Option(default, "--freeze-embeddings/--train-embeddings", help=help)


def seed_opt(default: Any = 42):
    return typer.Option(default, "--seed")


def resume_opt(help: str = "Continue from OUT/last."):
    return typer.Option(False, "--resume", help=help)
