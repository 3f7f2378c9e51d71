"""The rules for logins, agencies, users and enterprises."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import literal, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload
from sqlmodel import col

from backend import audit, scope
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, User
from backend.accounts.schemas import (
    AgencyIn,
    AgencyOut,
    EnterpriseIn,
    EnterpriseOut,
    Location,
    UserIn,
    UserOut,
)
from backend.audit import Actor
from backend.auth import PasswordHashing, password_hashing
from backend.db import rel
from backend.errors import Conflict, ErrorCode, ValidationFailed
from backend.pagination import Page, keyset, page_of
from backend.settings import get_settings
from backend.vocabulary import AGENCY_STAFF, Role, Topic


def user_out(user: User) -> UserOut:
    return UserOut.model_validate(user, from_attributes=True)


def agency_out(agency: Agency) -> AgencyOut:
    return AgencyOut.model_validate(agency, from_attributes=True)


def enterprise_out(enterprise: Enterprise) -> EnterpriseOut:
    location = Location(lat=enterprise.lat, lng=enterprise.lng) if enterprise.lat is not None and enterprise.lng is not None else None
    return EnterpriseOut(
        id=enterprise.id,
        name=enterprise.name,
        credit_code=enterprise.credit_code,
        topics=[Topic(t) for t in enterprise.topics],
        agency_id=enterprise.agency_id,
        address=enterprise.address,
        location=location,
        principal=enterprise.principal,
        safety_manager=enterprise.safety_manager,
        created_at=enterprise.created_at,
    )


class AccountService:
    def __init__(self, session: AsyncSession, actor: Actor, passwords: PasswordHashing | None = None) -> None:
        self.session = session
        self.actor = actor
        # argon2 in worker threads (the login itself is in backend/accounts/login.py)
        self.passwords = passwords or password_hashing(get_settings())

    # --- the logged-in user -------------------------------------------------------------------------------

    async def current_user(self) -> User:
        return (await self.session.execute(select(User).where(col(User.id) == self.actor.user_id))).scalar_one()

    # --- agencies -----------------------------------------------------------------------------------------

    async def create_agency(self, data: AgencyIn) -> Agency:
        agency_id = uuid.uuid4()
        if data.parent_id is None:
            path = f"/{agency_id}/"
        else:
            parent = await scope.one(self.session, self.actor, Agency, data.parent_id, field="parent_id")
            path = f"{parent.path}{agency_id}/"
        agency = Agency(id=agency_id, name=data.name, region_code=data.region_code, parent_id=data.parent_id, path=path)
        self.session.add(agency)
        audit.record(self.session, self.actor, "agency.create", "agency", agency.id, data.model_dump())
        return agency

    async def list_agencies(self, cursor: str | None, limit: int) -> Page[AgencyOut]:
        query = keyset(scope.readable(self.actor, Agency), Agency.created_at, Agency.id, cursor, limit)
        return page_of(list((await self.session.execute(query)).scalars()), limit, agency_out)

    # --- users --------------------------------------------------------------------------------------------

    async def create_user(self, data: UserIn) -> User:
        if data.role in AGENCY_STAFF and data.agency_id is None:
            raise ValidationFailed(f"a {data.role} must belong to an agency", field="agency_id")
        if data.role == Role.inspector and not data.certificate_no:
            raise ValidationFailed("an inspector needs a law-enforcement certificate number (执法证号)", field="certificate_no")
        if data.role == Role.enterprise and data.enterprise_id is None:
            raise ValidationFailed("an enterprise user must belong to an enterprise", field="enterprise_id")
        if data.role == Role.enterprise and data.agency_id is not None:
            raise ValidationFailed("an enterprise user belongs to an enterprise, not an agency", field="agency_id")
        if data.role != Role.enterprise and data.enterprise_id is not None:
            raise ValidationFailed("only enterprise users belong to an enterprise", field="enterprise_id")
        if data.agency_id is not None:
            await scope.one(self.session, self.actor, Agency, data.agency_id, field="agency_id")
        if data.enterprise_id is not None:
            await scope.one(self.session, self.actor, Enterprise, data.enterprise_id, field="enterprise_id")
        await self._ensure_free(User.username == data.username, "username", f"username {data.username} is taken")
        user = User(
            username=data.username,
            password_hash=await self.passwords.hash(data.password),
            display_name=data.display_name,
            role=data.role,
            agency_id=data.agency_id,
            enterprise_id=data.enterprise_id,
            certificate_no=data.certificate_no,
        )
        self.session.add(user)
        audit.record(self.session, self.actor, "user.create", "user", user.id, data.model_dump(exclude={"password"}))
        return user

    async def list_users(self, role: Role | None, cursor: str | None, limit: int) -> Page[UserOut]:
        query = scope.readable(self.actor, User)
        if role:
            query = query.where(col(User.role) == role)
        query = keyset(query, User.created_at, User.id, cursor, limit)
        return page_of(list((await self.session.execute(query)).scalars()), limit, user_out)

    async def ensure_admin(self, username: str, password: str) -> User | None:
        """Create the first admin from the environment, once; an existing account is left as it is."""
        existing = (await self.session.execute(select(User).where(col(User.username) == username))).scalar_one_or_none()
        if existing is not None:
            return None
        password_hash = await self.passwords.hash(password)
        user = User(username=username, password_hash=password_hash, display_name="系统管理员", role=Role.admin)
        self.session.add(user)
        audit.record(self.session, self.actor, "user.create", "user", user.id, {"username": username, "role": "admin"})
        try:
            await self.session.commit()
        except IntegrityError:  # another worker created it at the same moment
            await self.session.rollback()
            return None
        return user

    # --- enterprises --------------------------------------------------------------------------------------

    async def create_enterprise(self, data: EnterpriseIn) -> Enterprise:
        await scope.one(self.session, self.actor, Agency, data.agency_id, field="agency_id")
        # The credit code is public registry data (国家企业信用信息公示系统): its being registered here is said alike
        # whether the enterprise is in the caller's scope or not, and nothing else about it is.
        await self._ensure_free(
            Enterprise.credit_code == data.credit_code,
            "credit_code",
            f"an enterprise with credit code {data.credit_code} is registered already",
        )
        enterprise = Enterprise(
            name=data.name,
            credit_code=data.credit_code,
            agency_id=data.agency_id,
            address=data.address,
            lat=data.location.lat if data.location else None,
            lng=data.location.lng if data.location else None,
            principal=data.principal,
            safety_manager=data.safety_manager,
        )
        enterprise.topic_rows = [EnterpriseTopic(enterprise_id=enterprise.id, topic=t) for t in data.topics]
        self.session.add(enterprise)
        audit.record(self.session, self.actor, "enterprise.create", "enterprise", enterprise.id, data.model_dump())
        return enterprise

    async def get_enterprise(self, enterprise_id: uuid.UUID) -> Enterprise:
        return await scope.one(self.session, self.actor, Enterprise, enterprise_id, options=[selectinload(rel(Enterprise.topic_rows))])

    async def list_enterprises(self, topic: Topic | None, q: str | None, cursor: str | None, limit: int) -> Page[EnterpriseOut]:
        query = scope.readable(self.actor, Enterprise).options(selectinload(rel(Enterprise.topic_rows)))
        if topic:
            query = query.where(
                col(Enterprise.id).in_(select(col(EnterpriseTopic.enterprise_id)).where(col(EnterpriseTopic.topic) == topic))
            )
        if q:
            query = query.where(
                or_(col(Enterprise.name).contains(q, autoescape=True), col(Enterprise.credit_code).startswith(q.upper(), autoescape=True))
            )
        query = keyset(query, Enterprise.created_at, Enterprise.id, cursor, limit)
        rows = list((await self.session.execute(query)).scalars())
        return page_of(rows, limit, enterprise_out)

    # --- shared -------------------------------------------------------------------------------------------

    async def _ensure_free(self, taken: Any, field: str, message: str) -> None:
        """A unique value already in use is 409 naming the field; one taken by a racing request is caught at flush."""
        if (await self.session.execute(select(literal(1)).where(taken).limit(1))).first() is not None:
            raise Conflict(message, code=ErrorCode.DUPLICATE_CONFLICT, field=field)
