"""Setting process environment variables for the length of a block, and putting them back as they were."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable, Iterator, Mapping


@contextlib.contextmanager
def restored_environ(names: Iterable[str]) -> Iterator[None]:
    """The block may set and unset the environment variables `names`; after it each is as it was (set or not)."""
    saved = {name: os.environ.get(name) for name in names}
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def environ_set(values: Mapping[str, str]) -> Iterator[None]:
    """`values` in the environment for the length of the block."""
    with restored_environ(values):
        os.environ.update(values)
        yield
