"""JSON numbers and booleans as the API's JSON Schema states them. Pydantic's lax mode
reads ``true`` and ``"3"`` as integers and ``0`` as a boolean, which the document says
are refused; its strict mode refuses ``3.0``, which JSON Schema counts as an integer."""

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def _json_integer(value: Any) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("must be a JSON integer")
    return value  # 3.0 is read as 3; 3.5 is refused by the int that follows


JsonInt = Annotated[int, BeforeValidator(_json_integer)]
JsonBool = Annotated[bool, Field(strict=True)]
