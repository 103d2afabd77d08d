"""PyTorch answers to fashion-mlp (issue 25), graded by the same checks as Keras ones.

The kernel exports a torch.nn.Module as ONNX (grader/kernel/export.py); the trusted side reads
it with onnx, runs it with onnxruntime and describes it in Keras's words
(grader/measure/onnx_model.py). The end-to-end tests start a kernel (slow); the others read ONNX
files made here, in the test process, with the grader's own export function.

The loss and the optimizer are read from the notebook's source (grader/cleanroom/torch_source.py);
the grader retrains the design itself in PyTorch, on the trusted side
(grader/measure/torch_design.py).
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import SimpleNamespace

import nbformat
import pytest

from grader import environment
from grader.cleanroom import torch_source
from grader.instructor import variants
from grader.checks.architecture import normalise

torch = pytest.importorskip("torch", reason="the PyTorch extra: pip install -e '.[torch]'")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402

from grader.kernel import export as kernel_export  # noqa: E402
from grader.measure import onnx_model  # noqa: E402

ASSIGNMENT = "fashion-mlp"


def _export(tmp_path: Path, **models) -> dict:
    request = {"out": str(tmp_path), "objects": [{"name": n, "kind": "keras", "input_shape": None}
                                                 for n in models]}
    kernel_export.export(dict(models), json.dumps(request))
    return json.loads((tmp_path / "manifest.json").read_text())["objects"]


class _ViewNet(torch.nn.Module):
    """forward() with x.view(-1, 784) and F.relu / torch.sigmoid instead of modules."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = (torch.nn.Linear(784, 128), torch.nn.Linear(128, 64),
                                  torch.nn.Linear(64, 10))

    def forward(self, x):
        x = x.view(-1, 784)
        return self.c(torch.nn.functional.relu(self.b(torch.nn.functional.relu(self.a(x)))))


def _sequential():
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                         nn.Linear(64, 10))


def _layers(view) -> list[tuple]:
    return [(l.kind, l.size, l.activation, l.output_shape, l.params)
            for l in normalise(view.description["layers"])]


REFERENCE_LAYERS = [("Dense", 128, "relu", (128,), 100480), ("Dense", 64, "relu", (64,), 8256),
                    ("Dense", 10, "softmax", (10,), 650)]


@pytest.mark.parametrize("build", [_sequential, _ViewNet,
                                   lambda: torch.nn.Sequential(torch.nn.Flatten(),
                                                               *_sequential())])
