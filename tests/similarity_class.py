"""A synthetic class for the similarity report's tests (tests/test_similarity.py): notebooks
whose code differs as independent students' does, built from four stages of five styles each,
chosen so that two honest students share at most one stage (rows (x, y) of Z5: stages x, y,
x+y, x+2y); what the trusted side would have measured of their models; and the copies the
issue asks to be flagged."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nbformat
import numpy as np

from grader.measure import fingerprint
from result_factory import result_json

PREPROCESS = [
    "x_train = x_train.reshape(-1, 784).astype('float32') / 255.0\n"
    "x_test = x_test.reshape(-1, 784).astype('float32') / 255.0\n"
    "y_train_cat = to_categorical(y_train, num_classes=10)\n",
    "def prep(images):\n    flat = images.reshape((images.shape[0], 28 * 28))\n"
    "    return flat.astype(np.float32) / 255\n\nX_tr, X_te = prep(x_train), prep(x_test)\n"
    "Y_tr = np.eye(10)[y_train]\n",
    "scaled_train = []\nfor img in x_train:\n    scaled_train.append(np.ravel(img) / 255.)\n"
    "scaled_train = np.array(scaled_train)\nlabels_onehot = keras.utils.to_categorical(y_train)\n",
    "mean, std = x_train.mean(), x_train.std()\ntrain_in = ((x_train - mean) / std)"
    ".reshape(len(x_train), -1)\ntest_in = ((x_test - mean) / std).reshape(len(x_test), -1)\n"
    "onehot = tf.one_hot(y_train, depth=10)\n",
    "import numpy\nn_train = x_train.shape[0]\nxs = numpy.divide(numpy.reshape(x_train, "
    "[n_train, 784]), 255)\nys = numpy.zeros((n_train, 10))\nys[numpy.arange(n_train), "
    "y_train] = 1\n",
]
BUILD = [
    "model = Sequential()\nmodel.add(Dense(128, activation='relu', input_shape=(784,)))\n"
    "model.add(Dense(64, activation='relu'))\nmodel.add(Dense(10, activation='softmax'))\n",
    "inputs = keras.Input(shape=(784,))\nh = layers.Dense(128, activation=tf.nn.relu)(inputs)\n"
    "h = layers.Dense(64, activation=tf.nn.relu)(h)\nout = layers.Dense(10, activation="
    "tf.nn.softmax)(h)\nmodel = keras.Model(inputs=inputs, outputs=out)\n",
    "sizes = [128, 64]\nstack = [keras.layers.InputLayer(input_shape=(784,))]\nfor units in "
    "sizes:\n    stack.append(keras.layers.Dense(units, 'relu'))\nstack.append("
    "keras.layers.Dense(10, 'softmax'))\nmodel = keras.Sequential(stack)\n",
    "def build_net(hidden1=128, hidden2=64, classes=10):\n    return tf.keras.models."
    "Sequential([\n        tf.keras.layers.Dense(hidden1, activation='relu'),\n"
    "        tf.keras.layers.Dense(hidden2, activation='relu'),\n        tf.keras.layers."
    "Dense(classes, activation='softmax'),\n    ])\nmodel = build_net()\nmodel.build((None, "
    "784))\n",
    "model = Sequential(name='mlp')\nfor width, act in ((128, 'relu'), (64, 'relu'), (10, "
    "'softmax')):\n    model.add(Dense(width, activation=act))\nmodel.build(input_shape="
    "(None, 784))\nmodel.summary()\n",
]
TRAIN = [
    "model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
    "history = model.fit(x_train, y_train_cat, epochs=20, batch_size=32, validation_split=0.2)\n",
    "opt = keras.optimizers.Adam(learning_rate=1e-3)\nmodel.compile(opt, "
    "keras.losses.CategoricalCrossentropy(), [keras.metrics.CategoricalAccuracy()])\n"
    "log = model.fit(X_tr, Y_tr, validation_split=.2, epochs=20, verbose=2)\n",
    "callbacks = [keras.callbacks.EarlyStopping(patience=3, restore_best_weights=True)]\n"
    "model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['acc'])\n"
    "h = model.fit(scaled_train, labels_onehot, epochs=20, validation_split=0.2, "
    "callbacks=callbacks)\n",
    "from sklearn.model_selection import train_test_split\nxa, xv, ya, yv = train_test_split("
    "train_in, onehot.numpy(), test_size=0.2, random_state=1)\nmodel.compile(optimizer="
    "tf.keras.optimizers.Adam(), loss=tf.keras.losses.categorical_crossentropy, metrics="
    "['accuracy'])\nrun = model.fit(xa, ya, validation_data=(xv, yv), epochs=20, "
    "batch_size=128)\n",
    "model.compile('adam', 'categorical_crossentropy', ['accuracy'])\nepochs_done = 0\n"
    "while epochs_done < 20:\n    model.fit(xs, ys, epochs=1, batch_size=64, verbose=0)\n"
    "    epochs_done += 1\n    print('epoch', epochs_done)\n",
]
REPORT = [
    "import matplotlib.pyplot as plt\nplt.plot(history.history['loss'], label='train')\n"
    "plt.plot(history.history['val_loss'], label='validation')\nplt.legend()\nplt.show()\n",
    "test_loss, test_acc = model.evaluate(x_test.reshape(-1, 784) / 255, to_categorical("
    "y_test))\nprint(f'test accuracy {test_acc:.3f}')\n",
    "predicted = np.argmax(model.predict(x_test.reshape(len(x_test), 784) / 255.0), axis=1)\n"
    "from sklearn.metrics import confusion_matrix\nimport seaborn as sns\n"
    "sns.heatmap(confusion_matrix(y_test, predicted), annot=True, fmt='d')\n",
    "import pandas as pd\nframe = pd.DataFrame(run.history)\nframe.plot(figsize=(8, 5))\n"
    "print(frame.tail())\n",
    "correct = 0\nfor image, label in zip(x_test[:500], y_test[:500]):\n    guess = model("
    "image.reshape(1, 784) / 255).numpy().argmax()\n    correct += int(guess == label)\n"
    "print(correct / 500)\n",
]
STAGES = [PREPROCESS, BUILD, TRAIN, REPORT]


def honest_cells(x: int, y: int, stages: list[list[str]] = STAGES) -> list[str]:
    """One honest student's cells: rows of Z5 share at most one of the four stages."""
    return [stages[k][c % 5] for k, c in enumerate((x, y, x + y, x + 2 * y))]


