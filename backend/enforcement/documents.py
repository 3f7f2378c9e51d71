"""The enforcement documents as PDFs, in Chinese, with text that can be extracted and searched.

The font is the Adobe CJK font STSong-Light that every PDF reader in China resolves (reportlab ships its metrics),
so the service needs no font files; the text is stored as Unicode, so it can be copied and checked.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

from backend.clock import agency_zone

FONT = "STSong-Light"
pdfmetrics.registerFont(UnicodeCIDFont(FONT))

TITLES = {
    "inspection_record": "现场检查记录",
    "rectification_order": "责令限期整改指令书",
    "penalty_notice": "行政处罚告知书",
    "hearing_notice": "听证告知书",
    "hearing_record": "听证笔录",
    "penalty_decision": "行政处罚决定书",
    "delivery_receipt": "送达回执",
    "closing_report": "结案审批表",
    "evaluation_report": "事故整改和防范措施落实情况评估报告",
}
# 文书代字 as enforcement apps use them (PROCEDURE.md §B2: practice, not an official 式样)
NUMBER_MARKS = {
    "inspection_record": "检记",
    "rectification_order": "责改",
    "penalty_notice": "罚告",
    "hearing_notice": "听告",
    "hearing_record": "听录",
    "penalty_decision": "罚",
    "delivery_receipt": "回",
    "closing_report": "结",
    "evaluation_report": "评估",
}

_BODY = ParagraphStyle("body", fontName=FONT, fontSize=11.5, leading=19, wordWrap="CJK", firstLineIndent=0)
_TITLE = ParagraphStyle("title", parent=_BODY, fontSize=20, leading=30, alignment=TA_CENTER, spaceAfter=4)
_AGENCY = ParagraphStyle("agency", parent=_BODY, fontSize=14, leading=22, alignment=TA_CENTER)
_NUMBER = ParagraphStyle("number", parent=_BODY, alignment=TA_RIGHT, spaceAfter=10)
_RIGHT = ParagraphStyle("right", parent=_BODY, alignment=TA_RIGHT)


@dataclass
class DocumentContent:
    """Everything a document shows, gathered by the service from the case, the inspection and the hazards."""

    type: str
    number: str
    agency_name: str
    enterprise_name: str
    credit_code: str
    address: str
    principal: str | None
    issued_at: datetime
    lines: list[tuple[str, str]] = field(default_factory=list)  # label, value
    sections: list[tuple[str, list[str]]] = field(default_factory=list)  # heading, paragraphs
    header: list[tuple[str, str]] | None = None  # who it is addressed to, when not the enterprise (a person: 处罚到人)


def document_number(agency_name: str, doc_type: str, year: int, n: int) -> str:
    """文号 such as 朔州市朔城区应急罚〔2026〕3号: the agency, the kind of document, the year and the sequence."""
    prefix = agency_name.removesuffix("应急管理局").removesuffix("应急管理部门")
    return f"{prefix}应急{NUMBER_MARKS[doc_type]}〔{year}〕{n}号"


def chinese_date(at: datetime) -> str:
    local = at.astimezone(agency_zone())
    return f"{local.year}年{local.month}月{local.day}日"


def render(content: DocumentContent) -> bytes:
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=25 * mm,
        rightMargin=25 * mm,
        topMargin=22 * mm,
        bottomMargin=22 * mm,
        title=f"{TITLES[content.type]} {content.number}",
        author=content.agency_name,
        subject=content.enterprise_name,
        invariant=1,
    )

    def p(text: str, style: ParagraphStyle = _BODY) -> Paragraph:
        return Paragraph(escape(text).replace("\n", "<br/>"), style)

    story: list[Flowable] = [p(content.agency_name, _AGENCY), p(TITLES[content.type], _TITLE), p(content.number, _NUMBER)]
    header = content.header or [
        ("被检查单位" if content.type in ("inspection_record", "rectification_order") else "当事人", content.enterprise_name),
        ("统一社会信用代码", content.credit_code),
        ("地址", content.address),
        ("主要负责人", content.principal or "—"),
        *content.lines,
    ]
    story += [p(f"{label}：{value}") for label, value in header]
    for heading, paragraphs in content.sections:
        story += [Spacer(1, 6), p(f"{heading}")]
        story += [p(text) for text in paragraphs]
    story += [Spacer(1, 24), p(content.agency_name, _RIGHT), p(chinese_date(content.issued_at), _RIGHT)]
    doc.build(story)
    return buffer.getvalue()
