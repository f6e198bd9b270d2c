"""Train PixelSNAIL (the same program as the `pixelsnail-train` command; see --help)."""

from pixelsnail_tf.commands import train

if __name__ == "__main__":
    train.run()