def test_sequential_forward_and_flatten_read_as_the_keras_reference(tmp_path, build):
    """Linear + ReLU is Dense(relu), F.relu equals nn.ReLU, view(-1, 784) and nn.Flatten are
    shape-only; with CrossEntropyLoss in the notebook the last Linear is the softmax output."""
    model = build()
    manifest = _export(tmp_path, model=model)
    assert manifest["model"]["export"] == "model.onnx"
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], True)
    assert _layers(view) == REFERENCE_LAYERS
    assert view.params == view.description["total_params"] == 109_386
    assert view.refused == []
    x = np.random.default_rng(0).random((7, *view.layout), dtype=np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    assert np.allclose(view.serve(x), expected, atol=1e-5)


class _ChannelsFirst(torch.nn.Module):
    """Takes NCHW batches only, as a PyTorch image model does."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _sequential()

    def forward(self, x):
        if x.dim() != 4:
            raise ValueError("expected (N, 1, 28, 28)")
        return self.body(torch.flatten(x, 1))


def test_an_nchw_model_is_exported_and_run_on_nchw_images(tmp_path):
    model = _ChannelsFirst()
    manifest = _export(tmp_path, model=model)
    assert manifest["model"]["layout"] == [1, 28, 28]
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], True)
    assert view.layout == (1, 28, 28) and _layers(view) == REFERENCE_LAYERS
    x = np.random.default_rng(1).random((3, 1, 28, 28), dtype=np.float32)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    assert np.allclose(view.serve(x), expected, atol=1e-5)


def test_last_linear_is_softmax_only_when_the_loss_is_cross_entropy(tmp_path):
    manifest = _export(tmp_path, model=_sequential())
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], False)
    assert _layers(view)[-1][2] is None  # a linear output: the activations check says so


def test_messages_name_pytorch_layers_in_pytorch_words(tmp_path):
    manifest = _export(tmp_path, model=_sequential())
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], True)
    found = normalise(view.description["layers"])
    assert [l.torch_label() for l in found] == [
        "Linear(784 → 128) + ReLU", "Linear(128 → 64) + ReLU",
        "Linear(64 → 10) + Softmax (inside CrossEntropyLoss)"]
    assert found[1].torch_label(False) == "Linear(128 → 64)"
    assert found[1].label() == "Dense(64, relu)"  # Keras answers keep Keras's words


def test_a_wrong_layer_is_named(tmp_path):
    nn = torch.nn
    model = nn.Sequential(nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 32), nn.Sigmoid(),
                          nn.Linear(32, 10))
    manifest = _export(tmp_path, model=model)
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], True)
    assert _layers(view)[1] == ("Dense", 32, "sigmoid", (32,), 4128)
    assert view.description["layers"][2]["torch_label"] == "Linear(128 → 32)"


def test_an_export_with_foreign_operators_or_external_data_is_refused(tmp_path):
    import onnx

    _export(tmp_path, model=_sequential())
    model = onnx.load(str(tmp_path / "model.onnx"))
    model.graph.node[0].domain = "com.example"
    (tmp_path / "foreign.onnx").write_bytes(model.SerializeToString())
    with pytest.raises(onnx_model.ExportError, match="com.example"):
        onnx_model.open_export(tmp_path / "foreign.onnx", {}, True)
    model = onnx.load(str(tmp_path / "model.onnx"))
    tensor = model.graph.initializer[0]
    tensor.data_location = onnx.TensorProto.EXTERNAL
    tensor.external_data.add(key="location", value="/etc/passwd")
    (tmp_path / "external.onnx").write_bytes(model.SerializeToString())  # as a forger would
    with pytest.raises(onnx_model.ExportError, match="external data"):
        onnx_model.open_export(tmp_path / "external.onnx", {}, True)


class _Sine(torch.nn.Module):
    """A classifier whose forward() takes the sine of its logits: an operator (Sin) the grader
    does not run for PyTorch answers."""

    def __init__(self) -> None:
        super().__init__()
        self.body = _sequential()

    def forward(self, x):
        return torch.sin(self.body(x))


def test_unsupported_operators_are_described_but_not_run(tmp_path):
    manifest = _export(tmp_path, model=_Sine())
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], True)
    assert view.refused == ["Sin"]


def test_an_answer_the_grader_cannot_run_yet_is_not_scored_on_accuracy(tmp_path):
    """An operator not on the allow-list: its accuracy is the grader's to measure later
    (status error), never a zero."""
    from grader import assignment as spec_mod
    from grader.checks import keras_checks
    from grader.checks.context import GradingContext
    from grader.execution.runner import ExecutionRecord
    from grader.harvest.artifacts import HarvestedObject

    manifest = _export(tmp_path, model=_Sine())
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"], True)
    obj = HarvestedObject("model", "found", model=view.description,
                          predict_error="the model's graph holds operations the grader does "
                          "not run for PyTorch answers yet: Sin")
    check = next(c for c in spec_mod.load(ASSIGNMENT).checks if c.kind == "accuracy")
    ctx = GradingContext({"model": obj}, {}, {"objects": {"model": {"accuracy": {
        "threshold": 0.8}}}}, ExecutionRecord(), holdout_labels=np.arange(10))
    result = keras_checks.accuracy(check, ctx)
    assert result.status == "error" and "Sin" in result.message


def test_the_loss_is_read_from_the_notebook_source():
    def nb(*cells):
        return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])

    assert torch_source.cross_entropy_loss(nb("loss_fn = nn.CrossEntropyLoss()"))
    assert torch_source.cross_entropy_loss(nb("%matplotlib inline\nl = F.cross_entropy(y, t)"))
    assert not torch_source.cross_entropy_loss(nb("loss_fn = nn.MSELoss()"))
    assert not torch_source.cross_entropy_loss(nb("a = nn.CrossEntropyLoss()", "b = nn.NLLLoss()"))
    assert not torch_source.cross_entropy_loss(nb("# nn.CrossEntropyLoss()"))


def test_a_missing_optional_framework_is_the_graders_error_naming_the_install(monkeypatch):
    error = SimpleNamespace(ename="ModuleNotFoundError", evalue="No module named 'torch'")
    monkeypatch.setattr(environment, "missing_packages", lambda names, python=None: {
        n: "ModuleNotFoundError" for n in names})
    message = environment.missing_optional([error], ["torch"])
    assert message and "pip install -e" in message and "[torch]" in message
    # Not an allowed framework: the student's import, the student's cell error.
    assert environment.missing_optional([error], []) is None
    # torchvision, allowed for its transforms: PyTorch's CPU build, paired with the extra's torch.
    vision = SimpleNamespace(ename="ModuleNotFoundError",
                             evalue="No module named 'torchvision.transforms'")
    message = environment.missing_optional([vision], ["torch", "torchvision"])
    assert message and "pip install torchvision==0.28.0 --index-url " \
        "https://download.pytorch.org/whl/cpu" in message
    # Installed after all: a notebook raising the error itself gains nothing by it.
    monkeypatch.setattr(environment, "missing_packages", lambda names, python=None: {})
    assert environment.missing_optional([error], ["torch"]) is None


@pytest.mark.parametrize("assignment_id", ["fashion-mlp", "lenet5"])
def test_the_homeworks_that_allow_pytorch_declare_it(assignment_id):
    from grader import assignment as spec

    assignment = spec.load(assignment_id)
    assert {"torch", "torchvision"} <= set(assignment.optional_packages)
    assert "torch" not in assignment.packages  # not required of a Keras-only installation


# End to end: a kernel, the measuring process, the checks ----------------------------------------

def _checks(result) -> dict:
    return {c.id: c for c in result.checks}


@pytest.mark.slow
@pytest.mark.parametrize("name, first", [("pytorch-sequential", []),
                                         ("pytorch-module", ["view"])])  # x.view(-1, 784)
def test_pytorch_twins_of_the_reference_get_full_marks(grade_variant, name, first):
    """nn.Sequential, and one nn.Module class with x.view and F.relu in forward(): both styles
    PyTorch teaches read as the reference's layers and earn what it earns."""
    variant, result = grade_variant(name)
    assert variant.correct and not variant.meta.pending
    assert result.cell_errors == [], [(e.ename, e.evalue) for e in result.cell_errors]
    assert variants.verdict_problems(variant, result) == []
    checks = _checks(result)
    for cid, check in checks.items():
        assert check.status == "passed" and check.points == check.max_points, (cid, check.message)
    assert result.score == result.max_score == 16
    assert "CrossEntropyLoss" in checks["model-loss"].message
    assert "loss.backward() and optimizer.step()" in checks["model-loss"].message
    assert checks["model-optimizer"].message == "Adam, learning rate 0.001"
    assert "after 5 epochs of the grader's training" in checks["model-timed-training"].message
    model = result.models["model"]
    assert model.framework == "pytorch" and model.total_params == 109_386
    assert [l["torch_class"] for l in model.layers] == [*first, "Linear", "ReLU", "Linear",
                                                          "ReLU", "Linear"]


@pytest.mark.slow
def test_pytorch_sigmoid_32_loses_the_layer_checks(grade_variant):
    variant, result = grade_variant("pytorch-sigmoid-32")
    assert variants.verdict_problems(variant, result) == []
    checks = _checks(result)
    # In PyTorch's words: what the student wrote, against the reference's layer.
    assert "layer 2: expected Linear(128 → 64) + ReLU, found Linear(128 → 32) + Sigmoid" in \
        checks["model-layers"].message
    assert "layer 2 (Linear(128 → 32)): expected relu, found sigmoid" in \
        checks["model-activations"].message
    assert "expected 109,386 parameters, found 104,938" in checks["model-params"].message
    # Scored, whichever side of the bar: never the grader's own failure to train the design.
    assert checks["model-timed-training"].status in ("passed", "partial", "failed")
    print("pytorch-sigmoid-32:", {c.id: (c.status, c.points, c.message[:120])
                                  for c in result.checks}, result.timings)


@pytest.mark.slow
def test_an_allowed_framework_missing_here_is_a_grader_error_naming_the_install(
        assignment, data_dir, tmp_path):
    """fashion-mlp allows torchvision, which this installation lacks (its CPU build is not
    reachable here): a notebook importing it is the grader's error, naming the install."""
    import dataclasses

    from grader import pipeline
    import notebook_factory as nf

    if importlib.util.find_spec("torchvision") is not None:
        pytest.skip("torchvision is installed here: nothing allowed is missing")
    assert "torchvision" in assignment.optional_packages
    path = nf.of_cells(tmp_path / "tv.ipynb", "import torchvision\nmodel = None",
                       assignment=ASSIGNMENT)
    result = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))
    assert result.execution.status == "grader_error" and result.score is None
    assert result.checks == []
    assert "`torchvision`" in result.execution.message
    assert "pip install torchvision==0.28.0 --index-url" in result.execution.message
    # The same notebook where torchvision is not an allowed package: the student's cell error.
    unlisted = dataclasses.replace(assignment, optional_packages=tuple(
        p for p in assignment.optional_packages if p != "torchvision"))
    result = pipeline.grade(path, unlisted, pipeline.Options(data_dir=data_dir))
    assert result.execution.status != "grader_error" and result.score == 0
    assert [e.ename for e in result.cell_errors] == ["ModuleNotFoundError"]


