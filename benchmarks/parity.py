"""Trains the ORIGINAL PixelSNAIL and ours side by side, from the same weights on the same data order.

The original runs from a checkout of neocxi/pixelsnail-public (under tf.compat.v1, as
benchmarks/original.py), its train.py's step rebuilt on placeholders: loss of the model with dropout,
its Adam (lr decayed before every step), its Polyak average. Both sides start from one TF1 checkpoint,
the original's data-dependent init (written once, in the original's layout; ours reads it with
checkpoints.load_tf1_training_state), and see the same batches: run k's order is a permutation per
epoch drawn from seed k. Dropout masks cannot be the same draws on both sides; each side draws its own
from the run's seed, which is what the spread between seeds measures.

Settings (--setting): "demo", the demo preset's model (train.py --preset=demo) with concat_elu and
dropout 0.5, on the demo's 32x32 patches; "tiny", a smaller model on those patches averaged down to
8x8 (the first 512 training and 64 test patches), whose original curves tests/fixtures/parity holds.

Every run (one process each, original and ours alternating) writes runs/<side>_<seed>.json: the
train bits/dim of every step (its batch, dropout on) and, at every --test_every steps and the end,
the test bits/dim with the Polyak-averaged weights and with the raw ones, and its seconds per step.
A run whose file exists is not repeated, so an interrupted comparison goes on where it stopped. Then
parity.json (both families, the verdict) and parity.png (train bits/dim, mean over --window steps,
mean and range over seeds; test bits/dim with averaged weights at the same steps).

Verdict: a side's spread is the range (max - min) of its runs' final test bits/dim (averaged
weights); PASS when the two sides' means differ by less than the smaller of the two spreads.

  pip install -e ".[benchmarks]"   # matplotlib, for the chart
  python benchmarks/parity.py --original_repo=PATH --out_dir=DIR [--setting=demo] [--seeds=3]
"""

import json
import os
import shutil
import subprocess
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

from pixelsnail_tf import distributions  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from original_code import to_float  # noqa: E402
from script_flags import define_original_repo_flag  # noqa: E402

SETTINGS = {
    "demo": {"model": {"model": "h12_noup_smallkey", "nr_resnet": 1, "nr_filters": 32, "nr_logistic_mix": 5,
                       "attn_rep": 2, "resnet_nonlinearity": "concat_elu", "dropout_p": 0.5},
             "image_size": 32, "steps": 300, "test_every": 75, "window": 25, "polyak_decay": 0.99},
    "tiny": {"model": {"model": "h12_noup_smallkey", "nr_resnet": 1, "nr_filters": 16, "nr_logistic_mix": 3,
                       "attn_rep": 2, "resnet_nonlinearity": "concat_elu", "dropout_p": 0.5},
             "image_size": 8, "train_images": 512, "test_images": 64, "steps": 150, "test_every": 50,
             "window": 10, "polyak_decay": 0.98},
}
SIDES = ("original", "ours")
INIT_SEED = 1234  # the init batch and the original's draw of the initial weights

define_original_repo_flag()
flags.DEFINE_string("out_dir", None, "where the runs, parity.json and parity.png go (runs already there "
                    "are kept and not repeated)", required=True)
flags.DEFINE_enum("setting", "demo", sorted(SETTINGS), "model and data (see the module docstring)")
flags.DEFINE_integer("seeds", 3, "runs per side, seeds 0..N-1", lower_bound=2)
flags.DEFINE_integer("steps", None, "training steps per run (default: the setting's)", lower_bound=1)
flags.DEFINE_integer("test_every", None, "steps between test evaluations (default: the setting's)",
                     lower_bound=1)
flags.DEFINE_integer("batch_size", 8, "images per step (train.py's default)", lower_bound=1)
flags.DEFINE_integer("init_batch_size", 8, "images of the data-dependent init (train.py's default)",
                     lower_bound=1)
flags.DEFINE_float("learning_rate", 1e-3, "train.py's default")
flags.DEFINE_float("lr_decay", 0.999998, "train.py's default")
flags.DEFINE_float("polyak_decay", None, "of the Polyak average (default: the setting's, 0.99 or 0.98: "
                   "train.py's 0.9995 averages over ~2000 steps, longer than these runs)")
flags.DEFINE_string("fixture_dir", None, "also write there what tests/test_parity.py needs: the settings, "
                    "the initial checkpoint, the data and seed 0's order, the original's curves "
                    "(tests/fixtures/parity is --setting=tiny's)")
flags.DEFINE_enum("side", None, SIDES, "internal: run one side's training for --seed")
flags.DEFINE_integer("seed", None, "internal: the run's seed")
flags.DEFINE_bool("init_only", False, "internal: write the original's initial checkpoint")
FLAGS = flags.FLAGS


