"""SavedModel export: fresh process without the package, saved_model_cli, signatures reject bad input."""

import json
import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from commands import installed_command
from conftest import TINY, TINY_FLAGS, small_config, trained_tiny_model
from tolerances import NETWORK_RTOL
from draws import assert_same_draws
from pixelsnail_tf.distributions import distribution_of
from pixelsnail_tf.models import PixelSNAIL
from pixelsnail_tf.sampling import NaiveSampler, complete, draw_noise
from pixelsnail_tf.serving import MAX_SAMPLES, export_saved_model

ROOT = pathlib.Path(__file__).resolve().parents[1]
ENV = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
SAVED_MODEL_CLI = installed_command("saved_model_cli")

# Loads the SavedModel with plain TensorFlow while `import pixelsnail_tf` is made impossible.
FRESH_PROCESS = """
import json, sys
import numpy as np
class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "pixelsnail_tf":
            raise ImportError("pixelsnail_tf is hidden in this process")
sys.meta_path.insert(0, Hide())
import tensorflow as tf
loaded = tf.saved_model.load(sys.argv[1])
out = loaded.signatures["serving_default"](images=tf.constant(np.load(sys.argv[2])))
drawn = loaded.signatures["sample"](num_samples=tf.constant(2), seed=tf.constant(5, tf.int64))
completed = loaded.signatures["complete"](images=tf.constant(np.load(sys.argv[2])[:2]),
                                          given_pixels=tf.constant([24, 29]), num_samples=tf.constant(2),
                                          seed=tf.constant(6, tf.int64))["completions"]
assert "pixelsnail_tf" not in sys.modules
print(json.dumps({"ll": out["log_likelihood"].numpy().tolist(), "bpd": out["bits_per_dim"].numpy().tolist(),
                  "per_pixel_bits": out["per_pixel_bits"].numpy().tolist(),
                  "images": drawn["images"].numpy().tolist(), "dtype": drawn["images"].dtype.name,
                  "completions": completed.numpy().tolist()}))
"""


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    base = tmp_path_factory.mktemp("serving")
    run = subprocess.run([sys.executable, str(ROOT / "export.py"), f"--checkpoint={TINY / 'trained'}",
                          *TINY_FLAGS, "--image_size=8,8", f"--export_dir={base}", "--version=3"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 0, run.stderr
    return base


@pytest.mark.slow
@pytest.mark.paths
def test_fresh_process_without_the_package(exported, tmp_path, tiny_config, tiny_reference):
    images = tmp_path / "images.npy"
    np.save(images, tiny_reference["x_test_u8"])
    script = tmp_path / "serve.py"
    script.write_text(FRESH_PROCESS)
    run = subprocess.run([sys.executable, str(script), str(exported / "3"), str(images)],
                         capture_output=True, text=True, env=ENV, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    model = trained_tiny_model(tiny_config)
    # the SavedModel (reference kernels) and the package (fast kernels): two float32 paths
    np.testing.assert_allclose(result["ll"], model.log_prob(tiny_reference["x_test_u8"]).numpy(),
                               rtol=NETWORK_RTOL)
    np.testing.assert_allclose(result["bpd"], tiny_reference["bpd_test_ema_final"], rtol=NETWORK_RTOL)
    # a pixel's term alone carries more rounding than the image's sum (2.8e-5 relative seen where a bin's
    # probability is a difference of two sigmoids): each within 1e-5 of its image's total
    per_pixel_bits = -model.per_pixel_log_prob(tiny_reference["x_test_u8"]).numpy() / np.log(2)
    total = per_pixel_bits.sum(axis=(1, 2), keepdims=True)
    assert np.all(np.abs(np.array(result["per_pixel_bits"]) - per_pixel_bits) <= NETWORK_RTOL * total)
    drawn = np.array(result["images"])
    assert result["dtype"] == "uint8" and drawn.shape == (2, 8, 8, 3)
    # what sample.py --seed=5 draws: the naive sampler's images, but for rounding flips (draws.py)
    u_mix, u_logistic = draw_noise(distribution_of(tiny_config), 2, 8, 8, seed=5)
    naive = NaiveSampler(model)((u_mix, u_logistic))
    assert_same_draws(model, drawn.astype(np.uint8), naive, u_mix, u_logistic)
    # complete: what sampling.complete draws with the same seed (the naive sampler's, but for flips)
    completions = np.array(result["completions"], np.uint8)
    assert completions.shape == (2, 2, 8, 8, 3)
    images = tiny_reference["x_test_u8"][:2]
    for i, count in enumerate((24, 29)):
        np.testing.assert_array_equal(completions[i].reshape(2, 64, 3)[:, :count],
                                      np.broadcast_to(images[i].reshape(64, 3)[:count], (2, count, 3)))
    naive = complete(model, images, given_pixels=[24, 29], num_samples=2, seed=6, sampler="naive")
    u_mix, u_logistic = draw_noise(distribution_of(tiny_config), 4, 8, 8, seed=6)
    assert_same_draws(model, completions.reshape(4, 8, 8, 3), naive.reshape(4, 8, 8, 3), u_mix, u_logistic)


@pytest.mark.slow
def test_saved_model_cli(exported, tmp_path):
    shown = subprocess.run([SAVED_MODEL_CLI, "show", "--dir", str(exported / "3"), "--all"],
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert "signature_def['serving_default']" in shown.stdout
    assert "signature_def['sample']" in shown.stdout
    np.save(tmp_path / "images.npy", np.zeros((2, 8, 8, 3), np.uint8))
    ran = subprocess.run([SAVED_MODEL_CLI, "run", "--dir", str(exported / "3"), "--tag_set", "serve",
                          "--signature_def", "serving_default", "--inputs",
                          f"images={tmp_path / 'images.npy'}"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert ran.returncode == 0, ran.stderr
    assert "log_likelihood" in ran.stdout and "bits_per_dim" in ran.stdout


@pytest.mark.parametrize("images", [
    np.zeros((2, 8, 8, 3), np.float32),  # dtype
    np.zeros((8, 8, 3), np.uint8),  # rank
    np.zeros((2, 8, 8, 4), np.uint8),  # channels
    np.zeros((2, 16, 16, 3), np.uint8),  # size other than exported
    np.zeros((3,), np.uint8),
])
def test_bad_inputs_are_rejected(exported, images):
    serve = tf.saved_model.load(str(exported / "3")).signatures["serving_default"]
    message = "expected to be a uint8 tensor" if images.dtype != np.uint8 else (
        r"images must be uint8 \[batch, 8, 8, 3\]")
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        serve(images=tf.constant(images))


@pytest.mark.parametrize("given, num_samples, message", [
    ([65, 0], 1, "given_pixels must be <= 64"),
    ([-1, 0], 1, "given_pixels must be >= 0"),
    ([3], 1, r"images must be uint8 \[batch, 8, 8, 3\] and given_pixels \[batch\]"),
    ([3, 3], 0, "num_samples must be >= 1"),
    ([3, 3], 600, "batch x num_samples must be <= 1024 per call"),
    # 2 x (2^31 - 1) wraps around to -2 in int32: the product is checked in int64
    ([3, 3], 2 ** 31 - 1, "batch x num_samples must be <= 1024 per call")])
def test_bad_completion_inputs_are_rejected(exported, tiny_reference, given, num_samples, message):
    fill = tf.saved_model.load(str(exported / "3")).signatures["complete"]
    with pytest.raises(tf.errors.InvalidArgumentError, match=message):
        fill(images=tf.constant(tiny_reference["x_test_u8"][:2]), given_pixels=tf.constant(given, tf.int32),
             num_samples=tf.constant(num_samples), seed=tf.constant(1, tf.int64))


@pytest.mark.slow
def test_existing_version_is_not_overwritten(exported):
    before = sorted(p.name for p in (exported / "3").iterdir())
    run = subprocess.run([sys.executable, str(ROOT / "export.py"), f"--checkpoint={TINY / 'trained'}",
                          *TINY_FLAGS, f"--export_dir={exported}", "--version=3"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1] == (
        f"error: {exported / '3'} exists already; choose another --version")
    assert sorted(p.name for p in (exported / "3").iterdir()) == before


@pytest.mark.slow
@pytest.mark.paths
def test_class_conditional_sample_signature(tmp_path):
    model = PixelSNAIL(small_config(num_classes=4))
    model.initialize(np.random.default_rng(0).integers(0, 256, (4, 4, 4, 3), np.uint8), [0, 1, 2, 3])
    export_saved_model(model, str(tmp_path / "1"), 4, 4)
    loaded = tf.saved_model.load(str(tmp_path / "1"))
    out = loaded.signatures["sample"](num_samples=tf.constant(3), seed=tf.constant(1, tf.int64),
                                      class_label=tf.constant(2))
    assert out["images"].shape == (3, 4, 4, 3) and out["images"].dtype == tf.uint8
    images = out["images"].numpy()
    scored = loaded.signatures["serving_default"](images=tf.constant(images),
                                                  class_label=tf.constant([2, 2, 2]))
    # labels out of range and sample counts out of bounds are refused; 0 samples are an empty batch
    for label in (4, -1, 2 ** 31 - 1):
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"class_label must lie in \[0, 4\)"):
            loaded.signatures["serving_default"](images=tf.constant(images[:1]),
                                                 class_label=tf.constant([label]))
        with pytest.raises(tf.errors.InvalidArgumentError, match=r"class_label must lie in \[0, 4\)"):
            loaded.signatures["sample"](num_samples=tf.constant(1), seed=tf.constant(1, tf.int64),
                                        class_label=tf.constant(label))
    for count, message in ((-1, "must be >= 0"), (MAX_SAMPLES + 1, f"must be <= {MAX_SAMPLES}")):
        with pytest.raises(tf.errors.InvalidArgumentError, match=message):
            loaded.signatures["sample"](num_samples=tf.constant(count), seed=tf.constant(1, tf.int64),
                                        class_label=tf.constant(0))
    empty = loaded.signatures["sample"](num_samples=tf.constant(0), seed=tf.constant(1, tf.int64),
                                        class_label=tf.constant(0))["images"]
    assert empty.shape == (0, 4, 4, 3) and empty.dtype == tf.uint8
    # the same math in the reloaded graph, whose rewrites may sum in another order (1.1e-6 measured)
    np.testing.assert_allclose(scored["log_likelihood"].numpy(),
                               model.log_prob(images, [2, 2, 2]).numpy(), rtol=NETWORK_RTOL)


def xla_compiled_functions(saved_model_dir):
    """Names of the SavedModel's functions that must be compiled by XLA."""
    from tensorflow.core.protobuf import saved_model_pb2
    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString((saved_model_dir / "saved_model.pb").read_bytes())
    library = proto.meta_graphs[0].graph_def.library
    return [f.signature.name for f in library.function if f.attr["_XlaMustCompile"].b]


@pytest.mark.slow
def test_default_export_needs_no_xla(exported, tmp_path):
    # TF Serving disables XLA:CPU JIT by default: the default export uses the reference kernels.
    assert xla_compiled_functions(exported / "3") == []
    run = subprocess.run([sys.executable, str(ROOT / "export.py"), f"--checkpoint={TINY / 'trained'}",
                          *TINY_FLAGS, "--image_size=4,4", f"--export_dir={tmp_path}",
                          "--kernels=fast"], capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 0, run.stderr
    assert any("transform_output" in name for name in xla_compiled_functions(tmp_path / "1"))


# Loads the .keras file in a process that imports only keras and the package's model module.
KERAS_PROCESS = """
import json, sys
import numpy as np
import keras
import pixelsnail_tf.models  # registers the model classes with Keras
model = keras.saving.load_model(sys.argv[1])
print(json.dumps({"ll": model.log_prob(np.load(sys.argv[2])).numpy().tolist(), "kernels": model.kernels}))
"""


@pytest.mark.slow
def test_keras_file_loads_in_a_fresh_process(tmp_path, tiny_config, tiny_reference):
    """export.py --format=keras: the averaged weights as the model's own; keras.saving.load_model gives
    the package's log-likelihoods."""
    run = subprocess.run([sys.executable, str(ROOT / "export.py"), f"--checkpoint={TINY / 'trained'}",
                          *TINY_FLAGS, f"--export_dir={tmp_path}", "--format=keras"],
                         capture_output=True, text=True, env=ENV, timeout=300)
    assert run.returncode == 0, run.stderr
    path = tmp_path / "1" / "model.keras"
    assert run.stdout.strip().endswith(f"(EMA weights, any image size) to {path}")
    np.save(tmp_path / "x.npy", tiny_reference["x_test_u8"])
    loaded = subprocess.run([sys.executable, "-c", KERAS_PROCESS, str(path), str(tmp_path / "x.npy")],
                            capture_output=True, text=True, env=ENV, timeout=300)
    assert loaded.returncode == 0, loaded.stderr
    result = json.loads(loaded.stdout.strip().splitlines()[-1])
    assert result["kernels"] == "reference"  # export's default: no XLA needed where it is loaded
    expected = trained_tiny_model(tiny_config, kernels="reference").log_prob(tiny_reference["x_test_u8"])
    np.testing.assert_allclose(result["ll"], expected.numpy(), rtol=1e-6)
    again = subprocess.run([sys.executable, str(ROOT / "export.py"), f"--checkpoint={TINY / 'trained'}",
                            *TINY_FLAGS, f"--export_dir={tmp_path}", "--format=keras"],
                           capture_output=True, text=True, env=ENV, timeout=300)
    assert again.returncode == 1 and again.stderr.strip().endswith("exists already; choose another --version")
