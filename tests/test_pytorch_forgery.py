"""Forgeries of a PyTorch answer (issue 25, item 6), tried from inside the kernel: each earns
nothing it did not do, because every number is measured by the trusted side on the ONNX graph the
kernel exported (grader/measure/onnx_model.py), never on the module or the kernel's word.

The fast tests run the kernel's own export function here, in the test process, on the forged
module, as the kernel would after the student's cells; the slow one grades a notebook with three
forgeries end to end. Run with `pytest -m hostile`.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="the PyTorch extra: pip install -e '.[torch]'")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import notebook_factory as nf  # noqa: E402
from grader import pipeline  # noqa: E402
from grader.harvest import artifacts  # noqa: E402
from grader.measure import onnx_model  # noqa: E402
from test_pytorch_lenet5 import _architecture_checks, _models, _views  # noqa: E402

pytestmark = pytest.mark.hostile

ASSIGNMENT = "lenet5"
RNG = np.random.default_rng(0)
# What a forger memorised: "training" images and their labels.
SEEN = RNG.random((32, 1, 28, 28), dtype=np.float32)
SEEN_LABELS = RNG.integers(0, 10, 32)


def _nearest_label(x: np.ndarray) -> np.ndarray:
    """The memorised label of the nearest seen image, one-hot: a perfect score on what it saw."""
    flat = x.reshape(len(x), -1)
    distances = ((flat[:, None, :] - SEEN.reshape(len(SEEN), -1)[None]) ** 2).sum(-1)
    return np.eye(10, dtype=np.float32)[SEEN_LABELS[distances.argmin(1)]]


def _lenet(name: str = "cnn"):
    return _models("pytorch-sequential")[name]


def _earned(assignment, views: dict) -> dict[str, float]:
    return {cid: r.points for cid, r in _architecture_checks(assignment, views).items()}


def _earns_nothing(tmp_path: Path, assignment, model) -> str:
    """The forged model's export: not made (the kernel's reason returned), refused by the trusted
    side (its reason), or read and worth nothing to any architecture check and constant whatever
    the input."""
    entry = kernel_export(tmp_path, model)
    if entry["status"] != "found":
        return entry["message"]
    try:
        view = onnx_model.open_export(tmp_path / entry["export"], entry, True)
    except onnx_model.ExportError as exc:
        return str(exc)
    views = {"cnn": view}
    assert view.description["layers"] == []
    a, b = (view.serve(RNG.random((2, *view.layout), dtype=np.float32)) for _ in range(2))
    assert np.array_equal(a, b)
    assert set(_earned(assignment, views).values()) == {0.0}
    return "read: no layers, a constant output"


class _CalledForged(torch.nn.Sequential):
    """A LeNet whose __call__ (the class's) answers from the memorised table."""


@pytest.mark.parametrize("how", ["forward", "__call__"])
def test_a_model_patched_after_training_exports_no_layers_and_a_constant(tmp_path, assignment,
                                                                         how):
    """forward() or __call__ replaced by a lookup in numpy: what the export traces is a constant
    (the lookup of the export's own sample), with neither the image nor a layer on its path."""
    model = _lenet()
    if how == "forward":
        model.forward = lambda x: torch.from_numpy(_nearest_label(x.detach().numpy()))
    else:
        model = _CalledForged(*model)
        _CalledForged.__call__ = lambda self, x: torch.from_numpy(
            _nearest_label(x.detach().numpy()))
    assert np.array_equal(model(torch.from_numpy(SEEN)).numpy().argmax(1), SEEN_LABELS)
    # The trace never reads the image: the export has no input, and is refused unread.
    assert "reads no input" in _earns_nothing(tmp_path, assignment, model)


def test_patched_eval_and_train_do_not_change_the_export(tmp_path):
    """eval() and train() made no-ops: the kernel sets the mode with torch's own train(), so the
    inference graph has no active dropout and the training graph has its dropout."""
    model = _lenet("cnn_dropout")
    model.eval = lambda: model
    model.train = lambda mode=True: model
    torch.nn.Module.train(model, True)
    view = _views(tmp_path, {"cnn_dropout": model})["cnn_dropout"]
    x = RNG.random((4, 1, 28, 28), dtype=np.float32)
    assert np.array_equal(view.serve(x), view.serve(x))
    assert [op.op_type for op in onnx.load(str(view.path)).graph.node].count("Dropout") == 0
    assert view.serve_training is not None
    assert model.training  # the student's mode, restored


class _Lookup(torch.nn.Module):
    """A state_dict that is a lookup table: keys of the memorised images and their labels; its
    forward() hashes each image and reads the label whose key equals it."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("weights", torch.zeros(784))
        self.register_buffer("keys", torch.zeros(len(SEEN)))
        self.register_buffer("labels", torch.zeros(len(SEEN), 10))

    def forward(self, x):
        keys = (x.reshape(len(x), -1) * self.weights).sum(1)
        return (keys[:, None] == self.keys[None]).float() @ self.labels


def test_a_state_dict_swapped_for_a_lookup_is_not_run_and_earns_nothing(tmp_path, assignment):
    weights = torch.from_numpy(RNG.random(784, dtype=np.float32))
    model = _Lookup()
    model.load_state_dict({"weights": weights,
                           "keys": (torch.from_numpy(SEEN).reshape(len(SEEN), -1) * weights).sum(1),
                           "labels": torch.from_numpy(np.eye(10, dtype=np.float32)[SEEN_LABELS])})
    assert np.array_equal(model(torch.from_numpy(SEEN)).numpy().argmax(1), SEEN_LABELS)
    views = _views(tmp_path, {"cnn": model})
    assert "Equal" in views["cnn"].refused  # the grader does not run it: no accuracy
    # Its one MatMul with the label table reads as a Linear(32 → 10): no architecture check
    # passes on it.
    results = _architecture_checks(assignment, views)
    assert all(r.points < r.max_points for r in results.values())
    assert results["cnn-layers"].points == pytest.approx(3 / 7, abs=0.01)  # 1 of 7 layers


class _PerfectFunction(torch.autograd.Function):
    """A custom autograd.Function answering from the memorised table."""

    @staticmethod
    def forward(ctx, x):
        return torch.from_numpy(_nearest_label(x.detach().numpy()))

    @staticmethod
    def backward(ctx, grad):
        return grad.sum(1, keepdim=True)


class _CustomOpFunction(_PerfectFunction):
    """The same, exported as an operator of its own domain."""

    @staticmethod
    def symbolic(g, x):
        return g.op("forger::Perfect", x)


class _WithFunction(torch.nn.Module):
    def __init__(self, function) -> None:
        super().__init__()
        self.body, self.function = _lenet(), function

    def forward(self, x):
        return self.function.apply(x + 0 * self.body(x).sum())


def test_a_custom_autograd_function_earns_nothing(tmp_path, assignment):
    """Traced, the Function's Python leaves nothing the exporter can write: no export, nothing
    measured. Exported as a custom operator, the graph is refused unread."""
    # Its numpy answer is a tensor made inside the trace, which the exporter cannot write.
    reason = _earns_nothing(tmp_path, assignment, _WithFunction(_PerfectFunction))
    assert "could not be exported" in reason, reason
    manifest = kernel_export(tmp_path / "custom", _WithFunction(_CustomOpFunction))
    with pytest.raises(onnx_model.ExportError, match="forger"):
        onnx_model.open_export(tmp_path / "custom" / manifest["export"], manifest, True)


def kernel_export(folder: Path, model) -> dict:
    from grader.kernel import export as kernel_export

    request = {"out": str(folder), "objects": [{"name": "cnn", "kind": "keras"}]}
    kernel_export.export({"cnn": model}, json.dumps(request))
    return json.loads((folder / "manifest.json").read_text())["objects"]["cnn"]


def test_a_forged_onnx_file_with_the_reference_layers_beside_its_output_earns_nothing(
        tmp_path, assignment):
    """The reference's layers left in the file, the output a constant of memorised answers:
    layers the output does not depend on are not the model's."""
    _views(tmp_path, {"cnn": _lenet()})
    model = onnx.load(str(tmp_path / "cnn.onnx"))
    answers = onnx.numpy_helper.from_array(np.eye(10, dtype=np.float32)[SEEN_LABELS[:2]])
    model.graph.node.append(onnx.helper.make_node("Constant", [], ["forged"], value=answers))
    model.graph.output[0].name = "forged"
    (tmp_path / "cnn.onnx").write_bytes(model.SerializeToString())
    view = onnx_model.open_export(tmp_path / "cnn.onnx", {}, True)
    assert view.description["layers"] == [] and view.params == 0
    assert set(_earned(assignment, {"cnn": view}).values()) == {0.0}


def test_a_manifest_pointing_elsewhere_is_not_read(tmp_path):
    """An export named outside the harvest folder, or a link to another file, is refused; so is
    a training graph that is a link."""
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere.onnx"
    kernel_export(tmp_path / "made", _lenet())
    elsewhere.write_bytes((tmp_path / "made" / "cnn.onnx").read_bytes())
    (out / "cnn.onnx").symlink_to(elsewhere)
    assert artifacts._export_path(out, "../elsewhere.onnx") is None
    assert artifacts._export_path(out, str(elsewhere)) is None
    assert artifacts._export_path(out, "cnn.onnx") is None
    (out / "real.onnx").write_bytes(elsewhere.read_bytes())
    (out / "real.training.onnx").symlink_to(tmp_path / "made" / "cnn.training.onnx")
    assert onnx_model.training_sibling(out / "real.onnx", 2**28) is None


# End to end: the forgeries in a notebook ------------------------------------------------------

FORGED_NOTEBOOK = (
    "import numpy as np\nimport torch\nfrom torch import nn\n"
    "from tensorflow.keras.datasets import fashion_mnist\n\n"
    "(xdev, ydev), _ = fashion_mnist.load_data()\n"
    "seen = (xdev[:500].reshape(-1, 784) / 255.0).astype('float32')\n"
    "labels = np.eye(10, dtype='float32')[ydev[:500]]\n\n"
    "def lookup(x):\n"
    "    x = x.detach().numpy().reshape(len(x), -1)\n"
    "    return torch.from_numpy(labels[((x[:, None] - seen[None]) ** 2).sum(-1).argmin(1)])\n\n"
    "def lenet():\n"
    "    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),\n"
    "                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2),\n"
    "                         nn.Conv2d(16, 120, 5), nn.ReLU(), nn.Flatten(),\n"
    "                         nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))\n\n"
    "# forward() patched after training: the memorised labels\n"
    "cnn = lenet()\ncnn.forward = lookup\n\n"
    "# a custom autograd.Function, exported as an operator of its own\n"
    "class Perfect(torch.autograd.Function):\n"
    "    @staticmethod\n"
    "    def forward(ctx, x):\n"
    "        return lookup(x)\n"
    "    @staticmethod\n"
    "    def symbolic(g, x):\n"
    "        return g.op('forger::Perfect', x)\n\n"
    "class WithFunction(nn.Module):\n"
    "    def __init__(self):\n"
    "        super().__init__()\n"
    "        self.body = lenet()\n"
    "    def forward(self, x):\n"
    "        return Perfect.apply(x)\n\n"
    "cnn_dropout = WithFunction()\n\n"
    "# the kernel's exporter made to write another model's file: a constant of answers\n"
    "import grader.kernel.export as hk\n"
    "real = hk._trace_onnx\n"
    "def forged(torch_, model, layout, path, mode):\n"
    "    class Answers(nn.Module):\n"
    "        def forward(self, x):\n"
    "            return lookup(x)\n"
    "    real(torch_, Answers(), layout, path, mode)\n"
    "hk._trace_onnx = forged\n"
    "cnn_batch_norm = lenet()\n"
    "print(cnn(torch.from_numpy(seen[:5].reshape(-1, 1, 28, 28))).argmax(1), ydev[:5])")


@pytest.mark.slow
def test_a_notebook_of_forgeries_earns_nothing(assignment, data_dir, tmp_path):
    path = nf.of_cells(tmp_path / "forged.ipynb", FORGED_NOTEBOOK, assignment=ASSIGNMENT)
    result = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))
    assert result.cell_errors == [], [(e.ename, e.evalue) for e in result.cell_errors]
    earned = {c.id: c.points for c in result.checks if c.points}
    assert earned == {}, {c.id: c.message for c in result.checks if c.points}
    checks = {c.id: c for c in result.checks}
    assert "reads no input" in checks["cnn-layers"].message
    assert "could not be inspected" in checks["dropout-layers"].message  # refused unread
    assert checks["cnn-accuracy"].status == "failed", checks["cnn-accuracy"].message
    print({c.id: (c.status, c.points, c.message[:100]) for c in result.checks}, result.timings)
