"""Devices: resolution and its one-line errors, moving batches, mixed precision on the CPU, the training loop
through accelerate, checkpoints that load wherever they were written, inference on the model's device."""

from __future__ import annotations

import logging
import sys
from collections import namedtuple
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("accelerate")

from odqa import device as dev  # noqa: E402
from odqa.errors import OdqaError  # noqa: E402
from tests.test_cli import odqa  # noqa: E402
from tests.test_training import Toy, ToyTask, cfg  # noqa: E402

NO_GPU = not torch.cuda.is_available()


@pytest.fixture
def fake_gpus(monkeypatch):
    """Two CUDA devices as torch would report them (bf16 support switchable)."""
    state = {"bf16": True}
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda i=0: "Fake H200")
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: state["bf16"])
    return state


# ------------------------------------------------------------------ resolution


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only machine")
def test_auto_and_cpu_resolve_to_the_cpu_here():
    assert dev.resolve_device("auto") == torch.device("cpu")
    assert dev.resolve_device("cpu") == torch.device("cpu")
    assert dev.resolve_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only machine")
@pytest.mark.parametrize("spec", ["cuda", "cuda:3", "CUDA:0"])
def test_an_unavailable_gpu_is_one_line_naming_what_torch_sees(spec):
    with pytest.raises(OdqaError) as e:
        dev.resolve_device(spec)
    msg = str(e.value)
    assert "\n" not in msg and f"device '{spec}' is not available" in msg and "torch sees cpu" in msg


@pytest.mark.parametrize("spec", ["bogus", "cuda:x", "gpu", "cuda:-1"])
def test_an_unknown_device_names_the_choices(spec):
    with pytest.raises(OdqaError, match=r"unknown device .*choose from auto \| cpu \| cuda \| cuda:N \| mps.*torch sees"):
        dev.resolve_device(spec)


def test_with_gpus_auto_takes_cuda_and_a_missing_index_names_the_gpus(fake_gpus):
    assert dev.resolve_device("auto") == torch.device("cuda", 0)
    assert dev.resolve_device("cuda:1") == torch.device("cuda", 1)
    with pytest.raises(OdqaError, match=r"'cuda:3' is not available: torch sees cpu, cuda:0 \(Fake H200\), cuda:1"):
        dev.resolve_device("cuda:3")


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only machine")
def test_cli_device_cuda_fails_in_one_line_before_loading_anything(tmp_path):
    with mock.patch("odqa.index.indexing.load_index", side_effect=AssertionError("index loaded")), \
         mock.patch("odqa.api.readers.open_reader", side_effect=AssertionError("reader loaded")):
        p = odqa("ask", "한라산의 높이는?", "--index", "demo", "--device", "cuda", cwd=tmp_path, check=False)
    assert p.returncode == OdqaError.exit_code
    assert p.stderr.strip().splitlines() == ["odqa: error: device 'cuda' is not available: torch sees "
                                             "cpu (no CUDA build / no GPU)"]


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only machine")
@pytest.mark.parametrize("args", [["train", "reader", "--train", "missing.json", "--out", "o"],
                                  ["re", "evaluate", "--data", "missing.json"],
                                  ["index", "missing.jsonl", "--name", "x", "--dense"]])
def test_other_commands_refuse_an_unavailable_gpu_first(tmp_path, args):
    p = odqa(*args, "--device", "cuda:1", cwd=tmp_path, check=False)
    assert p.returncode == OdqaError.exit_code and "device 'cuda:1' is not available" in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1


# ---------------------------------------------------------------- moving work


def test_move_to_device_reaches_every_tensor_of_a_nested_batch():
    from transformers import BatchEncoding
    Pair = namedtuple("Pair", "a b")
    batch = {"enc": BatchEncoding({"input_ids": torch.ones(2, 3)}), "list": [torch.zeros(1), "text"],
             "pair": Pair(torch.zeros(2), 3), "tuple": (torch.ones(1),)}
    moved = dev.move_to_device(batch, "meta")
    assert isinstance(moved["enc"], BatchEncoding) and moved["enc"]["input_ids"].device.type == "meta"
    assert moved["list"][0].is_meta and moved["list"][1] == "text"
    assert isinstance(moved["pair"], Pair) and moved["pair"].a.is_meta and moved["pair"].b == 3
    assert moved["tuple"][0].is_meta and batch["tuple"][0].device.type == "cpu"   # the original is untouched


def test_model_device_batch_sizes_and_autocast(fake_gpus):
    assert dev.model_device(torch.nn.Linear(2, 2).to("meta")).type == "meta"
    assert dev.model_device(torch.nn.Identity()) == torch.device("cpu")
    assert dev.device_batch_size(32, "cpu") == 32 and dev.device_batch_size(32, "cuda:0") == 32 * dev.CUDA_BATCH_FACTOR
    assert dev.autocast_dtype("cpu") is None and dev.autocast_dtype("cuda:0") == torch.bfloat16
    fake_gpus["bf16"] = False
    assert dev.autocast_dtype("cuda:0") == torch.float16


