"""A training run in its folder: the loop that starts or resumes it, trains, evaluates, samples and
saves (loop.py: fit), and the folder's files and lock (run_folder.py)."""

from pixelsnail_tf.runs.loop import (
    CheckpointNotSaved,
    NonFiniteLoss,
    RunConfig,
    TrainingStopped,
    check_data,
    fit,
)

__all__ = ["CheckpointNotSaved", "NonFiniteLoss", "RunConfig", "TrainingStopped", "check_data", "fit"]
