"""The model config (pixelsnail_tf.config): the original's variants by name, what each implies, and a
one-line refusal of every value a model cannot be built from."""

import pytest

from pixelsnail_tf import config
from pixelsnail_tf.config import PRESETS, REFUSED_VARIANTS, VARIANTS, ModelConfig
from pixelsnail_tf.layers import nonlinearities


@pytest.mark.parametrize("name", sorted(REFUSED_VARIANTS))
def test_broken_variants_are_refused_by_name(name):
    with pytest.raises(ValueError, match=f"model={name} is not supported: "):
        ModelConfig(model=name)


@pytest.mark.parametrize("changes, message", [
    ({"model": "h12"}, "unknown model 'h12'"),
    ({"resnet_nonlinearity": "tanh"}, "unknown resnet_nonlinearity 'tanh'"),
    ({"nr_filters": 0}, "nr_filters must be >= 1, got 0"),
    ({"nr_filters": 33}, "model=h12_noup_smallkey needs an even nr_filters, got 33"),
    ({"attn_rep": 0}, "attn_rep must be >= 1, got 0"),
    ({"model": "pxpp", "attn_rep": 2}, "model=pxpp has no attention blocks: leave attn_rep unset"),
    ({"dropout_p": 1.0}, "dropout_p must be in [0, 1), got 1.0"),
    ({"num_classes": -1}, "num_classes must be >= 0, got -1"),
    ({"output": "gaussian"}, "unknown output 'gaussian'"),
    ({"output": "categorical", "num_codes": 1}, "output=categorical needs num_codes >= 2, got 1"),
    ({"num_codes": 8}, "num_codes is for output=categorical (codes), not output=logistic_mixture"),
])
def test_a_value_no_model_is_built_from_is_one_line(changes, message):
    with pytest.raises(ValueError) as error:
        ModelConfig(**changes)
    assert message in str(error.value) and "\n" not in str(error.value)


def test_the_config_names_the_nonlinearities_the_layers_have():
    assert set(config.NONLINEARITIES) == set(nonlinearities.NONLINEARITIES)


def test_what_a_variant_implies():
    assert ModelConfig().num_blocks == 12 and ModelConfig(model="h8_noup_smallkey").num_blocks == 8
    assert ModelConfig(model="h6_noup").num_blocks == 6 and ModelConfig(attn_rep=2).num_blocks == 2
    small, full = ModelConfig(nr_filters=64), ModelConfig(model="h6_noup", nr_filters=64)
    assert (small.key_size, small.value_size) == (16, 32) and (full.key_size, full.value_size) == (64, 64)
    assert VARIANTS["pxpp"].architecture == "pixelcnn_pp" and ModelConfig(model="pxpp").num_blocks == 0


def test_presets_are_the_published_runs():
    assert PRESETS["cifar10"] == ModelConfig(nr_logistic_mix=10, dropout_p=0.5)
    assert PRESETS["imagenet32"].nr_logistic_mix == 32 and PRESETS["imagenet32"].dropout_p == 0.0
    assert ModelConfig(**PRESETS["demo"].to_dict()) == PRESETS["demo"]
    assert PRESETS["demo"].replace(nr_filters=8).nr_filters == 8 and PRESETS["demo"].nr_filters == 32
