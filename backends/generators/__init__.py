"""Generator adapters: `local` (procedural, offline) and `vertex` (Google models on Vertex AI)."""
