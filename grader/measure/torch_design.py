"""The grader's own training of a PyTorch answer's design, on the trusted side.

From the ONNX export's description (grader/measure/onnx_model.py) the design is rebuilt from
allow-listed torch.nn classes (grader/training/torch_fit.py). Before it is trained, the rebuilt
design is given the export's own weights and must compute what the export computes (run by
onnxruntime) on the same inputs: a forward() that does more than apply its layers in order (a
skip connection, a scaling) is not the chain the grader would train, so it is not trained.
Whatever cannot be rebuilt is the grader's shortfall (TimedStatus.GRADER_FAILED), never a zero.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from ..scoring import TimedStatus
from ..training import torch_fit
from . import onnx_model

SAME_OUTPUT = {"rtol": 1e-3, "atol": 1e-4}


def refusal(view: Any, source: dict[str, Any]) -> str | None:
    """Why the grader cannot retrain this design, or None; torch is not needed to tell."""
    if view.refused:
        return f"its graph holds operations the grader does not run: {', '.join(view.refused[:8])}"
    try:
        torch_fit.blueprint(view.description["layers"])
        torch_fit.loss_plan(source)
        torch_fit.optimizer_plan(source)
    except torch_fit.CannotRebuild as exc:
        return str(exc)
    return None


def train(view: Any, source: dict[str, Any], images: np.ndarray, budget: dict[str, Any],
          data: tuple[np.ndarray, np.ndarray], path: Path) -> dict[str, Any]:
    """The timed-training entry for the design: trained and predicted, or why not."""
    if source.get("untrained"):  # the student's: as a Keras model never compiled
        return {"status": TimedStatus.ERROR, "message": f"{source['untrained']}, so the grader "
                "does not know which loss and optimizer to train it with"}
    why = refusal(view, source)
    if why:
        return {"status": TimedStatus.GRADER_FAILED, "message": "the grader cannot retrain "
                f"this PyTorch design: {why}"}
    try:
        import torch
    except (ImportError, OSError) as exc:  # the grader's installation: not the student's zero
        return {"status": TimedStatus.GRADER_FAILED, "message": "the grader could not load "
                f"torch to retrain this PyTorch design: {exc}"[:300]}

    # The grader's CPU budget for one training: the threads the measuring process is given.
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS") or 2))
    plan = torch_fit.blueprint(view.description["layers"])
    mismatch = _not_the_export(plan, view)
    if mismatch:
        return {"status": TimedStatus.GRADER_FAILED, "message": "the grader cannot retrain "
                f"this PyTorch design: {mismatch}"}
    x_train, y_train = data
    result = torch_fit.timed_fit(
        plan, loss=torch_fit.loss_plan(source), optimizer=torch_fit.optimizer_plan(source),
        x_train=x_train, y_train=y_train, images=images, layout=view.layout,
        epochs=budget["epochs"], batch_size=budget["batch_size"],
        max_cpu_seconds=budget["max_cpu_seconds"], n_classes=budget["n_classes"],
        seed=budget["seed"])
    if not result["weights_changed"]:
        return {"status": TimedStatus.CANNOT_LEARN, "message": "the grader's training left every "
                "weight where it started", "loss": result["loss"]}
    np.savez(path, predictions=result.pop("predictions"))
    result.update(status=TimedStatus.TRAINED, where="grader", seed=budget["seed"],
                  predictions_file=path.name, scaling="unit")
    return result


def _not_the_export(plan: list[tuple[str, dict[str, Any]]], view: Any) -> str | None:
    """The rebuilt design with the export's weights must compute what the export does."""
    import torch

    model = torch_fit.build(plan).eval()
    try:
        torch_fit.load_weights(model, export_weights(view.path, view.description["layers"]))
    except torch_fit.CannotRebuild as exc:
        return str(exc)
    x = np.random.default_rng(0).random((16, *view.layout), dtype=np.float32)
    try:
        with torch.no_grad():
            rebuilt = model(torch.from_numpy(x)).numpy()
    except RuntimeError as exc:  # the rebuilt layers do not even chain on the export's input
        return f"its layers rebuilt from torch.nn do not run on its input: {exc}"[:300]
    exported = view.serve(x)
    if rebuilt.shape != exported.shape or not np.allclose(rebuilt, exported, **SAME_OUTPUT):
        return ("its forward() computes more than its layers in order (the layers rebuilt "
                "from torch.nn, with its own weights, do not give its outputs)")
    return None


def export_weights(path: Path, layers: list[dict[str, Any]]) -> list[np.ndarray]:
    """Each layer's arrays from the export's initializers, in the order of the description's
    layers and in torch's layout (a Linear's weight (out, in), a Conv2d's (out, in, kh, kw))."""
    import onnx
    from onnx import helper, numpy_helper

    graph = onnx.load(str(path), load_external_data=False).graph
    tensors = onnx_model.named_initializers(graph)  # batch norm's may be reached through Identity
    # Gemm(x, W, transB=1) holds W as torch does; MatMul(x, W) and plain Gemm hold it (in, out).
    torch_layout = {n.input[1] for n in graph.node if n.op_type == "Gemm" and len(n.input) > 1
                    and any(a.name == "transB" and helper.get_attribute_value(a)
                            for a in n.attribute)}
    out = []
    for layer in layers:
        for i, weight in enumerate(layer.get("weights") or []):
            array = numpy_helper.to_array(tensors[weight["name"]])
            transposed = layer["class"] == "Dense" and not i and weight["name"] not in torch_layout
            out.append(array.T if transposed else array)
    return out
