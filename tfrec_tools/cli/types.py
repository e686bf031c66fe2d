"""click parameter types shared by several commands (bad values exit with code 2)."""

from __future__ import annotations

import click

from tfrec_tools.errors import ConfigError


class SizeType(click.ParamType):
    """``256`` or ``256x384`` (height x width)."""

    name = "SIZE"

    def convert(self, value, param, ctx) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        from tfrec_tools.builder.config import parse_size

        try:
            return parse_size(str(value))
        except ConfigError as err:
            self.fail(str(err), param, ctx)


SIZE = SizeType()
