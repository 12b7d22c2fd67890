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


class Validated(dict[str, Any]):
    """A request body the HTTP layer has already validated into ``model``: still the plain dict
    (idempotency fingerprints, drift and the ledger read it as before), plus the model, so that
    ``parse`` with the same model class does not validate it a second time."""

    __slots__ = ("model",)

    def __init__(self, data: dict[str, Any], model: BaseModel) -> None:
        super().__init__(data)
        self.model = model


def validated(model: BaseModel) -> Validated:
    """The body an HTTP adapter hands a core for a model it validated: the JSON-mode dict the core
    would have been given (aliases, no nulls) plus the model itself. Only sound for models whose
    validation is idempotent (validating the dict again gives an equal model); the tests check
    every create/update model the adapters pass this way."""
    return Validated(model.model_dump(mode="json", by_alias=True, exclude_none=True), model)


def parse(model: type[M], body: Any) -> M | Response:
    if type(body) is Validated and type(body.model) is model:
        return body.model  # type: ignore[return-value]
    try:
        return model.model_validate(body if body is not None else {})
    except ValidationError as e:
        return validation_error(e)
