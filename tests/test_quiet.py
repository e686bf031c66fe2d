"""quiet: TensorFlow and Keras import through one helper each, TensorFlow first."""

from __future__ import annotations

import subprocess
import sys


def test_import_keras_loads_tensorflow_first_and_returns_keras():
    code = (
        "import sys\n"
        "from tfrec_tools.quiet import import_keras\n"
        "keras = import_keras()\n"
        "print(keras.__name__, 'tensorflow' in sys.modules, keras.backend.backend())"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["keras", "True", "tensorflow"]
