"""Base for every EdgeX data contract: camelCase on the wire, any key casing accepted on input."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, model_validator
from pydantic.alias_generators import to_camel

from edgeplane_common import API_VERSION


def _scalar_to_str(value: Any) -> Any:
    # YAML profiles write `defaultValue: 0.0` or `true`; EdgeX keeps such values as strings.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    return value


_KEY_MAPS: dict[type, dict[str, str]] = {}

Str = Annotated[str, BeforeValidator(_scalar_to_str)]
"""A string field that also accepts YAML/JSON scalars and keeps their text."""


class ContractModel(BaseModel):
    """camelCase JSON aliases, snake_case Python; unknown keys ignored as EdgeX does."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    @classmethod
    def _keys(cls) -> dict[str, str]:
        # Built once per class, so folding costs one dict lookup per key.
        km = _KEY_MAPS.get(cls)
        if km is None:
            km = {}
            for name, field in cls.model_fields.items():
                alias = field.alias or name
                km[alias.lower()] = alias
                km[name.replace("_", "").lower()] = alias
            _KEY_MAPS[cls] = km
        return km

    @model_validator(mode="before")
    @classmethod
    def _fold_keys(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        km = cls._keys()
        out: dict[str, Any] = {}
        for key, value in data.items():
            if isinstance(key, str):
                alias = km.get(key.lower())
                if alias is not None:
                    out[alias] = value
                    continue
            out[key] = value
        return out

    def to_json_dict(self, **kw: Any) -> dict[str, Any]:
        """The EdgeX JSON shape (camelCase, None fields dropped)."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True, **kw)


class BaseRequest(ContractModel):
    api_version: str = API_VERSION
    request_id: str | None = None


class BaseResponse(ContractModel):
    api_version: str = API_VERSION
    request_id: str | None = None
    message: str | None = None
    status_code: int = 200


class BaseWithIdResponse(BaseResponse):
    id: str | None = None


class BaseWithTotalCountResponse(BaseResponse):
    total_count: int = 0
