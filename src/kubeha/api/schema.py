"""The one declaration of every API type.

Each built-in type is a :class:`Struct` made of :class:`Field` entries. A field carries its JSON
name, its protobuf field number (upstream's wire contract, from ``generated.proto``), its type, a
short description, its default, and its strategic-merge metadata. Everything else -- JSON
decoding checks, protobuf decoding, OpenAPI documents, strategic merge patch, defaulting -- is
derived from these declarations by the modules next to this one.

Objects themselves are plain ``dict`` trees (the JSON form): that is what travels over the wire,
what etcd stores and what patches operate on, so no conversion sits on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

Obj = dict[str, Any]

# Scalar type names. "quantity", "time", "microtime", "intorstring", "rawextension" and "any" are
# the apimachinery special types; their JSON and protobuf forms differ (see codec modules).
SCALARS = frozenset(
    {
        "string",
        "int32",
        "int64",
        "bool",
        "double",
        "bytes",  # base64 string in JSON, raw bytes in protobuf
        "quantity",  # "100m", "1Gi"; protobuf message {1: string}
        "time",  # RFC 3339 seconds; protobuf {1: seconds, 2: nanos}
        "microtime",  # RFC 3339 with microseconds; protobuf as time
        "intorstring",  # 8080 or "http"; protobuf {1: type, 2: intVal, 3: strVal}
        "rawextension",  # any embedded JSON object; protobuf {1: raw bytes}
        "any",  # free-form JSON (e.g. FieldsV1); protobuf {1: raw bytes}
    }
)


@dataclass(frozen=True)
class Scalar:
    name: str


@dataclass(frozen=True)
class ListOf:
    item: TypeSpec


@dataclass(frozen=True)
class MapOf:
    """A JSON object with string keys; protobuf ``map<string, V>``."""

    value: TypeSpec


@dataclass(frozen=True)
class Ref:
    """A reference to a :class:`Struct` by its full OpenAPI name, resolved lazily."""

    name: str

    @property
    def struct(self) -> Struct:
        return STRUCTS[self.name]


TypeSpec = Scalar | ListOf | MapOf | Ref


@dataclass(frozen=True)
class Field:
    json: str
    number: int  # protobuf field number; 0 = JSON only (apiVersion/kind of top-level kinds)
    type: TypeSpec
    doc: str = ""
    required: bool = False
    default: Any = None  # applied by defaulting when the field is absent
    # A Go pointer / optional field: a zero value ("", 0, false) is meaningful and is kept after
    # protobuf decoding; other scalar fields drop zero values as Go's omitempty would.
    pointer: bool = False
    # strategic merge patch metadata (x-kubernetes-patch-strategy / -merge-key)
    strategy: str | None = None  # "merge", "replace", "retainKeys", "merge,retainKeys"
    merge_key: str | None = None
    # server-side apply metadata (x-kubernetes-list-type / -list-map-keys / -map-type)
    list_type: str | None = None  # "atomic", "set", "map"
    map_keys: tuple[str, ...] = ()
    enum: tuple[str, ...] | None = None
    immutable: bool = False  # documented as immutable after creation (validation enforces it)


@dataclass
class Struct:
    name: str  # full OpenAPI definition name, e.g. "io.k8s.api.core.v1.Pod"
    doc: str
    fields: list[Field]
    # (group, version, kind) for top-level kinds: x-kubernetes-group-version-kind
    gvk: tuple[str, str, str] | None = None
    by_json: dict[str, Field] = field(default_factory=dict, repr=False)
    by_number: dict[int, Field] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for f in self.fields:
            if f.json in self.by_json:
                raise ValueError(f"{self.name}: duplicate field {f.json}")
            self.by_json[f.json] = f
            if f.number:
                if f.number in self.by_number:
                    raise ValueError(f"{self.name}: duplicate field number {f.number}")
                self.by_number[f.number] = f

    @property
    def short_name(self) -> str:
        return self.name.rsplit(".", 1)[-1]


STRUCTS: dict[str, Struct] = {}
# (group, version, kind) -> struct, for top-level kinds
KINDS: dict[tuple[str, str, str], Struct] = {}


def struct(name: str, doc: str, *fields: Field, gvk: tuple[str, str, str] | None = None) -> Struct:
    """Declare and register a struct."""
    if name in STRUCTS:
        raise ValueError(f"struct {name} declared twice")
    s = Struct(name=name, doc=doc, fields=list(fields), gvk=gvk)
    STRUCTS[name] = s
    if gvk is not None:
        KINDS[gvk] = s
    return s


# -- compact constructors used by the declarations ------------------------------------------------

STRING = Scalar("string")
INT32 = Scalar("int32")
INT64 = Scalar("int64")
BOOL = Scalar("bool")
DOUBLE = Scalar("double")
BYTES = Scalar("bytes")
QUANTITY = Scalar("quantity")
TIME = Scalar("time")
MICROTIME = Scalar("microtime")
INT_OR_STRING = Scalar("intorstring")
RAW = Scalar("rawextension")
ANY = Scalar("any")


def ref(name: str) -> Ref:
    return Ref(name)


def list_of(item: TypeSpec | str) -> ListOf:
    return ListOf(Ref(item) if isinstance(item, str) else item)


def map_of(value: TypeSpec | str) -> MapOf:
    return MapOf(Ref(value) if isinstance(value, str) else value)


def f(json: str, number: int, type: TypeSpec | str, doc: str = "", **kw: Any) -> Field:
    """Shorthand: ``f("name", 1, STRING, "Name of the thing.", required=True)``.

    A ``str`` type is a struct reference.
    """
    return Field(json=json, number=number, type=Ref(type) if isinstance(type, str) else type, doc=doc, **kw)


def inline(number: int, name: str) -> tuple[Field, ...]:
    """A Go embedded struct (``Volume`` embeds ``VolumeSource``): flat in JSON, one nested message
    in protobuf. Gives a marker field (JSON name "", the message's number) that the protobuf codec
    expands, and the embedded struct's fields as JSON-only copies. ``name`` must be declared first.
    """
    embedded = STRUCTS[name]
    marker = Field(
        json="",
        number=number,
        type=Ref(name),
        doc=f"protobuf-only: the fields of {embedded.short_name} are inlined in this object's JSON",
    )
    return (marker, *(replace(fl, number=0) for fl in embedded.fields if fl.json))


def type_meta_fields() -> tuple[Field, Field]:
    """apiVersion and kind: JSON-only (in protobuf they travel in the runtime.Unknown envelope)."""
    return (
        f("apiVersion", 0, STRING, "Versioned schema of this representation of an object."),
        f("kind", 0, STRING, "REST resource kind this object represents."),
    )


META = "io.k8s.apimachinery.pkg.apis.meta.v1."


def object_meta_field(doc: str = "Standard object metadata.") -> Field:
    """The ``metadata`` field of a top-level kind."""
    return f("metadata", 1, META + "ObjectMeta", doc)


def list_struct(prefix: str, gvk: tuple[str, str, str], doc: str, items_doc: str) -> Struct:
    """Declare ``<Kind>List`` for the kind ``gvk`` whose struct is ``prefix + kind``."""
    group, version, kind = gvk
    return struct(
        prefix + kind + "List",
        doc,
        *type_meta_fields(),
        f("metadata", 1, META + "ListMeta", "Standard list metadata."),
        f("items", 2, list_of(prefix + kind), items_doc, required=True),
        gvk=(group, version, kind + "List"),
    )


CORE = "io.k8s.api.core.v1."