@pytest.mark.slow
def test_the_measuring_process_runs_the_export_without_torch(tmp_path):
    """The trusted process predicts a PyTorch answer with onnxruntime: torch is loaded only to
    retrain a design (grader/measure/torch_design.py), never to run the student's module; it
    predicts without it."""
    from grader import measure
    from test_measure_worker import _maps_of_tree

    model = _sequential()
    export = tmp_path / "export"
    export.mkdir()
    manifest = _export(export, model=model)
    images = np.random.default_rng(0).integers(0, 256, (40, 28, 28), dtype="uint8")
    np.save(export / "images.npy", images, allow_pickle=False)
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(
            images.reshape((40, 784)).astype("float32") / 255.0)).numpy()
    worker = measure.Worker(tmp_path / "measure", [export], 4096, mounts=None)
    try:
        found = worker.measure(measure.Request(images=export / "images.npy", objects=[
            {"name": "model", "export": str(export / "model.onnx"), "input_shape": None,
             "claim": manifest["model"], "cross_entropy_loss": True, "timed": False}]),
            rows=40)
        maps = _maps_of_tree(worker.proc.pid)
    finally:
        worker.close()
    measured = found.objects["model"]
    assert measured.status == "found", measured.message
    assert measured.model["total_params"] == 109_386
    np.testing.assert_allclose(measured.predictions["unit"], expected, rtol=1e-4, atol=1e-5)
    assert "onnxruntime" in maps and "/torch/" not in maps


