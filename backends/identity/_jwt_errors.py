"""What to tell a caller whose token PyJWT refused: short, fixed messages that leak nothing."""

from __future__ import annotations

import jwt


def reason(exc: jwt.InvalidTokenError) -> str:
    """A message safe to show for a PyJWT failure."""
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token expired"
    if isinstance(exc, jwt.ImmatureSignatureError):
        return "token not yet valid"
    if isinstance(exc, jwt.InvalidIssuedAtError):
        return "token has an invalid iat claim"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "token has the wrong audience"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "token has the wrong issuer"
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return f"token lacks the {exc.claim} claim"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "token signature is invalid"
    if isinstance(exc, jwt.DecodeError):
        return "malformed token"
    return "invalid token"
