"""The original PixelSNAIL code (a checkout of neocxi/pixelsnail-public, not part of this project),
imported to run under tf.compat.v1 graph mode, for the benchmarks that run it beside ours."""

import contextlib
import functools
import importlib
import sys
import types

import numpy as np
import tensorflow as tf


def _install_arg_scope_stand_in():
    """tensorflow.contrib.framework.python.ops.{add_arg_scope, arg_scope}: default keyword arguments
    for decorated functions, set by nested `with arg_scope([f, g], key=value)` blocks."""
    stack = [{}]

    def key(func):
        return func.__module__, func.__name__

    def add_arg_scope(func):
        @functools.wraps(func)
        def with_scope(*args, **kwargs):
            return func(*args, **{**stack[-1].get(key(func), {}), **kwargs})
        return with_scope

    @contextlib.contextmanager
    def arg_scope(funcs, **kwargs):
        scope = dict(stack[-1])
        for func in funcs:
            scope[key(func)] = {**scope.get(key(func), {}), **kwargs}
        stack.append(scope)
        try:
            yield
        finally:
            stack.pop()

    ops = types.ModuleType("tensorflow.contrib.framework.python.ops")
    ops.add_arg_scope, ops.arg_scope = add_arg_scope, arg_scope
    for name in ["tensorflow.contrib", "tensorflow.contrib.framework",
                 "tensorflow.contrib.framework.python"]:
        sys.modules[name] = types.ModuleType(name)
    sys.modules["tensorflow.contrib.framework.python.ops"] = ops


def import_original(repo):
    """The original's pixel_cnn_pp.nn and .model, running on tf.compat.v1."""
    _install_arg_scope_stand_in()
    # The original disables TF1's guard that rewrites variable initializers to wait for the
    # variables they read (exponential in the depth of the data-dependent init graph) by patching
    # a method TF 1.4 had; the same guard lives in this function now.
    from tensorflow.python.ops import variables
    variables._try_guard_against_uninitialized_dependencies = lambda name, initial_value: initial_value
    sys.path.insert(0, repo)
    nn = importlib.import_module("pixel_cnn_pp.nn")
    model = importlib.import_module("pixel_cnn_pp.model")
    for module in (nn, model):
        module.tf = tf.compat.v1
    return nn, model


def to_float(images):
    """The original's input scaling of uint8 images (its train.py's), for its placeholders."""
    return (images.astype(np.float32) - 127.5) / 127.5