# The loss and optimizer checks, from the source's reading ----------------------------------------

def _check_result(kind: str, description: dict, source: dict):
    from grader import assignment as spec_mod
    from grader.checks import keras_checks
    from grader.checks.context import GradingContext
    from grader.execution.runner import ExecutionRecord
    from grader.harvest.artifacts import HarvestedObject

    description["compile"]["source"] = source
    obj = HarvestedObject("model", "found", model=description)
    check = next(c for c in spec_mod.load(ASSIGNMENT).checks if c.kind == kind)
    ctx = GradingContext({"model": obj}, {"objects": {"model": {"variants": [
        {"compile": {"optimizer": "Adam"}}]}}}, {}, ExecutionRecord())
    return getattr(keras_checks, kind)(check, ctx)


def _read(*cells: str) -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return torch_source.training(nb, "model")


TRAINS = "loss = loss_fn(model(x), y)\nloss.backward()\noptimizer.step()"


def _description(tmp_path, model, cross_entropy: bool) -> dict:
    manifest = _export(tmp_path, model=model)
    return onnx_model.open_export(tmp_path / "model.onnx", manifest["model"],
                                  cross_entropy).description


@pytest.mark.parametrize("head, loss_call, fraction, words", [
    ((), "nn.CrossEntropyLoss()", 1.0, "loss.backward() and optimizer.step()"),
    (("Softmax",), "nn.CrossEntropyLoss()", 0.5, "softmax is applied twice"),
    (("LogSoftmax",), "nn.NLLLoss()", 1.0, "NLLLoss on the model's log-probabilities"),
    ((), "nn.NLLLoss()", 0.5, "NLLLoss takes log-probabilities (after LogSoftmax) but the "
     "model outputs logits"),
    ((), "nn.MSELoss()", 0.0, "does not suit a 10-class classifier"),
])
def test_the_loss_check_scores_pytorch_as_keras(tmp_path, head, loss_call, fraction, words):
    nn = torch.nn
    model = nn.Sequential(*_sequential(), *(getattr(nn, h)(dim=1) for h in head))
    source = _read(f"import torch\nfrom torch import nn\nloss_fn = {loss_call}\n"
                   "optimizer = torch.optim.Adam(model.parameters())", TRAINS)
    nb_ce = "CrossEntropyLoss" in loss_call
    result = _check_result("loss", _description(tmp_path, model, nb_ce), source)
    assert result.status != "error" and result.points == fraction * result.max_points, \
        result.message
    assert words in result.message


