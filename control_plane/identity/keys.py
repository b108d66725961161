"""The built-in issuer's RS256 signing key: generated once, persisted, reused on restart
(tokens issued before a restart stay valid until they expire)."""

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwcrypto import jwk


def load_or_create_signing_key(path: Path) -> jwk.JWK:
    if path.exists():
        key = jwk.JWK.from_pem(path.read_bytes())
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        pem = private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # Written with owner-only permissions from the start, never world-readable.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        key = jwk.JWK.from_pem(pem)
    key.update(kid=key.thumbprint(), alg="RS256", use="sig")  # type: ignore[no-untyped-call]
    return key
