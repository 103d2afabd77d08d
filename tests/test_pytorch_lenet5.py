"""PyTorch answers to lenet5 (issue 25): Conv2d, MaxPool2d, Dropout and BatchNorm read from the
kernel's ONNX exports and graded by the assignment's own checks.

The fast tests take the three models' sources from the committed variants, build them here, export
them with the kernel's own function and grade the architecture checks against the reference's
expected.json, and rebuild the convolutional designs the grader trains itself; the slow ones grade
two variants end to end (one correct, one wrong), the grader's timed training included.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from grader.instructor import variants
from grader.checks import keras_checks
from grader.checks.architecture import normalise

torch = pytest.importorskip("torch", reason="the PyTorch extra: pip install -e '.[torch]'")
pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

import numpy as np  # noqa: E402

import notebook_factory as nf  # noqa: E402
from grader.kernel import export as kernel_export  # noqa: E402
from grader.measure import onnx_model  # noqa: E402

ASSIGNMENT = "lenet5"
MODELS = ("cnn", "cnn_dropout", "cnn_batch_norm")
MODEL_CELLS = ("cnn", "dropout", "batch_norm")
ARCHITECTURE = ("layers", "activations", "shapes", "params")
PREFIX = {"cnn": "cnn", "cnn_dropout": "dropout", "cnn_batch_norm": "batch-norm"}


def _models(variant: str) -> dict:
    """The variant's three models, built from its own cells (torch seeded as it seeds it)."""
    nb = nf.variant(ASSIGNMENT, variant)
    namespace: dict = {"num_classes": 10}
    for cell in nb.cells:
        if set(cell.metadata.get("tags", ())) & set(MODEL_CELLS):
            exec(compile(cell.source, f"<{variant}>", "exec"), namespace)  # noqa: S102
    return {name: namespace[name] for name in MODELS}


def _views(tmp_path: Path, models: dict) -> dict:
    request = {"out": str(tmp_path), "objects": [{"name": n, "kind": "keras", "input_shape": None}
                                                 for n in models]}
    kernel_export.export(dict(models), json.dumps(request))
    manifest = json.loads((tmp_path / "manifest.json").read_text())["objects"]
    return {name: onnx_model.open_export(
        tmp_path / entry["export"], entry, True,
        onnx_model.training_sibling(tmp_path / entry["export"], 2**28))
        for name, entry in manifest.items()}


def _architecture_checks(assignment, views: dict) -> dict:
    """The assignment's architecture checks on the exported descriptions."""
    from grader.checks.context import GradingContext
    from grader.execution.runner import ExecutionRecord
    from grader.harvest.artifacts import HarvestedObject

    objects = {n: HarvestedObject(n, "found", model=v.description) for n, v in views.items()}
    ctx = GradingContext(objects, json.loads((assignment.reference_dir / "expected.json")
                                             .read_text()), {}, ExecutionRecord())
    kinds = {"layers": keras_checks.layers, "activations": keras_checks.activations,
             "output_shapes": keras_checks.output_shapes, "param_count": keras_checks.param_count}
    return {c.id: kinds[c.kind](c, ctx) for c in assignment.checks if c.kind in kinds}


def test_lenet5_allows_torch(assignment):
    assert "torch" in assignment.optional_packages and "torch" not in assignment.packages


@pytest.mark.parametrize("variant", ["pytorch-sequential", "pytorch-module"])
def test_correct_pytorch_architectures_pass_every_architecture_check(tmp_path, assignment,
                                                                     variant):
    """nn.Sequential and a class with switches and F.relu alike: Conv2d + ReLU is Conv2D(relu),
    MaxPool2d is MaxPooling2D, padding=2 on a 5x5 kernel is 'same', BatchNorm2d/1d is
    BatchNormalization (not folded into the convolution), and Dropout(0.5) shows."""
    views = _views(tmp_path, _models(variant))
    results = _architecture_checks(assignment, views)
    failed = {cid: r.message for cid, r in results.items() if r.points != r.max_points}
    assert failed == {}
    assert len(results) == 12
    assert [v.params for v in views.values()] == [61_706, 61_706, 62_610]
    assert all(v.refused == [] for v in views.values())
    kinds = [l.kind for l in normalise(views["cnn_dropout"].description["layers"])]
    assert kinds.count("Dropout") == 4 and kinds.count("Conv2D") == 3
    assert views["cnn_dropout"].serve_training is not None
    assert [l.kind for l in normalise(views["cnn_batch_norm"].description["layers"])
            ].count("BatchNormalization") == 4
    assert "Dropout" not in [l.kind for l in normalise(views["cnn"].description["layers"])]


