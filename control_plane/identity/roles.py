"""Realm roles and how a token's groups name tenants (Keycloak group path /tenants/<id>)."""

from typing import Literal

Role = Literal["platform-admin", "tenant-admin", "tenant-viewer"]
ROLES: tuple[Role, ...] = ("platform-admin", "tenant-admin", "tenant-viewer")
TENANT_GROUP_PREFIX = "/tenants/"


def tenant_group(tenant_id: str) -> str:
    return f"{TENANT_GROUP_PREFIX}{tenant_id}"
