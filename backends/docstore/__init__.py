"""DocStore adapters: `sqlite` (embedded default) and `firestore` (Google Cloud)."""
