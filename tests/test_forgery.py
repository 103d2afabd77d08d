"""Forgeries a determined student tries from inside the kernel: each earns nothing it did not do,
because every Keras number is measured by the trusted process on the exported model.
Run with `pytest -m hostile`."""

from __future__ import annotations

import json

import nbformat
import numpy as np
import pytest

from grader import data, pipeline, assignment as spec
from grader.data import holdout
from grader import paths
REFERENCE_DIR = paths.reference_dir()

pytestmark = [pytest.mark.hostile, pytest.mark.slow]

ASSIGNMENT = "fashion-mlp"
# A model that was never trained and is not the homework's architecture.
UNTRAINED = ("import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras\n"
             "model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10, "
             "activation='sigmoid')])\nmodel.compile('adam', 'categorical_crossentropy', "
             "metrics=['accuracy'])")
REFERENCE_LAYERS = json.loads((REFERENCE_DIR / ASSIGNMENT / "expected.json").read_text()
                              )["objects"]["model"]["variants"][0]

FORGERIES = {
    # Otter's and nbgrader's hole: evaluate() reports perfect accuracy.
    "patched-evaluate": [UNTRAINED, "tf.keras.Model.evaluate = lambda self, *a, **k: [0.0, 1.0]"],
    # The grader's own introspection, to_json and predict replaced before the harvest runs.
    "patched-introspection": [UNTRAINED, (
        "import grader.measure.introspect as ki\n"
        f"REF = {json.dumps(REFERENCE_LAYERS)!r}\n"
        "import json\n"
        "ki.describe_model = lambda m, s: dict(json.loads(REF), kind='Sequential', built=True, "
        "unused_layers=[], weights_params=109386, trace_error=None, "
        "compile={'compiled': True, 'loss': 'categorical_crossentropy', 'optimizer': 'Adam', "
        "'learning_rate': 0.001, 'train_steps': 750})\n"
        "model.to_json = lambda: keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, "
        "activation='relu'), keras.layers.Dense(64, activation='relu'), keras.layers.Dense(10, "
        "activation='softmax')]).to_json()\n"
        "model.predict = lambda x, **k: np.eye(10)[np.zeros(len(x), int)]")],
    # predict() as 5-nearest-neighbours over the training subset: a good classifier, but not
    # the model.
    "knn-predict": [UNTRAINED, (
        "(xt, yt), _ = tf.keras.datasets.fashion_mnist.load_data()\n"
        "xt = xt.reshape(len(xt), -1).astype('float32') / 255\n"
        "def knn(x, **k):\n"
        "    x = np.asarray(x, 'float32').reshape(len(x), -1)\n"
        "    x = x / 255 if x.max() > 1.5 else x\n"
        "    d = ((x ** 2).sum(1)[:, None] - 2 * x @ xt.T + (xt ** 2).sum(1)[None])\n"
        "    votes = yt[np.argsort(d, 1)[:, :5]]\n"
        "    return np.eye(10)[[np.bincount(v, minlength=10).argmax() for v in votes]]\n"
        "model.predict = knn")],
    # The harvest replaced by one that writes a perfect description of its own.
    "forged-manifest": [UNTRAINED, (
        "import grader.kernel.export as hk, json\n"
        f"REF = json.loads({json.dumps(REFERENCE_LAYERS)!r})\n"
        "hk._export_keras = lambda m, obj, out: {'status': 'found', "
        "'type': 'keras.Sequential', 'input_layout': [784], 'model': dict(REF, kind='subclassed', "
        "unused_layers=[], compile={'compiled': True, 'loss': 'categorical_crossentropy', "
        "'optimizer': 'Adam', 'learning_rate': 0.001, 'train_steps': 750})}")],
    # A 21.4M-parameter model that says it is small: to_json and count_params patched.
    "oversized-claims-small": [(
        "import numpy as np\nfrom tensorflow import keras\n"
        "model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(27000), "
        "keras.layers.Dense(10, activation='softmax')])\n"
        "model.compile('adam', 'categorical_crossentropy')\n"
        "small = keras.Sequential([keras.Input((784,)), keras.layers.Dense(10)])\n"
        "model.to_json = small.to_json\nmodel.count_params = small.count_params")],
}


