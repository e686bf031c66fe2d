"""Import TensorFlow without the C++ start-up lines (oneDNN, CUDA stubs) it writes to stderr
before its own log level applies; TF_CPP_MIN_LOG_LEVEL alone cannot silence them."""

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


def tf_error_text(err: Exception) -> str:
    """The useful part of a TensorFlow error message, without its graph-function prefix and
    ``[Op:...]`` suffix: ``corrupted record at 0 (Is this even a TFRecord file?)``."""
    import re

    text = getattr(err, "message", None) or str(err) or type(err).__name__
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text.strip().splitlines()[0])
    return re.sub(r"\s*\[Op:[^\]]*\].*$", "", text).strip() or type(err).__name__
