"""The loss and optimizer of a PyTorch answer, read from its notebook's source with ast (never
run): many ways of writing them, and the ones whose answer the source does not give."""

from __future__ import annotations

import nbformat
import pytest

from grader.cleanroom import torch_source


def _read(*cells: str, model: str = "model") -> dict:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    return torch_source.training(nb, model)


HOMEWORK_LOOP = ("for xb, yb in loader:\n    optimizer.zero_grad()\n"
                 "    loss = loss_fn(model(xb), yb)\n    loss.backward()\n    optimizer.step()")


def test_the_homeworks_style_is_read_whole():
    read = _read("import torch\nfrom torch import nn",
                 "loss_fn = nn.CrossEntropyLoss()\n"
                 "optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)", HOMEWORK_LOOP)
    assert read["loss"]["name"] == "CrossEntropyLoss" and read["loss_unknown"] is None
    assert read["optimizer"]["name"] == "Adam" and read["optimizer"]["settings"] == {"lr": 0.001}
    assert read["optimizer"]["tied"] == "model.parameters()"
    assert read["backward"] and read["step"] and read["step_call"] == "optimizer.step()"


@pytest.mark.parametrize("cells, name, settings", [
    (("import torch.optim as optim\nimport torch.nn.functional as F\nlr = 0.01",
      "opt = optim.SGD(model.parameters(), lr, momentum=0.9)"), "SGD",
     {"lr": 0.01, "momentum": 0.9}),
    (("from torch.optim import Adam", "opt = Adam(params=model.parameters())"), "Adam", {}),
    (("from torch import optim", "opt = optim.AdamW(model.parameters(), weight_decay=1e-2, "
      "betas=(0.9, 0.99))"), "AdamW", {"weight_decay": 0.01, "betas": [0.9, 0.99]}),
    (("from torch.optim import *", "opt = RMSprop(model.parameters(), 1e-3)"), "RMSprop",
     {"lr": 0.001}),
    (("import torch", "net = Net()\nmodel = net\nopt = torch.optim.Adam(net.parameters())"),
     "Adam", {}),  # `model = net`: the same module
    (("import torch", "opt = torch.optim.Adam(params, lr=3e-4)"), "Adam", {"lr": 0.0003}),
])
def test_optimizer_spellings(cells, name, settings):
    read = _read(*cells)
    assert read["optimizer_unknown"] is None, read["optimizer_unknown"]
    assert read["optimizer"]["name"] == name and read["optimizer"]["settings"] == settings


@pytest.mark.parametrize("cells, words", [
    (("import torch", "a = torch.optim.Adam(model.parameters())\n"
      "b = torch.optim.SGD(model.parameters(), lr=0.1)"), "2 different optimizers"),
    (("import torch", "a = torch.optim.Adam(gen.parameters())\n"
      "b = torch.optim.Adam(disc.parameters())"), "none is given `model.parameters()`"),
    (("import torch", "a = torch.optim.Adam(net.parameters(), lr=1e-3)"), "trains `net`"),
    (("import torch\nbase = 0.1", "a = torch.optim.Adam(model.parameters(), lr=base * 0.1)"),
     "not a constant"),
    (("import torch", "for lr in (0.1, 0.01):\n"
      "    a = torch.optim.Adam(model.parameters(), lr=lr)"), "not a constant"),
    (("import torch\nlr = 0.1\nlr = 0.01", "a = torch.optim.SGD(model.parameters(), lr)"),
     "not a constant"),  # bound twice: which one held when the optimizer was built?
])
def test_optimizers_the_source_does_not_pin_down_are_unknown(cells, words):
    read = _read(*cells)
    assert read["optimizer"] is None and words in read["optimizer_unknown"]


def test_the_optimizer_of_the_graded_model_is_chosen_among_several():
    read = _read("import torch", "g = torch.optim.SGD(gen.parameters(), lr=0.1)\n"
                 "opt = torch.optim.Adam(model.parameters(), lr=2e-3)")
    assert read["optimizer"]["name"] == "Adam" and read["optimizer"]["settings"]["lr"] == 0.002
    assert read["step_call"] == "opt.step()" and not read["step"]


