"""Draw images (the same program as the `pixelsnail-sample` command; see --help)."""

from pixelsnail_tf.commands import sample

if __name__ == "__main__":
    sample.run()
