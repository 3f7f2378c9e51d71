"""Demo data for a first look: an agency tree, one enterprise per topic and an account for every role.

Passwords are generated on the first run, kept in the local state folder (owner-only) and printed each time.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.accounts.credit_code import make_credit_code
from backend.accounts.models import Agency
from backend.accounts.schemas import AgencyIn, EnterpriseIn, Location, UserIn
from backend.accounts.service import AccountService
from backend.audit import Actor
from backend.vocabulary import Topic

CITY = "朔州市应急管理局"

AGENCIES = [
    ("city", CITY, "140600", None),
    ("district", "朔州市朔城区应急管理局", "140602", "city"),
    ("county", "怀仁市应急管理局", "140681", "city"),
]

ENTERPRISES = [
    ("mining", "朔州示例煤业有限公司", "91140602MA0K00001", "朔州市朔城区南榆林乡", (39.28, 112.38), "district"),
    ("hazardous_chemicals", "朔州示例化工有限公司", "91140602MA0K00002", "朔州市朔城区经济开发区", (39.33, 112.44), "district"),
    ("construction", "朔州示例建筑工程有限公司", "91140681MA0K00003", "怀仁市云中镇", (39.82, 113.10), "county"),
    ("fire_safety", "朔州示例商贸城有限公司", "91140602MA0K00004", "朔州市朔城区开发北路", (39.34, 112.43), "district"),
    ("industry_trade", "朔州示例陶瓷有限公司", "91140681MA0K00005", "怀仁市陶瓷工业园区", (39.80, 113.09), "county"),
]


_PASSWORD_ALPHABET = "abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789"


def _password() -> str:
    return "".join(secrets.choice(_PASSWORD_ALPHABET) for _ in range(12))


async def seed_demo(sessionmaker: async_sessionmaker[AsyncSession], state_dir: Path) -> list[dict[str, str]]:
    """Create the demo data once; later runs change nothing and return the same credentials."""
    credentials_file = state_dir / "demo_credentials.json"
    async with sessionmaker() as session:
        exists = (await session.execute(select(col(Agency.id)).where(col(Agency.name) == CITY))).first()
    if exists and credentials_file.exists():
        return json.loads(credentials_file.read_text(encoding="utf-8"))
    if exists:
        raise RuntimeError(f"demo data exists but {credentials_file} is gone; reset the database to seed again")

    actor = Actor(user_id=None, username="demo-seed", role="admin")
    credentials: list[dict[str, str]] = []

    async def add_user(service: AccountService, **fields: object) -> None:
        password = _password()
        user = await service.create_user(UserIn(password=password, **fields))  # type: ignore[arg-type]
        credentials.append({"username": user.username, "password": password, "role": user.role, "name": user.display_name})

    async with sessionmaker() as session:
        service = AccountService(session, actor)
        agencies: dict[str, Agency] = {}
        for key, name, region, parent in AGENCIES:
            parent_id = agencies[parent].id if parent else None
            agencies[key] = await service.create_agency(AgencyIn(name=name, region_code=region, parent_id=parent_id))
        for i, (topic, name, code17, address, (lat, lng), agency_key) in enumerate(ENTERPRISES, start=1):
            enterprise = await service.create_enterprise(
                EnterpriseIn(
                    name=name,
                    credit_code=make_credit_code(code17),
                    topics=[Topic(topic)],
                    agency_id=agencies[agency_key].id,
                    address=address,
                    location=Location(lat=lat, lng=lng),
                    principal=f"企业负责人{i}",
                    safety_manager=f"安全管理员{i}",
                )
            )
            await add_user(
                service,
                username=f"enterprise{i}",
                display_name=f"{name}安全管理员",
                role="enterprise",
                enterprise_id=enterprise.id,
            )
        for i, agency_key in ((1, "district"), (2, "district"), (3, "county"), (4, "county")):
            await add_user(
                service,
                username=f"inspector{i}",
                display_name=f"执法人员{i}",
                role="inspector",
                agency_id=agencies[agency_key].id,
                certificate_no=f"晋应急执{14060000 + i}",
            )
        await add_user(service, username="legal1", display_name="法制审核员", role="legal_reviewer", agency_id=agencies["city"].id)
        await session.commit()  # the whole demo is one unit of work, as a request would be

    fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(credentials, fh, ensure_ascii=False, indent=2)
    return credentials
