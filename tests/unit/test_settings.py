"""Production refuses what it cannot run with, by strength and by kind, each setting named;
development runs on its defaults."""

import secrets

import pytest
from cryptography.fernet import Fernet
from pydantic import ValidationError

from switchboard.settings import Settings

STRONG = {
    "admin_token": secrets.token_urlsafe(32),
    "service_token": secrets.token_hex(16),  # `openssl rand -hex 16` is strong enough
    "twilio_auth_token": secrets.token_hex(16),
    "exotel_api_token": "",  # every tenant brings its own
    "secrets_key": Fernet.generate_key().decode(),
    "bootstrap_admin_password": "Summer rain 2026",
    "public_url": "https://voice.example.com",
}


def production(**overrides: object) -> Settings:
    return Settings(_env_file=None, environment="production", **(STRONG | overrides))


def test_development_runs_on_its_defaults():
    assert Settings(_env_file=None).environment == "development"


def test_production_with_real_secrets_and_a_public_url_starts():
    assert production().public_url is not None
    assert production(oidc_server_url="https://id.example.com").oidc_server_url is not None


def test_production_refuses_weak_secrets_private_tools_and_no_public_url_naming_each():
    with pytest.raises(ValidationError) as refused:
        production(
            admin_token="x",
            service_token="password",
            bootstrap_admin_password="a",
            tenant_outbound_allow_private=True,
            public_url=None,
        )
    message = str(refused.value)
    for setting in (
        "SWITCHBOARD_ADMIN_TOKEN",
        "SWITCHBOARD_SERVICE_TOKEN",
        "SWITCHBOARD_BOOTSTRAP_ADMIN_PASSWORD",
        "SWITCHBOARD_TENANT_OUTBOUND_ALLOW_PRIVATE",
        "SWITCHBOARD_PUBLIC_URL",
    ):
        assert setting in message
    assert "SWITCHBOARD_TWILIO_AUTH_TOKEN" not in message  # that one is fine


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"admin_token": "password" * 4}, "SWITCHBOARD_ADMIN_TOKEN"),  # long, a pattern
        ({"service_token": "0123456789abcdef" * 2}, "SWITCHBOARD_SERVICE_TOKEN"),
        ({"twilio_auth_token": "dev-twilio-auth-token"}, "SWITCHBOARD_TWILIO_AUTH_TOKEN"),
        ({"bootstrap_admin_password": "aaaaaaaaaaaaaaaa"}, "BOOTSTRAP_ADMIN_PASSWORD"),
        ({"oidc_server_url": "http://keycloak:8080"}, "SWITCHBOARD_OIDC_SERVER_URL must be https"),
        ({"secrets_key": None}, "SWITCHBOARD_SECRETS_KEY"),
    ],
)
def test_production_refuses_each_weakness_alone(overrides, named):
    with pytest.raises(ValidationError, match=named):
        production(**overrides)
