"""Convert checkpoints TF1 <-> pixelsnail_tf (the same program as `pixelsnail-convert`; see --help)."""

from pixelsnail_tf.commands import convert

if __name__ == "__main__":
    convert.run()
