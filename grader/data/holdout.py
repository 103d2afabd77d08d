"""The private holdout: which images form it, and how the trusted side shows them to a model.

Which images: drawn by an instructor-side secret, never by anything students receive
(assignment.toml's seed fixes only the notebook's subset). The secret is GRADER_HOLDOUT_SECRET
when set (a course's secret: a repository or organisation secret in GitHub Actions, an
environment variable in Gradescope's setup.sh or a TA's shell); otherwise a random secret made
once per machine and kept in the grader's cache folder, readable by its user only. To rotate it,
set a new value (or delete the machine's file); thresholds follow by themselves, since they hold
for any holdout of the same size (see README, "Where each scored number comes from").

How they are shown: every holdout image is also a public image, so a model that looked answers
up by the exact pixels (a hash table in a SavedModel, say) would be perfect on it. The trusted
side predicts slightly perturbed copies instead: each pixel moves by Gaussian noise of
PERTURBATION_SD grey levels, rounded and clipped to 0..255, drawn from the secret. A classifier
hardly notices (calibration runs on the same perturbed images); an exact lookup finds nothing.
"""

from __future__ import annotations

import hashlib
import os
import secrets as secrets_mod
from dataclasses import dataclass

import numpy as np

from .. import environment

SECRET_VAR = "GRADER_HOLDOUT_SECRET"
PERTURBATION_SD = 3.0  # grey levels, of 255
_MACHINE_FILE = "holdout-secret"


@dataclass(frozen=True)
class Secret:
    value: str
    source: str  # "environment" | "machine"


def secret() -> Secret:
    given = os.environ.get(SECRET_VAR)
    if given:
        return Secret(given, "environment")
    return Secret(_machine_secret(), "machine")


def _machine_secret() -> str:
    path = environment.cache_dir() / _MACHINE_FILE
    try:
        return path.read_text().strip() or _new_machine_secret(path)
    except FileNotFoundError:
        return _new_machine_secret(path)


def _new_machine_secret(path) -> str:  # noqa: ANN001 - a Path
    value = secrets_mod.token_hex(16)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value)
    try:
        os.link(tmp, path)  # the first writer wins, so concurrent workers agree on one secret
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_text().strip()


def perturb(images: np.ndarray, secret_value: str) -> np.ndarray:
    """The images the trusted side predicts: uint8, each pixel moved by a little noise."""
    digest = hashlib.sha256(f"grader-perturbation:{secret_value}".encode()).digest()
    rng = np.random.default_rng(int.from_bytes(digest[:8], "big"))
    noise = rng.normal(0.0, PERTURBATION_SD, size=images.shape)
    return np.clip(np.rint(images.astype("float64") + noise), 0, 255).astype("uint8")