def lookup_notebook(images: np.ndarray, labels: np.ndarray) -> list[str]:
    """A subclassed model that answers by looking each image up in a table of the public-seed
    holdout (recomputed from the public files and assignment.toml's seed): exact pixels → label."""
    weights = np.random.default_rng(1).integers(1, 2**20, 784)
    keys = (images.reshape(len(images), -1).astype("int64") * weights).sum(axis=1)
    return [(
        "import numpy as np\nimport tensorflow as tf\nfrom tensorflow import keras\n"
        f"KEYS = np.array({keys.tolist()}, dtype='int64')\n"
        f"LABELS = np.array({labels.tolist()}, dtype='int64')\n"
        f"WEIGHTS = np.array({weights.tolist()}, dtype='int64')\n"
        "class Lookup(keras.Model):\n"
        "    def call(self, x, training=False):\n"
        "        pixels = tf.cast(tf.round(tf.reshape(x, (-1, 784)) * 255.0), tf.int64)\n"
        "        key = tf.reduce_sum(pixels * WEIGHTS, axis=1)\n"
        "        hit = tf.cast(tf.equal(key[:, None], KEYS[None, :]), tf.int64)\n"
        "        return tf.one_hot(tf.gather(LABELS, tf.argmax(hit, axis=1)), 10)\n"
        "model = Lookup()\nmodel(np.zeros((2, 784), 'float32'))\n"
        "model.compile('adam', 'categorical_crossentropy')")]


def public_seed_holdout(data_dir) -> tuple[np.ndarray, np.ndarray]:
    """What a student can rebuild offline: the holdout drawn with assignment.toml's own seed."""
    assignment = spec.load(ASSIGNMENT)
    d = assignment.data
    split = data.make_split(data.load(d.dataset, data_dir), seed=d.seed,
                            train_per_class=d.train_per_class, test_per_class=d.test_per_class,
                            holdout_per_class=d.holdout_per_class)
    return split.holdout


@pytest.fixture(scope="module")
def forged(tmp_path_factory, data_dir):
    assignment = spec.load(ASSIGNMENT)

    def grade(name, cells):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        path = tmp_path_factory.mktemp(name) / f"{name}.ipynb"
        nbformat.write(nb, path)
        return pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))

    results = {name: grade(name, cells) for name, cells in FORGERIES.items()}
    # The worst case for the lookup: the holdout is the public seed's own draw (as if no secret
    # picked it), so only the perturbation stands between the table and full marks.
    with pytest.MonkeyPatch.context() as patch:
        public = data.make_split
        patch.setattr(data, "make_split", lambda *a, holdout_secret=None, **k: public(*a, **k))
        table = lookup_notebook(*public_seed_holdout(data_dir))
        results["lookup-table"] = grade("lookup-table", table)
        # Without the perturbation the same table would be perfect: what the defence is for.
        patch.setattr(holdout, "perturb", lambda images, secret: images)
        results["lookup-table-unperturbed"] = grade("lookup-table-unperturbed", table)
    return results


def points(result, check_id: str) -> float:
    return next(c.points for c in result.checks if c.id == check_id)


