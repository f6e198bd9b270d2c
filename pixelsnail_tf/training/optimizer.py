"""The original's hand-written Adam (PixelCNN++ `nn.adam_updates`, as PixelSNAIL's train.py calls it).

Not Keras Adam: beta1 = 0.95, beta2 = 0.9995, the epsilon (1e-6) sits inside the square root, both
moments are bias-corrected with a float step counter t that starts at 1 and is read before its
increment, and there is no clipping or weight decay:

    v  <- 0.95 v + 0.05 g          mg <- 0.9995 mg + 0.0005 g^2
    p  <- p - lr * (v / (1 - 0.95^t)) / sqrt(mg / (1 - 0.9995^t) + 1e-6)          t <- t + 1
"""

import math

import tensorflow as tf

from pixelsnail_tf.models.base import weight_name

MOM1 = 0.95
MOM2 = 0.9995
EPSILON = 1e-6


class OriginalAdam(tf.Module):
    """State and update of the original Adam for a list of variables.

    `first_moment` / `second_moment` map each variable's name (as given) to its slot, so checkpoints
    do not depend on variable order; `t` is the original's step counter.
    """

    def __init__(self, variables, names, mom1=MOM1, mom2=MOM2, epsilon=EPSILON):
        super().__init__(name="original_adam")
        self.mom1, self.mom2, self.epsilon = mom1, mom2, epsilon
        self._variables = list(variables)
        self._names = list(names)
        self.t = tf.Variable(1.0, trainable=False, name="t")
        self.first_moment = {n: tf.Variable(tf.zeros(v.shape), trainable=False, name="v")
                             for n, v in zip(self._names, self._variables)}
        self.second_moment = {n: tf.Variable(tf.zeros(v.shape), trainable=False, name="mg")
                              for n, v in zip(self._names, self._variables)}

    @property
    def updated_variables(self):
        """The variables it updates, in the order given."""
        return tuple(self._variables)

    def apply_gradients(self, gradients, learning_rate, backprop_order=False):
        """One update of every variable from its (summed) gradient; then t += 1.

        The variables are updated one after the other (in a compiled step, the temporaries of all of
        them at once would take several times the model's size), in the order given, or last first with
        `backprop_order`. A model's layers are created in the order they compute, so backpropagation
        produces their gradients last first: in that order each update runs as soon as its gradient
        exists and frees it, instead of every gradient waiting for the first variable's. The values are
        the same either way (the updates are independent).
        """
        t = tf.identity(self.t)  # the bias corrections use t before its increment
        order = list(zip(self._names, self._variables, gradients))
        done = []
        for name, variable, g in reversed(order) if backprop_order else order:
            with tf.control_dependencies(done):
                v, mg = self.first_moment[name], self.second_moment[name]
                v_t = self.mom1 * v + (1.0 - self.mom1) * g
                mg_t = self.mom2 * mg + (1.0 - self.mom2) * tf.square(g)
                v_hat = v_t / (1.0 - tf.pow(self.mom1, t))
                mg_hat = mg_t / (1.0 - tf.pow(self.mom2, t))
                done = [v.assign(v_t, read_value=False), mg.assign(mg_t, read_value=False),
                        variable.assign(variable - learning_rate * v_hat / tf.sqrt(mg_hat + self.epsilon),
                                        read_value=False)]
        with tf.control_dependencies(done):
            self.t.assign_add(1.0)


def original_adam(model):
    """The original's Adam over the model's trainable weights, slots keyed by weight name."""
    weights = model.trainable_weights
    return OriginalAdam([w.value for w in weights], [weight_name(w) for w in weights])


class DynamicLossScale(tf.Module):
    """Dynamic loss scaling for float16 training, with the rules of Keras' LossScaleOptimizer.

    The loss is multiplied by a power of two before the gradients are taken (small float16 gradients
    would otherwise flush to zero, large ones overflow), and the gradients divided by it, exactly,
    before they are applied. A step whose gradients are not all finite is skipped (no update, no Adam
    count, no average) and halves `scale`; after `growth_steps` finite steps in a row it doubles.
    `scale` means what it means in Keras, the scale of the loss averaged over its terms (initially
    2^15): the summed loss of `terms` sub-pixels is multiplied by scale / 2^round(log2(terms)), so the
    gradients start at the size Keras' default gives a mean loss.
    """

    MIN_SCALE = 2.0 ** -24  # below it, a float16 gradient of 1 scales to zero: training has diverged

    def __init__(self, initial_scale=2.0 ** 15, growth_steps=2000):
        super().__init__(name="loss_scale")
        self.growth_steps = growth_steps
        self.scale = tf.Variable(float(initial_scale), trainable=False, name="scale")
        self.finite_steps = tf.Variable(0, dtype=tf.int64, trainable=False, name="finite_steps")

    def multiplier(self, terms):
        """What a loss summed over `terms` values (a scalar tensor) is multiplied by: a power of two."""
        exponent = tf.round(tf.math.log(tf.cast(terms, tf.float32)) / math.log(2.0))
        return self.scale * tf.pow(2.0, -exponent)

    def update(self, finite):
        """After a step whose unscaled gradients were (`finite`) all finite or not."""
        grow = finite & tf.equal(self.finite_steps, self.growth_steps - 1)
        self.scale.assign(self.scale * tf.where(grow, 2.0, tf.where(finite, 1.0, 0.5)))
        self.finite_steps.assign(tf.where(finite & ~grow, self.finite_steps + 1, 0))


def all_finite(tensors):
    return tf.reduce_all([tf.reduce_all(tf.math.is_finite(t)) for t in tensors])
