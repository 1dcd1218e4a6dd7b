"""Which device models run on, and getting work there.

`resolve_device("auto" | "cpu" | "cuda" | "cuda:N" | "mps")` is the one place a device name becomes a
`torch.device`: `auto` takes CUDA when torch sees it, else MPS, else the CPU; a device torch does not
see is one `OdqaError` line naming the ones it does. The helpers move nested batches (dicts,
`BatchEncoding`, lists, tuples of tensors) to a device, find a model's device, size batches for it
and pick the autocast dtype inference runs under (bf16 where supported, else fp16 on CUDA; none on
the CPU, where results stay exactly as they were).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from odqa.errors import OdqaError
from odqa.settings import env

if TYPE_CHECKING:            # torch is imported where a device is resolved, not when this module is
    import torch

log = logging.getLogger(__name__)
DEVICE_HELP = "auto | cpu | cuda | cuda:N | mps (auto: CUDA when torch sees a GPU, else MPS, else the CPU)"
DEVICE_PATTERN = r"^(auto|cpu|mps|cuda(:\d+)?)$"      # what a config's `device` field accepts
MIXED_PRECISION = ("auto", "no", "bf16", "fp16")
CUDA_BATCH_FACTOR = 4          # inference batches this many times larger on a CUDA device
_warned: set[str] = set()
NAMES_WITHOUT_TORCH = ("auto", "cpu")   # names that may stay names until a torch model runs


def _mps_available() -> bool:
    import torch
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def visible_devices() -> str:
    """The devices torch sees, in words (for error messages)."""
    import torch
    seen = ["cpu"]
    if torch.cuda.is_available():
        seen += [f"cuda:{i} ({torch.cuda.get_device_name(i)})" for i in range(torch.cuda.device_count())]
    elif torch.version.cuda is None:
        seen[0] = "cpu (no CUDA build / no GPU)"
    else:
        seen[0] = f"cpu (CUDA {torch.version.cuda} build, no GPU visible)"
    if _mps_available():
        seen.append("mps")
    return ", ".join(seen)


def _unavailable(spec: str) -> OdqaError:
    return OdqaError(f"device '{spec}' is not available: torch sees {visible_devices()}")


def resolve_device(spec: str | torch.device | None = "auto") -> torch.device:
    """`auto` | `cpu` | `cuda` | `cuda:N` | `mps` (or a torch.device) -> a device torch can use now."""
    import torch
    if isinstance(spec, torch.device):
        spec = str(spec)
    name = (spec or "auto").strip().lower()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", torch.cuda.current_device())
        return torch.device("mps") if _mps_available() else torch.device("cpu")
    if name == "cpu":
        return torch.device("cpu")
    if name == "mps":
        if not _mps_available():
            raise _unavailable(spec)
        return torch.device("mps")
    kind, _, index = name.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise OdqaError(f"unknown device '{spec}' (choose from {DEVICE_HELP.split(' (')[0]}); "
                        f"torch sees {visible_devices()}")
    if not torch.cuda.is_available() or (index and int(index) >= torch.cuda.device_count()):
        raise _unavailable(spec)
    return torch.device("cuda", int(index) if index else torch.cuda.current_device())


def checked_device(spec: str | torch.device | None) -> str | torch.device:
    """`spec` checked, resolved only where that needs torch: `auto` and `cpu` stay names (resolved by whoever
    runs a torch model with them), so that work without one (sparse retrieval, ONNX Runtime) never imports
    torch; any other name is resolved now (`resolve_device`), refusing one torch does not see."""
    name = (spec or "auto").strip().lower() if isinstance(spec, str) or spec is None else None
    return name if name in NAMES_WITHOUT_TORCH else resolve_device(spec)


def device_kind(device: str | torch.device) -> str:
    """`cpu`, `cuda`, `mps` or `auto` (an unresolved name) of a torch.device or a device name."""
    return (device.strip().lower() if isinstance(device, str) else device.type).split(":")[0]


def cpu_only(device: str | torch.device, key: str, what: str) -> torch.device:
    """The CPU, for work that runs only there (ONNX Runtime, int8 encoders). A device name is checked first;
    a GPU named explicitly gets one warning (`auto`, and a torch.device a caller resolved, fall back quietly:
    the caller that resolved it warns when its own setting named the GPU)."""
    import torch
    resolved = resolve_device(device)
    if resolved.type != "cpu" and isinstance(device, str) and device.strip().lower() != "auto":
        warn_once(key, f"{what} runs on the CPU, not {resolved}")
    return torch.device("cpu")


def move_to_device(batch: Any, device: torch.device | str, non_blocking: bool = False) -> Any:
    """Tensors inside dicts / BatchEncodings / lists / tuples moved to `device` (other values as they are)."""
    import torch
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=non_blocking)
    if isinstance(batch, Mapping):                       # dict, BatchEncoding (a UserDict), OrderedDict
        moved = {k: move_to_device(v, device, non_blocking) for k, v in batch.items()}
        return moved if type(batch) is dict else type(batch)(moved)
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):                              # namedtuple
        return type(batch)(*(move_to_device(v, device, non_blocking) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(move_to_device(v, device, non_blocking) for v in batch)
    return batch


def pin_memory(batch: Any) -> Any:
    """Tensors of a batch in pinned (page-locked) host memory, for asynchronous copies to a GPU."""
    import torch
    if isinstance(batch, torch.Tensor):
        return batch.pin_memory() if batch.device.type == "cpu" else batch
    if isinstance(batch, Mapping):
        return {k: pin_memory(v) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)) and not hasattr(batch, "_fields"):
        return type(batch)(pin_memory(v) for v in batch)
    return batch


def to_device_batch(batch: Any, device: torch.device) -> Any:
    """What the training loop and inference do with each batch: on CUDA pinned and copied without
    blocking, elsewhere moved as is (a no-op for CPU tensors on the CPU)."""
    if device.type == "cuda":
        return move_to_device(pin_memory(batch), device, non_blocking=True)
    return move_to_device(batch, device)


def model_device(model: Any) -> torch.device:
    """The device of a model's first parameter (or buffer); the CPU for a model with neither."""
    import torch
    for tensors in (getattr(model, "parameters", None), getattr(model, "buffers", None)):
        if tensors is not None:
            for t in tensors():
                return t.device
    return torch.device("cpu")