def renamed_and_reordered(cells: list[str]) -> list[str]:
    """A copy as students disguise one: names changed, comments added, cells reordered and
    reformatted."""
    swaps = {"model": "clf", "history": "hist", "x_train": "train_images", "x_test":
             "test_images", "y_train": "train_labels", "units": "n", "images": "imgs",
             "log": "training_log", "h ": "hh "}
    out = []
    for cell in cells:
        for old, new in swaps.items():
            cell = cell.replace(old, new)
        cell = "# my own solution\n" + cell.replace(", ", ",  ").replace(" = ", "  =  ")
        out.append(cell)
    return out[::-1]


def notebook(starter: Path | None, cells: list[str]) -> nbformat.NotebookNode:
    nb = nbformat.read(str(starter), as_version=4) if starter else nbformat.v4.new_notebook()
    nb.cells = [*nb.cells, *(nbformat.v4.new_code_cell(c) for c in cells)]
    return nb


REFERENCE_LAYERS = [
    {"class": "Dense", "output_shape": [None, 128], "params": 100480, "activation": "relu",
     "config": {"units": 128, "use_bias": True}},
    {"class": "Dense", "output_shape": [None, 64], "params": 8256, "activation": "relu",
     "config": {"units": 64, "use_bias": True}},
    {"class": "Dense", "output_shape": [None, 10], "params": 650, "activation": "softmax",
     "config": {"units": 10, "use_bias": True}},
]
SHAPES = [(784, 128), (128,), (128, 64), (64,), (64, 10), (10,)]


def trained_weights(rng: np.random.Generator) -> list[np.ndarray]:
    """An independent training: weights from its own random start."""
    return [rng.normal(0, 0.05, shape) for shape in SHAPES]


def holdout_predictions(rng: np.random.Generator, labels: np.ndarray,
                        accuracy: float = 0.88) -> np.ndarray:
    """An independent training's holdout predictions: right on `accuracy` of the images,
    wrong elsewhere, independently of other trainings."""
    pred = labels.copy()
    wrong = rng.random(len(labels)) > accuracy
    pred[wrong] = (labels[wrong] + rng.integers(1, 10, int(wrong.sum()))) % 10
    return np.eye(10)[pred]


def write_student(out: Path, student: str, sha: str, layers: list[dict] | None,
                  weights: list[np.ndarray] | None, predictions: np.ndarray | None,
                  learning_rate: float = 0.001) -> None:
    folder = out / student
    folder.mkdir(parents=True, exist_ok=True)
    models = {}
    if layers is not None:
        models["model"] = {"status": "found", "kind": "Sequential", "layers": layers,
                           "compile": {"loss": "categorical_crossentropy", "from_logits": None,
                                       "optimizer": "Adam", "learning_rate": learning_rate}}
    sha = hashlib.sha256(sha.encode()).hexdigest()  # a result's sha256 is one
    result = result_json(assignment="fashion-mlp", notebook_sha256=sha, score=10.0,
                         max_score=16.0, models=models)
    (folder / "result.json").write_text(json.dumps(result))
    entry = {}
    if weights is not None:
        entry["weights"] = fingerprint.of_weights(weights)
    if predictions is not None:
        entry.update(labels=fingerprint.labels_text(predictions), scaling="unit")
    if entry:
        (folder / "similarity.json").write_text(json.dumps(
            {"notebook_sha256": sha, "holdout": "h0", "models": {"model": entry}}))


