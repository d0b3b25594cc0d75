"""Image values for the v2 wire-format tests.

``make_image(**fields)`` builds a :class:`tank.model.Image` from V2-MODEL names;
``locations`` may be given as ``(url, store)`` pairs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from tank import model

T0 = dt.datetime(2024, 5, 1, 10, 0, 0, tzinfo=dt.UTC)


def _image(**fields: Any) -> model.Image:
    fields.setdefault("created_at", T0)
    fields.setdefault("updated_at", T0)
    if "locations" in fields:
        fields["locations"] = tuple(
            loc if isinstance(loc, model.Location) else model.Location(url=loc[0], store=loc[1])
            for loc in fields["locations"]
        )
    return model.Image(**fields)


@pytest.fixture
def make_image() -> Callable[..., model.Image]:
    return _image
