"""Original TF1 checkpoints (strict name map, errors, prefixes) and our own checkpoint format."""

import shutil

import numpy as np
import pytest
import tensorflow as tf

from conftest import PXPP, TINY, bundle_config, small_config
from pixelsnail_tf import checkpoints
from pixelsnail_tf.config import PRESETS, ModelConfig
from pixelsnail_tf.training.polyak import PolyakAverage
from pixelsnail_tf.models import PixelSNAIL, build_model


@pytest.fixture()
def model(tiny_config):
    m = PixelSNAIL(tiny_config)
    m.build((None, 8, 8, 3))
    return m


@pytest.mark.parametrize("checkpoint", ["after_init", "trained"])
def test_every_tensor_of_the_original_checkpoint_is_accounted_for(model, tiny_reference, checkpoint):
    prefix = str(TINY / checkpoint / "model.ckpt")
    names = {name for name, _ in tf.train.list_variables(prefix)}
    entries, tensors, adam_t = checkpoints.read_tf1_checkpoint(model, prefix)
    mapped = {checkpoints.ADAM_STEP}
    for e in entries:
        mapped.update((e.name, e.ema, e.first_moment, e.second_moment))
    assert mapped == names and len(names) == 301
    assert {id(e.variable) for e in entries} == {id(v) for v in model.weights}
    section = "params_after_init" if checkpoint == "after_init" else "params_final"
    moments = "" if checkpoint == "after_init" else "final"
    for e in entries:
        np.testing.assert_array_equal(tensors[e.name]["raw"], tiny_reference[f"{section}/{e.name}"])
        if moments:
            np.testing.assert_array_equal(tensors[e.name]["ema"], tiny_reference[f"ema_final/{e.name}"])
            np.testing.assert_array_equal(tensors[e.name]["first_moment"],
                                          tiny_reference[f"adam_mom1_final/{e.name}"])
            np.testing.assert_array_equal(tensors[e.name]["second_moment"],
                                          tiny_reference[f"adam_mom2_final/{e.name}"])
    expected_t = 1.0 if checkpoint == "after_init" else float(tiny_reference["adam_t_final"])
    assert adam_t == expected_t
    slots = {row[0]: (row[1], row[2]) for row in tiny_reference["slot_names"]}
    assert all(slots[e.name] == (e.first_moment, e.second_moment) for e in entries)


@pytest.mark.parametrize("use_ema, section", [(True, "ema_final"), (False, "params_final")])
def test_load_raw_or_ema(model, tiny_reference, use_ema, section):
    checkpoints.load_tf1_checkpoint(model, str(TINY / "trained"), use_ema=use_ema)
    for e in checkpoints.tf1_name_map(model):
        np.testing.assert_array_equal(e.variable.numpy(), tiny_reference[f"{section}/{e.name}"])


def test_mismatched_config_lists_differences_and_guesses_the_config(tiny_config):
    model = PixelSNAIL(tiny_config.replace(nr_filters=16, nr_logistic_mix=5))
    model.build((None, 8, 8, 3))
    with pytest.raises(checkpoints.CheckpointMismatchError) as error:
        checkpoints.load_tf1_checkpoint(model, str(TINY / "trained" / "model.ckpt"))
    first, *details = str(error.value).splitlines()
    assert first == (f"checkpoint {TINY / 'trained' / 'model.ckpt'} was made with other model flags: "
                     "--nr_filters=32 (not 16), --nr_logistic_mix=3 (not 5)")
    assert details[1].startswith("the checkpoint looks like nr_filters=32, nr_logistic_mix=3, "
                                 "attention_blocks=2, nr_resnet=1")
    assert any("shapes differ (model/conv2d_0/V [1, 3, 4, 32] vs model [1, 3, 4, 16]" in line
               for line in details)


