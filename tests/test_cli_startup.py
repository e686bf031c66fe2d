"""`tfrec --help` stays fast: it imports none of the heavy libraries (each check runs in a
fresh interpreter, since this test process has imported them all already)."""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("pandas", "numpy", "PIL", "tensorflow", "keras")


def heavy_imports(code: str) -> list[str]:
    """The heavy libraries a fresh interpreter has loaded after running ``code``."""
    loaded = "{m.split('.')[0] for m in sys.modules}"
    probe = f"{code}\nimport sys\nprint(*sorted({loaded} & {set(HEAVY)!r}))"
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout.split()


def tfrec(*args: str) -> str:
    """Code that runs ``tfrec ARGS`` and checks that it succeeded."""
    return (
        "from click.testing import CliRunner\n"
        "from tfrec_tools.cli import main\n"
        f"result = CliRunner().invoke(main, {list(args)!r})\n"
        "assert result.exit_code == 0, result.output"
    )


@pytest.mark.parametrize("args", [["--help"], ["build", "--help"], ["--version"]])
def test_help_imports_no_heavy_library(args):
    assert heavy_imports(tfrec(*args)) == []


def test_build_config_imports_no_heavy_library():
    # every command module reads its option choices from a config module like this one
    assert heavy_imports("import tfrec_tools.builder.config") == []


def test_the_probe_sees_heavy_imports():
    assert heavy_imports("import PIL.Image, numpy") == ["PIL", "numpy"]


def test_public_names_load_on_first_use():
    import tfrec_tools
    import tfrec_tools.builder as builder
    from tfrec_tools.builder import config, run

    assert builder.build is run.build and tfrec_tools.build is run.build
    assert builder.BuildConfig is config.BuildConfig is tfrec_tools.BuildConfig
    with pytest.raises(AttributeError, match="has no attribute 'nothing'"):
        builder.nothing  # noqa: B018
