"""Shared validators: names, labels, annotations, ObjectMeta.

The ``is_*`` functions return plain messages (empty list = valid), worded as upstream's
``k8s.io/apimachinery/pkg/util/validation`` so clients see the errors they know; the
``validate_*`` functions turn them into :class:`~kubeha.api.errors.Cause` lists at a field path.
"""

from __future__ import annotations

import re
from typing import Any

from kubeha.api import errors
from kubeha.api.errors import Cause
from kubeha.api.schema import Obj

FIELD_IMMUTABLE = "field is immutable"
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024

DNS1123_LABEL_MAX = 63
DNS1123_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63

_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = _DNS1123_LABEL_FMT + "(\\." + _DNS1123_LABEL_FMT + ")*"
_DNS1035_LABEL_FMT = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QNAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE_FMT = "(" + _QNAME_FMT + ")?"
_C_IDENTIFIER_FMT = "[A-Za-z_][A-Za-z0-9_]*"
_CONFIG_MAP_KEY_FMT = "[-._a-zA-Z0-9]+"

_DNS1123_LABEL_RE = re.compile(f"^{_DNS1123_LABEL_FMT}$")
_DNS1123_SUBDOMAIN_RE = re.compile(f"^{_DNS1123_SUBDOMAIN_FMT}$")
_DNS1035_LABEL_RE = re.compile(f"^{_DNS1035_LABEL_FMT}$")
_QNAME_RE = re.compile(f"^{_QNAME_FMT}$")
_LABEL_VALUE_RE = re.compile(f"^{_LABEL_VALUE_FMT}$")
_C_IDENTIFIER_RE = re.compile(f"^{_C_IDENTIFIER_FMT}$")
_CONFIG_MAP_KEY_RE = re.compile(f"^{_CONFIG_MAP_KEY_FMT}$")
_PORT_NAME_CHARSET_RE = re.compile("^[-a-z0-9]+$")
_PORT_NAME_ONE_LETTER_RE = re.compile("[a-z]")

_QNAME_ERR = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an alphanumeric character"
)

# Finalizers the API itself understands; any other finalizer must be domain-qualified.
STANDARD_FINALIZERS = frozenset({"kubernetes", "orphan", "foregroundDeletion"})


# -- message builders (upstream wording) ----------------------------------------------------------------


def max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(msg: str, fmt: str, *examples: str) -> str:
    if not examples:
        return f"{msg} (regex used for validation is '{fmt}')"
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def empty_error() -> str:
    return "must be non-empty"


def inclusive_range_error(lo: int, hi: int) -> str:
    return f"must be between {lo} and {hi}, inclusive"


# -- string checks ----------------------------------------------------------------------------------------


def is_dns1123_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1123_LABEL_RE.match(value):
        if _DNS1123_SUBDOMAIN_RE.match(value):
            errs.append("must not contain dots")
        else:
            errs.append(
                regex_error(
                    "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', "
                    "and must start and end with an alphanumeric character",
                    _DNS1123_LABEL_FMT,
                    "my-name",
                    "123-abc",
                )
            )
    return errs