@pytest.mark.parametrize("cells, name", [
    (("import torch.nn.functional as F", "loss = F.cross_entropy(model(x), y)"),
     "CrossEntropyLoss"),
    (("import torch", "crit = torch.nn.CrossEntropyLoss(label_smoothing=0.1)"),
     "CrossEntropyLoss"),
    (("from torch.nn import NLLLoss", "crit = NLLLoss()"), "NLLLoss"),
    (("import torch.nn as nn", "crit = nn.MSELoss()"), "MSELoss"),
    (("from torch.nn import functional as F", "l = F.cross_entropy(a, b)\n"
      "v = F.cross_entropy(c, d)"), "CrossEntropyLoss"),  # training and validation alike
])
def test_loss_spellings(cells, name):
    read = _read(*cells)
    assert read["loss_unknown"] is None and read["loss"]["name"] == name


def test_losses_the_source_does_not_pin_down():
    read = _read("import torch.nn as nn", "a = nn.CrossEntropyLoss()\nb = nn.MSELoss()")
    assert read["loss"] is None and "several losses" in read["loss_unknown"]
    # Not torch's: a Keras loss of the same name is no PyTorch loss.
    read = _read("from tensorflow.keras.losses import CategoricalCrossentropy as CrossEntropyLoss",
                 "a = CrossEntropyLoss()")
    assert read["loss"] is None and read["loss_unknown"] is None
    # Comments, strings and unparseable cells say nothing.
    read = _read("# nn.CrossEntropyLoss()\ns = 'torch.optim.Adam(model.parameters())'",
                 "%%bash\necho hi")
    assert read["loss"] is None and read["optimizer"] is None and not read["backward"]


def test_unreadable_settings_are_named():
    read = _read("import torch", "w = torch.ones(10)\nc = torch.nn.CrossEntropyLoss(weight=w)\n"
                 "o = torch.optim.SGD(model.parameters(), 0.1, 0.9)")
    assert read["loss"]["unreadable"] == ["weight"]
    assert read["optimizer"]["settings"] == {"lr": 0.1}
    assert read["optimizer"]["unreadable"] == ["argument 3"]


def test_an_optimizer_built_in_a_training_function_is_tied_through_its_call():
    function = ("import torch\n"
                "def fit(net, loader, epochs, lr=1e-3):\n"
                "    opt = torch.optim.SGD(net.parameters(), lr=0.05)\n"
                "    for _ in range(epochs):\n"
                "        for x, y in loader:\n"
                "            opt.zero_grad()\n"
                "            torch.nn.functional.cross_entropy(net(x), y).backward()\n"
                "            opt.step()\n")
    read = _read(function, "fit(model, loader, 5)")
    assert read["optimizer"]["name"] == "SGD" and read["optimizer"]["settings"] == {"lr": 0.05}
    assert read["step"] and read["loss"]["name"] == "CrossEntropyLoss"
    read = _read(function, "fit(loader=loader, net=model, epochs=5)")
    assert read["optimizer"]["name"] == "SGD"
    read = _read(function, "fit(other, loader, 5)")  # never given the graded model
    assert read["optimizer"] is None and "trains `net`, not `model`" in read["optimizer_unknown"]


def test_a_model_only_built_is_never_trained():
    """Built, printed and run, but handed to no function or optimizer: the notebook never
    trains it, as a Keras model never compiled; handed to anything else, the source cannot
    tell, and says so."""
    function = ("import torch\n"
                "def fit(net, epochs):\n"
                "    opt = torch.optim.Adam(net.parameters())\n"
                "    loss = torch.nn.functional.cross_entropy(net(x), y)\n"
                "    loss.backward()\n    opt.step()\n")
    built = "model = torch.nn.Linear(784, 10)\nprint(model)\nmodel.eval()\nmodel(x)"
    read = _read(function, "fit(other, 5)", built)
    assert read["optimizer"] is None and read["optimizer_unknown"] is None
    assert read["untrained"].startswith("`model` is never trained: the notebook's only "
                                        "optimizer, torch.optim.Adam(net.parameters()), trains")
    for handed in ("for m in [other, model]:\n    fit(m, 5)", "train_all(model)",
                   "params = list(model.parameters())", "model.fit(loader, epochs=5)",
                   "model.fc.weight.data.zero_()"):
        read = _read(function, "fit(other, 5)", built, handed)
        assert read["untrained"] is None and "not `model`" in read["optimizer_unknown"], handed
