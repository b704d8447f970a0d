"""discovery.k8s.io/v1 EndpointSlice: the scalable form of a service's endpoints."""

from __future__ import annotations

import ipaddress

from kubeha.api import registry
from kubeha.api.errors import Cause, duplicate, invalid_value, not_supported, required
from kubeha.api.registry import ResourceInfo, Strategy
from kubeha.api.schema import BOOL, CORE, INT32, META, STRING, Obj, f, list_of, map_of, struct, type_meta_fields
from kubeha.api.validation import is_dns1123_label, is_dns1123_subdomain, validate_immutable

GROUP = "discovery.k8s.io"
VERSION = "v1"
P = "io.k8s.api.discovery.v1."
ADDRESS_TYPES = ("IPv4", "IPv6", "FQDN")
PROTOCOLS = ("TCP", "UDP", "SCTP")
MAX_ENDPOINTS = 1000
MAX_PORTS = 100
MAX_ADDRESSES = 100

struct(
    P + "EndpointConditions",
    "Current condition of an endpoint.",
    f("ready", 1, BOOL, "Endpoint is ready to receive traffic.", pointer=True),
    f("serving", 2, BOOL, "Endpoint is able to receive traffic (also while terminating).", pointer=True),
    f("terminating", 3, BOOL, "Endpoint is terminating.", pointer=True),
)
struct(P + "ForZone", "A zone that should consume an endpoint.", f("name", 1, STRING, "Zone name.", required=True))
struct(P + "ForNode", "A node that should consume an endpoint.", f("name", 1, STRING, "Node name.", required=True))
struct(
    P + "EndpointHints",
    "Hints for how an endpoint should be consumed.",
    f("forZones", 1, list_of(P + "ForZone"), "Zones that should consume this endpoint.", list_type="atomic"),
    f("forNodes", 2, list_of(P + "ForNode"), "Nodes that should consume this endpoint.", list_type="atomic"),
)
struct(
    P + "Endpoint",
    "A single logical backend of a service.",
    f(
        "addresses",
        1,
        list_of(STRING),
        "Addresses of this endpoint (interpreted per addressType).",
        required=True,
        list_type="set",
    ),
    f("conditions", 2, P + "EndpointConditions", "Current condition of the endpoint."),
    f("hostname", 3, STRING, "Hostname of this endpoint (a DNS label).", pointer=True),
    f("targetRef", 4, CORE + "ObjectReference", "Object backing this endpoint, usually a pod."),
    f("deprecatedTopology", 5, map_of(STRING), "Deprecated topology labels."),
    f("nodeName", 6, STRING, "Node hosting this endpoint.", pointer=True),
    f("zone", 7, STRING, "Zone this endpoint is in.", pointer=True),
    f("hints", 8, P + "EndpointHints", "Hints for consuming this endpoint."),
)
struct(
    P + "EndpointPort",
    "A port used by an EndpointSlice.",
    f("name", 1, STRING, "Port name (a DNS label or empty).", pointer=True, default=""),
    f("protocol", 2, STRING, "IP protocol: TCP, UDP or SCTP.", pointer=True, default="TCP", enum=PROTOCOLS),
    f("port", 3, INT32, "Port number.", pointer=True),
    f("appProtocol", 4, STRING, "Application protocol of this port.", pointer=True),
)
struct(
    P + "EndpointSlice",
    "A subset of the endpoints that implement a service.",
    *type_meta_fields(),
    f("metadata", 1, META + "ObjectMeta", "Standard object metadata."),
    f(
        "addressType",
        4,
        STRING,
        "Type of address carried by this slice: IPv4, IPv6 or FQDN (immutable).",
        required=True,
        immutable=True,
        enum=ADDRESS_TYPES,
    ),
    f("endpoints", 2, list_of(P + "Endpoint"), "Unique endpoints in this slice.", required=True, list_type="atomic"),
    f("ports", 3, list_of(P + "EndpointPort"), "Network ports exposed by each endpoint.", list_type="atomic"),
    gvk=(GROUP, VERSION, "EndpointSlice"),
)
struct(
    P + "EndpointSliceList",
    "A list of EndpointSlices.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("items", 2, list_of(P + "EndpointSlice"), "The slices.", required=True),
    gvk=(GROUP, VERSION, "EndpointSliceList"),
)