def test_mixed_precision_choice(fake_gpus, caplog):
    cuda = torch.device("cuda", 0)
    assert dev.resolve_mixed_precision("auto", cuda) == "bf16"
    fake_gpus["bf16"] = False
    assert dev.resolve_mixed_precision("auto", cuda) == "fp16"
    assert dev.resolve_mixed_precision("no", cuda) == "no"
    dev._warned.clear()
    with caplog.at_level(logging.WARNING, logger="odqa"):
        assert dev.resolve_mixed_precision("bf16", cuda) == "fp16"
    assert "does not support bf16" in caplog.text
    with pytest.raises(OdqaError, match="unknown mixed_precision 'fp8'"):
        dev.resolve_mixed_precision("fp8", cuda)


def test_faiss_goes_to_the_gpu_only_with_faiss_gpu_and_cuda(monkeypatch):
    from odqa.retrieval.dense import faiss_for_search
    cpu_index = object()
    plain = SimpleNamespace()                                      # faiss-cpu: no StandardGpuResources
    monkeypatch.setitem(sys.modules, "faiss", plain)
    assert faiss_for_search(cpu_index, torch.device("cuda", 0)) is cpu_index
    calls = []
    gpu = SimpleNamespace(StandardGpuResources=lambda: "res",
                          index_cpu_to_gpu=lambda res, i, ix: calls.append((res, i, ix)) or SimpleNamespace())
    monkeypatch.setitem(sys.modules, "faiss", gpu)
    assert faiss_for_search(cpu_index, torch.device("cpu")) is cpu_index
    moved = faiss_for_search(cpu_index, torch.device("cuda", 1))
    assert calls == [("res", 1, cpu_index)] and moved.odqa_resources == "res"


# ------------------------------------------------------------------- training


def _train(tmp_path, name, **kw):
    from odqa.training import train
    model = Toy(hidden=True)
    res = train(model, ToyTask(), cfg(epochs=2, grad_accum=2, max_grad_norm=1.0, **kw), tmp_path / name, quiet=True)
    return model, res


@pytest.mark.skipif(not NO_GPU, reason="checks the CPU-only machine")
def test_mixed_precision_on_cpu_warns_once_and_trains_as_without(tmp_path, caplog):
    dev._warned.clear()
    plain, res_plain = _train(tmp_path, "no", mixed_precision="no", device="cpu")
    with caplog.at_level(logging.WARNING, logger="odqa"):
        mixed, res_mixed = _train(tmp_path, "bf16", mixed_precision="bf16")
        _train(tmp_path, "bf16-again", mixed_precision="bf16")
    assert caplog.text.count("mixed_precision bf16 is ignored on cpu") == 1
    for a, b in zip(plain.state_dict().values(), mixed.state_dict().values()):
        assert torch.equal(a, b)
    assert res_plain.best_metric == res_mixed.best_metric
    assert [r["device"] for r in res_mixed.history] == ["cpu", "cpu"]
    rows = (tmp_path / "bf16" / "history.jsonl").read_text().splitlines()
    assert len(rows) == 2 and all('"device": "cpu"' in r for r in rows)


def test_the_loop_runs_through_accelerate_and_announces_its_device(tmp_path, capsys, monkeypatch):
    from odqa.training import train
    monkeypatch.delenv("ODQA_QUIET", raising=False)
    with mock.patch("accelerate.Accelerator.backward", autospec=True,
                    side_effect=lambda self, loss, **kw: loss.backward()) as backward, \
         mock.patch("accelerate.Accelerator.clip_grad_norm_", autospec=True,
                    side_effect=lambda self, params, limit: torch.nn.utils.clip_grad_norm_(params, limit)) as clip:
        train(Toy(), ToyTask(), cfg(max_steps=2, grad_accum=2, device="cpu"), tmp_path / "run", quiet=False)
    assert backward.call_count == 4 and clip.call_count == 2     # 2 micro-batches per step, 2 steps
    assert "odqa: training on cpu" in capsys.readouterr().err


def test_training_device_is_checked_when_the_config_is_made():
    from odqa.config import ConfigError
    from odqa.training import TrainConfig
    assert TrainConfig(device="cuda:2").device == "cuda:2"
    with pytest.raises(ConfigError, match="device"):
        TrainConfig(device="gpu0")
    with pytest.raises(ConfigError, match="mixed_precision"):
        TrainConfig(mixed_precision="fp8")


