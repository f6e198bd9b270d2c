"""What every model of the family shares: the input, the class conditioning, the output layer and
the likelihood API. A subclass is one architecture (pixelsnail.py: PixelSNAIL; pixelcnn_pp.py: PixelCNN++):
it creates its layers in the original's order and computes the features of every pixel.

    values -> x [B,H,W,C]: images in [-1,1] as they are (C = 3), or codes embedded (C = nr_filters)
    x_pad = [x, 1] (the ones channel tells the image from the zero padding)
    features(x, x_pad) [B,H,W,F] -> head: nin(elu(features)) = the parameters of each position's
    distribution (pixelsnail_tf.distributions: 10*M of a logistic mixture, or K logits of a categorical)
"""

import keras
import tensorflow as tf

from pixelsnail_tf import images as image_checks
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.distributions import bits_per_dim, distribution_of
from pixelsnail_tf.layers.kernels import check_kernels
from pixelsnail_tf.layers.weight_norm import WeightNormDense


class ImageModel(keras.Model):
    """A distribution over 8-bit RGB images (per pixel a discretized mixture of logistics), or with
    config.output="categorical" over integer code maps (per position a softmax over the codes).

    Call it on values (float32 images in [-1, 1], or int32 codes [B,H,W]) to get each position's
    parameters [B,H,W,P] (float32). `log_prob` / `bits_per_dim` take uint8 [0,255] or float32 [-1,1]
    images (integer codes) and check them. `initialize(images)` runs the original's data-dependent
    initialization once. `distribution` (pixelsnail_tf.distributions) is what it is a distribution over.

    `dtype="mixed_bfloat16"` (a Keras dtype policy): the layers compute in bfloat16 from float32
    weights (normalized in float32, then cast); the output layer, the mixture and the data-dependent
    init stay float32. `kernels` (layers/kernels.py): "fast" (default) or "reference" (TensorFlow's
    own ops, as the original): the same math. `recompute`: gradients keep only the inputs of each unit
    the subclass marks (PixelSNAIL: each block, repeated_unit.py; PixelCNN++: `checkpointed`) and
    compute the rest again. Checkpoints depend on none of them.
    """

    # The `Variant.architecture` a subclass builds, and the model name its default config takes.
    architecture = None
    default_model = None
    # The sides of an image must be multiples of this (a U-net halves them).
    side_multiple = 1
    # The data-dependent init needs images of at least this many rows: on fewer, some layer sees only
    # zero padding at every position, and its output has no spread over the images to normalize by.
    min_init_height = 1

    def __init__(self, config=None, kernels="fast", recompute=False, **kwargs):
        kwargs.setdefault("autocast", False)  # the compute dtype is applied in `call`, explicitly
        super().__init__(**kwargs)
        if isinstance(config, dict):
            config = ModelConfig(**config)
        self.config = config or ModelConfig(model=self.default_model)
        if self.config.variant.architecture != self.architecture:
            raise ValueError(f"--model={self.config.model} is not a {type(self).__name__}; "
                             f"build it with pixelsnail_tf.models.build_model(config)")
        self.kernels = check_kernels(kernels)
        self.recompute = bool(recompute)
        self.distribution = distribution_of(self.config)
        self.embedding = self.distribution.input_layer()  # codes -> vectors; None for images
        # A call in training without a dropout_seed draws one from here: every layer's mask then comes
        # from a seed given to it, which a recomputed unit's backward pass replays (from their own
        # seed generators it would draw other masks, and the gradients would be wrong).
        self.dropout_seeds = (keras.random.SeedGenerator(name="dropout_seeds") if self.config.dropout_p > 0
                              else None)
        self._log_prob_fn = tf.function(self._log_prob_float)  # one trace per image shape
        self._pixel_log_prob_fn = tf.function(self._pixel_log_prob_float)

    def weight_norm_layers(self):
        """All weight-normalized layers in the original's creation order (its variable order)."""
        raise NotImplementedError

    def features(self, x, x_pad, h, seeds, training, init):
        """The features [B,H,W,F] the head reads, of x and x_pad = [x, 1] (compute dtype), class
        one-hots h (or None); `seeds.next()` gives each dropout layer its seed in call order."""
        raise NotImplementedError

    def checkpointed(self, fn, init):
        """fn (tensors -> tensors) as a unit of recomputation when `recompute`: its gradient keeps only
        its inputs and computes it again in the backward pass (tf.recompute_grad), with the same
        dropout masks, since they come from stateless seeds drawn outside it."""
        return tf.recompute_grad(fn) if self.recompute and not init else fn

    def _make_head(self):
        return WeightNormDense(self.distribution.parameters, name="head")

    def network_input(self, values, dtype):
        """x [..., C] in `dtype`: what the network reads of values (images as they are, codes embedded)."""
        return tf.cast(values if self.embedding is None else self.embedding(values), dtype)

    def build(self, input_shape):
        # All weights are independent of the image size: one pass on a tiny image creates them.
        if not self.built:
            side = 2 * self.side_multiple
            with tf.init_scope():
                labels = tf.zeros([1], tf.int32) if self.config.num_classes else None
                self.call(tf.zeros([1, side, side, *self.distribution.value_shape],
                                   self.distribution.value_dtype), labels)
        self.built = True

    def check_image_size(self, height, width):
        """ValueError (one line) for image sides the architecture cannot take."""
        m = self.side_multiple
        if height % m or width % m:
            raise ValueError(f"a {self.config.model} model needs image sides that are multiples of {m}, "
                             f"got {height}x{width}")

    def call(self, x, labels=None, training=False, init=False, dropout_seed=None):
        """Parameters [B,H,W,P] of each position's distribution given the values x (images in [-1, 1]
        [B,H,W,3], or codes [B,H,W]). With `training`, dropout (dropout_seed: int [2], the masks' seed;
        None: one drawn from the model's seed generator `dropout_seeds`)."""
        if x.shape[1] is not None and x.shape[2] is not None:
            self.check_image_size(x.shape[1], x.shape[2])
        x = self.network_input(x, tf.float32 if init else self.compute_dtype)
        return self.network(x, labels, training, init, dropout_seed)

    def network(self, x, labels=None, training=False, init=False, dropout_seed=None):
        """`call` from the network's input x [B,H,W,C] (network_input of the values) on: the features
        and the output layer (float32 parameters)."""
        c = self.config
        h = tf.one_hot(labels, c.num_classes, dtype=x.dtype) if c.num_classes else None
        if training and dropout_seed is None and self.dropout_seeds is not None:
            dropout_seed = tf.cast(self.dropout_seeds.next(), tf.int64)
        features = self.features(x, with_ones(x), h, _SeedsPerLayer(dropout_seed), training, init)
        return self.head(tf.cast(tf.nn.elu(features), tf.float32), init=init)

    def initialize(self, images, labels=None, dropout_seed=None):
        """The original's data-dependent init on one batch: sets every g and b, keeps V as drawn.

        Dropout is active during this pass when dropout_p > 0, as in the original.
        Returns the mixture parameters of that pass (equal to the initialized model's output).
        """
        x = self.distribution.check(images)
        labels = image_checks.check_labels(labels, x.shape[0], self.config.num_classes)
        height, width = x.shape[1], x.shape[2]
        self.check_image_size(height, width)
        if height < self.min_init_height:
            raise ValueError(f"a {self.config.model} model initializes on images of at least "
                             f"{self.min_init_height} rows (on fewer, a layer sees only padding), "
                             f"got {height}x{width}")
        self.build(x.shape)
        return self.call(x, labels, training=self.config.dropout_p > 0, init=True,
                         dropout_seed=dropout_seed)

    def _log_prob_float(self, x, labels):
        # the sum of the per-position terms, as the original sums them
        return tf.reduce_sum(self._pixel_log_prob_float(x, labels), axis=[1, 2])

    def _pixel_log_prob_float(self, x, labels):
        return self.distribution.log_prob(x, self(x, labels))

    def log_prob(self, images, labels=None):
        """Per-image log-likelihood in nats [B] of uint8 [0,255] or float32 [-1,1] images (codes)."""
        x = self.distribution.check(images)
        labels = image_checks.check_labels(labels, x.shape[0], self.config.num_classes)
        return self._log_prob_fn(x, labels)

    def per_pixel_log_prob(self, images, labels=None):
        """Per-pixel log-likelihood in nats [B,H,W] (a pixel's three colours together; a code), of
        images as `log_prob` takes them: where an image is unlikely. Its sum over an image is `log_prob`."""
        x = self.distribution.check(images)
        labels = image_checks.check_labels(labels, x.shape[0], self.config.num_classes)
        return self._pixel_log_prob_fn(x, labels)

    def bits_per_dim(self, images, labels=None):
        """Per-image bits per sub-pixel [B] (negative log2-likelihood / (H*W*3)); per code for codes."""
        x = self.distribution.check(images)
        return bits_per_dim(self.log_prob(x, labels), x.shape[1] * x.shape[2] * self.distribution.dims)

    # Incremental computation (the fast sampler's): a subclass's steps class, with the interface of
    # PixelSNAILSteps (pixelsnail.py): initial_state(model, batch, H, W) and row(r, state, choose).
    steps_class = None

    def initial_steps_state(self, batch, height, width):
        """The state of its steps before row 0 (a nest of tensors; made from shapes, no weight read)."""
        return self.steps_class.initial_state(self, batch, height, width)

    def steps(self, height, width):
        """The model a row and a pixel at a time on H x W images, its weights prepared now: build it
        inside the traced function that runs its `row(r, state, choose, labels, keep_params)`."""
        return self.steps_class(self, height, width)

    def get_config(self):
        return {"config": self.config.to_dict(), "name": self.name, "dtype": self.dtype_policy.name,
                "kernels": self.kernels, "recompute": self.recompute}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def with_ones(x):
    """x_pad = [x, 1] of pixels x [..., 3]: the ones channel tells the image from the zero padding."""
    return tf.concat([x, tf.ones_like(x[..., :1])], axis=-1)


def swap_leading(t):
    """t with its first two axes swapped ([H,B,W,...] <-> [B,H,W,...])."""
    return tf.transpose(t, [1, 0, *range(2, t.shape.rank)])


def weight_name(weight):
    """A weight's path inside its model, e.g. attention_0/kv_resnet/conv_in/V: the key checkpoints and
    optimizer slots use."""
    return weight.path.split("/", 1)[1]


class _SeedsPerLayer:
    """Seeds of the layers in call order, each folded from one model seed (None: all None)."""

    def __init__(self, seed):
        self.seed, self.index = seed, 0

    def next(self):
        if self.seed is None:
            return None
        self.index += 1
        return tf.random.experimental.stateless_fold_in(self.seed, self.index)