def test_the_loss_check_says_when_training_is_not_in_the_source(tmp_path):
    source = _read("import torch\nfrom torch import nn\nloss_fn = nn.CrossEntropyLoss()")
    result = _check_result("loss", _description(tmp_path, _sequential(), True), source)
    assert result.points == 0.5 * result.max_points
    assert "never calls loss.backward() and optimizer.step()" in result.message


def test_what_the_source_cannot_tell_is_not_scored(tmp_path):
    description = _description(tmp_path, _sequential(), False)
    source = _read("import torch\nfrom torch import nn\na = nn.CrossEntropyLoss()\n"
                   "b = nn.MSELoss()\nlr = 10 ** -3\n"
                   "optimizer = torch.optim.Adam(model.parameters(), lr=lr * 2)", TRAINS)
    loss = _check_result("loss", description, source)
    assert loss.status == "error" and "several losses" in loss.message
    optimizer = _check_result("optimizer", description, source)
    assert optimizer.status == "error" and "not a constant" in optimizer.message
    # Trained by hand-written code: unreadable, so not scored, never a zero.
    source = _read("import torch", "loss = ((model(x) - y) ** 2).mean()\nloss.backward()")
    assert _check_result("loss", description, source).status == "error"
    assert _check_result("optimizer", description, source).status == "error"
    # Nothing trains at all: the student's zero, as a Keras model never compiled.
    source = _read("import torch")
    assert _check_result("loss", description, source).points == 0
    assert _check_result("optimizer", description, source).points == 0


