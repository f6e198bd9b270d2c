"""Heat maps of per-pixel bits (pixelsnail_tf.heatmaps, evaluate.py --heatmap_dir)."""

import json

import numpy as np
import pytest
import tensorflow as tf

from commands import invoke
from conftest import TINY, TINY_FLAGS, trained_tiny_model
from tolerances import NETWORK_RTOL
from pixelsnail_tf import heatmaps
from pixelsnail_tf.commands import evaluate as evaluate_command


def test_heatmaps_show_each_pixels_bits(tmp_path, test_images, tiny_config, tiny_reference):
    out, maps = tmp_path / "r.json", tmp_path / "maps"
    run = invoke(evaluate_command, f"--checkpoint={TINY / 'trained'}", f"--images={test_images}",
                 f"--json_out={out}", f"--heatmap_dir={maps}", *TINY_FLAGS)
    assert run.returncode == 0, run.stderr
    images, bits = tiny_reference["x_test_u8"], np.load(maps / "per_pixel_bits.npy")
    result = json.loads(out.read_text())
    assert bits.shape == images.shape[:3] and bits.dtype == np.float32
    # the same test bpd as without heat maps (the original's value), from the per-pixel terms
    np.testing.assert_allclose(result["bpd"], np.mean(tiny_reference["bpd_test_ema_final"]),
                               rtol=NETWORK_RTOL)
    np.testing.assert_allclose(-bits.sum(axis=(1, 2)) * np.log(2), result["per_image_log_likelihood"],
                               rtol=1e-6)
    model = trained_tiny_model(tiny_config)
    np.testing.assert_allclose(bits, -model.per_pixel_log_prob(images).numpy() / np.log(2),
                               rtol=NETWORK_RTOL, atol=1e-5)
    scale = json.loads((maps / "scale.json").read_text())
    assert scale["low_bits"] == 0 and scale["high_bits"] == pytest.approx(float(bits.max()))
    for i, (image, image_bits) in enumerate(zip(images, bits)):
        panel = tf.io.decode_png(tf.io.read_file(str(maps / f"heatmap_{i}.png"))).numpy()
        factor = panel.shape[0] // 8  # enlarged by a whole factor
        shrunk = panel[::factor, ::factor]
        np.testing.assert_array_equal(shrunk[:, :8], image)
        np.testing.assert_array_equal(shrunk[:, 9:17], heatmaps.colorize(image_bits, 0.0, scale["high_bits"]))
    assert len(np.unique(shrunk[:, 9:17].reshape(-1, 3), axis=0)) > 10  # a map, not one colour
