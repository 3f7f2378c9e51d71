"""Agencies, users and enterprises: who acts, and over whom."""
