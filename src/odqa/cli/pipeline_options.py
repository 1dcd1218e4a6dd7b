"""The pipeline's options, declared once from `odqa.api.PipelineConfig` and shared by ask, evaluate,
predict, serve and (its retriever part) retrieve.

    @pipeline_options()
    def ask(question: str = ..., pipeline: PipelineConfig = PIPELINE, ...): ...

The decorator puts the options where the command's `pipeline` parameter stands and calls the command
with the `PipelineConfig` they make: `--config FILE` (YAML or JSON, as `PipelineConfig.save` writes)
first, the flags given on the command line over it.
"""

from __future__ import annotations

import functools
import inspect
import re
from pathlib import Path
from typing import Any, Callable, List, Optional

import typer

from odqa.api import DEVICE_HELP, PipelineConfig

D = PipelineConfig().flat()          # every setting's default, by its parameter name
PIPELINE: Any = None                 # the placeholder default of a command's `pipeline` parameter

OPTIONS: dict[str, tuple[Any, Any]] = {     # parameter name -> (type, typer option)
    "reader": (Optional[List[str]], typer.Option(
        None, "--reader", "-r", help="Reader checkpoint folder (odqa train reader OUT/best) or shipped model; "
                                     "repeat to soft-vote; 'none' for sentence-level answers.")),
    "k": (int, typer.Option(D["k"], "-k", min=1, help="Passages read per question (the default was chosen on "
                                                      "train questions).")),
    "mode": (str, typer.Option(D["mode"], "--mode", "-m", help="sparse | dense | hybrid | auto (hybrid if the "
                                                               "index has vectors).")),
    "alpha": (Optional[float], typer.Option(D["alpha"], "--alpha", help="Hybrid: weight of the dense score "
                                                                         "(default: the index's hybrid.alpha).")),
    "fusion": (Optional[str], typer.Option(D["fusion"], "--fusion", help="Hybrid: minmax | zscore | rrf "
                                                                         "(default: the index's hybrid.method).")),
    "encoder": (Optional[str], typer.Option(D["encoder"], "--encoder", help="Dense encoder spec; must match the "
                                                                            "one the index was built with.")),
    "filters": (Optional[List[str]], typer.Option(
        None, "--filter", help="Search only passages whose metadata match: field=value, field!=value, "
        "'field in [a,b]', field>=2000, date<2024-01-01; repeat for several (all must hold).")),
    "retrieval_weight": (float, typer.Option(
        D["retrieval_weight"], "--retrieval-weight", help="Weight of the passage's retrieval score (min-max over "
        "the passages read) in span scores; the default was chosen on train questions.")),
    "particles": (Optional[Path], typer.Option(
        D["particles"], "--particles", help="Strip josa from answers with learned rules: a rules file, or 'auto' "
        "for READER/particles.json (odqa train particles), or 'none' (not even a shipped reader's own rules, which "
        "apply by default).")),
    "reader_runtime": (str, typer.Option(
        D["reader_runtime"], "--reader-runtime", help="Where the reader's span model runs: torch | onnx | onnx-int8 "
        "(ONNX Runtime on the CPU, exported once and cached; int8 is the fastest).")),
    "reranker": (Optional[Path], typer.Option(
        D["reranker"], "--reranker", help="Cross-encoder folder (odqa train reranker OUT/best): reranks the "
                                          "retrieved passages before reading.")),
    "rerank": (int, typer.Option(D["rerank"], "--rerank", min=0, help="Passages retrieved for the reranker, which "
                                 "keeps the best -k of them (needs --reranker; default with one: 20).")),
    "device": (str, typer.Option(D["device"], "--device", help=f"Where models run: {DEVICE_HELP}.")),
    "min_probability": (float, typer.Option(
        D["min_probability"], "--min-probability", min=0.0, max=0.999999, help="Below this answer probability the "
        "answer is marked not sure (확실하지 않음), the best guess kept beside it; 0 = always answer.")),
}
CONTEXT = "pipeline_options_context"    # the typer.Context the decorator asks for (which flags were typed)
RETRIEVER = ("k", "mode", "alpha", "fusion", "encoder", "filters", "device")
CONFIG = (Optional[Path], typer.Option(None, "--config", help="Pipeline settings file (YAML or JSON, as "
                                                              "PipelineConfig.save writes it); flags override it."))
# API parameter names as the CLI spells them, for error messages raised below the CLI (`rerank` -> --rerank)
FLAGS = {name: opt.param_decls[0] for name, (_, opt) in OPTIONS.items()} | {
    "api_key": "--api-key", "no_auth": "--no-auth", "index": "--index", "index_dir": "--index-dir"}


def as_flags(message: str, known: set[str] = frozenset()) -> str:
    """An error message below the CLI, its API parameter names (`rerank`) spelled as the CLI's flags (--rerank):
    the pipeline's own names first, then any name whose --kebab-case spelling is among `known` flags."""
    def flag(m: re.Match) -> str:
        name = m[1]
        if name in FLAGS:
            return FLAGS[name]
        kebab = "--" + name.replace("_", "-")
        return kebab if kebab in known else m[0]
    return re.sub(r"`(\w+)`", flag, message)


def pipeline_options(part: tuple[str, ...] = tuple(OPTIONS), config_file: bool = True,
                     replace: dict[str, tuple[Any, Any]] | None = None) -> Callable:
    """The options named in `part` (default: all, with --config FILE) in place of the command's `pipeline`
    parameter; `replace` swaps an option for a command whose setting means something else (retrieve's -k)."""
    options = {n: (replace or {}).get(n, OPTIONS[n]) for n in part}
    if config_file:
        options["config"] = CONFIG

    def deco(fn: Callable) -> Callable:
        sig = inspect.signature(fn, eval_str=True)
        declared = [inspect.Parameter(n, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=opt, annotation=t)
                    for n, (t, opt) in options.items()]
        params = [q for p in sig.parameters.values() for q in (declared if p.name == "pipeline" else [p])]
        own = next((p.name for p in params if p.annotation is typer.Context), None)   # typer passes one context
        if own is None:
            params.append(inspect.Parameter(CONTEXT, inspect.Parameter.POSITIONAL_OR_KEYWORD, default=None,
                                            annotation=typer.Context))

        @functools.wraps(fn)
        def run(**kw: Any) -> Any:
            ctx = kw[own] if own else kw.pop(CONTEXT, None)
            given = {n: kw.pop(n) for n in options}
            path = given.pop("config", None)
            if path is None:
                return fn(**kw, pipeline=PipelineConfig.from_flat(**given))
            flags = {n: v for n, v in given.items()         # the flags typed (or from the environment)
                     if ctx is None or getattr(ctx.get_parameter_source(n), "name", "DEFAULT") != "DEFAULT"}
            return fn(**kw, pipeline=PipelineConfig.load(path).with_overrides(**flags))
        run.__signature__ = sig.replace(parameters=params)
        run.__annotations__ = {p.name: p.annotation for p in params}
        return run
    return deco


def open_pipeline(pipeline: PipelineConfig, index: str | None, index_dir: Optional[Path]):
    """The pipeline of the options given: over `index` (its staleness warned about), or (None) a reader
    alone for closed-domain reading."""
    from odqa.api import Pipeline
    from odqa.cli.common import warn_stale
    pipe = Pipeline.from_config(pipeline.with_overrides(index=index, **({"index_dir": index_dir} if index_dir else {})))
    if index is not None:
        warn_stale(pipe.index)
    return pipe
