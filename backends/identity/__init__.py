"""IdentityProvider adapters: verify bearer tokens into a VerifiedIdentity."""
