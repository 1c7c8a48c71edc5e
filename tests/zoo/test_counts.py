"""Parameter and multiply-add counts: the zoo against the papers, Keras, and hand arithmetic."""

from __future__ import annotations

import pytest

from edgekit import zoo
from edgekit.errors import EdgekitError
from edgekit.host.keras_stats import inspect_keras, layer_macs


def _layer(stats, name):
    return next(r for r in stats["layers"] if r["name"] == name)


def test_inception_lite_has_exactly_the_notebooks_parameter_count(tmp_path):
    model = zoo.build("inception_lite", classes=2)
    stats = inspect_keras(model)
    assert stats["params"] == 3_335_842
    assert stats["trainable_params"] == 3_335_842
    # Where they are: the module, the 14*14*256 -> 64 dense layer, the classifier.
    assert _layer(stats, "fc")["params"] == 14 * 14 * 256 * 64 + 64 == 3_211_328
    assert _layer(stats, "b2_3x3")["params"] == 3 * 3 * 96 * 128 + 128
    assert _layer(stats, "b2_3x3")["macs"] == 3 * 3 * 96 * 128 * 28 * 28
    assert _layer(stats, "inception")["output_shape"] == [None, 28, 28, 256]
    assert _layer(stats, "logits")["params"] == 130
    # The same numbers from the saved file (the path `edgekit inspect` takes).
    path = zoo.save_model(model, tmp_path / "inception_lite.h5")
    from_file = inspect_keras(path)
    assert (from_file["params"], from_file["macs"]) == (stats["params"], stats["macs"])


@pytest.mark.parametrize(
    "alpha, expected", [(1.0, 4_253_864), (0.75, 2_601_976), (0.5, 1_342_536), (0.25, 475_544)]
)
def test_mobilenet_v1_parameters_equal_keras_applications(alpha, expected):
    import keras

    ours = inspect_keras(zoo.build("mobilenet_v1", alpha=alpha, classes=1000))["params"]
    reference = keras.applications.MobileNet(alpha=alpha, weights=None, classes=1000)
    assert ours == reference.count_params() == expected


# Howard et al. 2017, tables 6 and 7: millions of mult-adds (the classifier included).
PAPER_MACS = [
    (1.0, 224, 569),
    (1.0, 192, 418),
    (1.0, 160, 290),
    (1.0, 128, 186),
    (0.75, 224, 325),
    (0.5, 224, 149),
    (0.25, 224, 41),
]


@pytest.mark.parametrize("alpha, size, paper_millions", PAPER_MACS)
def test_mobilenet_v1_multiply_adds_match_the_paper(alpha, size, paper_millions):
    macs = inspect_keras(zoo.build("mobilenet_v1", input_size=size, alpha=alpha))["macs"]
    assert abs(macs / 1e6 - paper_millions) / paper_millions < 0.01, macs


def test_mobilenet_v1_resolution_changes_macs_not_params():
    a = inspect_keras(zoo.build("mobilenet_v1", input_size=128, alpha=0.5, classes=2))
    b = inspect_keras(zoo.build("mobilenet_v1", input_size=224, alpha=0.5, classes=2))
    assert a["params"] == b["params"]
    assert b["macs"] > 2.5 * a["macs"]  # ~ (224/128)^2 = 3.06, minus the size-free classifier


@pytest.mark.parametrize("k, standard, separable", [(3, 900_000, 100_900), (7, 4_900_000, 104_900)])
def test_dsconv_standard_vs_separable(k, standard, separable):
    stats = inspect_keras(zoo.build("dsconv", kernel_size=k, channels_in=100, channels_out=1000))
    std = _layer(stats, "standard_conv")["params"]
    sep = _layer(stats, "depthwise_conv")["params"] + _layer(stats, "pointwise_conv")["params"]
    assert (std, sep) == (standard, separable)
    assert stats["params"] == standard + separable
    hw = 14 * 14  # default 14x14 map, stride 1: MACs = params * H * W
    assert _layer(stats, "standard_conv")["macs"] == standard * hw
    from edgekit.zoo import dsconv

    c = dsconv.count(k, 100, 1000)
    assert (c["standard"], c["separable"]) == (standard, separable)
    assert c["ratio"] == pytest.approx(1 / 1000 + 1 / k**2)


