"""Every table, imported in one place so that migrations and tests see the whole schema."""

from backend.accidents.models import Accident, AccidentEvent, AccidentFinding, AccidentMeasure, AccidentProgress, AccidentReport
from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, LoginFailure, User
from backend.audit import AuditLog
from backend.checklists.models import Checklist, ChecklistItem
from backend.enforcement.models import (
    Case,
    CaseApproval,
    CaseDelivery,
    CaseDiscussion,
    CaseEvent,
    CaseHandler,
    CaseHearing,
    CasePayment,
    CaseRecord,
    CaseStatement,
    CaseStatementReply,
    Decision,
    DocumentCounter,
    DocumentDelivery,
    IssuedDocument,
    LegalReview,
)
from backend.evidence.models import Evidence
from backend.hazards.models import Hazard, HazardEvent, HazardTally
from backend.inspections.models import Inspection, InspectionChecklist, InspectionInspector, InspectionResult
from backend.integration.models import EventOutbox, Webhook, WebhookDelivery
from backend.planning.models import Draw, EnterpriseClassification, InspectorConflict, Plan, Task, TaskInspector
from backend.sync.models import ChangeLog

__all__ = [
    "Accident",
    "AccidentEvent",
    "AccidentFinding",
    "AccidentMeasure",
    "AccidentProgress",
    "AccidentReport",
    "Agency",
    "AuditLog",
    "Case",
    "CaseApproval",
    "CaseDelivery",
    "CaseDiscussion",
    "CaseEvent",
    "CaseHandler",
    "CaseHearing",
    "CasePayment",
    "CaseRecord",
    "CaseStatement",
    "CaseStatementReply",
    "ChangeLog",
    "Checklist",
    "ChecklistItem",
    "Decision",
    "DocumentCounter",
    "DocumentDelivery",
    "Draw",
    "Enterprise",
    "EnterpriseClassification",
    "EnterpriseTopic",
    "EventOutbox",
    "Evidence",
    "Hazard",
    "HazardEvent",
    "HazardTally",
    "Inspection",
    "InspectionChecklist",
    "InspectionInspector",
    "InspectionResult",
    "InspectorConflict",
    "IssuedDocument",
    "LegalReview",
    "LoginFailure",
    "Plan",
    "Task",
    "TaskInspector",
    "User",
    "Webhook",
    "WebhookDelivery",
]
