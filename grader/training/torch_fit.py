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
POOLING = {"MaxPooling2D": "MaxPool2d", "AveragePooling2D": "AvgPool2d"}
LOSSES = {"CrossEntropyLoss": "indices", "NLLLoss": "indices", "MSELoss": "one-hot"}
LOSS_SETTINGS = {"CrossEntropyLoss": {"label_smoothing", "reduction"},
                 "NLLLoss": {"reduction"}, "MSELoss": {"reduction"}}


class CannotRebuild(ValueError):
    """The design, loss or optimizer is not one the grader rebuilds; the message says why."""


def blueprint(layers: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    """(torch.nn class, its arguments) for each layer of the description, in order."""
    plan = [step for layer in layers for step in _rebuilt(layer)]
    if not any(name in ("Linear", "Conv2d") for name, _ in plan):
        raise CannotRebuild("it has no Linear or Conv2d layer")
    return plan


def _rebuilt(layer: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    kind, shape = layer.get("class"), layer.get("output_shape") or []
    if kind in ("Flatten", "Reshape") and len(shape) == 2:
        return [("Flatten", {})]  # nn.Flatten or x.view(-1, 784): rows stay rows, NCHW kept
    if kind == "Reshape" and len(shape) == 4 and all(shape[1:]):
        # x.view(-1, 1, 28, 28): the row-major reshape is a Flatten, then an Unflatten to
        # torch's (C, H, W) (the description gives shapes channels last, as Keras does).
        return [("Flatten", {}), ("Unflatten", {"dim": 1, "unflattened_size": (
            int(shape[3]), int(shape[1]), int(shape[2]))})]
    return [_one(layer)]


def _one(layer: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kind, config = layer.get("class"), layer.get("config") or {}
    if kind in ("Dense", "Conv2D") and layer.get("activation") \
            and not layer.get("activation_from"):
        raise CannotRebuild(f"a {layer.get('torch_class') or kind} layer with a "
                            f"{layer['activation']} inside it")
    if kind == "Dense":
        return _linear(layer, config)
    if kind == "Conv2D":
        return _conv2d(layer, config)
    if kind in POOLING:
        return _pool2d(POOLING[kind], config)
    if kind == "BatchNormalization" and layer.get("torch_class") in ("BatchNorm1d", "BatchNorm2d"):
        return _batch_norm(layer, config)
    if kind == "Activation" and layer.get("activation") in ACTIVATIONS:
        name = ACTIVATIONS[layer["activation"]]
        return name, {"dim": 1} if "Softmax" in name else {}
    if kind == "Dropout":
        return "Dropout", {"p": float(config.get("rate", 0.5))}
    what = layer.get("torch_class") or kind
    raise CannotRebuild(f"its {what} layer is not one the grader rebuilds from torch.nn (it "
                        f"rebuilds Linear, Conv2d, MaxPool2d, AvgPool2d, BatchNorm1d/2d, "
                        f"{', '.join(ACTIVATIONS.values())}, Flatten, view and Dropout)")


def _weight_shape(layer: dict[str, Any], axes: int) -> list[int]:
    shape = (layer.get("weights") or [{}])[0].get("shape") or []
    if len(shape) != axes:
        raise CannotRebuild(f"a {layer.get('torch_class') or layer.get('class')} layer whose "
                            f"weight is shaped {shape}")
    return [int(d) for d in shape]


def _linear(layer: dict[str, Any], config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    n_in, n_out = _weight_shape(layer, 2)  # Keras's order: (in, out)
    return "Linear", {"in_features": n_in, "out_features": n_out,
                      "bias": bool(config.get("use_bias", True))}


def _conv2d(layer: dict[str, Any], config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    kh, kw, per_group, filters = _weight_shape(layer, 4)  # Keras's order: (kh, kw, in, out)
    groups = int(config.get("groups", 1))
    return "Conv2d", {"in_channels": per_group * groups, "out_channels": filters,
                      "kernel_size": (kh, kw), "stride": tuple(config.get("strides") or (1, 1)),
                      "padding": _symmetric(config), "groups": groups,
                      "dilation": tuple(config.get("dilations") or (1, 1)),
                      "bias": bool(config.get("use_bias", True))}


def _pool2d(name: str, config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    size = config.get("pool_size") or []
    if len(size) != 2:
        raise CannotRebuild(f"a {name} over {len(size)} axes")
    args = {"kernel_size": tuple(size), "stride": tuple(config.get("strides") or size),
            "padding": _symmetric(config), "ceil_mode": bool(config.get("ceil_mode"))}
    if name == "MaxPool2d":
        args["dilation"] = tuple(config.get("dilations") or (1, 1))
    else:
        args["count_include_pad"] = bool(config.get("count_include_pad"))
    return name, args


def _symmetric(config: dict[str, Any]) -> tuple[int, int]:
    """torch.nn pads each side of an axis alike: ONNX's starts must equal its ends."""
    pads = config.get("pads")
    if pads is None or len(pads) != 4 or pads[:2] != pads[2:]:
        raise CannotRebuild(f"a layer padded {config.get('padding')!r} with pads {pads}, "
                            "which torch.nn's padding does not express")
    return int(pads[0]), int(pads[1])


def _batch_norm(layer: dict[str, Any], config: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    shape = _weight_shape(layer, 1)
    # ONNX keeps the share of the old statistics (Keras's momentum); torch the new one's.
    return layer["torch_class"], {"num_features": shape[0],
                                  "eps": float(config.get("epsilon", 1e-5)),
                                  "momentum": round(1.0 - float(config.get("momentum", 0.9)), 6)}


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
    """The export's own weights into the rebuilt design, in torch's layout and order (Linear:
    (out, in), then bias; Conv2d: (out, in, kh, kw), then bias; BatchNorm: scale, shift, moving
    mean and variance), so the grader can check the rebuilt design computes what the export
    does."""
    import torch

    state = {k: v for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    if len(state) != len(weights) or any(tuple(v.shape) != w.shape
                                         for v, w in zip(state.values(), weights)):
        raise CannotRebuild("the rebuilt design's weights do not fit the export's")
    loaded = {k: torch.from_numpy(np.array(w, dtype="float32")) for k, w in zip(state, weights)}
    model.load_state_dict(loaded, strict=False)  # strict=False: num_batches_tracked stays