def test_resumable_state_holds_cpu_tensors(tmp_path):
    _train(tmp_path, "run", device="cpu")
    state = torch.load(tmp_path / "run" / "last" / "training_state.pt", map_location="meta", weights_only=False)
    # loading onto `meta` shows where the tensors were saved from: map_location moves them all
    assert all(t.is_meta for t in state["model"].values())
    state = torch.load(tmp_path / "run" / "last" / "training_state.pt", weights_only=False)
    assert all(t.device.type == "cpu" for t in state["model"].values())
    assert all(t.device.type == "cpu" for s in state["optimizer"]["state"].values() for t in s.values()
               if isinstance(t, torch.Tensor))


def test_cpu_state_moves_tensors_from_another_device():
    on_gpu = mock.MagicMock(spec=torch.Tensor)
    on_gpu.to.return_value = torch.ones(2)
    out = dev.cpu_state({"w": on_gpu, "step": 3})
    on_gpu.to.assert_called_once_with(torch.device("cpu"), non_blocking=False)
    assert torch.equal(out["w"], torch.ones(2)) and out["step"] == 3


# ---------------------------------------------------------------- checkpoints


def test_save_model_writes_cpu_tensors_whatever_device_holds_them(tiny, tmp_path):
    from odqa.modeling.checkpoint import build_model, save_model
    from odqa.modeling.heads import HeadConfig
    tok, model = build_model(str(tiny), "span", HeadConfig())
    real = model.head.state_dict()
    fakes = {}
    for k, v in real.items():                 # each head tensor "on a GPU": it reaches the file only via .to(cpu)
        fakes[k] = mock.MagicMock(spec=torch.Tensor)
        fakes[k].to.return_value = v.clone()
    written = {}
    with mock.patch.object(model.head, "state_dict", return_value=fakes), \
         mock.patch("safetensors.torch.save_file", side_effect=lambda d, path: written.update(d)):
        save_model(model, tok, tmp_path / "ck")
    assert set(written) == set(real) and all(w.device.type == "cpu" for w in written.values())
    assert all(f.to.call_args.args[0] == torch.device("cpu") for f in fakes.values())


def test_checkpoint_loads_on_the_device_asked_for(tiny, tmp_path):
    from odqa.modeling.checkpoint import build_model, load_model, save_model
    from odqa.modeling.heads import HeadConfig
    tok, model = build_model(str(tiny), "span", HeadConfig(type="cnn"))
    save_model(model.to("cpu"), tok, tmp_path / "ck")
    _, loaded, _ = load_model(tmp_path / "ck", "span", device=torch.device("cpu"))
    assert {p.device.type for p in loaded.parameters()} == {"cpu"}
    for a, b in zip(model.state_dict().values(), loaded.state_dict().values()):
        assert torch.equal(a, b)
    if NO_GPU:
        with mock.patch("transformers.AutoModel.from_pretrained", side_effect=AssertionError("weights read")), \
             pytest.raises(OdqaError, match="device 'cuda' is not available"):
            load_model(tmp_path / "ck", "span", device="cuda")


def test_predict_spans_feeds_the_model_where_it_is(tiny):
    from odqa.reader.inference import WindowSettings, predict_spans
    from odqa.types import Passage
    from transformers import AutoTokenizer
    seen = []

    class OnMeta(torch.nn.Module):             # parameters on `meta`: inputs must follow them there
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.zeros(1, device="meta"))

        def forward(self, input_ids, attention_mask, token_type_ids=None):
            seen.append((input_ids.device.type, attention_mask.device.type))
            return torch.zeros(input_ids.shape), torch.zeros(input_ids.shape)

    tok = AutoTokenizer.from_pretrained(str(tiny))
    predict_spans(OnMeta().eval(), tok, ["한라산은?"], [[Passage("p", "t", "한라산은 제주도에 있는 산이다")]],
                  WindowSettings(max_length=32, stride=8))
    assert seen and set(seen) == {("meta", "meta")}


def test_dense_encoder_runs_where_asked(tiny):
    from odqa.retrieval.dense import DenseEncoder
    enc = DenseEncoder(str(tiny), 32, device="cpu")
    assert enc.device == torch.device("cpu") and dev.model_device(enc.model).type == "cpu"
    assert enc.encode(["한라산"], "query").dtype.name == "float32"
    if NO_GPU:
        with pytest.raises(OdqaError, match="device 'cuda' is not available"):
            DenseEncoder(str(tiny), 32, device="cuda")


def test_reader_takes_a_device(tiny, tmp_path):
    from odqa.modeling.checkpoint import build_model, save_model
    from odqa.modeling.heads import HeadConfig
    from odqa.reader.reader import Reader
    tok, model = build_model(str(tiny), "span", HeadConfig())
    save_model(model, tok, tmp_path / "ck", extra={"reader": {"window": {"max_length": 32, "stride": 8}}})
    reader = Reader(Path(tmp_path / "ck"), device="cpu", retrieval_weight=0.0)
    assert reader.device == torch.device("cpu") and reader.batch_size == 32
    assert dev.model_device(reader.model).type == "cpu"
