"""BlobStore adapters: private media objects reachable through expiring signed URLs."""