def test_missing_and_unexpected_tensors_are_listed(tiny_config):
    model = PixelSNAIL(tiny_config.replace(attn_rep=3))  # one block more than the checkpoint
    model.build((None, 8, 8, 3))
    with pytest.raises(checkpoints.CheckpointMismatchError, match=r"tensors the model needs are "
                       r"absent \(model/conv2d_6/V, model/conv2d_6/V/ExponentialMovingAverage"):
        checkpoints.load_tf1_checkpoint(model, str(TINY / "trained"))
    model = PixelSNAIL(tiny_config.replace(attn_rep=1))
    model.build((None, 8, 8, 3))
    with pytest.raises(checkpoints.CheckpointMismatchError, match="tensors the model has no place for"):
        checkpoints.load_tf1_checkpoint(model, str(TINY / "trained"))


def test_class_conditional_model_cannot_take_an_original_checkpoint(tiny_config):
    model = PixelSNAIL(tiny_config.replace(num_classes=10))
    model.build((None, 8, 8, 3))
    with pytest.raises(checkpoints.CheckpointMismatchError,
                       match=r"no place for 8 weights of this model \(.*/hw"):
        checkpoints.load_tf1_checkpoint(model, str(TINY / "trained"))


def test_unknown_extra_tensor_is_an_error(model, tmp_path):
    reader = tf.train.load_checkpoint(str(TINY / "trained" / "model.ckpt"))
    names = sorted(reader.get_variable_to_shape_map()) + ["model/extra/V"]
    tensors = [reader.get_tensor(n) for n in names[:-1]] + [np.zeros(3, np.float32)]
    prefix = str(tmp_path / "model.ckpt")
    tf.raw_ops.SaveV2(prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
                      tensors=tensors)
    with pytest.raises(checkpoints.CheckpointMismatchError,
                       match=r"1 tensors the model has no place for \(model/extra/V\)"):
        checkpoints.load_tf1_checkpoint(model, prefix)


