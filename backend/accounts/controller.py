"""HTTP for logins, agencies, users and enterprises."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency, Provide
from litestar.params import FromPath, FromQuery, JSONBody, QueryParameter
from sqlalchemy.ext.asyncio import AsyncSession

from backend.accounts.login import Logins
from backend.accounts.schemas import AgencyIn, AgencyOut, EnterpriseIn, EnterpriseOut, LoginIn, LoginOut, UserIn, UserOut
from backend.accounts.service import AccountService, agency_out, enterprise_out, user_out
from backend.audit import Actor
from backend.auth import issue_token, requires_role
from backend.limits import LOGIN_MAX_BODY_BYTES
from backend.pagination import DEFAULT_LIMIT, Cursor, Page
from backend.vocabulary import Role, Topic

Limit = Annotated[int, QueryParameter(ge=1, le=200)]
ADMIN_ONLY = [requires_role(Role.admin)]


def provide_account_service(
    request: Request[Any, Any, Any], db_session: NamedDependency[AsyncSession], actor: NamedDependency[Actor]
) -> AccountService:
    return AccountService(db_session, actor, request.app.state.passwords)


class AuthController(Controller):
    path = "/auth"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post(
        "/login",
        exclude_from_auth=True,
        status_code=200,
        request_max_body_size=LOGIN_MAX_BODY_BYTES,  # anyone may call it: never read more than a login needs
        summary="Log in and receive a bearer token",
    )
    async def login(self, request: Request[Any, Any, Any], data: JSONBody[LoginIn], db_session: NamedDependency[AsyncSession]) -> LoginOut:
        state = request.app.state
        logins = Logins(state.sessionmaker, state.settings, state.passwords)
        address = request.client.host if request.client else "unknown"
        user = await logins.authenticate(db_session, data.username, data.password, address, request.state.get("request_id"))
        return LoginOut(
            access_token=issue_token(state.jwt_auth, user),
            expires_in=int(state.jwt_auth.default_token_expiration.total_seconds()),
            user=user_out(user),
        )

    @get("/me", summary="The logged-in user")
    async def me(self, accounts: NamedDependency[AccountService]) -> UserOut:
        return user_out(await accounts.current_user())


class AgencyController(Controller):
    path = "/agencies"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post("/", guards=ADMIN_ONLY, summary="Create an agency (admin)")
    async def create(self, data: JSONBody[AgencyIn], accounts: NamedDependency[AccountService]) -> AgencyOut:
        return agency_out(await accounts.create_agency(data))

    @get("/", summary="Agencies in the caller's scope (an enterprise user: the agency that supervises it)")
    async def list(self, accounts: NamedDependency[AccountService], cursor: Cursor = None, limit: Limit = DEFAULT_LIMIT) -> Page[AgencyOut]:
        return await accounts.list_agencies(cursor, limit)


class UserController(Controller):
    path = "/users"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post("/", guards=ADMIN_ONLY, summary="Create a user (admin)")
    async def create(self, data: JSONBody[UserIn], accounts: NamedDependency[AccountService]) -> UserOut:
        return user_out(await accounts.create_user(data))

    @get(
        "/",
        guards=[requires_role(Role.admin, Role.inspector, Role.legal_reviewer, Role.leader)],
        summary="Users of the caller's agency tree, for choosing co-inspectors and case handlers",
    )
    async def list(
        self,
        accounts: NamedDependency[AccountService],
        role: FromQuery[Role | None] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[UserOut]:
        return await accounts.list_users(role, cursor, limit)


class EnterpriseController(Controller):
    path = "/enterprises"
    tags = ["accounts"]
    dependencies = {"accounts": Provide(provide_account_service, sync_to_thread=False)}

    @post("/", guards=[requires_role(Role.admin, Role.inspector)], summary="Register an enterprise")
    async def create(self, data: JSONBody[EnterpriseIn], accounts: NamedDependency[AccountService]) -> EnterpriseOut:
        return enterprise_out(await accounts.create_enterprise(data))

    @get("/", summary="Enterprises in the caller's scope")
    async def list(
        self,
        accounts: NamedDependency[AccountService],
        topic: FromQuery[Topic | None] = None,
        q: Annotated[str | None, QueryParameter(max_length=100)] = None,
        cursor: Cursor = None,
        limit: Limit = DEFAULT_LIMIT,
    ) -> Page[EnterpriseOut]:
        return await accounts.list_enterprises(topic, q, cursor, limit)

    @get("/{enterprise_id:uuid}", summary="One enterprise (404 outside the caller's scope)")
    async def get(self, enterprise_id: FromPath[uuid.UUID], accounts: NamedDependency[AccountService]) -> EnterpriseOut:
        return enterprise_out(await accounts.get_enterprise(enterprise_id))
