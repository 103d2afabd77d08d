"""What the trusted side records of each model for the class's similarity report: computed in
the measuring process (grader/measure/worker.py) and on the grader's side of the pipeline, never
in the student's kernel. numpy only: the measuring process imports it beside Keras.

- `of_weights`: a fingerprint of the trained weights that ignores layer and variable names and
  the order they come in: each tensor's shape and a fixed sample of its values (evenly spaced
  positions, so the same for every copy of a tensor), tensors sorted by shape then sample; and
  a digest of all values quantised to 5 decimals, equal for identical weights.
- `labels_text`: the argmax labels of a model's holdout predictions as one short string.

Both are small (a few kB per model) and stay out of result.json: the batch keeps them in
OUT/<student>/similarity.json, which no student-facing report reads.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any, Iterable

import numpy as np

SAMPLE = 64  # values kept of each tensor
MAX_TENSORS = 512
DECIMALS = 5  # of the digest's quantisation


def of_weights(arrays: Iterable[Any]) -> dict[str, Any] | None:
    """{"digest": hex, "tensors": [{"shape": [...], "sample": [...]}, ...]}, or None for a
    model without weights."""
    tensors = []
    for value in arrays:
        a = np.asarray(value, dtype="float64")
        if a.size == 0:
            continue
        flat = np.nan_to_num(a.ravel(), nan=0.0, posinf=0.0, neginf=0.0)
        positions = np.unique(np.linspace(0, flat.size - 1, min(SAMPLE, flat.size)).astype(int))
        tensors.append((tuple(int(d) for d in a.shape), flat, flat[positions]))
    if not tensors:
        return None
    tensors.sort(key=lambda t: (len(t[0]), t[0], tuple(np.round(t[2], 3))))
    digest = hashlib.sha256()
    for shape, flat, _ in tensors:
        digest.update(repr(shape).encode())
        digest.update(np.round(flat, DECIMALS).astype("float64").tobytes())
    return {"digest": digest.hexdigest(),
            "tensors": [{"shape": list(shape), "sample": [round(float(x), 7) for x in sample]}
                        for shape, _, sample in tensors[:MAX_TENSORS]]}


def valid(fingerprint: Any) -> dict[str, Any] | None:
    """A fingerprint read back from the measuring process's manifest, bounded and typed."""
    if not isinstance(fingerprint, dict):
        return None
    digest, tensors = fingerprint.get("digest"), fingerprint.get("tensors")
    if not isinstance(digest, str) or len(digest) != 64 or not isinstance(tensors, list) or \
            len(tensors) > MAX_TENSORS:
        return None
    out = []
    for t in tensors:
        if not isinstance(t, dict) or not isinstance(t.get("shape"), list) or \
                not isinstance(t.get("sample"), list) or len(t["sample"]) > SAMPLE:
            return None
        try:
            out.append({"shape": [int(d) for d in t["shape"][:8]],
                        "sample": [float(x) for x in t["sample"]]})
        except (TypeError, ValueError):
            return None
    return {"digest": digest, "tensors": out}


def labels_text(predictions: np.ndarray) -> str | None:
    """Argmax labels (at most 256 classes) as base64 of one byte each."""
    if predictions.ndim != 2 or not 2 <= predictions.shape[1] <= 256:
        return None
    labels = np.argmax(predictions, axis=1).astype("uint8")
    return base64.b64encode(labels.tobytes()).decode("ascii")


def labels_of(text: Any) -> np.ndarray | None:
    if not isinstance(text, str):
        return None
    try:
        return np.frombuffer(base64.b64decode(text.encode("ascii"), validate=True), dtype="uint8")
    except (ValueError, UnicodeError):
        return None
