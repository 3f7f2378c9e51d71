"""Enforcement cases (执法案件): full-process records, legal review, decisions and documents."""
