"""Export a SavedModel for TF Serving (the same program as the `pixelsnail-export` command; see --help)."""

from pixelsnail_tf.commands import export

if __name__ == "__main__":
    export.run()
