"""REST (secure mode only): `POST /api/v3/auth/login`, the token keys at `GET /api/v3/key` (a JWKS, as
EdgeX's `/api/v3/key` publishes verification keys), and user management for admins under `/api/v3/user`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request
from pydantic import Field
from starlette.responses import Response

from core_metadata.application.users import UserManager
from edgeplane_common import API_VERSION
from edgeplane_common.auth import TokenIssuer
from edgeplane_common.auth.roles import Role, requires
from edgeplane_common.http import error_responses, json_response
from edgeplane_common.models import BaseResponse
from edgeplane_common.models.base import ContractModel

router = APIRouter(prefix="/api/v3", tags=["security"])


def _users(request: Request) -> UserManager:
    m: UserManager = request.app.state.users
    return m


U = Annotated[UserManager, Depends(_users)]


class LoginRequest(ContractModel):
    username: str = Field(min_length=1, max_length=256)
    password: str = Field(min_length=1, max_length=4096)


class TokenResponse(ContractModel):
    api_version: str = API_VERSION
    status_code: int = 200
    token: str = Field(description="A signed JWT: send it as `Authorization: Bearer <token>`")


class AddUserRequest(ContractModel):
    username: str
    role: str = Field(description="viewer, operator or admin")
    password: str = Field(max_length=4096)


class UserInfo(ContractModel):
    username: str
    role: str
    created: int = Field(description="Creation time, seconds since the epoch")


class MultiUsersResponse(ContractModel):
    api_version: str = API_VERSION
    status_code: int = 200
    total_count: int
    users: list[UserInfo]


class Jwk(ContractModel):
    kty: str
    crv: str
    x: str
    kid: str
    alg: str
    use: str


class JwksResponse(ContractModel):
    keys: list[Jwk]


@router.post("/auth/login", response_model=TokenResponse, responses=error_responses(400, 401, 429, 503))
async def login(body: LoginRequest, request: Request, users: U) -> Response:
    address = request.client.host if request.client else "unknown"
    token = await users.login(body.username, body.password, address)
    return json_response(TokenResponse(token=token))


@router.get("/key", response_model=JwksResponse)
async def keys(request: Request) -> Response:
    issuer: TokenIssuer = request.app.state.token_issuer
    return json_response(JwksResponse.model_validate(issuer.jwks()))


@router.post("/user", status_code=201, response_model=BaseResponse, responses=error_responses(400, 409, 503))
async def add_user(body: AddUserRequest, users: U) -> Response:
    await users.add(body.username, body.role, body.password)
    return json_response(BaseResponse(status_code=201), 201)


@router.get(
    "/user/all",
    response_model=MultiUsersResponse,
    responses=error_responses(503),
    openapi_extra=requires(Role.ADMIN),
)
async def all_users(users: U) -> Response:
    found = [UserInfo(username=u.name, role=u.role, created=u.created) for u in await users.all()]
    return json_response(MultiUsersResponse(total_count=len(found), users=found))


@router.delete("/user/name/{name}", response_model=BaseResponse, responses=error_responses(404, 503))
async def remove_user(name: str, users: U) -> Response:
    await users.remove(name)
    return json_response(BaseResponse())
