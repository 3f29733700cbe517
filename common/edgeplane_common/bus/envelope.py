"""The EdgeX message envelope carried on every bus message."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from pydantic import Field

from edgeplane_common import API_VERSION
from edgeplane_common.errors import ContractInvalid
from edgeplane_common.models.base import ContractModel

CONTENT_TYPE_JSON = "application/json"


class MessageEnvelope(ContractModel):
    api_version: str = API_VERSION
    received_topic: str | None = Field(default=None, alias="receivedTopic")
    correlation_id: str = Field(default_factory=lambda: str(uuid.uuid4()), alias="correlationID")
    request_id: str | None = Field(default=None, alias="requestID")
    error_code: int = Field(default=0, alias="errorCode")
    content_type: str = Field(default=CONTENT_TYPE_JSON, alias="contentType")
    query_params: dict[str, str] | None = Field(default=None, alias="queryParams")
    payload: Any = None

    def encode(self) -> bytes:
        """JSON bytes; ContractInvalid when the payload cannot be JSON (a type JSON lacks, or nested past
        orjson's 255 levels): the caller's input, not a bus failure."""
        try:
            return orjson.dumps(self.model_dump(by_alias=True, exclude_none=True))
        except TypeError as err:
            raise ContractInvalid(f"message payload cannot be encoded as JSON: {err}") from None

    @classmethod
    def decode(cls, data: bytes) -> MessageEnvelope:
        return cls.model_validate(orjson.loads(data))

    def reply(self, payload: Any = None, *, error_code: int = 0) -> MessageEnvelope:
        """A response envelope carrying this request's correlation and request ids."""
        return MessageEnvelope(
            correlation_id=self.correlation_id,
            request_id=self.request_id,
            error_code=error_code,
            payload=payload,
        )
