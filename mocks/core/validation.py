"""Validation of request bodies inside the cores (virtual mode calls ``handle`` with plain dicts,
bypassing FastAPI), rendered as the documented error body: field path plus reason."""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from mocks.core.base import Response, error


def field_path(loc: tuple[Any, ...]) -> str:
    return ".".join(str(p) for p in loc) or "(body)"


def validation_error(e: ValidationError) -> Response:
    """The first problem as the documented error body: field path plus reason."""
    first = e.errors()[0]
    typ, msg = first["type"], first["msg"]
    if typ == "missing":
        msg = "required but missing"
    elif typ == "extra_forbidden":
        msg = "unknown field"
    elif msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    path = field_path(tuple(first["loc"]))
    return error(422, "validation_error", f"{path}: {msg}", path)


M = TypeVar("M", bound=BaseModel)


def parse(model: type[M], body: Any) -> M | Response:
    try:
        return model.model_validate(body if body is not None else {})
    except ValidationError as e:
        return validation_error(e)