def _validate_address(addr: str, address_type: str, path: str) -> list[Cause]:
    if address_type == "FQDN":
        return [invalid_value(path, addr, m) for m in is_dns1123_subdomain(addr)]
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return [invalid_value(path, addr, f"must be a valid {address_type} address")]
    if (address_type == "IPv4") != (ip.version == 4):
        return [invalid_value(path, addr, f"must be a valid {address_type} address")]
    return []


class EndpointSliceStrategy(Strategy):
    track_generation = False

    def default(self, obj: Obj) -> None:
        for port in obj.get("ports") or []:
            if isinstance(port, dict):
                port.setdefault("name", "")
                port.setdefault("protocol", "TCP")

    def validate(self, obj: Obj) -> list[Cause]:
        causes: list[Cause] = []
        address_type = obj.get("addressType")
        if not address_type:
            causes.append(required("addressType"))
        elif address_type not in ADDRESS_TYPES:
            causes.append(not_supported("addressType", address_type, list(ADDRESS_TYPES)))
        endpoints = obj.get("endpoints") or []
        if len(endpoints) > MAX_ENDPOINTS:
            causes.append(
                Cause(
                    "FieldValueTooMany",
                    "endpoints",
                    f"Too many: {len(endpoints)}: must have at most {MAX_ENDPOINTS} items",
                )
            )
        for i, ep in enumerate(endpoints):
            p = f"endpoints[{i}]"
            addrs = ep.get("addresses") or []
            if not addrs:
                causes.append(required(f"{p}.addresses", "must contain at least 1 address"))
            elif len(addrs) > MAX_ADDRESSES:
                causes.append(
                    Cause(
                        "FieldValueTooMany",
                        f"{p}.addresses",
                        f"Too many: {len(addrs)}: must have at most {MAX_ADDRESSES} items",
                    )
                )
            if address_type in ADDRESS_TYPES:
                for j, addr in enumerate(addrs):
                    causes += _validate_address(str(addr), address_type, f"{p}.addresses[{j}]")
            hostname = ep.get("hostname")
            if hostname:
                causes += [invalid_value(f"{p}.hostname", hostname, m) for m in is_dns1123_label(hostname)]
            node = ep.get("nodeName")
            if node:
                causes += [invalid_value(f"{p}.nodeName", node, m) for m in is_dns1123_subdomain(node)]
        ports = obj.get("ports") or []
        if len(ports) > MAX_PORTS:
            causes.append(
                Cause("FieldValueTooMany", "ports", f"Too many: {len(ports)}: must have at most {MAX_PORTS} items")
            )
        seen: set[str] = set()
        for i, port in enumerate(ports):
            p = f"ports[{i}]"
            name = port.get("name") or ""
            if name:
                causes += [invalid_value(f"{p}.name", name, m) for m in is_dns1123_label(name)]
            if name in seen:
                causes.append(duplicate(f"{p}.name", name))
            seen.add(name)
            proto = port.get("protocol")
            if proto is not None and proto not in PROTOCOLS:
                causes.append(not_supported(f"{p}.protocol", proto, list(PROTOCOLS)))
            num = port.get("port")
            if num is not None and (not isinstance(num, int) or isinstance(num, bool) or not 1 <= num <= 65535):
                causes.append(invalid_value(f"{p}.port", num, "must be between 1 and 65535, inclusive"))
        return causes

    def validate_update(self, new: Obj, old: Obj) -> list[Cause]:
        return self.validate(new) + list(
            validate_immutable(new.get("addressType"), old.get("addressType"), "addressType")
        )


ENDPOINTSLICES = registry.register(
    ResourceInfo(
        GROUP, VERSION, "endpointslices", "EndpointSlice", True, P + "EndpointSlice", strategy=EndpointSliceStrategy()
    )
)
