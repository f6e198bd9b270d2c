"""pixelsnail_tf: PixelSNAIL (Chen et al. 2017) on TensorFlow 2 / Keras 3, faithful to the original."""

from pixelsnail_tf.config import PRESETS, VARIANTS, ModelConfig
from pixelsnail_tf.model import PixelSNAIL

__all__ = ["PRESETS", "VARIANTS", "ModelConfig", "PixelSNAIL"]
