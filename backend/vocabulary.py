"""The words the API speaks: roles, statuses, levels and kinds, one enum each.

They are `StrEnum`s, so they compare equal to the strings stored in the database, and a query filter typed with one
refuses an unknown value with `400` naming the parameter instead of silently matching nothing."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    admin = "admin"
    inspector = "inspector"
    enterprise = "enterprise"
    legal_reviewer = "legal_reviewer"
    leader = "leader"  # 行政机关负责人: the agency head or a deputy


AGENCY_STAFF = frozenset({Role.inspector, Role.legal_reviewer, Role.leader})


class Topic(StrEnum):
    mining = "mining"
    hazardous_chemicals = "hazardous_chemicals"
    construction = "construction"
    fire_safety = "fire_safety"
    industry_trade = "industry_trade"
    road_transport = "road_transport"


class HazardStatus(StrEnum):
    reported = "reported"
    rectifying = "rectifying"
    pending_review = "pending_review"
    closed = "closed"
    verified = "verified"


class HazardLevel(StrEnum):
    general = "general"
    major = "major"


class HazardSource(StrEnum):
    inspection = "inspection"
    inspector = "inspector"
    self_inspection = "self_inspection"
    accident_evaluation = "accident_evaluation"  # a measure of an accident report found not done (事故整改"回头看")


class InspectionStatus(StrEnum):
    in_progress = "in_progress"
    submitted = "submitted"


class InspectionKind(StrEnum):
    enforcement = "enforcement"
    routine = "routine"


class CaseStatus(StrEnum):
    open = "open"
    decision_draft = "decision_draft"
    legal_review = "legal_review"
    approved = "approved"
    notified = "notified"  # 告知 (行政处罚法 第四十四条)
    hearing_requested = "hearing_requested"
    hearing_scheduled = "hearing_scheduled"
    heard = "heard"
    decided = "decided"
    delivered = "delivered"  # 送达 (第六十一条)
    executed = "executed"  # 执行完毕
    closed = "closed"  # 结案


class EvidenceKind(StrEnum):
    photo = "photo"
    audio = "audio"
    video = "video"
    document = "document"


class EvidenceStatus(StrEnum):
    pending = "pending"
    stored = "stored"


class MeasureType(StrEnum):
    warning = "warning"
    fine = "fine"
    confiscate = "confiscate"
    order_rectification = "order_rectification"
    suspend_production = "suspend_production"
    suspend_license = "suspend_license"
    revoke_license = "revoke_license"
    close = "close"
    # measures only another authority takes: the agency proposes them (安全生产法 第一百一十三条)
    propose_closure = "propose_closure"  # 提请关闭
    propose_revocation = "propose_revocation"  # 提请吊销


class TargetKind(StrEnum):
    """Whom a measure is aimed at (处罚到人): the enterprise, or a person such as its principal."""

    enterprise = "enterprise"
    person = "person"


class OverdueStep(StrEnum):
    """The deadlines of a penalty case that `GET /cases?overdue_step=` filters by."""

    decision = "decision"  # 行政处罚法 第六十条: 90 days from 立案
    statement = "statement"  # 陈述、申辩 period after 告知
    hearing_request = "hearing_request"  # 第六十四条: 5 days after 告知
    delivery = "delivery"  # 第六十一条: 7 days after the decision
    payment = "payment"  # 第六十七条: 15 days after delivery


class Category(StrEnum):
    """分类: key (重点检查单位, visited on a schedule) or general (一般检查单位, sampled by 双随机)."""

    key = "key"
    general = "general"


class RiskLevel(StrEnum):
    """分级: 重大, 较大, 一般, 低 安全风险."""

    major = "major"
    high = "high"
    medium = "medium"
    low = "low"


class PlanStatus(StrEnum):
    draft = "draft"
    approved = "approved"
    superseded = "superseded"  # an approved later version replaced it


class TaskStatus(StrEnum):
    assigned = "assigned"
    in_progress = "in_progress"
    done = "done"


class AccidentLevel(StrEnum):
    """生产安全事故等级 (生产安全事故报告和调查处理条例 第三条): 一般、较大、重大、特别重大."""

    general = "general"
    larger = "larger"
    major = "major"
    especially_major = "especially_major"


class AccidentStatus(StrEnum):
    recorded = "recorded"  # the accident is known; its investigation report is not yet approved
    report_approved = "report_approved"  # 调查报告已批复: the evaluation falls due one year later
    evaluating = "evaluating"  # 整改和防范措施落实情况评估 under way
    evaluated = "evaluated"  # 评估报告 issued and published


class FindingOutcome(StrEnum):
    done = "done"  # 已落实
    partly = "partly"  # 部分落实
    not_done = "not_done"  # 未落实: opens a hazard on the enterprise