def test_directory_load_ignores_absolute_paths_in_the_index_file(model, tiny_reference, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(TINY / "trained", folder)
    (folder / "checkpoint").chmod(0o644)
    (folder / "checkpoint").write_text('model_checkpoint_path: "/elsewhere/machine/model.ckpt"\n'
                                       'all_model_checkpoint_paths: "/elsewhere/machine/model.ckpt"\n')
    assert checkpoints.resolve_prefix(str(folder)) == str(folder / "model.ckpt")
    (folder / "checkpoint").unlink()  # without the index file, the newest *.index is used
    assert checkpoints.resolve_prefix(str(folder)) == str(folder / "model.ckpt")
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        checkpoints.resolve_prefix(str(tmp_path / "nothing"))


@pytest.mark.slow
def test_guess_config_of_full_checkpoints():
    for preset, blocks in [("cifar10", 12), ("imagenet32", 12)]:
        model = PixelSNAIL(PRESETS[preset])
        model.build((None, 32, 32, 3))
        shapes = {e.name: list(e.variable.shape) for e in checkpoints.tf1_name_map(model)}
        facts = checkpoints.describe_tf1_shapes(shapes)
        assert facts == {"nr_filters": 256, "nr_logistic_mix": PRESETS[preset].nr_logistic_mix,
                         "attention_blocks": blocks, "nr_resnet": 4, "vertical_stream": False,
                         "resnet_nonlinearity": "elu or relu", "small_key": True}
    model = PixelSNAIL(small_config("model", nr_resnet=3, attn_rep=2, resnet_nonlinearity="concat_elu"))
    model.build((None, 4, 4, 3))
    shapes = {e.name: list(e.variable.shape) for e in checkpoints.tf1_name_map(model)}
    facts = checkpoints.describe_tf1_shapes(shapes)
    assert (facts["attention_blocks"], facts["nr_resnet"], facts["vertical_stream"]) == (2, 3, True)
    assert facts["resnet_nonlinearity"] == "concat_elu"
    # PixelCNN++ at the size of OpenAI's CIFAR-10 model
    model = build_model(ModelConfig(model="pxpp", nr_filters=160, nr_resnet=5,
                                    resnet_nonlinearity="concat_elu"))
    model.build(None)
    shapes = {e.name: list(e.variable.shape) for e in checkpoints.tf1_name_map(model)}
    assert checkpoints.describe_tf1_shapes(shapes) == {
        "model": "pxpp", "nr_filters": 160, "nr_logistic_mix": 10, "nr_resnet": 5,
        "resnet_nonlinearity": "concat_elu"}


def test_a_checkpoint_of_the_other_architecture_names_the_model_flag(tiny_config):
    pxpp = build_model(bundle_config(PXPP))
    pxpp.build(None)
    with pytest.raises(checkpoints.CheckpointMismatchError) as error:
        checkpoints.load_tf1_checkpoint(pxpp, str(TINY / "trained"))
    assert str(error.value).splitlines()[0].endswith(
        "was made with other model flags: a --model other than pxpp (the checkpoint has attention)")
    snail = build_model(tiny_config)
    snail.build(None)
    with pytest.raises(checkpoints.CheckpointMismatchError) as error:
        checkpoints.load_tf1_checkpoint(snail, str(PXPP / "trained"))
    assert str(error.value).splitlines()[0].endswith("was made with other model flags: --model=pxpp")


def write_our_checkpoint(model, tiny_reference, directory):
    """Our format holding the bundle's trained raw weights and their EMA."""
    checkpoints.load_tf1_checkpoint(model, str(TINY / "trained"), use_ema=False)
    ema = PolyakAverage(model)
    by_id = {id(e.variable): e.name for e in checkpoints.tf1_name_map(model)}
    for weight, shadow in zip(model.trainable_weights, ema.shadows):
        shadow.assign(tiny_reference["ema_final/" + by_id[id(weight)]])
    checkpoints.write_config(str(directory), model.config)
    manager = tf.train.CheckpointManager(checkpoints.model_checkpoint(model, ema), str(directory), 3)
    return manager.save()


@pytest.mark.parametrize("use_ema, section", [(True, "ema_final"), (False, "params_final")])
def test_our_checkpoint_format(model, tiny_config, tiny_reference, tmp_path, use_ema, section):
    prefix = write_our_checkpoint(model, tiny_reference, tmp_path / "run")
    assert not checkpoints.is_tf1(prefix)
    assert checkpoints.is_tf1(str(TINY / "trained" / "model.ckpt"))
    assert checkpoints.resolve_prefix(str(tmp_path / "run")) == prefix
    assert checkpoints.read_config(str(tmp_path / "run")) == tiny_config
    fresh = PixelSNAIL(tiny_config)
    fresh.build((None, 8, 8, 3))
    checkpoints.load_weights(fresh, prefix, use_ema=use_ema)
    for e in checkpoints.tf1_name_map(fresh):
        np.testing.assert_array_equal(e.variable.numpy(), tiny_reference[f"{section}/{e.name}"])


def test_our_checkpoint_with_another_config_fails(model, tiny_config, tiny_reference, tmp_path):
    prefix = write_our_checkpoint(model, tiny_reference, tmp_path / "run")
    other = PixelSNAIL(tiny_config.replace(nr_filters=16))
    other.build((None, 8, 8, 3))
    with pytest.raises(ValueError, match="shape"):
        checkpoints.load_weights(other, prefix)


def test_polyak_average_matches_the_original_update(model):
    ema = PolyakAverage(model, decay=0.9995)
    start = [w.numpy() for w in model.trainable_weights]
    for w in model.trainable_weights:
        w.assign(w + 1.0)
    ema.update()
    factor = np.float32(1.0) - np.float32(0.9995)  # computed in float32, as the original
    for s, shadow, w in zip(start, ema.shadows, model.trainable_weights):
        np.testing.assert_array_equal(shadow.numpy(), s - (s - w.numpy()) * factor)
    raw = [w.numpy() for w in model.trainable_weights]
    with ema.swapped_in():
        np.testing.assert_array_equal(model.trainable_weights[0].numpy(), ema.shadows[0].numpy())
    np.testing.assert_array_equal(model.trainable_weights[0].numpy(), raw[0])
