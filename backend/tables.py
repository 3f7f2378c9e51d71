"""Every table, imported in one place so that migrations and tests see the whole schema."""

from backend.accounts.models import Agency, Enterprise, EnterpriseTopic, User
from backend.audit import AuditLog

__all__ = ["Agency", "AuditLog", "Enterprise", "EnterpriseTopic", "User"]
