"""Job queue adapters: the jobs documents themselves (embedded), or Cloud Tasks."""
