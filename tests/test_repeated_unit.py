"""With recomputation PixelSNAIL's blocks run as one function body (pixelsnail_tf/models/repeated_unit.py):
the same numbers as the blocks traced inline, one body called once per block, dropout state untouched."""

import collections
import functools

import numpy as np
import pytest
import tensorflow as tf

from conftest import initialized_model, small_config
from pixelsnail_tf.models.repeated_unit import RepeatedUnit

SEED = tf.constant([5, 2], tf.int64)


@pytest.mark.slow
@pytest.mark.parametrize("recompute", [False, True])
@pytest.mark.parametrize("variant", ["h12_noup_smallkey", "model"])
def test_blocks_in_one_body_compute_what_they_compute_inline(variant, recompute):
    """Three blocks with their own weights, dropout on, class-conditional: outputs and the gradients of
    every weight and input equal those of the blocks called inline. A weight of the template read
    outside the mapping would give blocks 1 and 2 block 0's numbers. Float32, fast kernels: equal to
    1e-6 of each gradient's largest entry; recomputed, 1e-5 (the backward pass of the recomputed body
    adds a weight's gradient terms in another order: float32 rounding, ~1e-7 a term, over ~100 terms;
    test_training's float64 test holds recomputation to 1e-6)."""
    config = small_config(variant, attn_rep=3, nr_resnet=2, dropout_p=0.5, num_classes=3)
    model = initialized_model(config, 4, 4)
    rng = np.random.default_rng(0)
    x, ul, u = (tf.constant(rng.normal(size=(2, 4, 4, c)), tf.float32) for c in (3, 8, 8))
    h = tf.one_hot([0, 2], 3)
    blocks = model.block_layers()
    block = functools.partial(model.block, training=True)
    unit = RepeatedUnit(block, blocks[0], recompute=recompute)
    seeds = [tf.random.experimental.stateless_fold_in(SEED, k) for k in range(3 * 2 * 2 + 3)]
    has_u = variant == "model"

    @tf.function
    def run(call):
        inputs = [x, ul, u]
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            out_ul, out_u, s = ul, (u if has_u else None), iter(seeds)
            for layers in blocks:
                per_block = [next(s) for _ in range(2 * 2 + 1 if has_u else 2 + 1)]
                outputs = call(layers, out_ul, out_u, x, h, *per_block)
                out_ul, out_u = outputs if has_u else (outputs[0], None)
            loss = tf.reduce_sum(out_ul * tf.sin(out_ul)) + (tf.reduce_sum(out_u ** 2) if has_u else 0.0)
        return [out_ul] + tape.gradient(loss, model.trainable_weights + inputs)

    inline, shared = run(block), run(unit)
    tolerance = 1e-5 if recompute else 1e-6
    assert len(shared) == len(inline)
    for a, b in zip(inline, shared):
        if a is None:
            assert b is None
            continue
        a, b = a.numpy(), b.numpy()
        np.testing.assert_allclose(b, a, rtol=0, atol=tolerance * max(np.abs(a).max(), 1e-30))


def body_calls(graph_def):
    """The names of the unit bodies (RepeatedUnit._stateless) that the graph's call ops call."""
    return [node.attr["f"].func.name for node in graph_def.node
            if node.op in ("PartitionedCall", "StatefulPartitionedCall")
            and "_stateless" in node.attr["f"].func.name]


@pytest.mark.slow
@pytest.mark.parametrize("recompute", [False, True])
def test_a_training_step_calls_one_body_per_block(recompute):
    """With recomputation the gradient's graph holds no block inline: it calls one body without kept
    intermediates once per block (the forward pass), and in the backward pass one body that keeps
    them (the recomputation) and one backward body, once per block each. Without recomputation the
    blocks are inline (a body would have to keep every intermediate: more memory, not less)."""
    config = small_config(attn_rep=3, dropout_p=0.5)
    model = initialized_model(config, 4, 4)
    model.recompute = recompute
    x = tf.zeros([2, 4, 4, 3])

    @tf.function
    def gradients(x):
        with tf.GradientTape() as tape:
            loss = tf.reduce_sum(model(x, training=True, dropout_seed=SEED))
        return tape.gradient(loss, model.trainable_weights)

    calls = body_calls(gradients.get_concrete_function(x).graph.as_graph_def())
    kinds = collections.Counter("backward" if "backward" in name else "kept" if name.startswith("__forward")
                                else "inference" for name in calls)
    assert kinds == ({"inference": 3, "kept": 3, "backward": 3} if recompute else {})
    assert len(set(calls)) == len(kinds), calls  # one body of each kind


def test_without_a_dropout_seed_each_call_draws_new_masks():
    """Without a dropout seed the model draws one per call from its seed generator, outside the shared
    body: two calls draw different masks; with a seed, the same masks."""
    model = initialized_model(small_config(dropout_p=0.5), 4, 4)
    model.recompute = True
    x = tf.constant(np.random.default_rng(0).uniform(-1, 1, (2, 4, 4, 3)), tf.float32)
    first, second = (model(x, training=True).numpy() for _ in range(2))
    assert np.abs(first - second).max() > 1e-3
    seeded = [model(x, training=True, dropout_seed=SEED).numpy() for _ in range(2)]
    np.testing.assert_array_equal(seeded[0], seeded[1])
