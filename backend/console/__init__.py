"""The desk console: server-rendered pages under /console for legal reviewers, enterprises and leaders."""
