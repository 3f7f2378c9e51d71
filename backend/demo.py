"""Demo data for a first look: an agency tree, one enterprise per topic, an account for every role, and the work
that waits for the desk console's users (hazards to rectify, a case awaiting the legal review).

Passwords are generated on the first run, kept in the local state folder (owner-only) and printed each time.
"""

from __future__ import annotations

import json
import os
import secrets
import uuid
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, cast

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlmodel import col

from backend.accounts.credit_code import make_credit_code
from backend.accounts.models import Agency, User
from backend.accounts.schemas import AgencyIn, EnterpriseIn, Location, UserIn
from backend.accounts.service import AccountService
from backend.audit import Actor
from backend.auth import actor_for
from backend.clock import now
from backend.settings import Settings, get_settings
from backend.vocabulary import HazardLevel, MeasureType, Topic

if TYPE_CHECKING:
    from backend.storage import ObjectStore

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


async def seed_demo(
    sessionmaker: async_sessionmaker[AsyncSession], state_dir: Path, settings: Settings | None = None
) -> list[dict[str, str]]:
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

    users: dict[str, User] = {}

    async def add_user(service: AccountService, **fields: object) -> None:
        password = _password()
        user = await service.create_user(UserIn(password=password, **fields))  # type: ignore[arg-type]
        users[user.username] = user
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
        await add_user(service, username="leader1", display_name="局长", role="leader", agency_id=agencies["city"].id)
        enterprise_id = users["enterprise1"].enterprise_id
        assert enterprise_id is not None
        inspector = actor_for(users["inspector1"], agencies["district"].path)
        await _desk_work(session, inspector, enterprise_id, users["inspector2"].id, settings or get_settings())
        await session.commit()  # the whole demo is one unit of work, as a request would be

    fd = os.open(credentials_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(credentials, fh, ensure_ascii=False, indent=2)
    return credentials


async def _desk_work(session: AsyncSession, inspector: Actor, enterprise_id: uuid.UUID, co_handler: uuid.UUID, settings: Settings) -> None:
    """What the desk console's users find waiting, made by the district's inspector through the services as the
    inspectors' app makes it: two hazards of 朔州示例煤业 ordered to be rectified (a general one, and a major one that
    needs its governance plan first), and a case whose major draft decision awaits the legal review."""
    from backend.enforcement.decisions import DecisionService
    from backend.enforcement.records import RecordService
    from backend.enforcement.schemas import CaseIn, DecisionIn, MeasureIn, RecordIn
    from backend.enforcement.service import CaseService
    from backend.hazards.rectification import RectificationService
    from backend.hazards.schemas import HazardIn, OrderIn
    from backend.hazards.service import HazardService

    hazards = HazardService(session, inspector)
    rectification = RectificationService(session, inspector, settings)
    deadline = (now() + timedelta(days=15)).date()
    for level, description, measures in (
        ("general", "井口房消防通道堆放杂物，灭火器压力不足", "清理消防通道，更换灭火器"),
        ("major", "采区瓦斯抽采能力不足，回风流瓦斯浓度接近上限", "制定治理方案，增设抽采钻孔，治理期间停止采掘作业"),
    ):
        hazard, _ = await hazards.create(HazardIn(enterprise_id=enterprise_id, level=HazardLevel(level), description=description))
        await rectification.order(hazard.id, OrderIn(deadline=deadline, measures=measures))
    # the records and the draft need no object store: no evidence files in the demo case
    store = cast("ObjectStore", None)
    case, _ = await CaseService(session, inspector, store, settings).create(
        CaseIn(enterprise_id=enterprise_id, title="朔州示例煤业有限公司未按规定排查治理事故隐患案", handler_ids=[co_handler])
    )
    await RecordService(session, inspector, store, settings).add(
        case.id,
        RecordIn(
            kind="onsite_check",
            occurred_at=now() - timedelta(days=2),
            description="现场检查发现：隐患排查治理台账缺失，采区瓦斯抽采能力不足未及时治理。",
        ),
    )
    await DecisionService(session, inspector, store, settings).draft(
        case.id,
        DecisionIn(
            measures=[MeasureIn(type=MeasureType.fine, amount=50000, basis_id="AQSCF-97-5")],
            facts="该公司未将事故隐患排查治理情况如实记录，未向从业人员通报。",
            reasoning="违反《中华人民共和国安全生产法》第四十一条第二款，依据第九十七条第五项，责令限期改正并处罚款。",
            major=True,
            major_grounds=["complex_case"],
        ),
    )
