"""The built-in issuer's token endpoint under password guessing."""

from common.failures import LocalFailures
from control_plane.identity import passwords
from tests.integration.test_failures import Clock

TOKEN_URL = "/realms/switchboard/protocol/openid-connect/token"


def sign_in(client, username: str, password: str):
    form = {"grant_type": "password", "client_id": "switchboard"}
    return client.post(TOKEN_URL, data=form | {"username": username, "password": password})


def test_a_guessed_password_is_slowed_then_refused_before_it_costs_a_hash(client, monkeypatch):
    clock = Clock()
    client.app.state.failures = LocalFailures(clock)
    for _ in range(6):  # five mistypes are free; the sixth starts the backoff
        assert sign_in(client, "admin", "wrong").status_code == 401
    hashed = []
    monkeypatch.setattr(passwords, "_verify", lambda *a: hashed.append(a) or True)
    refused = sign_in(client, "admin", "admin")  # even the right one, while waiting
    assert refused.status_code == 429 and refused.headers["Retry-After"] == "1"
    assert refused.json()["error"] == "too_many_attempts"
    assert not hashed  # refused before the hash
    monkeypatch.undo()
    clock.now += 1.5
    assert sign_in(client, "admin", "admin").status_code == 200  # and cleared
    assert sign_in(client, "admin", "wrong").status_code == 401  # free again


def test_one_address_guessing_many_accounts_is_slowed_too(client):
    client.app.state.failures = LocalFailures(Clock())
    for n in range(21):
        assert sign_in(client, f"user{n}", "wrong").status_code == 401
    assert sign_in(client, "admin", "admin").status_code == 429


def test_an_unknown_user_costs_the_same_hash_as_a_known_one(client, monkeypatch):
    client.app.state.failures = LocalFailures(Clock())
    real = passwords._verify
    hashed: list[str] = []
    monkeypatch.setattr(passwords, "_verify", lambda p, s: hashed.append(p) or real(p, s))
    assert sign_in(client, "nobody-by-this-name", "guess").status_code == 401
    assert sign_in(client, "admin", "guess").status_code == 401
    assert hashed == ["guess", "guess"]
    assert sign_in(client, "admin", "x" * 2000).status_code == 422  # no hash of a novel
