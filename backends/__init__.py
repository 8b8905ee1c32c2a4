"""Adapters: one sub-package per port in `domain.ports`, one module per implementation."""