def device_batch_size(base: int, device: torch.device | str) -> int:
    """Inference batch size for `device`: `base` on the CPU, CUDA_BATCH_FACTOR times it on CUDA."""
    return base * CUDA_BATCH_FACTOR if device_kind(device) == "cuda" else base


def bf16_supported(device: torch.device) -> bool:
    import torch
    return device.type == "cuda" and torch.cuda.is_available() and torch.cuda.is_bf16_supported()


def autocast_dtype(device: torch.device | str) -> torch.dtype | None:
    """The dtype inference autocasts to: bf16 where supported, else fp16 on CUDA; None elsewhere."""
    import torch
    device = torch.device(device)
    if device.type != "cuda":
        return None
    return torch.bfloat16 if bf16_supported(device) else torch.float16


def inference_autocast(device: torch.device | str):
    """Autocast context for inference on `device` (a null context on the CPU and MPS)."""
    import torch
    dtype = autocast_dtype(device)
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type="cuda", dtype=dtype)


def warn_once(key: str, message: str) -> None:
    if key not in _warned:
        _warned.add(key)
        log.warning(message)


def resolve_mixed_precision(mode: str, device: torch.device) -> str:
    """`auto` | `no` | `bf16` | `fp16` for training on `device` -> what accelerate runs (`no`/`bf16`/`fp16`).

    auto: bf16 on a CUDA device that supports it, else fp16 on CUDA, else no. Asked for on a device
    without CUDA, mixed precision is ignored with one warning (the run is the same as with `no`)."""
    if mode not in MIXED_PRECISION:
        raise OdqaError(f"unknown mixed_precision '{mode}' (choose from {', '.join(MIXED_PRECISION)})")
    if device.type != "cuda":
        if mode not in ("auto", "no"):
            warn_once(f"mp-{mode}-{device.type}", f"mixed_precision {mode} is ignored on {device.type}: "
                      "training runs in fp32")
        return "no"
    if mode == "auto":
        return "bf16" if bf16_supported(device) else "fp16"
    if mode == "bf16" and not bf16_supported(device):
        warn_once("mp-bf16", f"{device} does not support bf16: training with fp16 and a grad scaler instead")
        return "fp16"
    return mode


def cpu_state(state: Any) -> Any:
    """A state dict (or any nested structure of tensors) with every tensor on the CPU: what checkpoints hold,
    so that one written on a GPU loads on a machine without one."""
    import torch
    return move_to_device(state, torch.device("cpu"))


def launched_processes() -> int:
    """How many processes `accelerate launch` / torchrun started for this run (1 without a launcher)."""
    return env().world_size or 1


def make_accelerator(spec: str, mixed_precision: str):
    """(accelerate.Accelerator, the mixed precision it runs) for training on device `spec`.

    Alone (no launcher), the device is `resolve_device(spec)` and each call starts from a fresh accelerate
    state, so runs with other settings can follow in one process. Under `accelerate launch`, each process
    takes the GPU its rank gives it; `spec` may then only say auto, cuda or cpu."""
    import torch
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState
    from accelerate.utils import DistributedDataParallelKwargs

    ddp = DistributedDataParallelKwargs(find_unused_parameters=True)   # frozen phases leave parameters unused
    if launched_processes() > 1:
        kind = (spec or "auto").split(":")[0]
        if kind not in ("auto", "cuda", "cpu"):
            raise OdqaError(f"device '{spec}' under accelerate launch: use auto, cuda or cpu (each process takes "
                            "the GPU of its rank)")
        if kind == "cuda" and not torch.cuda.is_available():
            raise _unavailable(spec)
        cpu = kind == "cpu"
        device = torch.device("cpu") if cpu else resolve_device("auto")
        mp = resolve_mixed_precision(mixed_precision, device)
        return Accelerator(cpu=cpu, mixed_precision=mp, kwargs_handlers=[ddp]), mp
    device = resolve_device(spec)
    mp = resolve_mixed_precision(mixed_precision, device)
    AcceleratorState._reset_state(reset_partial_state=True)   # one process, one run at a time: its own settings
    if device.type == "cuda":
        torch.cuda.set_device(device)                            # accelerate then takes this GPU as "cuda"
    acc = Accelerator(cpu=device.type == "cpu", mixed_precision=mp, kwargs_handlers=[ddp])
    if acc.device.type != device.type:
        raise OdqaError(f"accelerate chose {acc.device} for device '{spec}' (torch sees {visible_devices()})")
    return acc, mp