def test_a_model_the_notebook_only_builds_loses_its_loss_optimizer_and_timed_training(
        tmp_path, budget):
    """As a Keras model never compiled: a zero on each, not a check the grader cannot score."""
    from grader.measure import torch_design

    source = _read("import torch\nfrom torch import nn\ndef fit(net):\n"
                   "    opt = torch.optim.Adam(net.parameters())\n"
                   "    nn.CrossEntropyLoss()(net(x), y).backward()\n    opt.step()",
                   "other = nn.Linear(784, 10)\nfit(other)\nmodel = nn.Linear(784, 10)")
    description = _description(tmp_path, _sequential(), True)
    for kind in ("loss", "optimizer"):
        result = _check_result(kind, description, source)
        assert result.status == "failed" and "`model` is never trained" in result.message
    timed = torch_design.train(SimpleNamespace(), source, budget["images"], budget,
                               (budget["images"], budget["labels"]), tmp_path / "timed.npz")
    assert timed["status"] == "error" and "`model` is never trained" in timed["message"]


@pytest.mark.parametrize("call, fraction, message", [
    ("torch.optim.Adam(model.parameters(), lr=1e-3)", 1.0, "Adam, learning rate 0.001"),
    ("torch.optim.Adam(model.parameters())", 1.0, "Adam, PyTorch's default learning rate"),
    ("torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)", 0.0,
     "expected Adam, found SGD, learning rate 0.1"),
])
def test_the_optimizer_check_uses_keras_words(tmp_path, call, fraction, message):
    description = _description(tmp_path, _sequential(), True)
    result = _check_result("optimizer", description, _read(f"import torch\noptimizer = {call}"))
    assert result.points == fraction * result.max_points and result.message == message


# The grader's own training of a PyTorch design (trusted side, in this process) -------------------

@pytest.fixture(scope="module")
def budget(tmp_path_factory):
    """A small learnable task: class c lights up pixel block c."""
    folder = tmp_path_factory.mktemp("budget")
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 600)
    x = rng.integers(0, 60, (600, 28, 28)).astype("uint8")
    for i, c in enumerate(labels):
        x[i, c * 2:c * 2 + 2] = 250
    np.savez(folder / "train.npz", x_train=x, y_train=labels)
    return {"train_npz": str(folder / "train.npz"), "epochs": 2, "batch_size": 64,
            "max_cpu_seconds": 60, "seed": 0, "max_params": 1_000_000, "n_classes": 10,
            "images": x[:100], "labels": labels[:100]}


def _retrain(tmp_path, model, budget, *cells):
    from grader.measure import torch_design, worker

    manifest = _export(tmp_path, model=model)
    source = _read(*(cells or ("import torch\nfrom torch import nn\n"
                               "loss_fn = nn.CrossEntropyLoss()\n"
                               "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)",)))
    view = onnx_model.open_export(tmp_path / "model.onnx", manifest["model"],
                                  torch_source.cross_entropy_loss(nbformat.v4.new_notebook(
                                      cells=[nbformat.v4.new_code_cell(c) for c in cells])))
    return torch_design.train(view, source, budget["images"], budget,
                              worker._training_data(budget), tmp_path / "timed.npz")


class _SmallCnn(torch.nn.Module):
    """Flat rows viewed as NCHW images, through Conv2d (stride, padding), BatchNorm2d/1d,
    AvgPool2d and MaxPool2d with ceil_mode: each rebuilt with the export's settings."""

    def __init__(self) -> None:
        super().__init__()
        nn = torch.nn
        self.layers = nn.Sequential(
            nn.Conv2d(1, 4, 3, stride=(1, 2), padding=1), nn.BatchNorm2d(4), nn.ReLU(),
            nn.AvgPool2d((2, 1)), nn.MaxPool2d((1, 3), ceil_mode=True), nn.Flatten(),
            nn.Linear(14 * 5 * 4, 32), nn.BatchNorm1d(32), nn.Tanh(), nn.Linear(32, 10))

    def forward(self, x):
        return self.layers(x.view(-1, 1, 28, 28))


