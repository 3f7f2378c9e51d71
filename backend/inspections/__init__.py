"""Field inspections (检查): checklist-driven, offline-first."""
