"""Which reader answers: a shipped model by name, a checkpoint folder, several (soft-voted), or
sentence-level evidence.

The one place that decides the reader default: no reader given -> the shipped reader
(`ko-reader`, with its particle rules) when it is installed, else sentence-level answers on the
index's dense encoder (or the offline e5 encoder when the index has none); `"none"` asks for
sentence-level answers explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence, Union

from odqa.api.config import PipelineConfig, ReaderSettings
from odqa.errors import ModelError, OdqaError
from odqa.modeling.shipped import find_shipped, shipped_checkpoint

PARTICLES_FILE = "particles.json"
NO_READER = "none"
DEFAULT_READER = "ko-reader"
ReaderSpec = Union[str, Path, None]


def _particle_steps(reader: ReaderSpec, particles: ReaderSpec) -> list:
    if particles is None or str(particles) == NO_READER:      # "none": not even a shipped reader's own rules
        return []
    if str(particles) == "auto":
        if reader is None or str(reader) == NO_READER:
            raise OdqaError("`particles` auto needs a `reader` (the rules live in the reader folder)")
        particles = Path(reader) / PARTICLES_FILE
        if not particles.exists():
            raise ModelError(f"{particles}: no particle rules: learn them with "
                             f"`odqa train particles --reader {reader} --train TRAIN.json`")
    from odqa.reader.postprocess import particle_step
    from odqa.text.particles import ParticleRules
    return [particle_step(ParticleRules.load(Path(particles)))]


def is_hub_name(spec: str) -> bool:
    """`owner/name` as the model hub spells it (not a local path)."""
    parts = spec.split("/")
    return (len(parts) == 2 and all(parts) and not spec.startswith((".", "~"))
            and all(c.isalnum() or c in "-_." for c in spec.replace("/", "")))


def sentence_reader(index, n_best: int, device):
    """Best evidence sentences, scored by the index's dense encoder (or the offline e5 encoder) on `device`."""
    from odqa.reader.sentence import SentenceReader
    if index is not None and index.has_dense():
        encoder = index.query_encoder()           # on the index's device (the pipeline sets it)
    else:
        from odqa.retrieval.dense import DenseEncoder
        encoder = DenseEncoder("offline:multilingual-e5-small", 256, device=device)
    return SentenceReader(encoder, n_best=n_best)


def open_reader(reader: ReaderSpec | Sequence[ReaderSpec] = None, index=None, n_best: int | None = None,
                retrieval_weight: float | None = None, particles: ReaderSpec = None, device=None,
                runtime: str | None = None):
    """The reader for `reader`: a checkpoint folder (odqa's or an HF question-answering one), a hub
    name of an HF QA model, a list of them (soft-voted on character offsets), or None / "none" for
    sentence-level answers; its model runs on `device` (a torch.device, or a name resolved here) in
    `runtime` (torch | onnx | onnx-int8; span readers only: sentence-level answers have no reader model).
    Settings not given take `ReaderSettings`' defaults."""
    d = ReaderSettings()
    n_best = d.n_best if n_best is None else n_best
    retrieval_weight = d.retrieval_weight if retrieval_weight is None else retrieval_weight
    runtime = d.runtime if runtime is None else runtime
    if device is None or isinstance(device, str):       # a name (a pipeline passes the device it resolved)
        from odqa.device import checked_device
        device = checked_device(device or PipelineConfig.model_fields["device"].default)
    if isinstance(reader, (list, tuple)):
        if len(reader) == 1:
            reader = reader[0]
        elif not reader:
            reader = None
        else:
            from odqa.reader.ensemble import VotingReader
            return VotingReader([open_reader(r, index, n_best, retrieval_weight, particles, device, runtime)
                                 for r in reader])
    name = shipped_name(reader)
    if name is None and (reader is None or str(reader) == NO_READER):
        if particles is not None and str(particles) == "auto":
            _particle_steps(reader, particles)      # raises: auto needs a reader folder
        return sentence_reader(index, n_best, device)
    from odqa.reader.reader import Reader
    if name:                                 # a shipped model by name: its own particle rules by default
        folder = shipped_checkpoint(name, "reader")
        if particles is None and (folder / PARTICLES_FILE).exists():
            particles = folder / PARTICLES_FILE
        return Reader(folder, n_best=n_best, retrieval_weight=retrieval_weight,
                      extra_steps=_particle_steps(folder, particles), device=device, runtime=runtime)
    folder = Path(reader)
    _check_one(reader)
    return Reader(folder, n_best=n_best, retrieval_weight=retrieval_weight,
                  extra_steps=_particle_steps(reader, particles), device=device, runtime=runtime)


def shipped_name(reader: ReaderSpec) -> str | None:
    """The shipped model a reader spec names (None = default -> `ko-reader` when installed), else None."""
    if reader is None:
        return DEFAULT_READER if find_shipped(DEFAULT_READER, "reader") is not None else None
    if isinstance(reader, (str, Path)) and not Path(reader).exists() and find_shipped(str(reader)) is not None:
        return str(reader)
    return None


def particle_setting(reader: ReaderSpec | Sequence[ReaderSpec], particles: ReaderSpec) -> str | None:
    """How results name the particle rules in use: the given file/`auto`, or a shipped reader's own rules."""
    if particles is not None:
        return str(particles)
    specs = list(reader) if isinstance(reader, (list, tuple)) else [reader]
    name = shipped_name(specs[0]) if len(specs) == 1 else None
    rules = find_shipped(name).folder / PARTICLES_FILE if name else None
    return str(rules) if rules is not None and rules.exists() else None


def _check_one(reader: ReaderSpec) -> None:
    if reader is None or str(reader) == NO_READER or Path(reader).exists():
        return
    if find_shipped(str(reader)) is None and not is_hub_name(str(reader)):
        raise ModelError(f"{reader}: reader not found (give a folder written by `odqa train reader`, an HF "
                         f"question-answering checkpoint, or '{NO_READER}' for sentence-level answers)")


def check_reader(reader: ReaderSpec | Sequence[ReaderSpec], particles: ReaderSpec, runtime: str) -> None:
    """Refuses, before any index or model is loaded, a reader that is neither a folder, a shipped model
    nor a hub name, particle rules that cannot be read, and an unknown reader runtime."""
    from odqa.reader.onnx_reader import check_runtime
    check_runtime(runtime)
    for r in reader if isinstance(reader, (list, tuple)) else [reader]:
        _check_one(r)
    if particles is not None and str(particles) not in ("auto", NO_READER):
        from odqa.text.particles import ParticleRules
        ParticleRules.load(Path(particles))


def reader_paths(reader: ReaderSpec | Sequence[ReaderSpec]) -> list[str]:
    """How results name the readers: their folders ([] = sentence level)."""
    specs = list(reader) if isinstance(reader, (list, tuple)) else [reader]
    if specs in ([], [None]) and shipped_name(None):
        return [DEFAULT_READER]
    return [str(r) for r in specs if r is not None and str(r) != NO_READER]
