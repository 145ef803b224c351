"""Field types shared by request bodies: JSON numbers and booleans as JSON Schema means them.

Pydantic's lax mode would take `true` or `"5"` for an integer; the OpenAPI document says
"integer", so the API refuses them. `5.0` is still an integer, as JSON Schema counts it.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field


def _a_json_number(value: Any) -> Any:
    if isinstance(value, bool | str | bytes):
        raise ValueError("must be a JSON number")
    return value


JSON_NUMBER = BeforeValidator(_a_json_number)
"""Put it after the constraints in `Annotated[int, Field(ge=1), JSON_NUMBER]`, or they leave the schema."""

JsonInt = Annotated[int, JSON_NUMBER]
JsonFloat = Annotated[float, BeforeValidator(_a_json_number)]
JsonBool = Annotated[bool, Field(strict=True)]

NO_NUL = r"^[^\x00]*$"
"""Pattern of text stored in PostgreSQL, which cannot hold NUL characters."""

NOT_BLANK_NO_NUL = r"^[^\x00]*[^\x00\s][^\x00]*$"
"""Some visible character and no NUL anywhere (a bare `\\S` would match the NUL itself)."""
