"""A trained extractive reader: `Reader(folder, retrieval_weight=w).read(question, hits) -> list[Answer]`.

The folder is an odqa reader checkpoint (`odqa train reader`: backbone + span head + window
settings) or a Hugging Face question-answering checkpoint (`AutoModelForQuestionAnswering`,
start/end logits); a hub name of one works too when the hub is reachable.

`runtime` runs an odqa checkpoint's span model in torch (default) or in ONNX Runtime, fp32 (`onnx`)
or dynamic int8 (`onnx-int8`), exported once and cached (`odqa.reader.onnx_reader`); the ONNX
runtimes run on the CPU.

The reader reads questions and passages through `odqa.text.normalize` (as the retrievers match them)
and reports every answer in the original passage text: `text == passage.text[start:end]`.
"""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from odqa.errors import ModelError
from odqa.modeling.checkpoint_files import HEAD_JSON, checked_meta, checked_tokenizer
from odqa.reader.inference import WindowSettings, predict_spans
from odqa.reader.postprocess import PostProcessor, Step, default_postprocessor
from odqa.text.normalize import Normalized, normalize, normalize_with_map
from odqa.timing import stage
from odqa.types import Answer, Hit

if TYPE_CHECKING:            # the ONNX runtimes read without torch: it is imported where the torch model loads
    import torch

CALIBRATION_FILE = "calibration.json"   # {"temperature": T, ...}: written by `odqa train calibration`


def read_temperature(folder: Path) -> float:
    """The reader's fitted temperature (1.0 = uncalibrated) from FOLDER/calibration.json."""
    import json
    path = Path(folder) / CALIBRATION_FILE
    if not path.is_file():
        return 1.0
    try:
        t = float(json.loads(path.read_text(encoding="utf-8"))["temperature"])
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise ModelError(f"{path}: unreadable calibration ({e.__class__.__name__}); fit it again with "
                         f"`odqa train calibration`") from None
    if not 0.0 < t < 1000.0:
        raise ModelError(f"{path}: temperature {t} out of range (0, 1000)")
    return t


def _torch_device(device: str | torch.device) -> torch.device:
    import torch

    from odqa.device import resolve_device
    return device if isinstance(device, torch.device) else resolve_device(device)


