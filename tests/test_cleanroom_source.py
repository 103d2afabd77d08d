"""What the Keras clean room runs of a notebook: the class and the module-level names it reads,
by Python's own scoping, and nothing of the notebook's data loading or training."""

from __future__ import annotations

import nbformat

from grader.cleanroom import source


def notebook(*cells: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])


CLASS = '''class CustomizedCNN(keras.Model):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reshape = layers.Reshape((28, 28, 1))
        self.conv = layers.Conv2D(32, 3, activation="relu")
        self.flatten = layers.Flatten()
        self.out = layers.Dense(UNITS, activation="softmax")

    def call(self, inputs, training=None, mask=None):
        x = tf.cast(inputs, tf.float32)
        x = self.reshape(x)
        x = self.flatten(self.conv(x))
        return self.out(x)'''


def test_a_methods_locals_are_not_the_notebooks_globals():
    """`x` inside call() is call()'s own: the notebook's `x = train_images[...]` (and so its
    data loading) must not come along; the grader's clean room then failed with a NameError."""
    nb = notebook(
        "import tensorflow as tf\nfrom tensorflow import keras\nfrom tensorflow.keras import layers",
        "(train_images, train_labels), _ = keras.datasets.mnist.load_data()\n"
        "train_images = train_images / 255.0",
        "UNITS = 5\nUNITS = UNITS * 2",
        CLASS,
        "x = train_images[:8]\nmodel = CustomizedCNN()\nmodel.build(input_shape=(None, 28, 28))\n"
        "model.fit(train_images, train_labels, epochs=1)")
    got = source.extract(nb, ["CustomizedCNN"])
    assert got.missing == [] and got.found == {"CustomizedCNN": 4}
    ran = got.source
    assert "train_images" not in ran and "load_data" not in ran and "x = " not in ran.split(
        "class CustomizedCNN")[0]
    # A constant rebound from itself keeps the binding it reads.
    assert "UNITS = 5" in ran and "UNITS = UNITS * 2" in ran
    assert [m for _, m, _ in got.imports] == ["tensorflow", "tensorflow", "tensorflow"]


def test_a_statement_that_rebinds_from_itself_brings_the_binding_before_it():
    nb = notebook("SCALE = 255.0", "SCALE = float(SCALE)",
                  "def scaled(x):\n    return x / SCALE")
    got = source.extract(nb, ["scaled"])
    assert [text for _, text in got.chunks] == ["SCALE = 255.0", "SCALE = float(SCALE)",
                                                "def scaled(x):\n    return x / SCALE"]


def test_decorators_bases_and_defaults_are_read_where_the_class_is_defined():
    nb = notebook("import functools\nBASE = object\nN = 3",
                  "@functools.total_ordering\nclass A(BASE):\n    def f(self, n=N):\n        return n")
    got = source.extract(nb, ["A"])
    assert "BASE = object" in got.source and "N = 3" in got.source