def test_the_exports_predict_what_the_module_computes(tmp_path):
    models = _models("pytorch-module")
    views = _views(tmp_path, models)
    x = np.random.default_rng(0).random((5, 1, 28, 28), dtype=np.float32)
    for name, model in models.items():
        assert views[name].layout == (1, 28, 28)
        with torch.no_grad():
            expected = model.eval()(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(views[name].serve(x), expected, rtol=1e-4, atol=1e-5)


def test_dropout_is_probed_on_the_training_graph(tmp_path):
    """The dropout model's training passes differ and its inference passes agree; a model
    without dropout has no training graph to probe (nothing in it behaves as dropout)."""
    from grader.measure.worker import _probe_dropout

    views = _views(tmp_path, _models("pytorch-sequential"))
    images = np.random.default_rng(1).integers(0, 256, (16, 28, 28), dtype="uint8")
    view = views["cnn_dropout"]
    assert _probe_dropout(view.serve_training, view.serve, images, view.layout) == {
        "training_passes_differ": True, "inference_passes_agree": True}
    behaviour = _probe_dropout(views["cnn"].serve_training, views["cnn"].serve, images,
                               views["cnn"].layout)
    assert behaviour == {"training_passes_differ": False, "inference_passes_agree": True}


def test_wrong_layers_are_named_in_pytorch_words(tmp_path, assignment):
    results = _architecture_checks(assignment, _views(tmp_path, _models("pytorch-wrong-layers")))
    assert "layer 3: expected Conv2d(6 → 16, 5×5) + ReLU, found Conv2d(6 → 16, 5×5, " \
        "padding=same) + ReLU" in results["cnn-layers"].message
    assert "expected Dropout(p=0.5), found Dropout(p=0.25)" in results["dropout-layers"].message
    assert "missing BatchNorm" in results["batch-norm-layers"].message
    lost = {cid for cid, r in results.items() if r.points < r.max_points}
    assert lost == {"cnn-layers", "cnn-shapes", "cnn-params", "dropout-layers",
                    "batch-norm-layers", "batch-norm-shapes", "batch-norm-params"}


def test_a_training_graph_that_is_not_the_inference_graph_earns_no_dropout(tmp_path, assignment):
    """A forged `cnn_dropout.training.onnx` (another model's, with dropout) beside a model that
    has none: its Dropout layers are not believed, and there is nothing to probe."""
    plain = _models("pytorch-sequential")
    views = _views(tmp_path / "a", {"cnn_dropout": plain["cnn"]})
    other = _views(tmp_path / "b", {"cnn_dropout": plain["cnn_dropout"]})
    assert other["cnn_dropout"].training_path is not None
    forged = tmp_path / "a" / "cnn_dropout.training.onnx"
    forged.write_bytes(other["cnn_dropout"].training_path.read_bytes())
    view = onnx_model.open_export(tmp_path / "a" / "cnn_dropout.onnx", {}, True, forged)
    assert view.training_path is None and view.serve_training is None
    assert "not the inference graph plus dropout" in view.description["note"]
    assert "Dropout" not in [l.kind for l in normalise(view.description["layers"])]
    assert views["cnn_dropout"].description["total_params"] == 61_706
    # Its own training graph with an operator the grader does not run: not run, not believed.
    import onnx

    own = views["cnn_dropout"].path.with_name("own.training.onnx")
    graph = onnx.load(str(other["cnn_dropout"].training_path))
    graph.graph.node.append(onnx.helper.make_node("Sin", ["input"], ["unused"]))
    own.write_bytes(graph.SerializeToString())
    view = onnx_model.open_export(other["cnn_dropout"].path, {}, True, own)
    assert view.serve_training is None and "not the inference graph" in view.description["note"]


# The grader's own training of a convolutional design: rebuilt from torch.nn, as exported --------

def test_conv_designs_are_rebuilt_as_their_exports_compute(tmp_path):
    """The class with switches, F.relu, F.max_pool2d and x.view is rebuilt as a chain of torch.nn
    layers with the export's settings (padding=2, BatchNorm2d then BatchNorm1d, torch's momentum),
    which, given the export's own weights, computes what the export computes."""
    from grader.measure import torch_design
    from grader.training import torch_fit

    views = _views(tmp_path, _models("pytorch-module"))
    plans = {name: torch_fit.blueprint(view.description["layers"])
             for name, view in views.items()}
    assert plans["cnn"][0] == ("Conv2d", {"in_channels": 1, "out_channels": 6,
                                          "kernel_size": (5, 5), "stride": (1, 1),
                                          "padding": (2, 2), "groups": 1, "dilation": (1, 1),
                                          "bias": True})
    assert [n for n, _ in plans["cnn"]] == ["Conv2d", "ReLU", "MaxPool2d"] * 2 + [
        "Conv2d", "ReLU", "Flatten", "Linear", "ReLU", "Linear"]
    assert [n for n, _ in plans["cnn_dropout"]].count("Dropout") == 4
    norms = [(n, a["num_features"], round(a["momentum"], 4)) for n, a in plans["cnn_batch_norm"]
             if n.startswith("BatchNorm")]
    assert norms == [("BatchNorm2d", 6, 0.1), ("BatchNorm2d", 16, 0.1), ("BatchNorm2d", 120, 0.1),
                     ("BatchNorm1d", 84, 0.1)]
    for name, view in views.items():
        assert torch_design._not_the_export(plans[name], view) is None, name


class _Residual(torch.nn.Module):
    """A skip around a convolution: its layers in order are not what it computes."""

    def __init__(self) -> None:
        super().__init__()
        self.conv, self.fc = torch.nn.Conv2d(1, 1, 3, padding=1), torch.nn.Linear(784, 10)

    def forward(self, x):
        return self.fc((self.conv(x) + x).flatten(1))


def test_what_a_conv_design_cannot_be_rebuilt_from_is_named(tmp_path):
    from grader.measure import torch_design
    from grader.training import torch_fit

    view = _views(tmp_path, {"cnn": _Residual()})["cnn"]
    plan = torch_fit.blueprint(view.description["layers"])
    assert "computes more than its layers in order" in torch_design._not_the_export(plan, view)
    conv = next(l for l in _views(tmp_path / "b", _models("pytorch-sequential"))["cnn"]
                .description["layers"] if l["class"] == "Conv2D")
    lopsided = {**conv, "config": {**conv["config"], "pads": [0, 0, 1, 1]}}
    with pytest.raises(torch_fit.CannotRebuild, match="pads"):
        torch_fit.blueprint([lopsided])
    with pytest.raises(torch_fit.CannotRebuild, match="its Conv3d layer is not one"):
        torch_fit.blueprint([{**conv, "class": "Conv3D", "torch_class": "Conv3d"}])


# End to end: a kernel, the measuring process, the checks ----------------------------------------

@pytest.mark.slow
def test_pytorch_module_lenet5_gets_every_scored_check(grade_variant):
    variant, result = grade_variant("pytorch-module")
    assert result.cell_errors == [], [(e.ename, e.evalue) for e in result.cell_errors]
    assert variant.meta.pending == ()
    assert variants.verdict_problems(variant, result) == []
    passed = {c.id for c in result.checks if c.status == "passed"}
    assert {f"{PREFIX[m]}-{k}" for m in MODELS
            for k in (*ARCHITECTURE, "accuracy", "loss", "optimizer", "timed-training")} <= passed
    # The grader trained each design itself, rebuilt from torch.nn, against the calibrated bar.
    timed = [c.message for c in result.checks if c.id.endswith("timed-training")]
    assert all("of the grader's training" in m for m in timed), timed
    print("pytorch-module:", [(c.id, c.status, c.message[:80]) for c in result.checks],
          result.timings)


@pytest.mark.slow
def test_pytorch_wrong_layers_lose_what_they_got_wrong(grade_variant):
    variant, result = grade_variant("pytorch-wrong-layers")
    assert variants.verdict_problems(variant, result) == []
    checks = {c.id: c for c in result.checks}
    assert "found Conv2d(6 → 16, 5×5, padding=same) + ReLU" in checks["cnn-layers"].message
    assert checks["cnn-accuracy"].status == "passed", checks["cnn-accuracy"].message
    # Its own design, trained by the grader; the models it only built are never trained.
    assert "of the grader's training" in checks["cnn-timed-training"].message
    assert "`cnn_dropout` is never trained" in checks["dropout-timed-training"].message
    assert "`cnn_batch_norm` is never trained" in checks["batch-norm-optimizer"].message
    print("pytorch-wrong-layers:", {c.id: (c.status, c.points, c.message[:100])
                                    for c in result.checks}, result.timings)
