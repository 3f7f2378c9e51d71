"""Offline sync (离线同步): an ordered, resumable feed of changes scoped to the caller."""
