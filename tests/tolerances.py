"""Tolerances for two float32 computation paths of the same numbers, derived from the arithmetic.

float32 rounds every operation to a relative 2**-24 (6e-8). Two paths that sum the same terms in
another order (other kernels, another instruction set, Winograd instead of direct convolution, XLA
instead of TensorFlow's ops, a graph rewrite, the original's TF1 graph) differ per sum by up to
n * 6e-8 of the sum of the terms' magnitudes, and typically by sqrt(n) * 6e-8 (independent rounding
errors). The network's longest sums have n ~ 2,000 terms (a 2x2 convolution over 2 x 257 channels, an
attention row): ~3e-6 relative per layer, and the errors of a few layers add up (weight normalization
keeps every layer's output at unit scale, so they do not grow with depth).

A log-likelihood is a sum of per-pixel terms of one sign: no cancellation, so its relative error is at
most its terms' (plus n * 6e-8 for the final sum over n <= 1,024 pixels, 6e-5 in the worst case, ~2e-6
typically).
"""

NETWORK_RTOL = 1e-5  # outputs or per-image log-likelihoods of a network by two float32 paths
UNIT_ROUNDOFF = 2.0 ** -24
