"""RateLimiter adapters: the `limits` library on in-process memory (default) or Redis (shared)."""
