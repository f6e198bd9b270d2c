"""The original's hand-written Adam (PixelCNN++ `nn.adam_updates`, as PixelSNAIL's train.py calls it).

Not Keras Adam: beta1 = 0.95, beta2 = 0.9995, the epsilon (1e-6) sits inside the square root, both
moments are bias-corrected with a float step counter t that starts at 1 and is read before its
increment, and there is no clipping or weight decay:

    v  <- 0.95 v + 0.05 g          mg <- 0.9995 mg + 0.0005 g^2
    p  <- p - lr * (v / (1 - 0.95^t)) / sqrt(mg / (1 - 0.9995^t) + 1e-6)          t <- t + 1
"""

import tensorflow as tf

from pixelsnail_tf.image_model import weight_name

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

    def apply_gradients(self, gradients, learning_rate):
        """One update of every variable from its (summed) gradient; then t += 1."""
        t = tf.identity(self.t)  # the bias corrections use t before its increment
        for name, variable, g in zip(self._names, self._variables, gradients):
            v, mg = self.first_moment[name], self.second_moment[name]
            v_t = self.mom1 * v + (1.0 - self.mom1) * g
            mg_t = self.mom2 * mg + (1.0 - self.mom2) * tf.square(g)
            v_hat = v_t / (1.0 - tf.pow(self.mom1, t))
            mg_hat = mg_t / (1.0 - tf.pow(self.mom2, t))
            v.assign(v_t)
            mg.assign(mg_t)
            variable.assign(variable - learning_rate * v_hat / tf.sqrt(mg_hat + self.epsilon))
        self.t.assign_add(1.0)


def original_adam(model):
    """The original's Adam over the model's trainable weights, slots keyed by weight name."""
    weights = model.trainable_weights
    return OriginalAdam([w.value for w in weights], [weight_name(w) for w in weights])
