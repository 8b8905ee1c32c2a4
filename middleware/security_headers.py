"""The security headers every HTTP response carries, and HSTS when the public URL is https.

A response that sets a header itself keeps it (GraphiQL sets its own, looser Content-Security-Policy).
"""

from __future__ import annotations

# An API answers JSON and media, never a page of its own: nothing may load, frame or submit.
STRICT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
HSTS = "max-age=63072000; includeSubDomains"


def security_headers(*, hsts: bool) -> list[tuple[bytes, bytes]]:
    headers = [
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"x-frame-options", b"DENY"),
        (b"content-security-policy", STRICT_CSP.encode()),
    ]
    if hsts:
        headers.append((b"strict-transport-security", HSTS.encode()))
    return headers
