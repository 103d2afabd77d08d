"""Which input scaling an accuracy is reported under: the homework's [0, 1] unless another is
clearly better (a model trained on raw pixels is measured on what it was built for)."""

from __future__ import annotations

import numpy as np

from grader.checks.keras_checks import HOMEWORK_SCALING_MARGIN, best_accuracy

LABELS = np.arange(200) % 10


def predictions_with_errors(wrong: int) -> np.ndarray:
    """One-hot predictions with the first `wrong` labels shifted by one class."""
    predicted = LABELS.copy()
    predicted[:wrong] = (predicted[:wrong] + 1) % 10
    return np.eye(10)[predicted]


def test_a_hair_better_raw_accuracy_is_reported_as_the_homeworks_scaling():
    unit, raw = predictions_with_errors(5), predictions_with_errors(4)  # 0.975 vs 0.98
    assert 0 < 0.98 - 0.975 <= HOMEWORK_SCALING_MARGIN
    assert best_accuracy({"unit": unit, "raw": raw}, LABELS) == ("unit", 0.975)


def test_a_clearly_better_scaling_is_used():
    unit, raw = predictions_with_errors(100), predictions_with_errors(4)  # 0.50 vs 0.98
    assert best_accuracy({"unit": unit, "raw": raw}, LABELS) == ("raw", 0.98)


def test_outputs_of_the_wrong_width_are_not_scored():
    assert best_accuracy({"unit": np.ones((200, 3))}, LABELS) is None
