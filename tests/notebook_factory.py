"""Student notebooks for tests: the committed reference solutions and variants of them.

A variant replaces the reference's cells by tag (`metadata.tags`: load, prep, model, train, …),
so each differs from the reference in exactly what its name says.
"""

from __future__ import annotations

import copy
from pathlib import Path

import nbformat

from grader import spec


def reference_notebook(assignment_id: str) -> nbformat.NotebookNode:
    return nbformat.read(spec.load(assignment_id).reference, as_version=4)


def write(nb: nbformat.NotebookNode, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


def replace_cells(nb: nbformat.NotebookNode, **sources: str | None) -> nbformat.NotebookNode:
    """A copy with the cells tagged with each keyword replaced (None deletes the cell)."""
    nb = copy.deepcopy(nb)
    found = set()
    cells = []
    for cell in nb.cells:
        tags = set(cell.get("metadata", {}).get("tags", ()))
        tag = next((t for t in tags if t in sources), None)
        if tag is None:
            cells.append(cell)
            continue
        found.add(tag)
        if sources[tag] is not None:
            cell.source = sources[tag]
            cells.append(cell)
    missing = set(sources) - found
    assert not missing, f"no cell tagged {sorted(missing)}"
    nb.cells = cells
    return nb


def add_cell_after(nb: nbformat.NotebookNode, tag: str, source: str) -> nbformat.NotebookNode:
    nb = copy.deepcopy(nb)
    index = next(i for i, c in enumerate(nb.cells) if tag in c.get("metadata", {}).get("tags", ()))
    nb.cells.insert(index + 1, nbformat.v4.new_code_cell(source))
    return nb


# fashion-mlp (seed 004, Parts 2–3) -------------------------------------------------------------

def _mlp(*units_and_activations: tuple[int, str]) -> str:
    layers = "".join(f"    layers.Dense({u}, activation=\"{a}\"),\n" for u, a in units_and_activations)
    return ("from tensorflow import keras\nfrom tensorflow.keras import layers\n\n"
            f"model = keras.Sequential([\n    keras.Input(shape=(784,)),\n{layers}])\n")


def reference() -> nbformat.NotebookNode:
    return reference_notebook("fashion-mlp")


def mlp_300_100_10() -> nbformat.NotebookNode:
    """The lecture's MLP (seed 001): 266,610 parameters."""
    return replace_cells(reference(), model=_mlp((300, "relu"), (100, "relu"), (10, "softmax")))


def raising_cell_after_model() -> nbformat.NotebookNode:
    return add_cell_after(reference(), "model", "ratio = 1 / 0")


def no_model_variable() -> nbformat.NotebookNode:
    nb = replace_cells(reference(), model=_mlp((128, "relu"), (64, "relu"), (10, "softmax"))
                       .replace("model = ", "net = "), output=None, curves=None, evaluate=None)
    return replace_cells(nb, train=("net.compile(optimizer=\"adam\", loss=\"categorical_crossentropy\")\n"
                                    "net.fit(X_train, y_train, batch_size=128, epochs=2, verbose=0)"))


def untrained_model() -> nbformat.NotebookNode:
    """Built and compiled, fit() never called."""
    return replace_cells(reference(), curves=None, train=(
        "model.compile(optimizer=\"adam\", loss=\"categorical_crossentropy\", metrics=[\"accuracy\"])"))


def wrong_final_activation() -> nbformat.NotebookNode:
    return replace_cells(reference(), model=_mlp((128, "relu"), (64, "relu"), (10, "relu")))


def activation_layers_form() -> nbformat.NotebookNode:
    """The seed's own form: Dense(128, input_shape=...) followed by Activation layers."""
    return replace_cells(reference(), model=(
        "from tensorflow.keras import Sequential\n"
        "from tensorflow.keras.layers import Dense, Activation\n\n"
        "model = Sequential([\n    Dense(128, input_shape=(784,)),\n    Activation('relu'),\n"
        "    Dense(64),\n    Activation('relu'),\n    Dense(10),\n    Activation('softmax'),\n])"))


def sgd_sparse_labels() -> nbformat.NotebookNode:
    return replace_cells(reference(), encode="y_dev, y_test = ydev, ytest", train=(
        "model.compile(optimizer=\"sgd\", loss=\"sparse_categorical_crossentropy\", "
        "metrics=[\"accuracy\"])\n"
        "history = model.fit(X_train, y_train, batch_size=128, epochs=20, verbose=0,\n"
        "                    validation_data=(X_val, y_val))"))


def shuffled_labels() -> nbformat.NotebookNode:
    """Trained on labels shuffled against the images: nothing to learn."""
    return add_cell_after(reference(), "split",
                          "y_train = y_train[np.random.default_rng(7).permutation(len(y_train))]")


# lenet5 (seed 004, Part 4) ---------------------------------------------------------------------

def _lenet5(var: str, *, after: str = "", flatten: bool = False, conv2_padding: str = "valid",
            after_dense: bool = True) -> str:
    """LeNet-5 source; `after`: a layer put after each hidden layer (Dropout, BatchNormalization)."""
    extra = f"    {after},\n" if after else ""
    return (
        "from tensorflow import keras\nfrom tensorflow.keras import layers\n\n"
        f"{var} = keras.Sequential([\n    keras.Input(shape=(28, 28, 1)),\n"
        "    layers.Conv2D(6, kernel_size=(5, 5), padding=\"same\", activation=\"relu\"),\n"
        f"{extra}    layers.MaxPooling2D(pool_size=(2, 2)),\n"
        f"    layers.Conv2D(16, kernel_size=(5, 5), padding=\"{conv2_padding}\", activation=\"relu\"),\n"
        f"{extra}    layers.MaxPooling2D(pool_size=(2, 2)),\n"
        "    layers.Conv2D(120, kernel_size=(5, 5), activation=\"relu\"),\n"
        f"{extra}" + ("    layers.Flatten(),\n" if flatten else "") +
        "    layers.Dense(84, activation=\"relu\"),\n"
        + (extra if after_dense else "") +
        "    layers.Dense(10, activation=\"softmax\"),\n])\n")


_LENET5_FLAT_LABELS = "y_train_shaped, y_val_shaped, y_test_shaped = y_train, y_val, y_test"


def lenet5_flatten_and_unevaluated_batch_norm() -> nbformat.NotebookNode:
    """`cnn` and `cnn_dropout` with a Flatten before the Dense layers (output (None, 10), plain
    one-hot labels), trained as the reference; `cnn_batch_norm` built and compiled but never
    trained, while its evaluation cell prints the dropout model's test accuracy under a
    batch-norm heading (the seed's own mistake, In [45], made worse)."""
    return replace_cells(
        reference_notebook("lenet5"),
        shape_labels=_LENET5_FLAT_LABELS,
        cnn=_lenet5("cnn", flatten=True),
        dropout=_lenet5("cnn_dropout", after="layers.Dropout(0.5)", flatten=True),
        batch_norm_train=("cnn_batch_norm.compile(\"adam\", \"categorical_crossentropy\", "
                          "metrics=[\"accuracy\"])\nbatch_norm_history = dropout_history"),
        batch_norm_evaluate=(
            "print(\"Batch normalization\")\n"
            "score = cnn_dropout.evaluate(X_test, y_test_shaped, verbose=1)\n"
            "print(\"Test loss:\\t{:.3f}\".format(score[0]))\n"
            "print(\"Test accuracy:\\t{:.3f}\".format(score[1]))"))


def lenet5_wrong_layers() -> nbformat.NotebookNode:
    """`cnn`: the second convolution with 'same' padding (a Flatten makes it trainable);
    `cnn_dropout`: Dropout(0.25) instead of 0.5; `cnn_batch_norm`: no BatchNormalization after
    Dense(84). The two variants are only built (no compile, no fit), to keep the notebook short."""
    return replace_cells(
        reference_notebook("lenet5"),
        shape_labels=_LENET5_FLAT_LABELS,
        cnn=_lenet5("cnn", flatten=True, conv2_padding="same"),
        dropout=_lenet5("cnn_dropout", after="layers.Dropout(0.25)"),
        batch_norm=_lenet5("cnn_batch_norm", after="layers.BatchNormalization()",
                           after_dense=False),
        dropout_train=None, dropout_curves=None, dropout_evaluate=None,
        batch_norm_train=None, batch_norm_curves=None, batch_norm_evaluate=None)


# autoassociator (seed 000, Homework 7) ---------------------------------------------------------

def _autoassociator() -> nbformat.NotebookNode:
    return reference_notebook("autoassociator")


def _dense_classifier(inputs: str) -> str:
    return ("classifier = models.Sequential()\n"
            f"classifier.add(keras.Input(shape=({inputs},)))\n"
            "classifier.add(layers.Dense(64, activation=\"relu\"))\n"
            "classifier.add(layers.Dense(nout, activation=\"softmax\"))\n"
            "classifier.compile(optimizer=\"adam\", loss=\"sparse_categorical_crossentropy\",\n"
            "                   metrics=[\"accuracy\"])")


def autoassociator_k10() -> nbformat.NotebookNode:
    """The reference with 10 hidden units instead of 25 (the slides try 100, 25, 10 and 5)."""
    return replace_cells(_autoassociator(), k="k = 10  # hidden units")


def autoassociator_wrong_classifier_input_and_dense_network() -> nbformat.NotebookNode:
    """Q1b: the classifier is built for 100 inputs (the slides' first k) while `aanetwork` has
    k = 25, so its fit() raises; Q2: a dense network with neither Conv2D nor pooling."""
    return replace_cells(
        _autoassociator(), classifier=_dense_classifier("100"),
        network=("network = models.Sequential([\n    keras.Input(shape=(sz, sz, 1)),\n"
                 "    layers.Flatten(),\n    layers.Dense(128, activation=\"relu\"),\n"
                 "    layers.Dense(nout, activation=\"softmax\"),\n])"))


def autoassociator_untrained_and_pixel_classifier() -> nbformat.NotebookNode:
    """Q1a: `aanetwork` built and compiled but never trained; Q1b: the classifier trained on the
    raw pixels of the other half (784 inputs) instead of the hidden-layer codes. Q2 is built but
    not trained, to keep the notebook short."""
    return replace_cells(
        _autoassociator(), aa_train="# (never trained)", classifier=_dense_classifier("npix"),
        classifier_train="classifier.fit(X_rest, y_rest, epochs=10, batch_size=32, verbose=0)",
        network_train=None)


# mnist-cnn (seed 003, Problem Set 2) -----------------------------------------------------------

def _customized_cnn(*, filters1: int = 32, kernel1: int = 3, units: int = 1024,
                    dropout: str = "if training:\n            x = tf.nn.dropout(x, rate=0.5)",
                    pool: bool = True) -> str:
    """The seed's CustomizedCNN; `dropout` is the code put before each dense layer."""
    drop = f"        {dropout}\n" if dropout else ""
    pool_line = "        x = self.max_pooling2d_1(x)\n" if pool else ""
    return (
        "class CustomizedCNN(tf.keras.models.Model):\n"
        "    def __init__(self, *args, **kwargs):\n"
        "        super().__init__(*args, **kwargs)\n"
        f"        self.conv2d_2 = tf.keras.layers.Conv2D({filters1}, ({kernel1}, {kernel1}), "
        "activation='relu')\n"
        "        self.max_pooling2d_1 = tf.keras.layers.MaxPooling2D((2, 2))\n"
        "        self.conv2d_3 = tf.keras.layers.Conv2D(64, (3, 3), activation='relu')\n"
        "        self.flatten_1 = tf.keras.layers.Flatten()\n"
        f"        self.dense_2 = tf.keras.layers.Dense({units}, activation='relu')\n"
        "        self.dense_3 = tf.keras.layers.Dense(10)\n\n"
        "    def call(self, inputs, training=None, mask=None):\n"
        "        x = tf.cast(tf.expand_dims(inputs, axis=-1), tf.float32)\n"
        "        x = self.conv2d_2(x)\n" + pool_line +
        "        x = self.conv2d_3(x)\n"
        "        x = self.flatten_1(x)\n" + drop +
        "        x = self.dense_2(x)\n" + drop +
        "        return self.dense_3(x)\n")


def mnist_cnn_mistakes() -> nbformat.NotebookNode:
    """First convolution 16@5x5 instead of 32@3x3; dropout applied at inference too
    (`tf.nn.dropout` without `if training`); compiled but never trained."""
    return replace_cells(
        reference_notebook("mnist-cnn"),
        cnn_class=_customized_cnn(filters1=16, kernel1=5,
                                  dropout="x = tf.nn.dropout(x, rate=0.5)"),
        train=("model.compile(optimizer='adam', loss=tf.keras.losses."
               "SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])"),
        curves=None)


def mnist_cnn_no_pooling_no_dropout() -> nbformat.NotebookNode:
    """No max pooling and no dropout, Dense 128; trained for one epoch only."""
    return replace_cells(
        reference_notebook("mnist-cnn"),
        cnn_class=_customized_cnn(units=128, dropout="", pool=False),
        train=("model.compile(optimizer='adam', loss=tf.keras.losses."
               "SparseCategoricalCrossentropy(from_logits=True), metrics=['accuracy'])\n"
               "history = model.fit(train_images, train_labels, epochs=1, verbose=2,\n"
               "                    validation_data=(test_images, test_labels))"))
