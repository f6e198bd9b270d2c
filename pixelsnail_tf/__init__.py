"""pixelsnail_tf: PixelSNAIL (Chen et al. 2017) on TensorFlow 2 / Keras 3, faithful to the original."""

from pixelsnail_tf.config import PRESETS, VARIANTS, ModelConfig

__all__ = ["PRESETS", "VARIANTS", "ModelConfig", "PixelSNAIL"]


def __getattr__(name):
    # The model (and with it TensorFlow) is imported on first use, so that the command-line programs
    # can set TensorFlow's logging up before it loads.
    if name == "PixelSNAIL":
        from pixelsnail_tf.model import PixelSNAIL
        return PixelSNAIL
    raise AttributeError(f"module 'pixelsnail_tf' has no attribute {name!r}")
