"""pixelsnail_tf: PixelSNAIL (Chen et al. 2017) on TensorFlow 2 / Keras 3, faithful to the original."""

from pixelsnail_tf.config import PRESETS, VARIANTS, ModelConfig

__all__ = ["PRESETS", "VARIANTS", "ModelConfig", "PixelCNNPP", "PixelSNAIL", "build_model"]


def __getattr__(name):
    # The model (and with it TensorFlow) is imported on first use, so that the command-line programs
    # can set TensorFlow's logging up before it loads.
    if name in ("PixelSNAIL", "PixelCNNPP", "build_model"):
        from pixelsnail_tf import models
        return getattr(models, name)
    raise AttributeError(f"module 'pixelsnail_tf' has no attribute {name!r}")
