"""The grader's own training of a PyTorch design, in the trusted measuring process.

The design is rebuilt as a `torch.nn.Sequential` only from torch.nn classes on an allow-list,
from the description the trusted side read out of the ONNX export (grader/measure/onnx_model.py):
nothing of the student's is unpickled or run. It is trained from fresh weights (torch's own
initialisation, under `torch.manual_seed`) with the loss and optimizer the notebook's source
names (grader/cleanroom/torch_source.py), by the grader's loop (timed_fit.run_epochs: the same
shuffling, CPU cap and report as a Keras design's), and predicts the holdout the way a Keras design
does.

torch is imported only inside these functions' bodies, so the Keras path never loads it.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .timed_fit import predict_holdout, run_epochs

# Keras's words in the description → the torch.nn class that computes that layer.
ACTIVATIONS = {"relu": "ReLU", "sigmoid": "Sigmoid", "tanh": "Tanh", "softmax": "Softmax",
               "log_softmax": "LogSoftmax"}
OPTIMIZERS = {"Adam", "AdamW", "SGD", "RMSprop", "Adagrad", "Adadelta", "Adamax", "NAdam",
              "RAdam"}
OPTIMIZER_SETTINGS = {"lr", "momentum", "dampening", "weight_decay", "nesterov", "betas", "eps",
                      "amsgrad", "alpha", "centered", "rho", "lr_decay",
                      "initial_accumulator_value", "maximize"}
# Losses the loop trains with, and how it gives them the labels.
LOSSES = {"CrossEntropyLoss": "indices", "NLLLoss": "indices", "MSELoss": "one-hot"}
LOSS_SETTINGS = {"CrossEntropyLoss": {"label_smoothing", "reduction"},
                 "NLLLoss": {"reduction"}, "MSELoss": {"reduction"}}


class CannotRebuild(ValueError):
    """The design, loss or optimizer is not one the grader rebuilds; the message says why."""


def blueprint(layers: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(torch.nn class, its arguments) for each layer of the description, in order."""
    plan: list[tuple[str, dict[str, Any]]] = []
    for layer in layers:
        kind, config = layer.get("class"), layer.get("config") or {}
        if kind == "Dense":
            shape = (layer.get("weights") or [{}])[0].get("shape") or []
            if len(shape) != 2:
                raise CannotRebuild(f"a Linear layer whose weight is shaped {shape}")
            if layer.get("activation") and not layer.get("activation_from"):
                raise CannotRebuild(f"a Linear layer with a {layer['activation']} inside it")
            plan.append(("Linear", {"in_features": int(shape[0]), "out_features": int(shape[1]),
                                    "bias": bool(config.get("use_bias", True))}))
        elif kind == "Activation" and layer.get("activation") in ACTIVATIONS:
            name = ACTIVATIONS[layer["activation"]]
            plan.append((name, {"dim": 1} if "Softmax" in name else {}))
        elif kind in ("Flatten", "Reshape") and len(layer.get("output_shape") or []) == 2:
            plan.append(("Flatten", {}))  # nn.Flatten or x.view(-1, 784): rows stay rows
        elif kind == "Dropout":
            plan.append(("Dropout", {"p": float(config.get("rate", 0.5))}))
        else:
            what = layer.get("torch_class") or kind
            raise CannotRebuild(f"its {what} layer is not one the grader rebuilds from torch.nn "
                                f"(it rebuilds Linear, {', '.join(ACTIVATIONS.values())}, "
                                "Flatten and Dropout)")
    if not any(name == "Linear" for name, _ in plan):
        raise CannotRebuild("it has no Linear layer")
    return plan


def build(plan: list[tuple[str, dict[str, Any]]]) -> Any:
    import torch

    return torch.nn.Sequential(*(getattr(torch.nn, name)(**args) for name, args in plan))


