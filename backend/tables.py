"""Every table, imported in one place so that migrations and tests see the whole schema."""

from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, User
from backend.audit import AuditLog
from backend.checklists.models import Checklist, ChecklistItem

__all__ = ["Agency", "AuditLog", "Checklist", "ChecklistItem", "Enterprise", "EnterpriseTopic", "User"]