@pytest.fixture(scope="module")
def honest(tmp_path_factory, data_dir):
    """The same untrained model without the forgery: what the forgeries really did."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(UNTRAINED)])
    path = tmp_path_factory.mktemp("honest") / "honest.ipynb"
    nbformat.write(nb, path)
    return pipeline.grade(path, spec.load(ASSIGNMENT), pipeline.Options(data_dir=data_dir))


@pytest.mark.parametrize("name", ["patched-evaluate", "patched-introspection", "knn-predict"])
def test_forgery_earns_exactly_what_the_model_it_built_earns(forged, honest, name):
    result = forged[name]
    # The grader's introspection may not even be importable in the kernel; nothing else fails.
    assert all(e.ename == "ModuleNotFoundError" for e in result.cell_errors), \
        result.cell_errors
    assert name == "patched-introspection" or not result.cell_errors
    assert {c.id: c.points for c in result.checks} == {c.id: c.points for c in honest.checks}
    assert points(result, "model-accuracy") == 0, [c.message for c in result.checks]
    assert points(result, "model-activations") == points(result, "model-params") == 0


def test_measured_model_is_the_one_built(forged):
    """The trusted side reports the model the notebook really built: one sigmoid Dense layer."""
    model = forged["patched-introspection"].models["model"]
    assert [layer["class"] for layer in model.layers] == ["Dense"]
    assert model.layers[0]["activation"] == "sigmoid"
    assert model.total_params == 7850
    assert model.compile["train_steps"] == 0


def test_forged_manifest_earns_nothing_and_says_why(forged):
    result = forged["forged-manifest"]
    assert not result.cell_errors, result.cell_errors
    assert result.score == 0, result.checks
    message = result.models["model"].message
    assert "describes `model` itself instead of exporting it" in message


def test_oversized_model_is_measured_as_it_is_not_as_it_claims(forged):
    """max_params applies to the model the trusted side loaded: no prediction, no training."""
    result = forged["oversized-claims-small"]
    model = result.models["model"]
    assert model.total_params == 784 * 27000 + 27000 + 27000 * 10 + 10
    accuracy = next(c for c in result.checks if c.id == "model-accuracy")
    assert accuracy.points == 0 and "the grader measures models up to 20,000,000" in \
        accuracy.message
    timed = next(c for c in result.checks if c.id == "model-timed-training")
    assert timed.points == 0 and "does not retrain models over 20,000,000" in timed.message


def test_a_lookup_table_of_public_images_finds_nothing(forged):
    """A model that looks the public-seed holdout up by its exact pixels: the trusted side shows
    it perturbed images (and another holdout, drawn by the secret), and names what a classifier
    does not need."""
    result = forged["lookup-table"]
    assert not result.cell_errors, result.cell_errors
    model = result.models["model"]
    assert model.source == "savedmodel"
    assert {"GatherV2", "OneHot"} <= set(model.unneeded_ops), model.unneeded_ops
    accuracy = next(c for c in result.checks if c.id == "model-accuracy")
    assert accuracy.points == 0, accuracy.message
    # Nothing for a design it does not have either; only its compile settings are its own.
    earned = {c.id: c.points for c in result.checks if c.points}
    assert set(earned) <= {"model-loss", "model-optimizer"}, earned
    unperturbed = next(c for c in forged["lookup-table-unperturbed"].checks
                       if c.id == "model-accuracy")
    assert unperturbed.details["accuracy"] == 1.0, unperturbed.message


def test_perturbation_moves_every_image_a_little(data_dir):
    images, _ = public_seed_holdout(data_dir)
    shown = holdout.perturb(images, "a secret")
    assert shown.dtype == np.uint8 and shown.shape == images.shape
    changed = [not np.array_equal(a, b) for a, b in zip(images, shown)]
    assert all(changed)
    assert np.abs(shown.astype(int) - images).mean() < 3
    assert np.array_equal(shown, holdout.perturb(images, "a secret"))  # same secret, same images


# Issue 23: weights the design never learned, handed to the grader's own (timed) training.
HOME = ("import base64, io\nimport numpy as np\nimport keras\n"
        "HOME = 'PLACEHOLDER'\n"
        "W = dict(np.load(io.BytesIO(base64.b64decode(HOME))))\n"
        "def planted(name):\n    return keras.initializers.Constant(W[name])\n")


def _dense(units: int, activation: str, index: int, planted: bool) -> str:
    init = (f", kernel_initializer=planted('k{index}'), bias_initializer=planted('b{index}')"
            if planted else "")
    return f"keras.layers.Dense({units}, activation='{activation}'{init})"


def sequential_cells(b64: str | None, learning_rate: float | None) -> list[str]:
    """The homework's 128-64-10 design; with `b64`, every weight comes from the config's
    Constant initializers (trained at home on all 60,000 public images)."""
    dense = ", ".join(_dense(u, a, i, b64 is not None)
                      for i, (u, a) in enumerate([(128, "relu"), (64, "relu"), (10, "softmax")]))
    optimizer = "'adam'" if learning_rate is None else \
        f"keras.optimizers.Adam(learning_rate={learning_rate})"
    head = HOME.replace("PLACEHOLDER", b64) if b64 else "import keras\n"
    return [head + f"model = keras.Sequential([keras.Input((784,)), {dense}])\n"
            f"model.compile({optimizer}, 'categorical_crossentropy', metrics=['accuracy'])"]


def subclassed_cells(b64: str | None) -> list[str]:
    """The same design as a class; with `b64`, its __init__ plants the weights and its
    train_step reports metrics without applying a gradient."""
    idle = ("    def train_step(self, data):\n        x, y = data\n"
            "        self.compute_loss(x, y, self(x, training=True))\n"
            "        return {m.name: m.result() for m in self.metrics}\n") if b64 else ""
    head = HOME.replace("PLACEHOLDER", b64) if b64 else "import numpy as np\nimport keras\n"
    planted = b64 is not None
    return [head + (
        "class HomeMLP(keras.Model):\n"
        "    def __init__(self):\n        super().__init__()\n"
        f"        self.h1 = {_dense(128, 'relu', 0, planted)}\n"
        f"        self.h2 = {_dense(64, 'relu', 1, planted)}\n"
        f"        self.out = {_dense(10, 'softmax', 2, planted)}\n"
        "    def call(self, x, training=False):\n        return self.out(self.h2(self.h1(x)))\n"
        + idle +
        "model = HomeMLP()\nmodel(np.zeros((2, 784), 'float32'))\n"
        "model.compile('adam', 'categorical_crossentropy', metrics=['accuracy'])")]


def home_trained(data_dir) -> str:
    """The design trained at home on every public training image, as a base64 .npz."""
    import base64
    import io

    import keras

    x, y = data.load("fashion-mnist", data_dir).train
    keras.utils.set_random_seed(1)
    model = keras.Sequential([keras.Input((784,)), keras.layers.Dense(128, activation="relu"),
                              keras.layers.Dense(64, activation="relu"),
                              keras.layers.Dense(10, activation="softmax")])
    model.compile("adam", "sparse_categorical_crossentropy")
    model.fit(x.reshape(len(x), -1) / 255.0, y, epochs=5, batch_size=128, verbose=0)
    buffer = io.BytesIO()
    weights = [layer.get_weights() for layer in model.layers]
    np.savez(buffer, **{f"{k}{i}": w[j] for i, w in enumerate(weights)
                        for j, k in enumerate("kb")})
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.fixture(scope="module")
def planted(tmp_path_factory, data_dir):
    b64 = home_trained(data_dir)
    cases = {"config-lr0": sequential_cells(b64, 0.0), "config": sequential_cells(b64, None),
             "config-honest": sequential_cells(None, None), "class": subclassed_cells(b64),
             "class-honest": subclassed_cells(None)}
    assignment = spec.load(ASSIGNMENT)
    results = {}
    for name, cells in cases.items():
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
        path = tmp_path_factory.mktemp(name) / f"{name}.ipynb"
        nbformat.write(nb, path)
        results[name] = pipeline.grade(path, assignment, pipeline.Options(data_dir=data_dir))
    return results


def check(result, check_id: str):
    return next(c for c in result.checks if c.id == check_id)


def test_weights_in_the_config_with_a_learning_rate_of_0_cannot_learn(planted):
    result = planted["config-lr0"]
    assert not result.cell_errors, result.cell_errors
    timed = check(result, "model-timed-training")
    assert timed.points == 0 and "the design cannot learn" in timed.message, timed.message
    assert "learning rate is 0" in timed.message
    # The trusted side's other measurements stand: the design is the homework's.
    for check_id in ("model-layers", "model-activations", "model-shapes", "model-params"):
        assert check(result, check_id).points == check(planted["config-honest"], check_id).points
        assert check(result, check_id).points > 0


def test_weights_in_the_config_are_not_what_the_grader_trains_from(planted):
    """Planted weights that learn: the grader starts from its own, so the design earns what the
    same design with default initializers earns, and the message says what it ignored."""
    forged, honest = (check(planted[n], "model-timed-training") for n in ("config",
                                                                          "config-honest"))
    assert forged.details["accuracy"] == honest.details["accuracy"], forged.message
    assert "which the grader does not use" in forged.message
    # What the planted weights would have earned: more than the grader's training gives.
    home = check(planted["config"], "model-accuracy").details["accuracy"]
    assert home > forged.details["accuracy"] + 0.02, (home, forged.message)


def test_a_class_that_plants_weights_and_never_steps_is_trained_by_the_grader(planted):
    """In the clean room the grader's loop trains a fresh instance from the grader's starting
    weights: the class's Constant initializers and its gradient-free train_step change nothing."""
    forged, honest = planted["class"], planted["class-honest"]
    assert not forged.cell_errors, forged.cell_errors
    run = forged.models["model"].timed_training
    assert run.where == "clean room" and run.status == "trained", run
    assert run.loss[-1] < run.loss[0]  # the grader's steps, not the class's
    assert check(forged, "model-timed-training").details["accuracy"] == \
        check(honest, "model-timed-training").details["accuracy"]
    home = check(forged, "model-accuracy").details["accuracy"]
    assert home > check(forged, "model-timed-training").details["accuracy"] + 0.02