def loss_plan(source: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The loss the notebook's source names, with its constant settings; CannotRebuild when the
    source does not say, or names one the grader does not train with."""
    found = source.get("loss")
    if not found:
        raise CannotRebuild(source.get("loss_unknown") or "the notebook's source names no "
                            "torch.nn loss, so the grader does not know which to train with")
    name, settings = found["name"], dict(found.get("settings") or {})
    if name not in LOSSES:
        raise CannotRebuild(f"the grader does not train with {name}")
    odd = sorted(set(found.get("unreadable") or []) | (set(settings) - LOSS_SETTINGS[name]))
    if odd or settings.get("reduction", "mean") not in ("mean", "sum"):
        raise CannotRebuild(f"the loss {found['call']} has settings the grader does not "
                            f"rebuild ({', '.join(odd) or 'reduction'})")
    return name, settings


def optimizer_plan(source: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    found = source.get("optimizer")
    if not found:
        raise CannotRebuild(source.get("optimizer_unknown") or "the notebook's source names "
                            "no torch.optim optimizer, so the grader does not know which to "
                            "train with")
    name, settings = found["name"], dict(found.get("settings") or {})
    odd = sorted(set(found.get("unreadable") or []) | (set(settings) - OPTIMIZER_SETTINGS))
    if name not in OPTIMIZERS or odd:
        raise CannotRebuild(f"the optimizer {found['call']} is not one the grader rebuilds"
                            + (f" (settings {', '.join(odd)})" if odd else ""))
    if any(not isinstance(v, (int, float, bool, list)) for v in settings.values()):
        raise CannotRebuild(f"the optimizer {found['call']} has settings that are not numbers")
    return name, settings


def timed_fit(plan: list[tuple[str, dict[str, Any]]], *, loss: tuple[str, dict[str, Any]],
              optimizer: tuple[str, dict[str, Any]], x_train: np.ndarray, y_train: np.ndarray,
              images: np.ndarray, layout: tuple[int, ...], epochs: int, batch_size: int,
              max_cpu_seconds: float, n_classes: int, seed: int) -> dict[str, Any]:
    """Train the rebuilt design from fresh weights on the training subset (pixels in [0, 1])
    and predict the holdout `images` the same way."""
    import torch

    started, cpu_start = time.monotonic(), time.process_time()
    torch.manual_seed(seed)  # before the weights are created, and for dropout's masks
    model = build(plan)
    start = [p.detach().clone() for p in model.parameters()]
    x = torch.from_numpy(x_train.astype("float32").reshape((len(x_train), *layout)) / 255.0)
    labels = torch.from_numpy(y_train.astype("int64"))
    loss_name, loss_settings = loss
    y = labels if LOSSES[loss_name] == "indices" else \
        torch.nn.functional.one_hot(labels, n_classes).float()
    criterion = getattr(torch.nn, loss_name)(**loss_settings)
    name, settings = optimizer
    if isinstance(settings.get("betas"), list):
        settings = {**settings, "betas": tuple(settings["betas"])}
    update = getattr(torch.optim, name)(model.parameters(), **settings)

    def step(rows: np.ndarray) -> tuple[float, int]:
        index = torch.from_numpy(rows)
        xb, yb = x[index], y[index]
        update.zero_grad()
        out = model(xb)
        value = criterion(out, yb)
        value.backward()
        update.step()
        return float(value.detach()), int((out.argmax(1) == labels[index]).sum())

    model.train()
    result = run_epochs(step, len(x), epochs=epochs, batch_size=batch_size,
                        max_cpu_seconds=max_cpu_seconds, seed=seed)
    model.eval()
    holdout = images.astype("float32").reshape((len(images), *layout)) / 255.0

    def predict(batch: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return model(torch.from_numpy(batch)).numpy()

    pred = predict_holdout(predict, holdout, cpu_start, max_cpu_seconds)
    changed = any(not torch.equal(a, p.detach()) for a, p in zip(start, model.parameters()))
    return {**result, "weights_changed": changed,
            "predictions": pred.reshape((len(images), -1)).astype("float32"),
            "seconds": round(time.monotonic() - started, 3)}


def load_weights(model: Any, weights: list[np.ndarray]) -> None:
    """The export's own weights into the rebuilt design, in torch's layout (Linear: (out, in),
    then bias), so the grader can check the rebuilt design computes what the export does."""
    import torch

    params = list(model.parameters())
    if len(params) != len(weights) or any(tuple(p.shape) != w.shape
                                          for p, w in zip(params, weights)):
        raise CannotRebuild("the rebuilt design's weights do not fit the export's")
    with torch.no_grad():
        for p, w in zip(params, weights):
            p.copy_(torch.from_numpy(np.array(w, dtype="float32")))  # a writable copy
