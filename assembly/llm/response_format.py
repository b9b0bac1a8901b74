"""The `response_format` a request carries: a pydantic output type as an OpenAI strict JSON schema.

Members ask for structured output so that constrained decoding keeps answers valid;
both client paths (OpenAI SDK and litellm) send the same schema, built here once
per output type, because generating a JSON schema costs milliseconds and members
ask for the same few output types hundreds of times per round. A format is handed
out as a `WireFormat`: the same dict every time, with its JSON text kept beside it,
so the lean transport splices the text into the request body instead of walking and
serializing the schema on every call. Nothing may edit one; a path that hands the
schema to an SDK which might (litellm) passes a copy (`editable`).
"""

from __future__ import annotations

import copy
import functools
import json
from typing import Any, Literal

from pydantic import BaseModel


class WireFormat(dict[str, Any]):
    """A ``response_format`` built once per output type, with its JSON text: ``encoded``
    for request bodies, ``sorted_encoded`` (keys sorted) for the response cache's key."""

    def __init__(self, value: dict[str, Any]) -> None:
        super().__init__(value)
        self.encoded = json.dumps(value)
        self.sorted_encoded = json.dumps(value, sort_keys=True)


def editable(fmt: dict[str, Any]) -> dict[str, Any]:
    """A copy of a format that an SDK may edit in place."""
    return copy.deepcopy(dict(fmt))


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The model's JSON schema in the form OpenAI strict mode accepts.

    Strict mode wants every object closed (``additionalProperties: false``) with all
    properties listed as required; optional fields stay expressible as nullable.
    """
    schema = copy.deepcopy(model.model_json_schema())

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "object" and "properties" in node:
                node["additionalProperties"] = False
                node["required"] = list(node["properties"])
            if "default" in node and node["default"] is None:
                del node["default"]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for item in node:
                visit(item)

    visit(schema)
    return schema


def structured_format(model: type[BaseModel], mode: Literal["json_schema", "json_object"]) -> WireFormat:
    """The ``response_format`` that asks for ``model`` in a profile's ``structured_output`` mode.

    ``json_schema`` is OpenAI's strict form, which vLLM and llama.cpp enforce by grammar;
    ``json_object`` carries the same schema in the form llama-cpp-python (and llama.cpp)
    also enforce, for servers that reject the former."""
    return _json_object_format(model) if mode == "json_object" else _json_schema_format(model)


def response_format_for(json_output: bool | type[BaseModel] | None) -> WireFormat | None:
    """OpenAI ``response_format`` for autogen's ``json_output`` argument."""
    if json_output is None or json_output is False:
        return None
    if json_output is True:
        return _JSON_OBJECT
    if isinstance(json_output, type) and issubclass(json_output, BaseModel):
        return _json_schema_format(json_output)
    raise TypeError(f"json_output must be a bool or a pydantic model class, got {json_output!r}")


_JSON_OBJECT = WireFormat({"type": "json_object"})


@functools.lru_cache(maxsize=1024)
def _json_schema_format(model: type[BaseModel]) -> WireFormat:
    return WireFormat(
        {
            "type": "json_schema",
            "json_schema": {"name": model.__name__, "schema": strict_json_schema(model), "strict": True},
        }
    )


@functools.lru_cache(maxsize=1024)
def _json_object_format(model: type[BaseModel]) -> WireFormat:
    return WireFormat({"type": "json_object", "schema": strict_json_schema(model)})