class Reader:
    """A span model over windows: an odqa checkpoint or an HF question-answering checkpoint."""

    def __init__(self, folder: str | Path, *, retrieval_weight: float, batch_size: int | None = None,
                 n_best: int = 20, extra_steps: list[Step] | None = None, device: str | torch.device = "auto",
                 runtime: str = "torch"):
        """device: a torch.device (as a pipeline resolved it) or a name (auto | cpu | cuda | cuda:N | mps);
        batch_size None = 32 windows (4x that on CUDA); retrieval_weight: of the passage's retrieval score in
        span scores; runtime: torch | onnx | onnx-int8 (ONNX Runtime on the CPU, odqa checkpoints only)."""
        from odqa.device import NAMES_WITHOUT_TORCH, cpu_only, device_batch_size
        from odqa.reader.onnx_reader import check_runtime
        self.folder, self.runtime = Path(folder), check_runtime(runtime)
        onnx = runtime != "torch"
        if not onnx:
            self.device = _torch_device(device)
        elif isinstance(device, str) and device.strip().lower() in NAMES_WITHOUT_TORCH:
            self.device = "cpu"                 # nothing to warn about: torch is not imported to resolve it
        else:
            self.device = cpu_only(device, f"reader-{runtime}", f"reader runtime {runtime}")
        if (self.folder / HEAD_JSON).exists():
            if onnx:                            # the cached export runs; neither torch nor transformers load
                from concurrent.futures import ThreadPoolExecutor

                from odqa.reader.onnx_reader import OnnxSpanModel
                self.meta = checked_meta(self.folder, "span")     # nothing is exported from a damaged checkpoint
                with ThreadPoolExecutor(1) as pool:   # ONNX Runtime opens its session without the GIL,
                    opening = pool.submit(OnnxSpanModel, self.folder, runtime)    # beside the tokenizer's load
                    self.tokenizer = checked_tokenizer(self.folder, self.meta, hf=False)
                    self.model = opening.result()
                # the export took token types when transformers' tokenizer gave them: read with the same fields
                self.tokenizer.model_input_names = [n for n in ("input_ids", "token_type_ids", "attention_mask")
                                                    if n in self.model.inputs or n == "attention_mask"]
            else:
                from odqa.modeling.checkpoint import load_model
                self.tokenizer, self.model, self.meta = load_model(self.folder, "span", device=self.device)
            settings = self.meta.get("extra", {}).get("reader", {}).get("window")
            if settings is None:
                raise ModelError(f"{self.folder}: checkpoint has no reader window settings (was it written by odqa?)")
            self.window = WindowSettings(**settings)
        elif onnx:
            raise ModelError(f"{self.folder}: reader runtime {runtime} needs an odqa reader checkpoint "
                             f"({HEAD_JSON}, from `odqa train reader`); use runtime torch")
        elif self.folder.is_dir() and not _is_hf_qa_folder(self.folder):
            raise ModelError(f"{self.folder}: not a reader: expected an odqa reader checkpoint ({HEAD_JSON}, from "
                             f"`odqa train reader`) or a Hugging Face question-answering checkpoint (config.json "
                             f"with a *ForQuestionAnswering architecture)")
        else:                                   # an HF QA folder, or a hub name
            from odqa.reader.hf_qa import load_hf_qa
            self.tokenizer, self.model, self.window = load_hf_qa(folder)
            self.meta = {"kind": "span", "hf_question_answering": str(folder)}
        self.window.n_best = max(self.window.n_best, n_best)
        if not onnx:
            self.model.to(self.device)
            self.model.eval()                  # once: concurrent reads never switch modes
        self.batch_size = batch_size or device_batch_size(32, self.device)
        self.n_best, self.extra_steps = n_best, list(extra_steps or [])
        self.temperature = read_temperature(self.folder) if self.folder.is_dir() else 1.0
        self.post: PostProcessor = self.postprocessor(retrieval_weight)
        self._tokenize = threading.Lock()      # a fast tokenizer's truncation settings are shared state

    @property
    def name(self) -> str:
        return self.folder.name

    def postprocessor(self, retrieval_weight: float) -> PostProcessor:
        """This reader's post-processing (its extra steps, e.g. particle rules) at another retrieval weight."""
        return default_postprocessor(self.n_best, retrieval_weight, self.extra_steps, self.temperature)

    def read_raw(self, questions: list[str], hits: list[list[Hit]], quiet: bool = True) -> list[list[Answer]]:
        """Every window's n-best spans per question with their passage's retrieval score, before post-processing
        (what `read_batch` post-processes; kept by callers that try several post-processings on one reading)."""
        passages = [[h.passage for h in hs] for hs in hits]
        scores = [[h.score for h in hs] for hs in hits]
        return predict_spans(self.model, self.tokenizer, questions, passages, self.window, self.batch_size,
                             scores, quiet=quiet, tokenize_lock=self._tokenize)

    def read_batch(self, questions: list[str], hits: list[list[Hit]], quiet: bool = True) -> list[list[Answer]]:
        """Post-processed n-best spans per question (empty list: no answer found), read on the normalised
        texts and reported in the original ones."""
        views = [{h.passage.id: normalize_with_map(h.passage.text) for h in hs} for hs in hits]
        read = [[replace(h, passage=replace(h.passage, text=v[h.passage.id].text)) for h in hs]
                for hs, v in zip(hits, views)]
        raw = self.read_raw([normalize(q) for q in questions], read, quiet)
        with stage("read_postprocess"):
            return [[_in_original(a, v[a.passage_id]) for a in self.post(spans, {p: n.text for p, n in v.items()})]
                    for spans, v in zip(raw, views)]

    def read(self, question: str, hits: list[Hit]) -> list[Answer]:
        return self.read_batch([question], [hits])[0]

    def count_windows(self, question: str, hits: list[Hit]) -> int:
        """How many windows `read_batch` reads for `question` over `hits` (the passages cut as it cuts them)."""
        if not hits:
            return 0
        from odqa.reader.features import make_windows
        texts = [normalize(h.passage.text) for h in hits]
        w = self.window
        with self._tokenize:
            win = make_windows(self.tokenizer, [normalize(question)] * len(texts), texts, w.max_length, w.stride,
                               w.max_query_length)
        return len(win.input_ids)


def _is_hf_qa_folder(folder: Path) -> bool:
    from odqa.reader.hf_qa import is_hf_qa_folder
    return is_hf_qa_folder(folder)


def _in_original(answer: Answer, view: Normalized) -> Answer:
    """`answer` (offsets into the normalised passage) with its offsets and text in the original passage."""
    if view.starts is None:
        return answer
    start, end = view.to_original(answer.start, answer.end)
    return replace(answer, text=view.original[start:end], start=start, end=end)
