"""The studio's rules: entities, permissions, pricing, the job state machine. No cloud SDKs here."""
