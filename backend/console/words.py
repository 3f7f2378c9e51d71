"""The console's Chinese: names of the API's codes, and messages for what a person typed wrong or may not do."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pydantic import ValidationError

from backend.enforcement.documents import CASE_STATUS_NAMES, RECORD_KIND_NAMES, TITLES
from backend.errors import AppError

ROLES = {
    "admin": "系统管理员",
    "inspector": "执法人员",
    "enterprise": "企业用户",
    "legal_reviewer": "法制审核人员",
    "leader": "行政机关负责人",
}
TOPICS = {
    "mining": "煤矿及非煤矿山",
    "hazardous_chemicals": "危险化学品",
    "construction": "建筑施工",
    "fire_safety": "消防安全",
    "industry_trade": "工贸行业",
    "road_transport": "道路运输",
}
HAZARD_STATUS = {
    "reported": "待下达整改",
    "rectifying": "整改中",
    "pending_review": "待复查",
    "closed": "已销号",
    "verified": "回头看已核实",
}
LEVELS = {"general": "一般隐患", "major": "重大隐患"}
CASE_STATUS = CASE_STATUS_NAMES  # as the case file (案卷) prints them
RECORD_KINDS = RECORD_KIND_NAMES
MEASURES = {
    "warning": "警告",
    "fine": "罚款",
    "confiscate": "没收违法所得",
    "order_rectification": "责令改正",
    "suspend_production": "责令停产停业",
    "suspend_license": "暂扣许可证件",
    "revoke_license": "吊销许可证件",
    "close": "责令关闭",
    "propose_closure": "提请关闭",
    "propose_revocation": "提请吊销",
}
DEADLINE_STEPS = {
    "decision": "作出处罚决定（90日）",
    "statement": "陈述、申辩期限",
    "hearing_request": "申请听证期限",
    "delivery": "送达期限",
    "payment": "缴纳罚款期限",
}
DOCUMENTS = TITLES  # the documents' own titles, as printed on them
REVIEW_OUTCOMES = {"approve": "通过", "return": "退回"}
TIMELINE_ACTIONS = {
    "created": "登记",
    "reported": "报告",
    "ordered": "责令限期整改",
    "extended": "延长整改期限",
    "plan_submitted": "提交治理方案",
    "rectification_submitted": "提交整改",
    "accepted": "复查通过",
    "rejected": "复查不通过",
    "lookback_held": "回头看：整改保持",
    "lookback_recurred": "回头看：隐患复发",
}

# What a service's refusal means to the person at the desk, by the API's stable code.
ERRORS = {
    "invalid_transition": "当前状态下不能进行此操作，请刷新页面查看最新状态。",
    "handler_cannot_review": "您是本案承办人，不能审核自己承办的案件。",
    "plan_required": "重大事故隐患须先提交治理方案，才能提交整改。",
    "evidence_required": "请为隐患的每张原始照片上传一张整改后照片。",
    "evidence_not_found": "所选照片不存在或尚未上传完成。",
    "not_major": "治理方案仅适用于重大事故隐患。",
    "role_forbidden": "您的账号无权进行此操作。",
    "concurrent_change": "其他人刚刚修改了这条记录，请刷新页面后重试。",
    "duplicate_conflict": "该操作已用不同内容提交过，请刷新页面后重试。",
    "content_mismatch": "文件内容与所选类型不符，请上传照片（JPEG、PNG、HEIC）。",
    "empty_file": "文件是空的。",
    "file_too_large": "文件太大。",
    "payload_too_large": "文件太大。",
    "image_too_large": "照片像素过大。",
    "upload_missing": "文件尚未上传完成。",
    "upload_mismatch": "上传的文件与声明的大小或校验值不一致，请重新上传。",
    "service_unavailable": "系统暂时无法访问存储服务，请稍后重试。",
    "invalid_credentials": "用户名或密码错误。",
    "login_throttled": "登录失败次数过多，请稍后再试。",
}

_PYDANTIC = {
    "missing": "请填写此项。",
    "string_too_short": "请填写此项。",
    "string_too_long": "内容太长，最多 {max_length} 个字。",
    "int_parsing": "请填写整数。",
    "int_type": "请填写整数。",
    "greater_than_equal": "不能小于 {ge}。",
    "less_than_equal": "不能大于 {le}。",
    "date_from_datetime_parsing": "请填写有效日期。",
    "date_parsing": "请填写有效日期。",
    "date_type": "请填写有效日期。",
    "literal_error": "请选择一项。",
    "too_short": "请至少选择一项。",
    "uuid_parsing": "所选内容无效。",
}


def problem_message(exc: AppError) -> str:
    if exc.code == "validation_error" and exc.field in ("deadline", "until"):
        return "期限须晚于今天。"
    return ERRORS.get(str(exc.code), f"操作未能完成（{exc.code}）。")


def form_errors(exc: ValidationError) -> dict[str, str]:
    """Field name -> message, for the fields a form posted wrong."""
    errors: dict[str, str] = {}
    for error in exc.errors():
        field = str(error["loc"][0]) if error["loc"] else "_form"
        template = _PYDANTIC.get(error["type"], "填写的内容格式不正确。")
        errors.setdefault(field, template.format(**(error.get("ctx") or {})))
    return errors


def local(value: datetime | None, zone: str = "Asia/Shanghai", *, time: bool = False) -> str:
    if value is None:
        return "—"
    at = value.astimezone(ZoneInfo(zone))
    return at.strftime("%Y-%m-%d %H:%M") if time else at.strftime("%Y-%m-%d")


def yuan(amount: Any) -> str:
    return "—" if amount is None else f"{int(amount):,} 元"
