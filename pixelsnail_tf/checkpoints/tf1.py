"""Checkpoints written by the original TF1 code: the name map, strict loading, config detection.

The original names each weight-normalized layer by a per-type counter in creation order
(`model/conv2d_<k>/{V,g,b}`, `model/dense_<k>/{V,g,b}`, pxpp's `model/deconv2d_<k>/{V,g,b}`), keeps
a Polyak average of each under `<name>/ExponentialMovingAverage`, and stores its hand-written Adam
state in unnamed variables:
`Variable` is the step counter t, and for the j-th parameter (creation order, 0-based)
`Variable_{2j+1}` is the second-moment average and `Variable_{2j+2}` the first-moment average.
"""

import dataclasses
import re

import tensorflow as tf

from pixelsnail_tf.checkpoints.prefix import resolve_prefix
from pixelsnail_tf.models.base import weight_name

TF1_SCOPE = "model"
EMA_SUFFIX = "/ExponentialMovingAverage"
ADAM_STEP = "Variable"
WEIGHT_NAMES = ("V", "g", "b")


class CheckpointMismatchError(ValueError):
    """A checkpoint that does not fit the model; the message lists every difference."""


@dataclasses.dataclass(frozen=True)
class Tf1Entry:
    """One model weight and the names of its tensors in an original checkpoint."""

    variable: object  # the model's keras.Variable
    name: str  # raw parameter, e.g. model/conv2d_3/g
    ema: str  # its Polyak average
    first_moment: str  # Adam "v" (mom1 = 0.95)
    second_moment: str  # Adam "mg" (mom2 = 0.9995)


def tf1_name_map(model):
    """[Tf1Entry] for every weight of `model`, in the original's parameter order. ValueError (one line)
    for a model of codes: the original models images only, its layout has no place for an embedding."""
    if model.embedding is not None:
        raise ValueError(f"--output={model.config.output} has no original TF1 checkpoint layout (the "
                         f"original models images only): use pixelsnail_tf's own checkpoints")
    counters, entries = {}, []
    for layer in model.weight_norm_layers():
        k = counters.get(layer.tf1_scope, 0)
        counters[layer.tf1_scope] = k + 1
        for weight in WEIGHT_NAMES:
            j = len(entries)
            name = f"{TF1_SCOPE}/{layer.tf1_scope}_{k}/{weight}"
            entries.append(Tf1Entry(getattr(layer, weight), name, name + EMA_SUFFIX,
                                    f"Variable_{2 * j + 2}", f"Variable_{2 * j + 1}"))
    return entries


