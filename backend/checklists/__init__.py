"""Checklists (检查表): national standards loaded from checklists/, versioned by effective date."""
