"""Backend for safety-production law enforcement and hidden-hazard management (安全生产执法检查与隐患排查治理)."""
