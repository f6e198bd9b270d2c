"""Evaluate test bits/dim (the same program as the `pixelsnail-evaluate` command; see --help)."""

from pixelsnail_tf.commands import evaluate

if __name__ == "__main__":
    evaluate.run()
