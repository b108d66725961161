"""Constant-time comparison of secrets that arrive as text."""

import hmac


def same_secret(given: str, expected: str) -> bool:
    """``hmac.compare_digest`` raises on non-ASCII text, which would turn a client's odd
    header into a 500; compared as UTF-8 bytes it is simply unequal."""
    return hmac.compare_digest(given.encode(), expected.encode())