# --- a class that really runs -----------------------------------------------------------------
# The same four stages, written to run after the starter's loading cell (xdev, ydev, xtest,
# ytest) and meet in a few names (train_x, train_y, val_x, val_y, test_x, test_y, model), which
# the code comparison ignores as it ignores all names. Every style builds the reference's
# design (Dense 128 relu, 64 relu, 10 softmax; Adam at 0.001, categorical cross-entropy) and
# trains it two epochs its own way: its own scaling, split, seed and batch size.

RUN_PREPROCESS = [
    "from tensorflow.keras.utils import to_categorical\n"
    "train_all = xdev.reshape(-1, 784).astype('float32') / 255.0\n"
    "test_x = xtest.reshape(-1, 784).astype('float32') / 255.0\n"
    "onehot_all = to_categorical(ydev, num_classes=10)\n"
    "test_y = to_categorical(ytest, num_classes=10)\n"
    "cut = int(len(train_all) * 0.8)\n"
    "train_x, val_x = train_all[:cut], train_all[cut:]\n"
    "train_y, val_y = onehot_all[:cut], onehot_all[cut:]\n",
    "def prep(images):\n    flat = images.reshape((images.shape[0], 28 * 28))\n"
    "    return flat.astype(np.float32) / 255\n\n"
    "order = np.random.default_rng(7).permutation(len(xdev))\n"
    "X_all, test_x = prep(xdev)[order], prep(xtest)\n"
    "Y_all, test_y = np.eye(10)[ydev[order]], np.eye(10)[ytest]\n"
    "n_val = len(X_all) // 5\n"
    "train_x, val_x, train_y, val_y = X_all[n_val:], X_all[:n_val], Y_all[n_val:], "
    "Y_all[:n_val]\n",
    "from sklearn.model_selection import train_test_split\nfrom tensorflow import keras as K\n"
    "scaled = []\nfor img in xdev:\n    scaled.append(np.ravel(img) / 255.)\n"
    "scaled = np.array(scaled)\ntest_x = np.array([np.ravel(img) / 255. for img in xtest])\n"
    "labels, test_y = K.utils.to_categorical(ydev), K.utils.to_categorical(ytest)\n"
    "train_x, val_x, train_y, val_y = train_test_split(scaled, labels, test_size=0.2, "
    "random_state=3)\n",
    "import tensorflow as tf\nmean, std = xdev.mean(), xdev.std()\n"
    "standardise = lambda a: ((a - mean) / std).reshape(len(a), -1)\n"
    "inputs_all, test_x = standardise(xdev), standardise(xtest)\n"
    "targets_all = tf.one_hot(ydev, depth=10).numpy()\n"
    "test_y = tf.one_hot(ytest, depth=10).numpy()\n"
    "idx = np.arange(len(inputs_all))\nnp.random.shuffle(idx)\n"
    "train_idx, val_idx = np.split(idx, [int(0.8 * len(idx))])\n"
    "train_x, val_x = inputs_all[train_idx], inputs_all[val_idx]\n"
    "train_y, val_y = targets_all[train_idx], targets_all[val_idx]\n",
    "import numpy\nn = xdev.shape[0]\nxs = numpy.divide(numpy.reshape(xdev, [n, 784]), 255)\n"
    "ys = numpy.zeros((n, 10))\nys[numpy.arange(n), ydev] = 1\n"
    "test_x = numpy.divide(numpy.reshape(xtest, [len(xtest), 784]), 255)\n"
    "test_y = numpy.zeros((len(ytest), 10))\ntest_y[numpy.arange(len(ytest)), ytest] = 1\n"
    "held_out = numpy.arange(n) % 5 == 0\n"
    "train_x, train_y = xs[~held_out], ys[~held_out]\nval_x, val_y = xs[held_out], "
    "ys[held_out]\n",
]
RUN_BUILD = [
    "from tensorflow.keras.models import Sequential\n"
    "from tensorflow.keras.layers import Dense, Input\nmodel = Sequential()\n"
    "model.add(Input(shape=(784,)))\nmodel.add(Dense(128, activation='relu'))\n"
    "model.add(Dense(64, activation='relu'))\nmodel.add(Dense(10, activation='softmax'))\n",
    "from tensorflow import keras\nfrom tensorflow.keras import layers\n"
    "keras.utils.set_random_seed(11)\ninputs = keras.Input(shape=(784,))\n"
    "h = layers.Dense(128, activation='relu')(inputs)\n"
    "h = layers.Dense(64, activation='relu')(h)\n"
    "out = layers.Dense(10, activation='softmax')(h)\n"
    "model = keras.Model(inputs=inputs, outputs=out)\n",
    "import keras\nkeras.utils.set_random_seed(5)\nsizes = [128, 64]\n"
    "stack = [keras.Input(shape=(784,))]\nfor units in sizes:\n"
    "    stack.append(keras.layers.Dense(units, 'relu'))\n"
    "stack.append(keras.layers.Dense(10, 'softmax'))\nmodel = keras.Sequential(stack)\n",
    "import tensorflow as tf\nimport random\nrandom.seed(2024)\n\n"
    "def build_net(hidden1=128, hidden2=64, classes=10):\n"
    "    net = tf.keras.models.Sequential([\n"
    "        tf.keras.layers.Dense(hidden1, activation='relu'),\n"
    "        tf.keras.layers.Dense(hidden2, activation='relu'),\n"
    "        tf.keras.layers.Dense(classes, activation='softmax'),\n    ])\n"
    "    net.build((None, 784))\n    return net\n\nmodel = build_net()\n",
    "from tensorflow import keras\nkeras.utils.set_random_seed(99)\n"
    "model = keras.Sequential(name='mlp')\nmodel.add(keras.Input(shape=(784,)))\n"
    "for width, act in ((128, 'relu'), (64, 'relu'), (10, 'softmax')):\n"
    "    model.add(keras.layers.Dense(width, activation=act))\nmodel.summary()\n",
]
RUN_TRAIN = [
    "model.compile(optimizer='adam', loss='categorical_crossentropy', metrics=['accuracy'])\n"
    "history = model.fit(train_x, train_y, epochs=2, batch_size=32, "
    "validation_data=(val_x, val_y))\n",
    "from tensorflow import keras as tfk\nopt = tfk.optimizers.Adam(learning_rate=1e-3)\n"
    "model.compile(optimizer=opt, loss=tfk.losses.CategoricalCrossentropy(), "
    "metrics=[tfk.metrics.CategoricalAccuracy()])\n"
    "log = model.fit(train_x, train_y, validation_data=(val_x, val_y), epochs=2, "
    "batch_size=64, verbose=2)\n",
    "from tensorflow.keras.callbacks import EarlyStopping\n"
    "callbacks = [EarlyStopping(patience=3, restore_best_weights=True)]\n"
    "model.compile(loss='categorical_crossentropy', optimizer='adam', metrics=['acc'])\n"
    "h = model.fit(train_x, train_y, epochs=2, validation_data=(val_x, val_y), "
    "callbacks=callbacks)\n",
    "import tensorflow as tf\nmodel.compile(optimizer=tf.keras.optimizers.Adam(), "
    "loss=tf.keras.losses.categorical_crossentropy, metrics=['accuracy'])\n"
    "run = model.fit(train_x, train_y, validation_data=(val_x, val_y), epochs=3, "
    "batch_size=256, shuffle=True)\n",
    "model.compile('adam', 'categorical_crossentropy', ['accuracy'])\nepochs_done = 0\n"
    "while epochs_done < 2:\n    model.fit(train_x, train_y, epochs=1, batch_size=100, "
    "verbose=0)\n    epochs_done += 1\n    print('epoch', epochs_done)\n",
]
RUN_REPORT = [
    "import matplotlib.pyplot as plt\nprobs = model.predict(test_x, verbose=0)\n"
    "plt.bar(range(10), probs.mean(axis=0))\nplt.title('mean predicted probability')\n"
    "plt.show()\n",
    "test_loss, test_acc = model.evaluate(test_x, test_y, verbose=0)\n"
    "print(f'test accuracy {test_acc:.3f}')\n",
    "from sklearn.metrics import confusion_matrix\nimport seaborn as sns\n"
    "predicted = np.argmax(model.predict(test_x, verbose=0), axis=1)\n"
    "sns.heatmap(confusion_matrix(np.argmax(test_y, axis=1), predicted), annot=True, "
    "fmt='d')\n",
    "import pandas as pd\nguess = model.predict(test_x, verbose=0).argmax(axis=1)\n"
    "frame = pd.DataFrame({'truth': test_y.argmax(axis=1), 'guess': guess})\n"
    "print(frame.assign(right=frame.truth == frame.guess).groupby('truth').right.mean())\n",
    "correct = 0\nfor image, label in zip(test_x[:500], test_y[:500]):\n"
    "    guess = model(image.reshape(1, 784)).numpy().argmax()\n"
    "    correct += int(guess == label.argmax())\nprint(correct / 500)\n",
]
RUN_STAGES = [RUN_PREPROCESS, RUN_BUILD, RUN_TRAIN, RUN_REPORT]

