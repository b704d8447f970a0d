"""A container's environment from its spec: value (with ``$(VAR)`` expansion), fieldRef,
resourceFieldRef, configMapKeyRef, secretKeyRef and envFrom, resolved as upstream does."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Awaitable, Callable, Mapping
from decimal import Decimal
from typing import Any

from kubeha.api.core.pod import parse_quantity

Obj = dict[str, Any]
# (kind "configmaps"|"secrets", namespace, name) -> object or None when absent
Lookup = Callable[[str, str, str], Awaitable[Obj | None]]
# as upstream's expansion: a name runs to the first ')' whatever it holds (relaxed env var names)
_REF = re.compile(r"\$\(([^)]*)\)|\$\$")
_SUBSCRIPT = re.compile(r"^metadata\.(labels|annotations)\['(.+)'\]$")


class EnvError(Exception):
    """A required referenced object or key is missing (the container cannot start:
    CreateContainerConfigError, as upstream)."""


def expand(value: str, env: Mapping[str, str]) -> str:
    """``$(VAR)`` → its value when defined (else left as is); ``$$`` → ``$``."""

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _REF.sub(sub, value)


def expand_command(container: Obj, env: Mapping[str, str]) -> Obj:
    """The container with ``$(VAR)`` in ``command`` and ``args`` expanded from its environment
    (upstream expands them before the runtime sees them; the shell never does)."""
    out = dict(container)
    for key in ("command", "args"):
        if container.get(key):
            out[key] = [expand(str(a), env) for a in container[key]]
    return out


_GO_ESCAPES = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t", "\v": "\\v"}


def go_quote(value: str) -> str:
    """``value`` as Go's ``%q`` writes it (upstream formats downward label/annotation values so):
    a line per entry stays one line, and quotes inside a value cannot end it."""
    out = ['"']
    for ch in value:
        if ch in ('"', "\\"):
            out.append("\\" + ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        elif ch.isprintable():
            out.append(ch)
        elif ord(ch) < 0x80:
            out.append(f"\\x{ord(ch):02x}")
        elif ord(ch) < 0x10000:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(f"\\U{ord(ch):08x}")
    out.append('"')
    return "".join(out)


def field_value(pod: Obj, path: str) -> str:
    meta = pod.get("metadata") or {}
    spec = pod.get("spec") or {}
    status = pod.get("status") or {}
    m = _SUBSCRIPT.match(path)
    if m:
        return str((meta.get(m.group(1)) or {}).get(m.group(2), ""))
    simple = {
        "metadata.name": meta.get("name"),
        "metadata.namespace": meta.get("namespace"),
        "metadata.uid": meta.get("uid"),
        "spec.nodeName": spec.get("nodeName"),
        "spec.serviceAccountName": spec.get("serviceAccountName"),
        "status.hostIP": status.get("hostIP"),
        "status.podIP": status.get("podIP"),
    }
    if path in simple:
        return str(simple[path] or "")
    if path == "status.podIPs":
        return ",".join(str(i.get("ip")) for i in status.get("podIPs") or ())
    if path == "status.hostIPs":
        return ",".join(str(i.get("ip")) for i in status.get("hostIPs") or ())
    if path in ("metadata.labels", "metadata.annotations"):
        items = meta.get(path.split(".")[1]) or {}
        return "\n".join(f"{k}={go_quote(str(v))}" for k, v in sorted(items.items()))
    raise EnvError(f"unsupported fieldRef {path!r}")


def resource_value(container: Obj, ref: Obj, allocatable: Mapping[str, str]) -> str:
    """``limits.cpu`` etc. divided by ``divisor`` and rounded up; an unset limit falls back to the
    node's allocatable, as upstream."""
    resource = str(ref.get("resource") or "")
    kind, _, name = resource.partition(".")
    res = container.get("resources") or {}
    raw = (res.get(kind) or {}).get(name)
    if raw is None:
        raw = allocatable.get(name, "0") if kind == "limits" else "0"
    value = parse_quantity(raw)
    divisor = parse_quantity(ref.get("divisor") or "1")
    if divisor == 0:
        divisor = Decimal(1)
    return str(math.ceil(value / divisor))


async def _source(lookup: Lookup, kind: str, ns: str, name: str, optional: bool) -> Obj | None:
    obj = await lookup(kind, ns, name)
    if obj is None and not optional:
        raise EnvError(f'{kind[:-1]} "{name}" not found')
    return obj


def _data(obj: Obj, kind: str) -> dict[str, str]:
    if kind == "secrets":
        return {k: base64.b64decode(v).decode(errors="replace") for k, v in (obj.get("data") or {}).items()}
    out = dict(obj.get("data") or {})
    for k, v in (obj.get("binaryData") or {}).items():
        out.setdefault(k, base64.b64decode(v).decode(errors="replace"))
    return out


