"""What the penalty procedure's documents say: 行政处罚告知书, 听证告知书, 听证笔录, 行政处罚决定书 (one per target, with
what 行政处罚法 第五十九条 lists), 送达回执 and 结案审批表. Legal sentences are the statute's, cited; the rest is the
agency's own wording."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlmodel import col

from backend.accounts.models import Agency, Enterprise, User
from backend.clock import now
from backend.enforcement.discretion import discretion_table
from backend.enforcement.documents import TITLES, DocumentContent, chinese_date
from backend.enforcement.models import Case, CaseDelivery, CaseRecord, Decision
from backend.enforcement.penalties import (
    ENTERPRISE_TARGET,
    Procedure,
    fines_by_target,
    hearing_grounds,
    load_procedure,
    target_key,
    targets_of,
)
from backend.errors import Conflict, ErrorCode

if TYPE_CHECKING:
    from backend.enforcement.service import CaseAccess

PROCEDURE_DOCUMENTS = frozenset(
    {"penalty_notice", "hearing_notice", "hearing_record", "penalty_decision", "delivery_receipt", "closing_report"}
)
MEASURE_NAMES = {
    "warning": "警告",
    "fine": "罚款",
    "confiscate": "没收违法所得",
    "order_rectification": "责令限期改正",
    "suspend_production": "责令停产停业整顿",
    "suspend_license": "暂扣许可证件",
    "revoke_license": "吊销许可证件",
    "close": "责令关闭",
    "propose_closure": "提请有关人民政府予以关闭",
    "propose_revocation": "提请有关部门依法吊销有关证照",
}
DELIVERY_METHODS = {"direct": "直接送达", "left": "留置送达", "mail": "邮寄送达", "electronic": "电子送达", "announcement": "公告送达"}
# records that are evidence of the facts (第五十九条(二)), as the chain keeps them
EVIDENCE_RECORDS = {"onsite_check": "现场检查", "interview": "询问", "sampling": "抽样取证", "measure": "现场处理措施", "note": "其他"}
LATE_PAYMENT = (
    "到期不缴纳罚款的，每日按罚款数额的百分之三加处罚款，加处罚款的数额不得超出罚款的数额"
    "（《中华人民共和国行政处罚法》第七十二条第一款第一项）；本机关可以依照《中华人民共和国行政强制法》的规定申请人民法院强制执行"
    "（第七十二条第一款第四项）。"
)


def measure_text(measure: dict[str, Any]) -> str:
    basis = discretion_table()[measure["basis_id"]]
    amount = f"人民币{measure['amount']}元" if measure.get("amount") is not None else ""
    return f"{MEASURE_NAMES[measure['type']]}{amount}（依据《{basis.law}》{basis.article}{basis.item or ''}）"


def review_authority(agency_name: str, configured: str | None) -> str:
    """行政复议机关: since 2024 the 本级人民政府 of a government department (行政复议法 第二十四条第一款第一项)."""
    if configured:
        return configured
    for suffix in ("应急管理局", "应急管理厅", "应急管理部门"):
        if agency_name.endswith(suffix):
            return agency_name.removesuffix(suffix) + "人民政府"
    return "本级人民政府"


class ProcedureDocuments:
    def __init__(self, access: CaseAccess, case: Case, content: DocumentContent, enterprise: Enterprise, agency: Agency) -> None:
        self.access, self.session, self.case, self.content = access, access.session, case, content
        self.enterprise, self.agency = enterprise, agency

    async def build(self, doc_type: str, target: str, subject: Any) -> DocumentContent:
        decision = await self.access._latest_decision(self.case.id)
        if decision is None:
            raise Conflict("draft the decision first", code=ErrorCode.DECISION_REQUIRED)
        procedure = await load_procedure(self.session, self.case, decision)
        builder = getattr(self, f"_{doc_type}")
        await builder(decision, procedure, target, subject)
        return self.content

    def _whom(self, key: str) -> str:
        return "你单位" if key == ENTERPRISE_TARGET else key

    def _measures_by_target(self, decision: Decision) -> list[str]:
        lines = []
        for key in targets_of(decision.measures):
            texts = "；".join(measure_text(m) for m in decision.measures if target_key(m) == key)
            whom = f"对{self.enterprise.name}" if key == ENTERPRISE_TARGET else f"对{self._person(decision, key)}"
            lines.append(f"{whom}：{texts}。")
        return lines

    @staticmethod
    def _person(decision: Decision, key: str) -> str:
        target = next(m["target"] for m in decision.measures if target_key(m) == key)
        return f"{target['name']}（{target['position']}）" if target.get("position") else target["name"]

    async def _penalty_notice(self, decision: Decision, procedure: Procedure, target: str, subject: Any) -> None:
        case = self.case
        assert case.statement_due is not None
        rights = [
            "依据《中华人民共和国行政处罚法》第四十四条、第四十五条，你（单位）有权进行陈述和申辩。请于"
            f"{chinese_date(case.statement_due)}前向本机关提出陈述、申辩意见；本机关对你（单位）提出的事实、理由和证据将进行复核，"
            "成立的予以采纳，不因你（单位）陈述、申辩而给予更重的处罚。",
        ]
        if case.hearing_right:
            rights.append("依据《中华人民共和国行政处罚法》第六十三条，你（单位）有要求听证的权利，详见本机关同时送达的《听证告知书》。")
        self.content.sections = [
            ("拟作出的行政处罚：", self._measures_by_target(decision)),
            ("违法事实：", [decision.facts]),
            ("理由及依据：", [decision.reasoning]),
            ("当事人的权利：", rights),
        ]

    async def _hearing_notice(self, decision: Decision, procedure: Procedure, target: str, subject: Any) -> None:
        case = self.case
        assert case.hearing_request_due is not None
        self.content.sections = [
            ("拟作出的行政处罚：", self._measures_by_target(decision)),
            ("听证的依据：", hearing_grounds(decision.measures, self.access.settings)),
            (
                "听证权利：",
                [
                    "依据《中华人民共和国行政处罚法》第六十三条、第六十四条，你（单位）有要求听证的权利。要求听证的，应当在告知后五日内"
                    f"（{chinese_date(case.hearing_request_due)}前）提出。",
                    "本机关将在举行听证的七日前，通知你（单位）及有关人员听证的时间、地点（第六十四条第一款第二项）。听证由本机关指定的"
                    "非本案调查人员主持；你（单位）认为主持人与本案有直接利害关系的，有权申请回避（第六十四条第一款第四项）。",
                    "当事人不承担行政机关组织听证的费用（第六十三条第二款）。",
                ],
            ),
        ]

    async def _hearing_record(self, decision: Decision, procedure: Procedure, target: str, subject: Any) -> None:
        hearing = procedure.hearing
        assert hearing is not None and hearing.held_at is not None
        names = await self._names([hearing.host_id, *([hearing.clerk_id] if hearing.clerk_id else [])])
        self.content.lines += [
            ("听证时间", chinese_date(hearing.held_at)),
            ("听证地点", hearing.place),
            ("听证主持人", names.get(hearing.host_id, "—")),
            ("记录人", names.get(hearing.clerk_id, "—") if hearing.clerk_id else "—"),
            ("参加人员", "、".join(f"{a['name']}（{a['role']}）" for a in hearing.attendees)),
        ]
        self.content.sections = [
            ("听证事项：", self._measures_by_target(decision)),
            ("听证情况：", [hearing.summary or "—"]),
            (
                "核对：",
                [
                    "本笔录交当事人或者其代理人核对无误后签字或者盖章；当事人或者其代理人拒绝签字或者盖章的，由听证主持人在笔录中注明"
                    "（《中华人民共和国行政处罚法》第六十四条第一款第八项）。",
                    "当事人或者其代理人（签名或者盖章）：",
                    "听证主持人（签名）：",
                ],
            ),
        ]

    async def _penalty_decision(self, decision: Decision, procedure: Procedure, target: str, subject: Any) -> None:
        """第五十九条: the party, the facts and the evidence, the measures and their basis, how and by when to pay,
        the remedy with its time limits and where to apply, the agency and the date."""
        mine = [m for m in decision.measures if target_key(m) == target]
        if target != ENTERPRISE_TARGET:
            person = mine[0]["target"]
            self.content.header = [
                ("当事人", person["name"]),
                ("居民身份证号码", person.get("id_number") or "—"),
                ("工作单位及职务", f"{self.enterprise.name}{person.get('position') or ''}"),
                ("单位地址", self.enterprise.address),
                *self.content.lines,
            ]
        records = (
            await self.session.execute(
                select(CaseRecord).where(col(CaseRecord.case_id) == self.case.id, col(CaseRecord.kind).in_(EVIDENCE_RECORDS))
            )
        ).scalars()
        evidence = [
            f"{r.seq}. {EVIDENCE_RECORDS[r.kind]}（{chinese_date(r.occurred_at)}）：{r.description}"
            + (f"（附证据材料{len(r.evidence)}件）" if r.evidence else "")
            for r in sorted(records, key=lambda r: r.seq)
        ]
        heard = [
            f"本机关于{chinese_date(self.case.notified_at)}告知拟作出的行政处罚及你（单位）的权利。" if self.case.notified_at else "",
            *[
                f"当事人陈述、申辩：{s.content}；复核意见：{'采纳' if procedure.replies[s.id].adopted else '不予采纳'}，"
                f"{procedure.replies[s.id].reasoning}"
                for s in procedure.statements
                if s.id in procedure.replies
            ],
            *[f"当事人书面放弃陈述、申辩和听证权利（{chinese_date(s.received_at)}）。" for s in procedure.statements if s.waived],
            f"本机关于{chinese_date(procedure.hearing.held_at)}举行听证。" if procedure.hearing and procedure.hearing.held_at else "",
        ]
        fine = fines_by_target(decision.measures).get(target, 0)
        performance = []
        if fine:
            performance.append(
                f"罚款人民币{fine}元，自收到本决定书之日起十五日内，到{self.access.settings.payment_place}缴纳"
                "（《中华人民共和国行政处罚法》第六十七条第三款）。"
            )
            performance.append(LATE_PAYMENT)
        if any(m["type"] != "fine" for m in mine):
            performance.append("其他行政处罚自本决定书送达之日起履行。")
        authority = review_authority(self.agency.name, self.access.settings.review_authority)
        self.content.sections = [
            ("违法事实：", [decision.facts]),
            ("证据：", evidence or ["现场检查记录、询问笔录等证据材料，见本案案卷。"]),
            ("陈述、申辩和听证：", [line for line in heard if line] or ["—"]),
            ("处罚理由及依据：", [decision.reasoning]),
            ("行政处罚：", [measure_text(m) + "。" for m in mine]),
            ("履行方式和期限：", performance),
            (
                "救济途径：",
                [
                    f"如不服本决定，可以自知道或者应当知道本决定之日起六十日内向{authority}申请行政复议（《中华人民共和国行政复议法》"
                    "第二十条、第二十四条），或者自知道或者应当知道本决定之日起六个月内依法向人民法院提起行政诉讼（《中华人民共和国行政诉讼法》"
                    "第四十六条）。",
                    "申请行政复议或者提起行政诉讼的，行政处罚不停止执行，法律另有规定的除外（《中华人民共和国行政处罚法》第七十三条）。",
                ],
            ),
        ]

    async def _delivery_receipt(self, decision: Decision, procedure: Procedure, target: str, subject: Any) -> None:
        assert isinstance(subject, CaseDelivery)
        server = await self._names([subject.recorded_by])
        title = next((TITLES[d] for d in TITLES if d == subject.document_type), subject.document_type)
        self.content.lines += [
            ("送达文书", f"《{title}》{subject.document_number}"),
            ("受送达人", subject.recipient),
            ("送达方式", DELIVERY_METHODS[subject.method]),
            ("送达时间", chinese_date(subject.delivered_at)),
            ("送达人", server.get(subject.recorded_by, "—")),
        ]
        notes = []
        if subject.late:
            notes.append("本送达晚于作出行政处罚决定后七日（《中华人民共和国行政处罚法》第六十一条）。")
        if subject.payment_due is not None:
            notes.append(f"罚款缴纳期限至{chinese_date(subject.payment_due)}（第六十七条第三款：收到决定书之日起十五日内）。")
        self.content.sections = [("备注：", notes or ["—"]), ("受送达人签收：", ["（签名或者盖章）", "年  月  日"])]

    async def _closing_report(self, decision: Decision, procedure: Procedure, target: str, subject: Any) -> None:
        case = self.case
        leader = await self._names([self.access.actor.user_id] if self.access.actor.user_id else [])
        accounts = procedure.fine_accounts(now())
        self.content.lines += [
            ("案由", case.title),
            ("立案日期", chinese_date(case.opened_at)),
            ("处罚决定日期", chinese_date(case.decided_at) if case.decided_at else "—"),
        ]
        self.content.sections = [
            ("行政处罚：", self._measures_by_target(decision)),
            (
                "送达情况：",
                [
                    f"《{TITLES.get(d.document_type, d.document_type)}》{d.document_number}：{chinese_date(d.delivered_at)}"
                    f"{DELIVERY_METHODS[d.method]}给{d.recipient}{'（逾期送达）' if d.late else ''}"
                    for d in procedure.deliveries
                ]
                or ["—"],
            ),
            (
                "执行情况：",
                [
                    f"{'单位' if a.target == ENTERPRISE_TARGET else a.target}：罚款{a.fine}元，加处罚款{a.surcharge}元，已缴纳{a.paid}元，"
                    f"尚欠{a.outstanding}元"
                    for a in accounts
                ]
                or ["无罚款。"],
            ),
            (
                "结案理由：",
                [
                    ("当事人逾期不履行，申请人民法院强制执行。" if subject.court_enforcement else "行政处罚决定已执行完毕。"),
                    subject.summary,
                ],
            ),
            ("负责人审批意见：", [f"同意结案。{''.join(leader.values())}  {chinese_date(now())}"]),
        ]

    async def _names(self, ids: list[Any]) -> dict[Any, str]:
        rows = (await self.session.execute(select(col(User.id), col(User.display_name)).where(col(User.id).in_(ids)))).all()
        return dict((i, name) for i, name in rows)
