"""Model similarity between two students, from what the trusted side measured only: the
weight fingerprints and holdout labels in OUT/<student>/similarity.json (grader/measure/
fingerprint.py) and the architectures and compile settings in result.json's `models` (the
measuring process's description; the kernel's own descriptions are refused before scoring).

- weights: two models whose fingerprints have the same tensor shapes and whose sampled values
  differ by at most `weights_distance` (relative L2 distance; 0 for identical weights, whose
  digests are then equal too). Independently initialised trainings are about 1 apart.
- predictions: two models whose argmax labels on the same holdout agree on at least
  `agreement` of the images.
- design: an architecture with compile settings that exactly these students chose (at most
  `design_max` of them), in a class of at least `design_min_class`, whose architecture is none
  of the reference's accepted ones (reference/<id>/expected.json, which records no learning
  rate: an unusual learning rate on the reference's architecture is not flagged).
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..checks import architecture
from ..result import GradeResult
from ..scoring import ModelStatus
from ..measure.fingerprint import labels_of


@dataclass
class WeightsMatch:
    model: str
    distance: float
    identical: bool
    tensors: int


@dataclass
class Agreement:
    model: str
    agreement: float
    images: int


def weights_distance(a: dict[str, Any], b: dict[str, Any]) -> float | None:
    """Relative L2 distance between the sampled values of two fingerprints whose tensors have
    the same shapes (None when they differ: not the same architecture)."""
    ta, tb = a.get("tensors") or [], b.get("tensors") or []
    if not ta or len(ta) != len(tb) or any(x["shape"] != y["shape"] or
                                           len(x["sample"]) != len(y["sample"])
                                           for x, y in zip(ta, tb)):
        return None
    va = np.concatenate([np.asarray(t["sample"], dtype="float64") for t in ta])
    vb = np.concatenate([np.asarray(t["sample"], dtype="float64") for t in tb])
    scale = (np.linalg.norm(va) + np.linalg.norm(vb)) / 2
    if scale == 0:
        return 0.0
    return float(np.linalg.norm(va - vb) / scale)


def compare_weights(a: dict[str, Any], b: dict[str, Any], threshold: float
                    ) -> list[WeightsMatch]:
    """Models of the two students' evidence with identical or near-identical weights."""
    found = []
    for name in sorted(set(a.get("models") or {}) & set(b.get("models") or {})):
        wa, wb = a["models"][name].get("weights"), b["models"][name].get("weights")
        if not wa or not wb:
            continue
        distance = weights_distance(wa, wb)
        if distance is not None and distance <= threshold:
            found.append(WeightsMatch(name, distance, wa.get("digest") == wb.get("digest"),
                                      len(wa["tensors"])))
    return found


def agreement(a: np.ndarray, b: np.ndarray) -> float | None:
    if a is None or b is None or len(a) != len(b) or len(a) == 0:
        return None
    return float(np.mean(a == b))


def compare_predictions(a: dict[str, Any], b: dict[str, Any], threshold: float
                        ) -> list[Agreement]:
    """Models whose holdout labels agree on at least `threshold` of the images (only on the
    same holdout: Dask workers with different machine secrets hold different ones)."""
    if not a.get("holdout") or a.get("holdout") != b.get("holdout"):
        return []
    found = []
    for name in sorted(set(a.get("models") or {}) & set(b.get("models") or {})):
        la, lb = labels_of(a["models"][name].get("labels")), labels_of(b["models"][name].get(
            "labels"))
        value = agreement(la, lb)
        if value is not None and value >= threshold:
            found.append(Agreement(name, value, len(la)))
    return found


def _layers(model: dict[str, Any]) -> list[architecture.Layer] | None:
    """The model's layers as the architecture checks compare them: an InputLayer or not, a
    Flatten or pre-flattened inputs, Dense(128, activation='relu') or Dense(128) and
    Activation('relu') are one design (the API's spelling, not a student's choice)."""
    layers = model.get("layers")
    if not isinstance(layers, list) or not layers:
        return None
    return architecture.normalise([l for l in layers if isinstance(l, dict)]) or None


