"""Layer normalisation and alignment: equivalent forms compare equal, differences are named."""

from grader.checks.architecture import align, normalise
from grader.data.model_inputs import fed_scaling


def dense(units, activation="linear", shape=None):
    return {"class": "Dense", "activation": activation, "config": {"units": units},
            "output_shape": shape or [None, units]}


def act(name, shape=None):
    return {"class": "Activation", "activation": name, "config": {}, "output_shape": shape}


REFERENCE = [dense(128, "relu"), dense(64, "relu"), dense(10, "softmax")]


def test_activation_layers_merge_into_their_dense_layer():
    seed_form = [{"class": "InputLayer", "config": {}}, dense(128), act("relu", [None, 128]),
                 dense(64), act("relu", [None, 64]), dense(10), act("softmax", [None, 10])]
    assert normalise(seed_form) == normalise(REFERENCE)


def test_flatten_and_preflattened_input_are_equal():
    with_flatten = [{"class": "Flatten", "config": {}, "output_shape": [None, 784]}, *REFERENCE]
    assert normalise(with_flatten) == normalise(REFERENCE)


def test_a_leading_rescaling_layer_is_the_homeworks_scaling_done_inside_the_model():
    rescaling = {"class": "Rescaling", "config": {}, "output_shape": [None, 784]}
    inside = [{"class": "InputLayer", "config": {}}, rescaling, *REFERENCE]
    assert normalise(inside) == normalise(REFERENCE)
    # and the grader's own training feeds such a model the pixels as loaded, as the student did
    assert fed_scaling(inside) == "raw" and fed_scaling(REFERENCE) == "unit"
    # one in the middle of the network is a layer the reference does not have
    middle = [REFERENCE[0], rescaling, *REFERENCE[1:]]
    assert [layer.kind for layer in normalise(middle)] == ["Dense", "Rescaling", "Dense", "Dense"]
    assert fed_scaling(middle) == "unit"


def test_activation_after_batchnorm_belongs_to_the_dense_layer():
    bn = {"class": "BatchNormalization", "config": {"axis": -1}, "output_shape": [None, 84]}
    a = normalise([dense(84), bn, act("relu")])
    b = normalise([dense(84, "relu"), bn])
    assert a == b
    assert a[0].activation == "relu"


def test_unit_axes_do_not_change_shapes():
    # LeNet-5 without a Flatten outputs (None, 1, 1, 10); with one, (None, 10).
    a = normalise([dense(10, "softmax", [None, 1, 1, 10])])
    b = normalise([dense(10, "softmax", [None, 10])])
    assert a[0].output_shape == b[0].output_shape == (10,)


def test_alignment_pairs_same_positions_when_counts_match():
    lecture = normalise([dense(300, "relu"), dense(100, "relu"), dense(10, "softmax")])
    assert align(normalise(REFERENCE), lecture) == [(0, 0), (1, 1), (2, 2)]


def test_alignment_reports_missing_and_extra_layers():
    expected = normalise(REFERENCE)
    missing_middle = normalise([dense(128, "relu"), dense(10, "softmax")])
    assert align(expected, missing_middle) == [(0, 0), (1, None), (2, 1)]
    extra = normalise([dense(128, "relu"), dense(64, "relu"), dense(32, "relu"),
                       dense(10, "softmax")])
    assert (None, 2) in align(expected, extra)


def test_labels_read_like_keras():
    conv = {"class": "Conv2D", "activation": "relu", "output_shape": [None, 28, 28, 6],
            "config": {"filters": 6, "kernel_size": [5, 5], "strides": [1, 1], "padding": "same"}}
    assert normalise([conv])[0].label() == "Conv2D(6, 5x5, padding same, relu)"
    assert normalise([dense(64, "relu")])[0].label() == "Dense(64, relu)"
