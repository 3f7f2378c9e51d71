"""The enforcement documents as PDFs, in Chinese, with text that can be extracted and searched.

Every PDF embeds the glyphs it uses of a real TrueType font (`PDF_FONT_PATH`, WenQuanYi Micro Hei by default):
reportlab subsets the font per document, so a PDF carries only its own characters (tens of kilobytes) and shows
the same in every reader, with no font installed on the reader's side. The text is stored with its Unicode mapping
(ToUnicode), so it can be copied, searched and checked.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

from reportlab.lib.enums import TA_CENTER, TA_RIGHT
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFError, TTFont
from reportlab.platypus import Flowable, Paragraph, SimpleDocTemplate, Spacer

from backend.clock import agency_zone

FONT = "DocumentFont"  # the name the styles use; `use_font` registers the file behind it at start-up
_FONT_CHECK = "应急管理局责令限期整改指令书〔〕：，0123456789ABCabc"  # characters every document prints

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
    "review_opinion": "整改复查意见书",
}
# 文书代字 as enforcement apps in use print them (PROCEDURE.md §B2: practice, not an official 式样; 应急检记、应急责改、
# 应急罚、应急复查)
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
    "review_opinion": "复查",
}
# the Chinese names of a case's statuses and of the kinds of its records, as the case file (案卷) and the console show them
CASE_STATUS_NAMES = {
    "open": "已立案",
    "decision_draft": "拟处罚决定",
    "legal_review": "待法制审核",
    "approved": "法制审核通过",
    "notified": "已告知",
    "hearing_requested": "已申请听证",
    "hearing_scheduled": "已安排听证",
    "heard": "已听证",
    "decided": "已作出决定",
    "delivered": "已送达",
    "executed": "执行完毕",
    "closed": "已结案",
}
RECORD_KIND_NAMES = {
    "notice": "执法告知",
    "onsite_check": "现场检查",
    "feedback": "交流反馈",
    "interview": "询问",
    "sampling": "抽样取证",
    "measure": "现场处理措施",
    "delivery": "送达",
    "note": "记录",
    "statement": "陈述申辩",
    "reply": "复核意见",
    "hearing": "听证",
    "discussion": "集体讨论",
    "approval": "负责人审批",
    "decision": "处罚决定",
    "payment": "缴纳罚款",
    "closing": "结案",
}
# whom the header names as the enterprise, where it is not the party (当事人) of a penalty procedure
PARTY_LABELS = {"inspection_record": "被检查单位", "rectification_order": "被检查单位", "review_opinion": "被复查单位"}


def use_font(path: Path, index: int = 0) -> None:
    """Register the TrueType font every PDF embeds (the face `index` of a .ttc collection). Raises RuntimeError, naming
    the setting and the package to install, when the file is missing, is no TrueType font reportlab can embed (a
    CFF-based .otf is not), or lacks Chinese glyphs (the documents would show empty boxes)."""
    hint = (
        "install it (Debian: apt-get install fonts-wqy-microhei; ./run.sh does) or set PDF_FONT_PATH to a TrueType font with Chinese glyphs"
    )
    if not path.is_file():
        raise RuntimeError(f"PDF_FONT_PATH: the font {path} was not found: {hint}")
    try:
        font = TTFont(FONT, str(path), subfontIndex=index)
    except (TTFError, OSError, IndexError) as exc:
        raise RuntimeError(f"PDF_FONT_PATH: {path} (PDF_FONT_INDEX={index}) cannot be embedded: {exc}; {hint}") from exc
    lacking = sorted({ch for ch in _FONT_CHECK if ord(ch) not in font.face.charToGlyph})
    if lacking:
        raise RuntimeError(f"PDF_FONT_PATH: {path} has no glyphs for {''.join(lacking)}; {hint}")
    pdfmetrics.registerFont(font)


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
        (PARTY_LABELS.get(content.type, "当事人"), content.enterprise_name),
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
