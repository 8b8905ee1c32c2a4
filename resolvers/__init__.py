"""Thin resolvers: who is asking → one domain call → schema types."""
