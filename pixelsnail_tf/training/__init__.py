"""Training with the original's recipe: its Adam (optimizer.py), the Polyak average of the weights
(polyak.py) and the step that applies both (trainer.py: Trainer, on a tf.distribute strategy).
A run of steps in a folder, saved and resumed, is pixelsnail_tf.runs."""

from pixelsnail_tf.training.optimizer import OriginalAdam, original_adam
from pixelsnail_tf.training.polyak import PolyakAverage
from pixelsnail_tf.training.trainer import TrainConfig, Trainer, build_trainer, make_strategy, worker_count

__all__ = ["OriginalAdam", "PolyakAverage", "TrainConfig", "Trainer", "build_trainer", "make_strategy",
           "original_adam", "worker_count"]
