"""Which URLs the file access can open: local paths, and the schemes TensorFlow has registered
(``gs://`` in a standard install; ``s3://`` only with tensorflow-io)."""

from __future__ import annotations

from tfrec_tools.errors import ConfigError
from tfrec_tools.fs import is_remote
from tfrec_tools.quiet import import_tensorflow


def check_url(path: str | None, field: str) -> None:
    """Refuse ``path`` (the value of ``field``) when it is a URL no file system here opens.
    Local paths pass without importing TensorFlow.

    Raises:
        ConfigError: naming the scheme and the supported ones.
    """
    if path is None or not is_remote(str(path)):
        return
    scheme = str(path).split("://", 1)[0]
    supported = sorted(s for s in import_tensorflow().io.gfile.get_registered_schemes() if s)
    if scheme not in supported:
        urls = ", ".join(f"{s}://" for s in supported)
        raise ConfigError(
            f"unsupported URL scheme {scheme!r} in {field}={str(path)!r}: use a local path or "
            f"a URL of {urls} (the file systems TensorFlow has here)"
        )