@pytest.mark.parametrize("build", [_sequential, _SmallCnn])
def test_the_design_is_retrained_from_fresh_weights_with_a_fixed_seed(tmp_path, budget, build):
    first = _retrain(tmp_path / "a", build(), budget)
    assert first["status"] == "trained", first.get("message")
    assert first["epochs_run"] == 2 and first["where"] == "grader"
    predictions = np.load(tmp_path / "a" / "timed.npz")["predictions"]
    assert predictions.shape == (100, 10)
    assert np.mean(predictions.argmax(1) == budget["labels"]) > 0.9  # it learned
    again = _retrain(tmp_path / "b", build(), budget)  # other trained weights, same start
    assert again["loss"] == first["loss"]
    np.testing.assert_array_equal(np.load(tmp_path / "b" / "timed.npz")["predictions"],
                                  predictions)


class _Skip(torch.nn.Module):
    """A skip connection: its layers in order are not what it computes."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b = torch.nn.Linear(784, 784), torch.nn.Linear(784, 10)

    def forward(self, x):
        return self.b(torch.relu(self.a(x)) + x)


@pytest.mark.parametrize("build, cells, words", [
    (_Skip, (), "computes more than its layers in order"),
    (lambda: torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(784, 10),
                                 torch.nn.ELU()), (), "its ELU layer is not one"),
    (_sequential, ("import torch\nfrom torch import nn\nloss_fn = nn.CrossEntropyLoss()\n"
                   "a = torch.optim.Adam(model.parameters())\nb = torch.optim.SGD("
                   "model.parameters(), lr=0.1)",), "2 different optimizers"),
    (_sequential, ("import torch\nfrom torch import nn\nloss_fn = nn.KLDivLoss()\n"
                   "a = torch.optim.Adam(model.parameters())",), "does not train with KLDivLoss"),
])
def test_what_cannot_be_rebuilt_is_the_graders_shortfall(tmp_path, budget, build, cells, words):
    run = _retrain(tmp_path, build(), budget, *cells)
    assert run["status"] == "grader_failed" and words in run["message"], run["message"]


@pytest.mark.parametrize("loss_call, full_marks", [("nn.NLLLoss()", True),
                                                   ("nn.MSELoss()", False)])
def test_log_softmax_into_nll_loss_is_the_softmax_output(tmp_path, loss_call, full_marks):
    """LogSoftmax then NLLLoss is cross-entropy on a softmax output, as a TA reads it: the
    architecture checks accept it as the reference's softmax; with any other loss a LogSoftmax
    output is not a softmax one."""
    from grader import assignment as spec_mod
    from grader.checks import keras_checks
    from grader.checks.context import GradingContext
    from grader.execution.runner import ExecutionRecord
    from grader.harvest.artifacts import HarvestedObject

    model = torch.nn.Sequential(*_sequential(), torch.nn.LogSoftmax(dim=1))
    description = _description(tmp_path, model, False)
    description["compile"]["source"] = _read(
        f"import torch\nfrom torch import nn\nloss_fn = {loss_call}\n"
        "optimizer = torch.optim.Adam(model.parameters())", TRAINS)
    assignment = spec_mod.load(ASSIGNMENT)
    ctx = GradingContext({"model": HarvestedObject("model", "found", model=description)},
                         json.loads((assignment.reference_dir / "expected.json").read_text()),
                         {}, ExecutionRecord())
    checks = {kind: getattr(keras_checks, kind)(next(c for c in assignment.checks
                                                      if c.kind == kind), ctx)
              for kind in ("layers", "activations")}
    layers, activations = checks["layers"], checks["activations"]
    assert layers.points == layers.max_points, layers.message  # the layers are right either way
    assert (activations.points == activations.max_points) is full_marks, activations.message
    if full_marks:
        assert "Linear(64 → 10) + Softmax (as LogSoftmax into NLLLoss)" in layers.message
    else:
        assert "expected softmax, found log_softmax" in activations.message
