"""Password hashing for the built-in issuer's users: scrypt from the standard library.

A hash is ~50 ms of CPU and 16 MB of memory by design. It runs in one worker thread
beside the event loop (scrypt releases the GIL), so sign-ins never hold up the calls'
audio, and at most one core is spent on them however many arrive: the rest wait their
turn (and the token endpoint's failure limits keep that queue short). An unknown user's
password is checked against a hash made at start-up, so it costs the same as a known
one's: the answer's timing does not tell which usernames exist.
"""

import asyncio
import hashlib
import hmac
import secrets
from concurrent.futures import ThreadPoolExecutor

_N, _R, _P = 2**14, 8, 1
_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-hash")


def _hash(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, n=_N, r=_R, p=_P)
    return f"scrypt${_N}${_R}${_P}${salt.hex()}${digest.hex()}"


def _verify(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(
        password.encode(), salt=bytes.fromhex(salt), n=int(n), r=int(r), p=int(p)
    )
    return hmac.compare_digest(candidate.hex(), digest)


_UNKNOWN_USER = _hash(secrets.token_urlsafe(16))


async def hash_password(password: str) -> str:
    return await asyncio.get_running_loop().run_in_executor(_POOL, _hash, password)


async def verify_password(password: str, stored: str | None) -> bool:
    """Whether ``password`` is the one ``stored`` was made from; for a user who does not
    exist (``stored`` None), the same work and False."""
    against = stored if stored is not None else _UNKNOWN_USER
    ok = await asyncio.get_running_loop().run_in_executor(_POOL, _verify, password, against)
    return ok and stored is not None
