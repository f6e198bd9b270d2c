"""Model configuration: the original's hyper-parameter names, its model variants, published presets."""

import dataclasses
from typing import Optional



@dataclasses.dataclass(frozen=True)
class Variant:
    """What a model name of the original (`--model=<name>`, builder `<name>_spec`) builds."""

    num_blocks: int  # attention blocks, each after nr_resnet gated residual layers
    small_key: bool  # True: key/query 16 channels, value F/2; False: key, query, value F channels
    att_downsample: int = 1  # >1: keys/values max-pooled, mask min-pooled (h12_pool2_smallkey)
    vertical_stream: bool = False  # True: the PixelCNN++ "u" stream feeds every ul layer (`model`)
    architecture: str = "pixelsnail"  # the model class (models.ARCHITECTURES): attention or U-net


VARIANTS = {
    "h12_noup_smallkey": Variant(num_blocks=12, small_key=True),
    "h12_pool2_smallkey": Variant(num_blocks=12, small_key=True, att_downsample=2),
    "h8_noup_smallkey": Variant(num_blocks=8, small_key=True),
    "h6_noup": Variant(num_blocks=6, small_key=False),
    "model": Variant(num_blocks=6, small_key=False, vertical_stream=True),
    # PixelCNN++ (the original's baseline): a U-net over three resolutions, no attention.
    "pxpp": Variant(num_blocks=0, small_key=False, vertical_stream=True, architecture="pixelcnn_pp"),
}

# Builders of the original (pixel_cnn_pp/model.py, `<name>_spec`) that we do not offer, with the reason.
_NOT_CAUSAL = "average-pools raw inputs and broadcasts back, so pixels see later pixels (not causal)"
_CRASHES = "crashes in the original (passes causal_unit= to causal_attention, which has no such argument)"
REFUSED_VARIANTS = {
    "h6_noup_hier2": _NOT_CAUSAL,
    "h6_hier4": _NOT_CAUSAL,
    "h6_1mixhier2": _NOT_CAUSAL,
    "h8_noup_124444mix": _CRASHES,
    "h16_noup_124444mix": _CRASHES,
    "h6_noup_124mix_halfattn": _CRASHES,
    "h6_noup_1mix_halfattn": _CRASHES,
    "h8_noup_1mix_halfattn": _CRASHES,
    "h6_shift": _CRASHES,
    "h8_noup_smallkey_ar_chs": "cannot run through the original train.py (its sampling graph fails to build)",
    "h6_shift_small_attn":
        "never verified to build in the original (TF1 Defun stem with an unused channel group)",
}

# The gated residual layers' nonlinearities (`--resnet_nonlinearity`; layers/nonlinearities.py).
NONLINEARITIES = ("concat_elu", "elu", "relu")

# What a model is a distribution over (`--output`; pixelsnail_tf.distributions): 8-bit RGB pixels, each a
# discretized mixture of logistics (the original), or integer codes in [0, num_codes), each a categorical
# (a prior over a VQ-VAE's code maps).
OUTPUTS = ("logistic_mixture", "categorical")

# Key and query width of the "smallkey" models.
SMALL_KEY_SIZE = 16


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Hyper-parameters of a PixelSNAIL model, named as the original train.py flags.

    Defaults are the effective values of the original train.py (nr_resnet=4 and elu override the
    builders' own defaults). `attn_rep=None` takes the number of blocks the model name implies.
    `num_classes > 0` makes the model class-conditional (one-hot label as every gated layer's
    conditioning vector `h`, as in PixelCNN++; declared but never implemented by the original).
    `output="categorical"` with `num_codes=K`: a distribution over code maps [H,W] in [0,K), each code
    embedded (nr_filters channels) as the network's input and given a K-way softmax by its output layer.
    """

    model: str = "h12_noup_smallkey"
    nr_resnet: int = 4
    nr_filters: int = 256
    nr_logistic_mix: int = 10
    resnet_nonlinearity: str = "elu"
    dropout_p: float = 0.5
    attn_rep: Optional[int] = None
    num_classes: int = 0
    output: str = "logistic_mixture"
    num_codes: int = 0

    def __post_init__(self):
        if self.model in REFUSED_VARIANTS:
            raise ValueError(f"model={self.model} is not supported: {REFUSED_VARIANTS[self.model]}")
        if self.model not in VARIANTS:
            raise ValueError(
                f"unknown model {self.model!r}; choose one of {', '.join(sorted(VARIANTS))}")
        if self.resnet_nonlinearity not in NONLINEARITIES:
            raise ValueError(f"unknown resnet_nonlinearity {self.resnet_nonlinearity!r}; choose one of "
                             f"{', '.join(NONLINEARITIES)}")
        for name in ("nr_resnet", "nr_filters", "nr_logistic_mix"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.variant.small_key and self.nr_filters % 2:
            raise ValueError(f"model={self.model} needs an even nr_filters, got {self.nr_filters}")
        if self.attn_rep is not None and self.attn_rep < 1:
            raise ValueError(f"attn_rep must be >= 1, got {self.attn_rep}")
        if self.attn_rep is not None and not self.variant.num_blocks:
            raise ValueError(f"model={self.model} has no attention blocks: leave attn_rep unset")
        if not 0.0 <= self.dropout_p < 1.0:
            raise ValueError(f"dropout_p must be in [0, 1), got {self.dropout_p}")
        if self.num_classes < 0:
            raise ValueError(f"num_classes must be >= 0, got {self.num_classes}")
        if self.output not in OUTPUTS:
            raise ValueError(f"unknown output {self.output!r}; choose one of {', '.join(OUTPUTS)}")
        if self.output == "categorical" and self.num_codes < 2:
            raise ValueError(f"output=categorical needs num_codes >= 2, got {self.num_codes}")
        if self.output != "categorical" and self.num_codes:
            raise ValueError(f"num_codes is for output=categorical (codes), not output={self.output}")

    @property
    def variant(self) -> Variant:
        return VARIANTS[self.model]

    @property
    def num_blocks(self) -> int:
        return self.variant.num_blocks if self.attn_rep is None else self.attn_rep

    @property
    def key_size(self) -> int:
        return SMALL_KEY_SIZE if self.variant.small_key else self.nr_filters

    @property
    def value_size(self) -> int:
        return self.nr_filters // 2 if self.variant.small_key else self.nr_filters

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


# The published runs (README of neocxi/pixelsnail-public). Which CIFAR README version produced the
# paper's 2.85 bits/dim is not recorded; both are here.
PRESETS = {
    "cifar10": ModelConfig(model="h12_noup_smallkey", nr_logistic_mix=10, dropout_p=0.5),
    "cifar10_pool2": ModelConfig(model="h12_pool2_smallkey", nr_logistic_mix=10, dropout_p=0.5),
    "imagenet32": ModelConfig(model="h12_noup_smallkey", nr_logistic_mix=32, dropout_p=0.0),
    # Small enough to train for a few minutes on a laptop CPU (train.py --dataset=demo --preset=demo).
    "demo": ModelConfig(model="h12_noup_smallkey", nr_resnet=1, nr_filters=32, nr_logistic_mix=5,
                        attn_rep=2, dropout_p=0.0),
}
