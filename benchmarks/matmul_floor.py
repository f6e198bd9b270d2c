"""What a pixel step of the fast sampler cannot go below on this machine.

  python benchmarks/matmul_floor.py                  # batch 8: the images drawn together
  python benchmarks/matmul_floor.py --batch_size=64

A pixel step multiplies the batch's activations [B, K] by ~200 weight matrices that do not fit in cache
(about 108 MB for the CIFAR config). This times, each the fastest of --iters calls after an untimed one:
  read_gb_s          memory read bandwidth (a sum over 1 GiB of float32)
  gemm_gb_s          TensorFlow's matmul [B,512] x [512,512] over --matrices distinct kernels, one graph:
                     weight bytes read per second (the pixel step's matmuls at their best)
  wide_gemm_gb_s     the same bytes as one [B,512] x [512, 512 * matrices] matmul
  peak_gflop_s       a large matmul [1024,1024] x [1024,1024]: the machine's float32 matmul peak
Last output line: one JSON object.
"""

import json
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
from absl import app, flags  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import machine  # noqa: E402

flags.DEFINE_integer("batch_size", 8, "rows of the activations (images drawn together)")
flags.DEFINE_integer("matrices", 200, "distinct 512x512 float32 kernels multiplied per timed call")
flags.DEFINE_integer("iters", 10, "timed calls", lower_bound=1)
FLAGS = flags.FLAGS


def seconds_per_call(fn, *args):
    """The fastest of --iters timed calls: what the machine can do, not its noise (a mean moved the peak
    of one machine between 80 and 128 GFLOP/s in three runs)."""
    fn = tf.function(fn, autograph=False)
    fn(*args).numpy()
    times = []
    for _ in range(FLAGS.iters):
        start = time.perf_counter()
        fn(*args).numpy()
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv):
    del argv
    n, size = FLAGS.matrices, 512
    weight_bytes = n * size * size * 4
    big = tf.random.normal([2 ** 28])  # 1 GiB
    read = big.shape[0] * 4 / seconds_per_call(tf.reduce_sum, big)
    del big
    kernels = [tf.random.normal([size, size]) for _ in range(n)]
    x = tf.random.normal([FLAGS.batch_size, size])
    gemm = weight_bytes / seconds_per_call(lambda x: tf.add_n([tf.matmul(x, k) for k in kernels]), x)
    wide = tf.concat(kernels, axis=1)
    wide_gemm = weight_bytes / seconds_per_call(lambda x: tf.reduce_sum(tf.matmul(x, wide)), x)
    square = tf.random.normal([1024, 1024])
    peak = 2 * 1024 ** 3 / seconds_per_call(lambda a: tf.matmul(a, a), square)
    result = {"read_gb_s": read / 1e9, "gemm_gb_s": gemm / 1e9, "wide_gemm_gb_s": wide_gemm / 1e9,
              "gemm_gflop_s": 2 * FLAGS.batch_size * (gemm / 4) / 1e9,  # 2B flops per weight read
              "peak_gflop_s": peak / 1e9, "batch_size": FLAGS.batch_size, "matrices": n,
              "machine": machine(), "tensorflow": tf.__version__}
    print(f"batch {FLAGS.batch_size}: memory {result['read_gb_s']:.1f} GB/s; matmuls read weights at "
          f"{result['gemm_gb_s']:.1f} GB/s ({result['gemm_gflop_s']:.0f} GFLOP/s), one wide matmul "
          f"{result['wide_gemm_gb_s']:.1f} GB/s; matmul peak {result['peak_gflop_s']:.0f} GFLOP/s")
    print(json.dumps(result))


if __name__ == "__main__":
    app.run(main)
