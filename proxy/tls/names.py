"""SPIFFE-style workload identities: `spiffe://<trust-domain>/cluster/<c>/ns/<ns>/sa/<sa>`."""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import urlsplit

DEFAULT_TRUST_DOMAIN = "meshtui.local"

_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


class InvalidIdentity(ValueError):
    """A name or URI that cannot form or parse as a workload identity; the message says which part and why."""


def check_label(what: str, value: str) -> str:
    if not isinstance(value, str) or not _LABEL.match(value):
        raise InvalidIdentity(f"{what} {value!r} is not a DNS label (lowercase a-z, 0-9 and '-', 1-63 characters)")
    return value


def check_subdomain(what: str, value: str) -> str:
    if not isinstance(value, str) or len(value) > 253 or not _SUBDOMAIN.match(value):
        raise InvalidIdentity(f"{what} {value!r} is not a DNS subdomain (dot-separated DNS labels, at most 253 characters)")
    return value


@dataclass(frozen=True, slots=True)
class Identity:
    trust_domain: str
    cluster: str
    namespace: str
    service_account: str

    def __post_init__(self) -> None:
        check_subdomain("trust domain", self.trust_domain)
        check_label("cluster", self.cluster)
        check_label("namespace", self.namespace)
        check_subdomain("service account", self.service_account)

    @property
    def uri(self) -> str:
        return f"spiffe://{self.trust_domain}/cluster/{self.cluster}/ns/{self.namespace}/sa/{self.service_account}"

    @property
    def dns_name(self) -> str:
        """The DNS SAN of this identity's certificates: the `server_hostname` a client checks."""
        return f"{self.service_account}.{self.namespace}.{self.cluster}.{self.trust_domain}"

    def __str__(self) -> str:
        return self.uri


def identity_from_uri(uri: str) -> Identity:
    """Parse a workload SPIFFE ID; raise InvalidIdentity naming what is wrong."""
    if not isinstance(uri, str):
        raise InvalidIdentity(f"identity URI must be a string, got {type(uri).__name__}")
    parts = urlsplit(uri)
    if parts.scheme != "spiffe":
        raise InvalidIdentity(f"identity URI {uri!r}: scheme must be 'spiffe'")
    if parts.query or parts.fragment or parts.port is not None or "@" in parts.netloc:
        raise InvalidIdentity(f"identity URI {uri!r}: must not carry a port, user, query or fragment")
    segments = parts.path.split("/")
    if len(segments) != 7 or segments[0] != "" or segments[1::2] != ["cluster", "ns", "sa"]:
        raise InvalidIdentity(f"identity URI {uri!r}: path must be /cluster/<cluster>/ns/<namespace>/sa/<serviceaccount>")
    try:
        return Identity(parts.netloc, segments[2], segments[4], segments[6])
    except InvalidIdentity as err:
        raise InvalidIdentity(f"identity URI {uri!r}: {err}") from None
