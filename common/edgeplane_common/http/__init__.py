"""HTTP plumbing shared by every service."""

from edgeplane_common.http.app import API_PREFIX, create_service_app, serve, validation_message
from edgeplane_common.http.openapi import ERROR_RESPONSES, error_responses
from edgeplane_common.http.responses import EdgeJSONResponse, error_body, error_response, json_response

__all__ = [
    "API_PREFIX",
    "ERROR_RESPONSES",
    "EdgeJSONResponse",
    "create_service_app",
    "error_body",
    "error_response",
    "error_responses",
    "json_response",
    "serve",
    "validation_message",
]
