"""The models: PixelSNAIL (pixelsnail.py) and the original's PixelCNN++ baseline (pixelcnn_pp.py), each
with its incremental steps beside it, on what every model shares (base.py: ImageModel).

`build_model(config)` builds the model of any `--model` of the original.
"""

from pixelsnail_tf import hardware
from pixelsnail_tf.config import ModelConfig
from pixelsnail_tf.models.base import ImageModel
from pixelsnail_tf.models.pixelcnn_pp import PixelCNNPP
from pixelsnail_tf.models.pixelsnail import PixelSNAIL

__all__ = ["ARCHITECTURES", "ImageModel", "PixelCNNPP", "PixelSNAIL", "build_model"]

# Variant.architecture -> the class that builds it.
ARCHITECTURES = {"pixelsnail": PixelSNAIL, "pixelcnn_pp": PixelCNNPP}


def build_model(config=None, allow_tf32=False, **options):
    """The model of any `--model` of the original (options: kernels, dtype, name). TensorFloat-32 is
    switched off for the process (on GPUs that have it, float32 would otherwise not be float32)
    unless allow_tf32."""
    if isinstance(config, dict):
        config = ModelConfig(**config)
    config = config or ModelConfig()
    hardware.set_tf32(allow_tf32)
    return ARCHITECTURES[config.variant.architecture](config, **options)
