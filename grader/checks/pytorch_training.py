"""The `loss` and `optimizer` checks for a PyTorch answer: the same points and words as a Keras
answer's, from what the notebook's source says (grader/cleanroom/torch_source.py, read with ast on
the trusted side and carried in the model's description as compile["source"]).

Equivalences a TA accepts: CrossEntropyLoss on logits is a softmax output with categorical
cross-entropy (its softmax is the loss's first step); NLLLoss after LogSoftmax is the same loss;
CrossEntropyLoss after a Softmax module applies the softmax twice, the mistake Keras's
from_logits mismatch is, and costs the same. Where the source cannot tell, nothing is scored.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from ..result import CheckResult
from ..assignment import CheckSpec
from .architecture import WEIGHTED, Layer, normalise

# What each loss takes as the model's output, and the output it is cross-entropy with.
TAKES = {"CrossEntropyLoss": ("logits", {"logits", "log-probabilities"}),
         "NLLLoss": ("log-probabilities (after LogSoftmax)", {"log-probabilities"})}
_OUTPUTS = {None: "logits", "linear": "logits", "softmax": "softmax probabilities",
            "sigmoid": "sigmoid probabilities", "log_softmax": "log-probabilities"}


def source_of(model: dict[str, Any]) -> dict[str, Any]:
    return (model.get("compile") or {}).get("source") or {}


def loss(spec: CheckSpec, model: dict[str, Any]) -> CheckResult:
    source = source_of(model)
    if source.get("untrained"):  # only built, as a Keras model never compiled
        return CheckResult.scored(spec, 0.0, source["untrained"])
    if source.get("loss_unknown"):
        return CheckResult.error(spec, f"not scored: {source['loss_unknown']}")
    found = source.get("loss")
    if not found:
        if source.get("backward"):  # a hand-written loss: trained with something unreadable
            return CheckResult.error(spec, "not scored: the notebook calls backward() on a loss "
                                     "it writes itself; the grader reads only torch.nn losses")
        return CheckResult.scored(spec, 0.0, "the notebook builds no loss (such as "
                                  "nn.CrossEntropyLoss()) and never trains with one")
    name = found["name"]
    if name not in TAKES:
        return CheckResult.scored(spec, 0.0, f"loss {name} ({found['call']}) does not suit a "
                                  "10-class classifier: use nn.CrossEntropyLoss on the logits "
                                  "(or NLLLoss after LogSoftmax)")
    outputs = _outputs(model)
    wants, suits = TAKES[name]
    if outputs == "softmax probabilities" and name == "CrossEntropyLoss":
        return CheckResult.scored(spec, 0.5, f"{name} applies its own softmax, but the model "
                                  "already ends in Softmax: the softmax is applied twice (give "
                                  "the loss the last Linear layer's logits)")
    if outputs is not None and outputs not in suits:
        return CheckResult.scored(spec, 0.5, f"{name} takes {wants} but the model outputs "
                                  f"{outputs}")
    trains = source.get("backward") and source.get("step")
    if not trains:
        missing = " and ".join(c for c, ok in (("loss.backward()", source.get("backward")),
                                               (source.get("step_call", "optimizer.step()"),
                                                source.get("step"))) if not ok)
        return CheckResult.scored(spec, 0.5, f"{name} suits the output, but the notebook never "
                                  f"calls {missing}, so it never trains with it")
    return CheckResult.scored(spec, 1.0, f"{name} on the model's {outputs or 'output'} "
                              "(cross-entropy); the notebook's source calls loss.backward() and "
                              f"{source.get('step_call', 'optimizer.step()')}, so it trains with "
                              "it (read from the source, as PyTorch has no compile())")


def _outputs(model: dict[str, Any]) -> str | None:
    """What the model's last weighted layer gives the loss: logits when its softmax is the one
    CrossEntropyLoss holds (grader/measure/onnx_model.py marks it `activation_from`)."""
    raw = [l for l in model.get("layers") or [] if l.get("class") in WEIGHTED]
    if raw and raw[-1].get("activation_from"):
        return "logits"
    last = next((l.activation for l in reversed(normalise(model.get("layers") or []))
                 if l.kind in WEIGHTED), None)
    return _OUTPUTS.get(last)


def as_compared(found: list[Layer], model: dict[str, Any]) -> list[Layer]:
    """The layers the architecture checks compare, with the one equivalence that needs the
    loss: a last LogSoftmax whose output trains through NLLLoss is the softmax output the
    homework asks for (log-probabilities into NLLLoss are cross-entropy), as logits into
    CrossEntropyLoss are (grader/measure/onnx_model.py marks those)."""
    loss = source_of(model).get("loss") or {}
    weighted = [i for i, l in enumerate(found) if l.kind in WEIGHTED]
    if loss.get("name") != "NLLLoss" or not weighted or \
            found[weighted[-1]].activation != "log_softmax":
        return found
    last = weighted[-1]
    return [*found[:last], dataclasses.replace(found[last], activation="softmax",
                                               note="as LogSoftmax into NLLLoss"),
            *found[last + 1:]]


def optimizer(spec: CheckSpec, model: dict[str, Any], accepted: list[str]) -> CheckResult:
    source = source_of(model)
    want = " or ".join(map(str, accepted))
    if source.get("untrained"):
        return CheckResult.scored(spec, 0.0, f"{source['untrained']} (expected {want})")
    if source.get("optimizer_unknown"):
        return CheckResult.error(spec, f"not scored: {source['optimizer_unknown']}")
    found = source.get("optimizer")
    if not found:
        if source.get("backward"):  # trained, by an update the notebook writes itself
            return CheckResult.error(spec, "not scored: the notebook trains without a "
                                     "torch.optim optimizer the grader can read")
        return CheckResult.scored(spec, 0.0, f"the notebook builds no optimizer (expected "
                                  f"{want})")
    lr = (found.get("settings") or {}).get("lr")
    lr_text = f", learning rate {lr:g}" if isinstance(lr, (int, float)) else \
        ", PyTorch's default learning rate"
    if found["name"] in accepted:
        return CheckResult.scored(spec, 1.0, f"{found['name']}{lr_text}")
    return CheckResult.scored(spec, 0.0, f"expected {want}, found {found['name']}{lr_text}")
