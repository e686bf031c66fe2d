"""Import TensorFlow, and Keras through it, without the C++ start-up lines (oneDNN, CUDA
stubs) TF writes to stderr before its own log level applies; TF_CPP_MIN_LOG_LEVEL cannot."""

from __future__ import annotations

import os
import sys


def import_tensorflow():
    """Import TensorFlow; when TF_CPP_MIN_LOG_LEVEL >= 2, with stderr muted during the import.
    Python exceptions still propagate; only the C++ chatter is dropped."""
    if "tensorflow" in sys.modules or os.environ.get("TF_CPP_MIN_LOG_LEVEL", "0") < "2":
        import tensorflow

        return tensorflow
    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow


def import_keras():
    """Import Keras 3 after TensorFlow (quietly, see ``import_tensorflow``): Keras loads its
    TensorFlow backend on import, so the start-up chatter would come through it otherwise.
    The one way this package imports keras where TensorFlow is not loaded yet."""
    import_tensorflow()
    import keras

    return keras


_NOISE = ("Graph execution error", "Detected at node", "File ", "[[", "Traceback", "Stack trace")


def tf_error_text(err: Exception) -> str:
    """The useful line of a TensorFlow error message, without graph-execution preamble, node
    tracebacks, the ``{{function_node ...}}`` prefix or the ``[Op:...]`` suffix:
    ``corrupted record at 0 (Is this even a TFRecord file?)``."""
    import re

    text = getattr(err, "message", None) or str(err) or type(err).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    useful = [line for line in lines if not line.startswith(_NOISE)] or lines or [text]
    line = re.sub(r"\{\{[^}]*\}\}\s*", "", useful[0])
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", line).strip(" :") or type(err).__name__
