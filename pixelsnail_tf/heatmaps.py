"""Heat maps of per-pixel bits (-log2 of each pixel's likelihood, its three colours together): where an
image is unlikely to the model. evaluate.py --heatmap_dir writes them."""

import json
import os
import re

import numpy as np
import tensorflow as tf

from pixelsnail_tf.images import enlarged

# Few bits to many: black, violet, red, orange, pale yellow (ordered in lightness), piecewise linear.
COLOURS = np.array([[0, 0, 4], [70, 16, 110], [185, 50, 80], [245, 125, 25], [252, 250, 165]], np.float64)
FILES = ("per_pixel_bits.npy", "scale.json")
_PANEL = re.compile(r"^heatmap_\d+\.png$")


def colorize(values, low, high):
    """float [...] -> uint8 [..., 3]: `low` (and below) the first colour, `high` (and above) the last."""
    t = np.clip((np.asarray(values, np.float64) - low) / max(high - low, 1e-12), 0.0, 1.0)
    t = t * (len(COLOURS) - 1)
    i = np.minimum(np.floor(t).astype(int), len(COLOURS) - 2)
    fraction = (t - i)[..., None]
    return np.round(COLOURS[i] * (1 - fraction) + COLOURS[i + 1] * fraction).astype(np.uint8)


def panel(image, bits, low, high):
    """uint8 [H, 2W + W/4 + 2, 3]: the image, its heat map, and a colour bar (`high` at the top, `low` at
    the bottom), side by side with one white column between them."""
    height, width = bits.shape
    bar = colorize(np.repeat(np.linspace(high, low, height)[:, None], max(1, width // 4), axis=1), low, high)
    gap = np.full((height, 1, 3), 255, np.uint8)
    return np.concatenate([image, gap, colorize(bits, low, high), gap, bar], axis=1)


def existing(folder):
    """The names of the heat-map files in `folder` (FILES and heatmap_<i>.png), sorted."""
    return sorted(name for name in os.listdir(folder) if name in FILES or _PANEL.match(name))


def check_folder(folder, overwrite=False):
    """ValueError (one line) where `folder` holds heat maps already, unless `overwrite`."""
    found = existing(folder)
    if found and not overwrite:
        raise ValueError(f"--heatmap_dir={folder} holds heat maps already ({found[0]}); give --overwrite "
                         f"to replace them, or another folder")


def write(folder, images, per_pixel_bits):
    """Writes into `folder` per_pixel_bits.npy (float32 [N,H,W]), scale.json ({"low_bits", "high_bits"}:
    the colour bar's range, one for all images: 0 to the largest value) and heatmap_<i>.png per image
    (panel, enlarged), having removed the heat maps it held (check_folder). Returns (low, high)."""
    for name in existing(folder):
        os.remove(os.path.join(folder, name))
    low, high = 0.0, float(np.max(per_pixel_bits))
    digits = len(str(len(images) - 1))
    for i, (image, bits) in enumerate(zip(images, per_pixel_bits)):
        png = tf.io.encode_png(enlarged(panel(image, bits, low, high)))
        tf.io.write_file(os.path.join(folder, f"heatmap_{i:0{digits}d}.png"), png)
    with open(os.path.join(folder, "scale.json"), "w") as f:
        json.dump({"low_bits": low, "high_bits": high}, f)
    np.save(os.path.join(folder, "per_pixel_bits.npy"), np.asarray(per_pixel_bits, np.float32))
    return low, high
