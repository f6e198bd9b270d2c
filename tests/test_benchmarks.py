"""The benchmark scripts run and end with their JSON line (their timings are not tested); the GPU check
stops at once where there is no GPU."""

import json
import os
import pathlib
import subprocess
import sys

import pytest



ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
@pytest.mark.parametrize("script", ["forward.py", "train_step.py"])
def test_benchmarks_run_and_end_with_json(script):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), "--nr_filters=8",
                          "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2", "--image_size=6",
                          "--batch_size=2", "--iters=1"], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["images_per_sec"] > 0 and result["batch_size"] == 2 and result["params"] > 0


@pytest.mark.slow
def test_gpu_check_says_in_one_line_that_there_is_no_gpu():
    """benchmarks/gpu_check.sh is for machines with GPUs; elsewhere it stops at once, with one line."""
    run = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu_check.sh")], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", CUDA_VISIBLE_DEVICES="",
                                  PYTHON=sys.executable), timeout=300)
    assert run.returncode == 1
    assert run.stderr.strip().splitlines()[-1].startswith("gpu_check: TensorFlow sees no GPU here")


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["fast", "naive"])
def test_sample_benchmark_runs_and_ends_with_json(sampler):
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "sample.py"), f"--sampler={sampler}",
                          "--nr_filters=8", "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2",
                          "--image_size=4", "--num_samples=2", "--naive_steps=2"], capture_output=True,
                         text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["seconds"] > 0 and result["sampler"] == sampler and result["num_samples"] == 2
    assert ("extrapolated_from_pixel_steps" in result) == (sampler == "naive")


@pytest.mark.slow
def test_matmul_floor_benchmark_runs_and_ends_with_json():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "matmul_floor.py"), "--matrices=2",
                          "--iters=1", "--batch_size=3"], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["batch_size"] == 3 and min(result["read_gb_s"], result["gemm_gb_s"],
                                             result["peak_gflop_s"]) > 0


@pytest.mark.slow
def test_profile_benchmark_finds_the_pixel_steps_matmuls():
    """The profiler's trace is read where TensorFlow writes it, and its ops are counted by type: a pixel
    step of this model has matmuls (its 1x1 layers), one per step at least (named _MklMatMul where oneDNN
    rewrites them, as on CPUs with AVX-512)."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "profile_step.py"), "--nr_filters=8",
                          "--nr_resnet=1", "--attn_rep=1", "--nr_logistic_mix=2", "--image_size=4",
                          "--num_samples=2", "--row=2"], capture_output=True, text=True,
                         env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=300)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["ms_per_pixel_step"] > 0 and result["row"] == 2
    per_type = result["per_type"]
    matmuls = sum(per_type[name]["per_step"] for name in ("MatMul", "_MklMatMul") if name in per_type)
    assert matmuls >= 1 and result["ops_per_step"] > 10


@pytest.mark.slow
def test_knobs_benchmark_alternates_the_variants_and_ends_with_json():
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "knobs.py"), "--knobs=inter_op_1",
                          "--rounds=1", "--nr_filters=8", "--nr_resnet=1", "--attn_rep=1",
                          "--nr_logistic_mix=2", "--image_size=4", "--num_samples=2"], capture_output=True,
                         text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"), timeout=600)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["program"] == "sample" and set(result["seconds"]) == {"default", "inter_op_1"}
    assert result["median_ratio_to_default"]["default"] == 1.0 and result["seconds"]["inter_op_1"][0] > 0


def test_knobs_benchmark_refuses_the_executor_for_training_in_one_line():
    """TensorFlow's single-threaded executor cannot run a training step: said before anything runs."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "knobs.py"), "--program=train_step",
                          "--knobs=single_threaded"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip().startswith("knobs.py: train_step.py takes --knobs=inter_op_1 only")
    assert len(run.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("script, flag, says", [
    ("knobs.py", "--program=nonsense", "knobs.py: flag --program=nonsense: value should be one of"),
    ("compare.py", f"--original_repo={ROOT}", "compare.py: flag --original_repo="),
])
def test_scripts_that_pass_flags_on_say_a_bad_flag_of_their_own_in_one_line(script, flag, says):
    """knobs.py and compare.py parse only their own flags (the rest goes to the scripts they run): a bad
    value of theirs, or a folder that is not the original's checkout, is one line, no traceback."""
    run = subprocess.run([sys.executable, str(ROOT / "benchmarks" / script), flag], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 1 and run.stdout == ""
    assert run.stderr.strip().startswith(says) and len(run.stderr.strip().splitlines()) == 1
