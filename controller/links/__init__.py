"""Links between clusters (`meshtui link`): the Link resource one cluster holds for another's
gateway (credentials, address, probe spec) and the status its gateway probes feed."""
from .manifest import LINK_API_VERSION, TRUST_ANCHOR_ANNOTATION, link_manifest, link_name
from .status import exported_services, link_status

__all__ = ["LINK_API_VERSION", "TRUST_ANCHOR_ANNOTATION", "exported_services", "link_manifest", "link_name", "link_status"]