def describe_tf1_shapes(shapes):
    """Guess the config behind an original checkpoint's {name: shape}: filters, mixtures, blocks..."""
    def count(scope):
        return sum(1 for n in shapes if re.fullmatch(f"{TF1_SCOPE}/{scope}_\\d+/V", n))

    convs, denses = count("conv2d"), count("dense")
    stem = shapes.get(f"{TF1_SCOPE}/conv2d_0/V")
    head = shapes.get(f"{TF1_SCOPE}/dense_{denses - 1}/V")
    if not stem or not head:
        return {"original_pixelsnail": False}
    filters = stem[-1]
    if count("deconv2d"):  # pxpp: 3 stems, 4 resamplings, 8 + 24 * nr_resnet convs in gated layers
        first_residual = shapes.get(f"{TF1_SCOPE}/conv2d_3/V")
        facts = {"model": "pxpp", "nr_filters": filters, "nr_logistic_mix": head[-1] // 10,
                 "nr_resnet": (convs - 15) // 24}
        if first_residual:
            facts["resnet_nonlinearity"] = ("concat_elu" if first_residual[2] == 2 * filters
                                            else "elu or relu")
        return facts
    vertical = list(stem[:2]) == [2, 3]  # `model` has a u stream: its 2x3 stem conv comes first
    stems, streams = (3, 2) if vertical else (2, 1)
    residual_layers = (convs - stems) // (2 * streams)  # blocks * nr_resnet
    # per block: 9 denses in the attention block (+ one aux dense per ul layer with a u stream)
    blocks = (denses - 1 - (residual_layers if vertical else 0)) // 9
    first_residual = shapes.get(f"{TF1_SCOPE}/conv2d_{stems}/V")
    kv = shapes.get(f"{TF1_SCOPE}/dense_2/V") if not vertical else None
    facts = {"nr_filters": filters, "nr_logistic_mix": head[-1] // 10,
             "attention_blocks": blocks, "nr_resnet": residual_layers // max(blocks, 1),
             "vertical_stream": vertical}
    if first_residual:
        facts["resnet_nonlinearity"] = ("concat_elu" if first_residual[2] == 2 * filters
                                        else "elu or relu")
    if kv:
        facts["small_key"] = kv[-1] != 2 * filters
    return facts


def _expected_tf1_names(entries):
    """Every tensor name a checkpoint of this model holds, with the step counter of its Adam."""
    names = {ADAM_STEP}
    for e in entries:
        names.update((e.name, e.ema, e.first_moment, e.second_moment))
    return names


def read_tf1_checkpoint(model, prefix):
    """(entries, {name: {"raw", "ema", "first_moment", "second_moment": array}}, Adam t), checked.

    Every tensor of the checkpoint must be one the model's name map names, every name must be
    present with the model's shape; otherwise CheckpointMismatchError lists all differences and
    the config the checkpoint looks like.
    """
    if not model.built:
        raise ValueError("build the model before loading a checkpoint into it")
    entries = tf1_name_map(model)
    mapped = {id(e.variable) for e in entries}
    unmapped = [w.path for w in model.weights if id(w) not in mapped]
    if unmapped:  # the class-conditioning matrices: the original never trained such a model
        raise CheckpointMismatchError(
            f"the original's checkpoints have no place for {len(unmapped)} weights of this model "
            f"({_short(unmapped)}); build it without num_classes to load {prefix}")
    reader = tf.train.load_checkpoint(prefix)
    shapes = reader.get_variable_to_shape_map()
    expected = _expected_tf1_names(entries)
    problems = []
    unexpected = sorted(set(shapes) - expected)
    missing = sorted(expected - set(shapes), key=lambda n: (not n.startswith(TF1_SCOPE), n))
    if unexpected:
        problems.append(f"{len(unexpected)} tensors the model has no place for ({_short(unexpected)})")
    if missing:
        problems.append(f"{len(missing)} tensors the model needs are absent ({_short(missing)})")
    wrong_shape = [f"{name} {list(shapes[name])} vs model {list(e.variable.shape)}"
                   for e in entries for name in (e.name, e.ema, e.first_moment, e.second_moment)
                   if name in shapes and list(shapes[name]) != list(e.variable.shape)]
    if wrong_shape:
        problems.append(f"{len(wrong_shape)} shapes differ ({_short(wrong_shape, limit=4)})")
    if problems:
        guess = describe_tf1_shapes(shapes)
        looks_like = ", ".join(f"{k}={v}" for k, v in guess.items())
        raise CheckpointMismatchError(
            f"checkpoint {prefix} was made with other model flags: {_flags_to_change(model, guess)}"
            f"\nthe model: {_config_summary(model)}\nthe checkpoint looks like {looks_like}\n"
            + "\n".join(problems))
    tensors = {e.name: {"raw": reader.get_tensor(e.name), "ema": reader.get_tensor(e.ema),
                        "first_moment": reader.get_tensor(e.first_moment),
                        "second_moment": reader.get_tensor(e.second_moment)} for e in entries}
    return entries, tensors, float(reader.get_tensor(ADAM_STEP))


def load_tf1_checkpoint(model, path, use_ema=True):
    """Fills every weight of `model` from an original checkpoint (prefix or directory).

    use_ema: the Polyak-averaged weights (what the original evaluates and samples with), else the
    raw ones. The Adam state is checked but not used here. Returns the resolved prefix.
    """
    prefix = resolve_prefix(path)
    entries, tensors, _ = read_tf1_checkpoint(model, prefix)
    for e in entries:
        e.variable.assign(tensors[e.name]["ema" if use_ema else "raw"])
    return prefix


def _short(names, limit=6):
    return ", ".join(names[:limit]) + (f" ... (+{len(names) - limit} more)" if len(names) > limit else "")


def _flags_to_change(model, guess):
    """'--nr_resnet=1 (not 2), ...': the flags whose value the checkpoint's shapes tell apart."""
    c = model.config
    if (guess.get("model") == "pxpp") != (c.model == "pxpp"):
        return "--model=pxpp" if c.model != "pxpp" else "a --model other than pxpp (the checkpoint has attention)"
    given = {"nr_filters": c.nr_filters, "nr_logistic_mix": c.nr_logistic_mix, "attn_rep": c.num_blocks,
             "nr_resnet": c.nr_resnet, "resnet_nonlinearity": c.resnet_nonlinearity}
    if c.model == "pxpp":
        given.pop("attn_rep")
    guess = dict(guess, attn_rep=guess.get("attention_blocks"))
    changes = [f"--{name}={guess[name]} (not {value})" for name, value in given.items()
               if guess.get(name) is not None and str(value) not in str(guess[name]).split(" or ")]
    if "small_key" in guess and guess["small_key"] != c.variant.small_key:
        changes.append("a --model " + ("with" if guess["small_key"] else "without") + " smallkey")
    if "vertical_stream" in guess and guess["vertical_stream"] != c.variant.vertical_stream:
        changes.append("--model=model" if guess["vertical_stream"] else "a --model other than 'model'")
    return ", ".join(changes) or "see the differences below"


def _config_summary(model):
    c = model.config
    return (f"model={c.model}, nr_filters={c.nr_filters}, nr_logistic_mix={c.nr_logistic_mix}, "
            f"attention_blocks={c.num_blocks}, nr_resnet={c.nr_resnet}, "
            f"resnet_nonlinearity={c.resnet_nonlinearity}")


def load_tf1_training_state(model, ema, optimizer, prefix):
    """Everything an original checkpoint holds into our objects: weights, averages, Adam state."""
    entries, tensors, t = read_tf1_checkpoint(model, prefix)
    for e in entries:
        values, key = tensors[e.name], weight_name(e.variable)
        e.variable.assign(values["raw"])
        ema.shadow(e.variable).assign(values["ema"])
        optimizer.first_moment[key].assign(values["first_moment"])
        optimizer.second_moment[key].assign(values["second_moment"])
    optimizer.t.assign(t)