def is_dns1123_subdomain(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _DNS1123_SUBDOMAIN_RE.match(value):
        errs.append(
            regex_error(
                "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
                "and must start and end with an alphanumeric character",
                _DNS1123_SUBDOMAIN_FMT,
                "example.com",
            )
        )
    return errs


def is_dns1035_label(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > DNS1123_LABEL_MAX:
        errs.append(max_len_error(DNS1123_LABEL_MAX))
    if not _DNS1035_LABEL_RE.match(value):
        errs.append(
            regex_error(
                "a DNS-1035 label must consist of lower case alphanumeric characters or '-', "
                "start with an alphabetic character, and end with an alphanumeric character",
                _DNS1035_LABEL_FMT,
                "my-name",
                "abc-123",
            )
        )
    return errs


def is_qualified_name(value: str) -> list[str]:
    """A label key / annotation key / finalizer: ``[prefix/]name`` with a DNS subdomain prefix."""
    errs: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errs.append("prefix part " + empty_error())
        else:
            errs.extend("prefix part " + m for m in is_dns1123_subdomain(prefix))
    else:
        return [
            "a qualified name "
            + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errs.append("name part " + empty_error())
    elif len(name) > QUALIFIED_NAME_MAX:
        errs.append("name part " + max_len_error(QUALIFIED_NAME_MAX))
    if not _QNAME_RE.match(name):
        errs.append("name part " + regex_error(_QNAME_ERR, _QNAME_FMT, "MyName", "my.name", "123-abc"))
    return errs


def is_valid_label_value(value: str) -> list[str]:
    errs: list[str] = []
    if len(value) > LABEL_VALUE_MAX:
        errs.append(max_len_error(LABEL_VALUE_MAX))
    if not _LABEL_VALUE_RE.match(value):
        errs.append(
            regex_error(
                "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character",
                _LABEL_VALUE_FMT,
                "MyValue",
                "my_value",
                "12345",
            )
        )
    return errs


def is_c_identifier(value: str) -> list[str]:
    if _C_IDENTIFIER_RE.match(value):
        return []
    return [
        regex_error(
            "a valid C identifier must start with alphabetic character or '_', followed by a string of "
            "alphanumeric characters or '_'",
            _C_IDENTIFIER_FMT,
            "my_name",
            "MY_NAME",
            "MyName",
        )
    ]


def _chdir_prefix(value: str) -> list[str]:
    if value == ".":
        return ["must not be '.'"]
    if value == "..":
        return ["must not be '..'"]
    if value.startswith(".."):
        return ["must not start with '..'"]
    return []


def is_config_map_key(value: str) -> list[str]:
    """Keys of ConfigMaps and Secrets (also the file names they project to)."""
    errs: list[str] = []
    if len(value) > DNS1123_SUBDOMAIN_MAX:
        errs.append(max_len_error(DNS1123_SUBDOMAIN_MAX))
    if not _CONFIG_MAP_KEY_RE.match(value):
        errs.append(
            regex_error(
                "a valid config key must consist of alphanumeric characters, '-', '_' or '.'",
                _CONFIG_MAP_KEY_FMT,
                "key.name",
                "KEY_NAME",
                "key-name",
            )
        )
    errs.extend(_chdir_prefix(value))
    return errs


def is_valid_port_num(port: Any) -> list[str]:
    if isinstance(port, int) and not isinstance(port, bool) and 1 <= port <= 65535:
        return []
    return [inclusive_range_error(1, 65535)]


def is_valid_port_name(port: str) -> list[str]:
    """An IANA_SVC_NAME: at most 15 characters, a-z0-9 and single inner hyphens, one letter at least."""
    errs: list[str] = []
    if len(port) > 15:
        errs.append(max_len_error(15))
    if not _PORT_NAME_CHARSET_RE.match(port):
        errs.append("must contain only alpha-numeric characters (a-z, 0-9), and hyphens (-)")
    if not _PORT_NAME_ONE_LETTER_RE.search(port):
        errs.append("must contain at least one letter (a-z)")
    if "--" in port:
        errs.append("must not contain consecutive hyphens")
    if port and (port[0] == "-" or port[-1] == "-"):
        errs.append("must not begin or end with a hyphen")
    return errs


def is_valid_path_segment_name(value: str) -> list[str]:
    """Names usable as one URL path segment (``name_kind`` "path")."""
    if value in (".", ".."):
        return [f"may not be '{value}'"]
    errs = []
    for bad in ("/", "%"):
        if bad in value:
            errs.append(f"may not contain '{bad}'")
    return errs


def name_checker(name_kind: str) -> Any:
    """The name check for a Strategy.name_kind: "subdomain", "label" or "path"."""
    return {"subdomain": is_dns1123_subdomain, "label": is_dns1123_label, "path": is_valid_path_segment_name}[name_kind]


def _mask_trailing_dash(name: str) -> str:
    # generateName is a prefix: a trailing dash is fine because a suffix follows it.
    if len(name) > 1 and name.endswith("-"):
        return name[:-2] + "a"
    return name


# -- field validators -------------------------------------------------------------------------------------


def validate_labels(labels: Any, path: str) -> list[Cause]:
    if not labels:
        return []
    if not isinstance(labels, dict):
        return [errors.invalid_value(path, labels, "must be a map of string keys to string values")]
    causes: list[Cause] = []
    for k, v in labels.items():
        causes.extend(errors.invalid_value(path, k, m) for m in is_qualified_name(str(k)))
        if not isinstance(v, str):
            causes.append(errors.invalid_value(path, v, "must be a string"))
            continue
        causes.extend(errors.invalid_value(path, v, m) for m in is_valid_label_value(v))
    return causes


def validate_annotations(annotations: Any, path: str) -> list[Cause]:
    if not annotations:
        return []
    if not isinstance(annotations, dict):
        return [errors.invalid_value(path, annotations, "must be a map of string keys to string values")]
    causes: list[Cause] = []
    total = 0
    for k, v in annotations.items():
        causes.extend(errors.invalid_value(path, k, m) for m in is_qualified_name(str(k).lower()))
        total += len(str(k).encode()) + len(str(v).encode())
    if total > TOTAL_ANNOTATION_SIZE_LIMIT:
        causes.append(errors.too_long(path, "", TOTAL_ANNOTATION_SIZE_LIMIT))
    return causes


def validate_owner_references(refs: Any, path: str) -> list[Cause]:
    if not refs:
        return []
    causes: list[Cause] = []
    first_controller = ""
    for ref in refs:
        if not isinstance(ref, dict):
            causes.append(errors.invalid_value(path, ref, "must be an object"))
            continue
        api_version = ref.get("apiVersion") or ""
        version = api_version.rsplit("/", 1)[-1]
        if not version:
            causes.append(errors.invalid_value(f"{path}.apiVersion", api_version, "version must not be empty"))
        if not ref.get("kind"):
            causes.append(errors.invalid_value(f"{path}.kind", ref.get("kind") or "", "kind must not be empty"))
        if not ref.get("name"):
            causes.append(errors.invalid_value(f"{path}.name", ref.get("name") or "", "name must not be empty"))
        if not ref.get("uid"):
            causes.append(errors.invalid_value(f"{path}.uid", ref.get("uid") or "", "uid must not be empty"))
        if api_version == "v1" and ref.get("kind") == "Event":
            causes.append(errors.invalid_value(path, "Event", "/v1, Kind=Event is disallowed from being an owner"))
        if ref.get("controller") is True:
            current = f"{ref.get('kind', '')}/{ref.get('name', '')}"
            if first_controller:
                causes.append(
                    errors.invalid_value(
                        path,
                        "[...]",
                        'Only one reference can have Controller set to true. Found "true" in references for '
                        f"{first_controller} and {current}",
                    )
                )
            else:
                first_controller = current
    return causes


def validate_finalizers(finalizers: Any, path: str) -> list[Cause]:
    if not finalizers:
        return []
    causes: list[Cause] = []
    for fin in finalizers:
        if not isinstance(fin, str):
            causes.append(errors.invalid_value(path, fin, "must be a string"))
            continue
        msgs = is_qualified_name(fin)
        causes.extend(errors.invalid_value(path, fin, m) for m in msgs)
        if not msgs and "/" not in fin and fin not in STANDARD_FINALIZERS:
            causes.append(
                errors.invalid_value(path, fin, "name is neither a standard finalizer name nor is it fully qualified")
            )
    if "orphan" in finalizers and "foregroundDeletion" in finalizers:
        causes.append(errors.invalid_value(path, "[...]", "finalizer orphan and foregroundDeletion cannot be both set"))
    return causes


def validate_nonnegative(value: Any, path: str) -> list[Cause]:
    if value is None:
        return []
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        return [errors.invalid_value(path, value, "must be greater than or equal to 0")]
    return []


def validate_port_number(value: Any, path: str) -> list[Cause]:
    return [errors.invalid_value(path, value, m) for m in is_valid_port_num(value)]


def validate_dns1123_label(value: str, path: str) -> list[Cause]:
    return [errors.invalid_value(path, value, m) for m in is_dns1123_label(value)]


def validate_dns1123_subdomain(value: str, path: str) -> list[Cause]:
    return [errors.invalid_value(path, value, m) for m in is_dns1123_subdomain(value)]


def validate_immutable(new_value: Any, old_value: Any, path: str) -> list[Cause]:
    if new_value != old_value:
        return [errors.invalid_value(path, new_value, FIELD_IMMUTABLE)]
    return []


def validate_object_meta(obj: Obj, namespaced: bool, name_kind: str = "subdomain") -> list[Cause]:
    """Upstream ValidateObjectMeta for ``obj["metadata"]`` (paths start with ``metadata.``)."""
    meta = obj.get("metadata")
    if not isinstance(meta, dict):
        meta = {}
    check = name_checker(name_kind)
    causes: list[Cause] = []
    generate_name = meta.get("generateName") or ""
    if generate_name:
        causes.extend(
            errors.invalid_value("metadata.generateName", generate_name, m)
            for m in check(_mask_trailing_dash(generate_name))
        )
    name = meta.get("name") or ""
    if not name:
        causes.append(errors.required("metadata.name", "name or generateName is required"))
    else:
        causes.extend(errors.invalid_value("metadata.name", name, m) for m in check(name))
    namespace = meta.get("namespace") or ""
    if namespaced:
        if not namespace:
            causes.append(errors.required("metadata.namespace"))
        else:
            causes.extend(errors.invalid_value("metadata.namespace", namespace, m) for m in is_dns1123_label(namespace))
    elif namespace:
        causes.append(errors.forbidden_field("metadata.namespace", "not allowed on this type"))
    causes.extend(validate_nonnegative(meta.get("generation"), "metadata.generation"))
    causes.extend(validate_labels(meta.get("labels"), "metadata.labels"))
    causes.extend(validate_annotations(meta.get("annotations"), "metadata.annotations"))
    causes.extend(validate_owner_references(meta.get("ownerReferences"), "metadata.ownerReferences"))
    causes.extend(validate_finalizers(meta.get("finalizers"), "metadata.finalizers"))
    return causes


def validate_object_meta_update(new: Obj, old: Obj) -> list[Cause]:
    """Upstream ValidateObjectMetaUpdate: identity fields are immutable.

    An absent ``uid`` / ``creationTimestamp`` in the new object counts as unchanged, because the
    update path fills them from the stored object first (see :func:`fill_update_meta`).
    """
    nm = new.get("metadata") or {}
    om = old.get("metadata") or {}
    causes: list[Cause] = []
    if om.get("deletionTimestamp"):
        added = sorted(set(nm.get("finalizers") or []) - set(om.get("finalizers") or []))
        if added:
            shown = "[]string{" + ", ".join(f'"{a}"' for a in added) + "}"
            causes.append(
                errors.forbidden_field(
                    "metadata.finalizers",
                    f"no new finalizers can be added if the object is being deleted, found new finalizers {shown}",
                )
            )
    causes.extend(validate_immutable(nm.get("name") or "", om.get("name") or "", "metadata.name"))
    causes.extend(validate_immutable(nm.get("namespace") or "", om.get("namespace") or "", "metadata.namespace"))
    for key in ("uid", "creationTimestamp"):
        if nm.get(key):
            causes.extend(validate_immutable(nm.get(key), om.get(key), f"metadata.{key}"))
    causes.extend(
        validate_immutable(nm.get("deletionTimestamp"), om.get("deletionTimestamp"), "metadata.deletionTimestamp")
    )
    if om.get("deletionGracePeriodSeconds") is not None or nm.get("deletionGracePeriodSeconds") is not None:
        causes.extend(
            validate_immutable(
                nm.get("deletionGracePeriodSeconds"),
                om.get("deletionGracePeriodSeconds"),
                "metadata.deletionGracePeriodSeconds",
            )
        )
    causes.extend(validate_labels(nm.get("labels"), "metadata.labels"))
    causes.extend(validate_annotations(nm.get("annotations"), "metadata.annotations"))
    causes.extend(validate_owner_references(nm.get("ownerReferences"), "metadata.ownerReferences"))
    return causes


def fill_update_meta(new: Obj, old: Obj) -> None:
    """What upstream's update path does before validation: keep the stored system fields.

    uid and creationTimestamp come from the stored object when the client left them out, the
    generation is the stored one (strategies bump it), and a deletion timestamp or grace period
    can never be removed by an update.
    """
    nm = new.setdefault("metadata", {})
    om = old.get("metadata") or {}
    if not nm.get("uid") and om.get("uid"):
        nm["uid"] = om["uid"]
    if om.get("creationTimestamp"):
        nm["creationTimestamp"] = om["creationTimestamp"]
    if "generation" in om:
        nm["generation"] = om["generation"]
    else:
        nm.pop("generation", None)
    if om.get("deletionTimestamp"):
        nm["deletionTimestamp"] = om["deletionTimestamp"]
    if om.get("deletionGracePeriodSeconds") is not None and nm.get("deletionGracePeriodSeconds") is None:
        nm["deletionGracePeriodSeconds"] = om["deletionGracePeriodSeconds"]
