"""click parameter types shared by several commands (bad values exit with code 2)."""

from __future__ import annotations

from typing import Any

import click

from tfrec_tools.errors import ConfigError


class _ParsedType(click.ParamType):
    """A type whose ``parse`` raises ConfigError on a bad value; click reports its message."""

    def parse(self, value: Any) -> Any:
        raise NotImplementedError

    def convert(self, value, param, ctx) -> Any:
        try:
            return self.parse(value)
        except ConfigError as err:
            self.fail(str(err), param, ctx)


class SizeType(_ParsedType):
    """``256`` or ``256x384`` (height x width)."""

    name = "SIZE"

    def parse(self, value: Any) -> tuple[int, int]:
        from tfrec_tools.builder.config import parse_size

        return value if isinstance(value, tuple) else parse_size(str(value))


SIZE = SizeType()


class AugmentType(_ParsedType):
    """A preset name or a JSON file of AugmentConfig fields."""

    name = "augment"

    def parse(self, value: Any) -> Any:
        from tfrec_tools.read.augment import AugmentConfig, augment_config

        return value if isinstance(value, AugmentConfig) else augment_config(str(value))
