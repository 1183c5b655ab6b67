"""The web page's security headers: one definition for the deployed CloudFront policy and the local stack.

Plain Python (no CDK import), so ``infra.local`` reads it without starting the CDK runtime.
"""

from __future__ import annotations

# The page loads nothing from other origins (web/ has no build step and no CDN); 'none' for everything else.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
REFERRER_POLICY = "no-referrer"
HSTS_MAX_AGE_S = 730 * 86_400
