"""Test-set log-likelihood of a model, batch by batch, with a progress bar."""

import keras
import numpy as np

from pixelsnail_tf.distributions import bits_per_dim


def log_likelihood(model, images, labels=None, batch_size=16, verbose=True, after_batch=None,
                   per_pixel=False):
    """Per-image log-likelihood in nats (float64 [N]) of uint8 images [N,H,W,3], in order; with
    per_pixel, per pixel (float64 [N,H,W], model.per_pixel_log_prob), whose sums are the per-image ones.

    Every image counts once, the last partial batch included (the original dropped or crashed on it).
    after_batch: optional callable run after every batch (an exception it raises stops the loop).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if len(images) == 0:
        raise ValueError("no images to evaluate")
    count, dims = len(images), int(np.prod(images.shape[1:]))
    progress = keras.utils.Progbar(count, unit_name="image", verbose=1 if verbose else 0)
    result = np.empty(images.shape[:3] if per_pixel else count, np.float64)
    score = model.per_pixel_log_prob if per_pixel else model.log_prob
    for start in range(0, count, batch_size):
        stop = min(start + batch_size, count)
        batch_labels = None if labels is None else labels[start:stop]
        result[start:stop] = score(images[start:stop], batch_labels).numpy()
        per_image = result[start:stop].sum(axis=(1, 2)) if per_pixel else result[start:stop]
        # Progbar averages these over images: the running mean test bpd
        progress.update(stop, values=[("bpd", float(np.mean(bits_per_dim(per_image, dims))))])
        if after_batch is not None:
            after_batch()
    return result


def summary(ll, shape):
    """The evaluate.py JSON: mean bits/dim and the per-image values."""
    per_image_bpd = bits_per_dim(ll, int(np.prod(shape[1:])))
    return {"bpd": float(np.mean(per_image_bpd)), "per_image_bpd": per_image_bpd.tolist(),
            "per_image_log_likelihood": ll.tolist()}