def _env_name(name: str) -> str:
    return name.upper().replace("-", "_")


def service_env(services: list[Obj]) -> dict[str, str]:
    """The variables upstream's kubelet derives from Services: ``<NAME>_SERVICE_HOST`` /
    ``_SERVICE_PORT`` (``_SERVICE_PORT_<PORTNAME>`` per named port) and the Docker-link style
    ``<NAME>_PORT`` / ``<NAME>_PORT_<port>_<PROTO>[_PROTO|_PORT|_ADDR]``. Services without a
    cluster IP (headless, ExternalName) give none."""
    out: dict[str, str] = {}
    for svc in services:
        spec = svc.get("spec") or {}
        ip = str(spec.get("clusterIP") or "")
        ports = spec.get("ports") or []
        if not ip or ip == "None" or not ports:
            continue
        name = _env_name(str((svc.get("metadata") or {}).get("name") or ""))
        out[f"{name}_SERVICE_HOST"] = ip
        out[f"{name}_SERVICE_PORT"] = str(ports[0].get("port"))
        for p in ports:
            if p.get("name"):
                out[f"{name}_SERVICE_PORT_{_env_name(str(p['name']))}"] = str(p.get("port"))
        first = ports[0]
        out[f"{name}_PORT"] = f"{str(first.get('protocol') or 'TCP').lower()}://{ip}:{first.get('port')}"
        for p in ports:
            proto = str(p.get("protocol") or "TCP")
            prefix = f"{name}_PORT_{p.get('port')}_{proto.upper()}"
            out[prefix] = f"{proto.lower()}://{ip}:{p.get('port')}"
            out[f"{prefix}_PROTO"] = proto.lower()
            out[f"{prefix}_PORT"] = str(p.get("port"))
            out[f"{prefix}_ADDR"] = ip
    return out


def pod_services(pod: Obj, in_namespace: list[Obj], in_default: list[Obj]) -> list[Obj]:
    """Which Services feed a pod's environment, as upstream: the ``kubernetes`` Service of the
    default namespace always, and with ``enableServiceLinks`` (default true) every Service of the
    pod's own namespace (which win over the former on a name clash)."""
    chosen: dict[str, Obj] = {}
    for svc in in_default:
        if (svc.get("metadata") or {}).get("name") == "kubernetes":
            chosen["kubernetes"] = svc
    if (pod.get("spec") or {}).get("enableServiceLinks", True) is not False:
        for svc in in_namespace:
            chosen[str((svc.get("metadata") or {}).get("name"))] = svc
    return [chosen[k] for k in sorted(chosen)]


async def container_env(
    pod: Obj,
    container: Obj,
    lookup: Lookup,
    allocatable: Mapping[str, str],
    services: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of ``container``: the Services' variables (``services``), then envFrom,
    then env (later entries win and may refer to earlier ones and to the Services' variables
    with ``$(NAME)``)."""
    ns = str((pod.get("metadata") or {}).get("namespace") or "default")
    env: dict[str, str] = dict(services or {})
    for src in container.get("envFrom") or ():
        prefix = str(src.get("prefix") or "")
        for field, kind in (("configMapRef", "configmaps"), ("secretRef", "secrets")):
            ref = src.get(field)
            if ref:
                obj = await _source(lookup, kind, ns, str(ref.get("name")), bool(ref.get("optional")))
                if obj is not None:
                    for k, v in _data(obj, kind).items():
                        env[prefix + k] = v
    for var in container.get("env") or ():
        name = str(var.get("name"))
        if "valueFrom" not in var or not var.get("valueFrom"):
            env[name] = expand(str(var.get("value") or ""), env)
            continue
        vf = var["valueFrom"]
        if vf.get("fieldRef"):
            env[name] = field_value(pod, str(vf["fieldRef"].get("fieldPath")))
        elif vf.get("resourceFieldRef"):
            env[name] = resource_value(container, vf["resourceFieldRef"], allocatable)
        else:
            for field, kind in (("configMapKeyRef", "configmaps"), ("secretKeyRef", "secrets")):
                ref = vf.get(field)
                if not ref:
                    continue
                optional = bool(ref.get("optional"))
                obj = await _source(lookup, kind, ns, str(ref.get("name")), optional)
                if obj is None:
                    break
                data = _data(obj, kind)
                key = str(ref.get("key"))
                if key in data:
                    env[name] = data[key]
                elif not optional:
                    raise EnvError(f"couldn't find key {key} in {kind[:-1]} {ns}/{ref.get('name')}")
    return env
