"""Identity: OIDC bearer tokens (Keycloak, or the built-in issuer with Keycloak's layout)."""