def _rounded(value: Any) -> Any:
    """A learning rate as set, not as float32 holds it (0.0010000000474974513 is 0.001)."""
    return float(f"{value:.6g}") if isinstance(value, float) else value


def design_key(model: dict[str, Any], settings: bool = True) -> str | None:
    """The architecture (layers in order, without names) and, with `settings`, the compile
    settings (loss, optimizer, learning rate) of one model's description, as a string equal
    for equal designs."""
    layers = _layers(model)
    if layers is None:
        return None
    compile_ = model.get("compile") if isinstance(model.get("compile"), dict) else {}
    chosen = {k: _rounded(compile_.get(k)) for k in ("loss", "from_logits", "optimizer",
                                                     "learning_rate")} if settings else {}
    if settings and not chosen["from_logits"]:
        chosen["from_logits"] = False  # a loss named by its string is not from logits either
    return json.dumps([[[l.kind, l.size, l.activation, l.output_shape, l.details, l.params]
                        for l in layers], chosen], sort_keys=True, default=str)


def design_text(model: dict[str, Any]) -> str:
    """The design as a TA reads it: `Dense 128 relu → Dense 10 softmax; adam, lr 0.01`."""
    parts = []
    for layer in _layers(model) or []:
        width = layer.size if layer.size is not None else \
            (layer.output_shape[-1] if layer.output_shape else "")
        parts.append(" ".join(str(p) for p in (layer.kind, width, layer.activation or "")
                              if p not in ("", None)))
    compile_ = model.get("compile") if isinstance(model.get("compile"), dict) else {}
    extra = ", ".join(f"{k.replace('_', ' ')} {_rounded(compile_[k])}"
                      for k in ("optimizer", "learning_rate", "loss")
                      if compile_.get(k) is not None)
    return " → ".join(parts) + (f"; {extra}" if extra else "")


def found_models(result: GradeResult) -> dict[str, dict[str, Any]]:
    """The descriptions of the models the trusted side found in one student's result, as
    result.json has them (the same mapping the reference's expected.json variants are)."""
    return {name: model.model_dump(mode="json", by_alias=True)
            for name, model in result.models.items() if model.status == ModelStatus.FOUND}


def rare_designs(found: dict[str, dict[str, dict[str, Any]]], reference: dict[str, set[str]],
                 max_students: int, min_class: int) -> dict[tuple[str, str], list[str]]:
    """(model, design key) → students, for designs shared by 2..max_students students and
    not the reference's, in a class of at least min_class with that model measured. `found`:
    each student's found_models()."""
    by_model: dict[str, dict[str, list[str]]] = defaultdict(lambda: defaultdict(list))
    for student, descriptions in sorted(found.items()):
        for name, model in sorted(descriptions.items()):
            key = design_key(model)
            if key is not None:
                by_model[name][key].append(student)
    rare = {}
    for name, designs in by_model.items():
        if sum(len(s) for s in designs.values()) < min_class:
            continue
        for key, students in designs.items():
            architecture = json.dumps([json.loads(key)[0], {}], sort_keys=True, default=str)
            if 2 <= len(students) <= max_students and \
                    architecture not in reference.get(name, set()):
                rare[(name, key)] = students
    return rare


def reference_designs(expected: dict[str, Any]) -> dict[str, set[str]]:
    """Each object's accepted designs in reference/<id>/expected.json, as design keys."""
    out: dict[str, set[str]] = {}
    for name, entry in ((expected or {}).get("objects") or {}).items():
        variants = entry.get("variants") if isinstance(entry, dict) else None
        for variant in variants or []:
            if isinstance(variant, dict):
                key = design_key(variant, settings=False)  # it records no learning rate
                if key is not None:
                    out.setdefault(name, set()).add(key)
    return out