def settings():
    """The setting's values with the flags' overrides, as recorded in settings.json."""
    s = dict(SETTINGS[FLAGS.setting])
    s.update(setting=FLAGS.setting, steps=FLAGS.steps or s["steps"],
             test_every=FLAGS.test_every or s["test_every"], batch_size=FLAGS.batch_size,
             init_batch_size=FLAGS.init_batch_size, learning_rate=FLAGS.learning_rate,
             lr_decay=FLAGS.lr_decay, polyak_decay=FLAGS.polyak_decay or s["polyak_decay"],
             init_seed=INIT_SEED)
    return s


def load_data(s):
    """(train, test) uint8 images of the setting."""
    from pixelsnail_tf import data
    train, _ = data.load_split("demo", "train")
    test, _ = data.load_split("demo", "test")

    def shrink(images, count):
        factor = 32 // s["image_size"]
        n, size = count, s["image_size"]
        blocks = images[:n].astype(np.float64).reshape(n, size, factor, size, factor, 3)
        return np.round(blocks.mean(axis=(2, 4))).astype(np.uint8)
    if s["image_size"] != 32:
        train, test = shrink(train, s["train_images"]), shrink(test, s["test_images"])
    # a whole number of batches: the original's test graph has a fixed batch size
    return train, test[:len(test) // s["batch_size"] * s["batch_size"]]


def batch_order(seed, steps, batch_size, count):
    """Indices [steps, batch_size] of the training images: a new permutation every epoch, from `seed`."""
    rng = np.random.default_rng(seed)
    epochs = -(-steps * batch_size // count)
    return np.concatenate([rng.permutation(count) for _ in range(epochs)])[:steps * batch_size].reshape(
        steps, batch_size)


def init_images(train, s):
    return train[np.random.default_rng(INIT_SEED).permutation(len(train))[:s["init_batch_size"]]]


def evaluation_steps(s):
    return sorted({*range(s["test_every"], s["steps"] + 1, s["test_every"]), s["steps"]})


def bits_per_dim(nats, images):
    """Of a loss summed over `images` (nats)."""
    return float(distributions.bits_per_dim(-float(nats), images.size))


class Original:
    """The original's training graph on placeholders (as its train.py with one GPU)."""

    def __init__(self, s, graph_seed):
        import tensorflow as tf
        from original_code import import_original
        tf.compat.v1.disable_v2_behavior()
        self.nn, models = import_original(FLAGS.original_repo)
        v1 = self.v1 = tf.compat.v1
        v1.set_random_seed(graph_seed)
        m = s["model"]
        opt = {k: m[k] for k in ("nr_resnet", "nr_filters", "nr_logistic_mix", "resnet_nonlinearity",
                                 "attn_rep")}
        model = v1.make_template("model", getattr(models, m["model"] + "_spec"))
        size = s["image_size"]
        self.x_init = v1.placeholder(tf.float32, (s["init_batch_size"], size, size, 3))
        model(self.x_init, None, init=True, dropout_p=m["dropout_p"], **opt)
        params = v1.trainable_variables()
        ema = v1.train.ExponentialMovingAverage(decay=s["polyak_decay"])
        maintain = ema.apply(params)
        self.x = v1.placeholder(tf.float32, (s["batch_size"], size, size, 3))
        self.loss = self.nn.discretized_mix_logistic_loss(
            self.x, model(self.x, None, ema=None, dropout_p=m["dropout_p"], **opt))
        grads = v1.gradients(self.loss, params)
        self.lr = v1.placeholder(tf.float32, [])
        self.step = v1.group(self.nn.adam_updates(params, grads, lr=self.lr, mom1=0.95, mom2=0.9995,
                                                  eps=1e-6), maintain)
        self.x_test = v1.placeholder(tf.float32, (s["batch_size"], size, size, 3))
        self.test_loss = {name: self.nn.discretized_mix_logistic_loss(
            self.x_test, model(self.x_test, None, ema=average, dropout_p=0.0, **opt))
            for name, average in (("ema", ema), ("raw", None))}
        self.saver = v1.train.Saver()
        self.session = v1.Session()

    def initialize(self, images):
        self.session.run(self.v1.global_variables_initializer(), {self.x_init: to_float(images)})

    def train_step(self, images, lr):
        return self.session.run([self.loss, self.step], {self.x: to_float(images), self.lr: lr})[0]

    def test_nats(self, test, which):
        """Summed over the test images (a whole number of batches), batch by batch."""
        b = int(self.x_test.shape[0])
        return sum(float(self.session.run(self.test_loss[which], {self.x_test: to_float(test[i:i + b])}))
                   for i in range(0, len(test), b))


def run_original(s, seed, train, test, out):
    original = Original(s, graph_seed=INIT_SEED if FLAGS.init_only else 1000 + seed)
    original.initialize(init_images(train, s))
    prefix = os.path.join(FLAGS.out_dir, "init", "model.ckpt")
    if FLAGS.init_only:
        original.saver.save(original.session, prefix, write_meta_graph=False)
        return
    original.saver.restore(original.session, prefix)
    lr = s["learning_rate"]

    def step(images):
        nonlocal lr
        lr *= s["lr_decay"]
        return original.train_step(images, lr)

    train_loop(s, seed, train, test, out, step,
               lambda which: original.test_nats(test, which))


def run_ours(s, seed, train, test, out):
    from pixelsnail_tf import checkpoints, evaluation
    from pixelsnail_tf.config import ModelConfig
    from pixelsnail_tf.training.trainer import TrainConfig, build_trainer
    config = ModelConfig(**s["model"])
    train_config = TrainConfig(learning_rate=s["learning_rate"], lr_decay=s["lr_decay"],
                               polyak_decay=s["polyak_decay"], batch_size=s["batch_size"],
                               init_batch_size=s["init_batch_size"])
    trainer = build_trainer(config, train_config, seed=seed)
    checkpoints.load_tf1_training_state(trainer.model, trainer.ema, trainer.optimizer,
                                        os.path.join(FLAGS.out_dir, "init", "model.ckpt"))

    def test_nats(which):
        def total():
            return -float(np.sum(evaluation.log_likelihood(trainer.model, test, batch_size=s["batch_size"],
                                                           verbose=False)))
        if which == "raw":
            return total()
        with trainer.ema.swapped_in():
            return total()

    train_loop(s, seed, train, test, out, lambda images: trainer.train_step(images).numpy(), test_nats)


def train_loop(s, seed, train, test, out, step, test_nats):
    order = batch_order(seed, s["steps"], s["batch_size"], len(train))
    record = {"side": FLAGS.side, "seed": seed, "train_bpd": [], "test_steps": [], "test_bpd_ema": [],
              "test_bpd_raw": []}
    checks, seconds = set(evaluation_steps(s)), 0.0
    for k, indices in enumerate(order, start=1):
        images = train[indices]
        start = time.perf_counter()
        nats = step(images)
        if k > 1:  # the first step builds or compiles
            seconds += time.perf_counter() - start
        record["train_bpd"].append(bits_per_dim(nats, images))
        if k in checks:
            record["test_steps"].append(k)
            for which in ("ema", "raw"):
                record[f"test_bpd_{which}"].append(bits_per_dim(test_nats(which), test))
            train_bpd = np.mean(record["train_bpd"][-s["window"]:])
            print(f"{FLAGS.side} seed {seed} step {k}: train {train_bpd:.4f} test (averaged) "
                  f"{record['test_bpd_ema'][-1]:.4f}", flush=True)
    record["seconds_per_step"] = seconds / max(1, s["steps"] - 1)
    with open(out + ".partial", "w") as f:
        json.dump(record, f)
    os.replace(out + ".partial", out)


def run_self(*extra):
    """This script in a new process (the original needs graph mode, ours eager: one per process)."""
    keep = ["original_repo", "out_dir", "setting", "seeds", "steps", "test_every", "batch_size",
            "init_batch_size", "learning_rate", "lr_decay", "polyak_decay"]
    args = [f"--{name}={FLAGS[name].value}" for name in keep if FLAGS[name].value is not None]
    if subprocess.run([sys.executable, os.path.abspath(__file__), *args, *extra]).returncode:
        sys.exit(f"error: the run {' '.join(extra)} failed (its output is above)")


def family(records, s):
    """One side's runs: the train curve (mean over the window ending at each test step), the test curve."""
    windowed = [[float(np.mean(r["train_bpd"][k - s["window"]:k])) for k in r["test_steps"]] for r in records]
    final = [r["test_bpd_ema"][-1] for r in records]
    return {"test_steps": records[0]["test_steps"], "train_bpd_windowed": windowed,
            "test_bpd_ema": [r["test_bpd_ema"] for r in records],
            "test_bpd_raw": [r["test_bpd_raw"] for r in records],
            "final_test_bpd": final, "mean": float(np.mean(final)), "spread": float(np.ptp(final)),
            "seconds_per_step": [r["seconds_per_step"] for r in records]}


def verdict(sides):
    gap = abs(sides["ours"]["mean"] - sides["original"]["mean"])
    bound = min(sides["ours"]["spread"], sides["original"]["spread"])
    return {"gap": gap, "bound": bound, "pass": bool(gap < bound)}


def chart(records, s, path):
    try:
        import matplotlib
    except ModuleNotFoundError:
        print("no chart: matplotlib is not installed (pip install -e '.[benchmarks]')")
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for side, colour in zip(SIDES, ("tab:blue", "tab:orange")):
        runs = records[side]
        train = np.array([np.convolve(r["train_bpd"], np.ones(s["window"]) / s["window"], "valid")
                          for r in runs])
        steps = np.arange(s["window"], s["steps"] + 1)
        test = np.array([r["test_bpd_ema"] for r in runs])
        for ax, x, y in ((axes[0], steps, train), (axes[1], runs[0]["test_steps"], test)):
            ax.plot(x, y.mean(axis=0), color=colour, label=f"{side} (mean of {len(runs)} seeds)")
            ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=colour, alpha=0.25)
    axes[0].set_title(f"train bits/dim (dropout on), mean of {s['window']} steps")
    axes[1].set_title(f"test bits/dim, Polyak-averaged weights (decay {s['polyak_decay']})")
    for ax in axes:
        ax.set_xlabel("step")
        ax.legend()
        ax.grid(alpha=0.3)
    figure.suptitle(f"setting {s['setting']}: shaded = range over seeds")
    figure.tight_layout()
    figure.savefig(path, dpi=100)


def write_fixture(s, sides, path):
    """The original's family (its curves: a few dozen numbers), where it started and what it saw."""
    if os.path.exists(path):
        sys.exit(f"error: --fixture_dir={path} exists already")
    # the prefix is enough: TensorFlow's "checkpoint" file would hold out_dir's absolute path
    shutil.copytree(os.path.join(FLAGS.out_dir, "init"), os.path.join(path, "init"),
                    ignore=shutil.ignore_patterns("checkpoint"))
    train, test = load_data(s)
    np.savez_compressed(os.path.join(path, "data.npz"), train=train, test=test,
                        order_seed0=batch_order(0, s["steps"], s["batch_size"], len(train)))
    original = {k: sides["original"][k] for k in ("test_steps", "train_bpd_windowed", "test_bpd_ema",
                                                   "final_test_bpd", "mean", "spread")}
    with open(os.path.join(path, "original.json"), "w") as f:
        json.dump({"settings": s, "original": original,
                   "ours_final_test_bpd": sides["ours"]["final_test_bpd"]}, f, indent=1)


def run_path(side, seed):
    return os.path.join(FLAGS.out_dir, "runs", f"{side}_{seed}.json")


def main(argv):
    del argv
    s = settings()
    if FLAGS.side or FLAGS.init_only:
        train, test = load_data(s)
        if FLAGS.init_only or FLAGS.side == "original":
            run_original(s, FLAGS.seed, train, test, run_path(FLAGS.side, FLAGS.seed))
        else:
            run_ours(s, FLAGS.seed, train, test, run_path(FLAGS.side, FLAGS.seed))
        return
    os.makedirs(os.path.join(FLAGS.out_dir, "runs"), exist_ok=True)
    recorded = os.path.join(FLAGS.out_dir, "settings.json")
    if os.path.exists(recorded):
        with open(recorded) as f:
            if json.load(f) != json.loads(json.dumps(s)):
                sys.exit(f"error: {FLAGS.out_dir} holds runs of other settings ({recorded}); choose another "
                         f"--out_dir")
    with open(recorded, "w") as f:
        json.dump(s, f, indent=1)
    if not os.path.exists(os.path.join(FLAGS.out_dir, "init", "model.ckpt.index")):
        run_self("--init_only")
    for seed in range(FLAGS.seeds):
        for side in SIDES:
            if not os.path.exists(run_path(side, seed)):
                run_self(f"--side={side}", f"--seed={seed}")
    records = {}
    for side in SIDES:
        records[side] = []
        for seed in range(FLAGS.seeds):
            with open(run_path(side, seed)) as f:
                records[side].append(json.load(f))
    from common import machine
    sides = {side: family(records[side], s) for side in SIDES}
    result = {"settings": s, "machine": machine(), "date": time.strftime("%Y-%m-%d"), "sides": sides,
              "verdict": verdict(sides)}
    with open(os.path.join(FLAGS.out_dir, "parity.json"), "w") as f:
        json.dump(result, f, indent=1)
    chart(records, s, os.path.join(FLAGS.out_dir, "parity.png"))
    if FLAGS.fixture_dir:
        write_fixture(s, sides, FLAGS.fixture_dir)
    for side in SIDES:
        f = sides[side]
        finals = ", ".join(f"{v:.4f}" for v in f["final_test_bpd"])
        print(f"{side:>8}: final test bpd (averaged weights) {finals}; mean {f['mean']:.4f}, "
              f"range {f['spread']:.4f}; {np.mean(f['seconds_per_step']):.3f} s/step")
    v = result["verdict"]
    print(f"{'PASS' if v['pass'] else 'FAIL'}: the means differ by {v['gap']:.4f} bits/dim, "
          f"{'less' if v['pass'] else 'not less'} than the smaller range over seeds, {v['bound']:.4f}")


if __name__ == "__main__":
    app.run(main)
