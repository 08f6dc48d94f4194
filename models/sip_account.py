"""Customers' own SIP trunks (PBX accounts); FreeSWITCH objects are derived from their ids."""
from __future__ import annotations

import peewee

from models.base import BaseModel, new_id, utcnow
from models.tenancy import Organization

TRANSPORTS = ("auto", "udp", "tcp", "tls")


class SipAccount(BaseModel):
    id = peewee.CharField(primary_key=True, max_length=36, default=new_id)
    organization = peewee.ForeignKeyField(Organization, backref="sip_accounts", on_delete="CASCADE")
    name = peewee.CharField(max_length=200)
    sip_server = peewee.CharField(max_length=260, null=True)  # host[:port]; empty = outbound disabled
    transport = peewee.CharField(max_length=4, default="auto")
    country = peewee.CharField(max_length=2, null=True)
    allowed_ips = peewee.TextField(default="")  # normalized, comma-separated IPv4 / CIDR
    outbound_username = peewee.CharField(max_length=64, null=True)
    outbound_password_enc = peewee.TextField(null=True)  # Fernet token, never returned
    inbound_username = peewee.CharField(max_length=64, null=True)
    inbound_password_enc = peewee.TextField(null=True)
    provisioned = peewee.BooleanField(default=False)
    provision_error = peewee.TextField(null=True)
    provisioned_at = peewee.DateTimeField(null=True)
    deleted_at = peewee.DateTimeField(null=True)
    created_at = peewee.DateTimeField(default=utcnow)
    updated_at = peewee.DateTimeField(default=utcnow)

    @property
    def object_suffix(self) -> str:
        """The id without dashes: FreeSWITCH names (vb_gw_<hex>) are built from it, never from user text."""
        return self.id.replace("-", "")

    @property
    def gateway_name(self) -> str:
        return f"vb_gw_{self.object_suffix}"

    @property
    def acl_name(self) -> str:
        return f"vb_acl_{self.object_suffix}"

    @property
    def directory_user(self) -> str:
        return f"vb_user_{self.object_suffix}"