def test_squeezenet_v1_1_reference_count_and_bypass_is_free():
    plain = inspect_keras(zoo.build("squeezenet"))
    assert plain["params"] == 1_235_496  # SqueezeNet v1.1, 1000 classes
    bypass = zoo.build("squeezenet", bypass=True)
    assert bypass.count_params() == plain["params"]
    adds = [layer.name for layer in bypass.layers if layer.__class__.__name__ == "Add"]
    assert adds == ["fire3_bypass", "fire5_bypass", "fire7_bypass", "fire9_bypass"]
    fire2 = _layer(plain, "fire2_concat")
    assert fire2["output_shape"][-1] == 128  # expand 1x1 (64) + expand 3x3 (64)


def test_densenet_lite_growth_and_compression():
    k = 12
    stats = inspect_keras(zoo.build("densenet_lite", input_size=64, growth_rate=k, blocks=(3, 3)))
    # stem 2k -> block 1 adds 3k -> transition keeps half -> block 2 adds 3k.
    c1 = 2 * k + 3 * k
    assert _layer(stats, "block1_layer3_concat")["output_shape"][-1] == c1
    assert _layer(stats, "transition1_conv")["output_shape"][-1] == c1 // 2
    assert _layer(stats, "block2_layer3_concat")["output_shape"][-1] == c1 // 2 + 3 * k
    assert _layer(stats, "block1_layer1_1x1_conv")["output_shape"][-1] == 4 * k  # bottleneck
    # Pre-activation: every conv inside a block is preceded by BN -> ReLU.
    names = [r["name"] for r in stats["layers"]]
    i = names.index("block1_layer1_1x1_conv")
    assert names[i - 2 : i] == ["block1_layer1_1x1_bn", "block1_layer1_1x1_relu"]


def test_registry_cache_matches_inspect_keras():
    """`edgekit zoo list` shows cached numbers: they must be what the models really have."""
    for entry in zoo.REGISTRY.values():
        stats = inspect_keras(zoo.build(entry.name))
        assert (stats["params"], stats["macs"]) == (entry.params, entry.macs), entry.name


def test_mac_formulas_on_layer_types():
    import keras

    L = keras.layers
    inp = keras.Input((10, 10, 8))
    grouped = L.Conv2D(16, 3, padding="same", groups=4, name="grouped")(inp)
    sep = L.SeparableConv2D(32, 3, strides=2, padding="same", name="sep")(grouped)
    up = L.Conv2DTranspose(4, 2, strides=2, name="up")(sep)
    flat = L.Reshape((10 * 10, 4))(up)
    dense = L.Dense(6, name="dense")(flat)  # applied at each of the 100 positions
    model = keras.Model(inp, dense)
    m = {r["name"]: r["macs"] for r in inspect_keras(model)["layers"]}
    assert m["grouped"] == 3 * 3 * (8 // 4) * 16 * 10 * 10
    assert m["sep"] == 3 * 3 * 16 * 5 * 5 + 16 * 32 * 5 * 5
    assert m["up"] == 2 * 2 * 32 * 4 * 5 * 5
    assert m["dense"] == 4 * 6 * 100
    assert layer_macs(model.get_layer("dense")) == m["dense"]
    assert inspect_keras(model)["macs"] == sum(m.values())


def test_build_errors_are_one_line_edgekit_errors():
    with pytest.raises(EdgekitError, match="unknown zoo model 'resnet'"):
        zoo.build("resnet")
    with pytest.raises(EdgekitError, match="no option 'alpha'"):
        zoo.build("squeezenet", alpha=0.5)
    with pytest.raises(EdgekitError, match="alpha must be > 0"):
        zoo.build("mobilenet_v1", alpha=0)
    with pytest.raises(EdgekitError, match="too small"):
        zoo.build("mobilenet_v1", input_size=16)
    with pytest.raises(EdgekitError, match="classes"):
        zoo.build("inception_lite", classes=0)


def test_inspect_keras_reports_missing_and_corrupt_files(tmp_path):
    with pytest.raises(EdgekitError, match="no such"):
        inspect_keras(tmp_path / "missing.h5")
    bad = tmp_path / "bad.h5"
    bad.write_bytes(b"not a model")
    with pytest.raises(EdgekitError):
        inspect_keras(bad)
