"""What a PyTorch answer's notebook source says about its training, read with ast (never run).

PyTorch has no compile(): the loss lives in the notebook's code. The trusted side reads it from
the source the student handed in, not from anything the kernel reports.
"""

from __future__ import annotations

import ast
from typing import Any

from .cleanroom.source import parsed_cells

# Calls that are cross-entropy on logits (the softmax is the loss's first step).
CROSS_ENTROPY = {"CrossEntropyLoss", "cross_entropy"}
# Other losses a notebook may build: with any of them the loss is not known to be cross-entropy.
OTHER_LOSSES = {"NLLLoss", "nll_loss", "MSELoss", "mse_loss", "L1Loss", "l1_loss", "BCELoss",
                "binary_cross_entropy", "BCEWithLogitsLoss", "binary_cross_entropy_with_logits",
                "KLDivLoss", "kl_div", "HuberLoss", "huber_loss", "SmoothL1Loss",
                "smooth_l1_loss", "MultiMarginLoss", "multi_margin_loss"}


def called_names(nb: Any) -> set[str]:
    """The last name of every call in the notebook's code cells (`nn.CrossEntropyLoss()` gives
    CrossEntropyLoss)."""
    names = set()
    for tree in parsed_cells(nb):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                func = node.func
                if isinstance(func, ast.Attribute):
                    names.add(func.attr)
                elif isinstance(func, ast.Name):
                    names.add(func.id)
    return names


def cross_entropy_loss(nb: Any) -> bool:
    """The notebook trains with cross-entropy (`nn.CrossEntropyLoss()`, `F.cross_entropy`) and
    builds no other loss: only then is a last Linear layer's output a softmax's logits."""
    names = called_names(nb)
    return bool(names & CROSS_ENTROPY) and not names & OTHER_LOSSES
