"""meta/v1: the apimachinery types every object and response shares.

Names are the upstream OpenAPI names (``io.k8s.apimachinery.pkg.apis.meta.v1.*``) and field
numbers come from apimachinery's ``generated.proto``, so the JSON and protobuf forms match what
clients send. ``Status`` and ``DeleteOptions`` carry the core ``v1`` group-version-kind: that is
how clients address them in every group (one struct serves all groups).
"""

from __future__ import annotations

from kubeha.api.schema import (
    ANY,
    BOOL,
    INT32,
    INT64,
    META,
    RAW,
    STRING,
    TIME,
    f,
    list_of,
    map_of,
    struct,
    type_meta_fields,
)

# -- object metadata ----------------------------------------------------------------------------------

struct(
    META + "ObjectMeta",
    "Metadata every persisted object carries: identity, labels, ownership and bookkeeping.",
    f("name", 1, STRING, "Name, unique within the namespace (and kind); mostly immutable."),
    f("generateName", 2, STRING, "Prefix the server completes with a random suffix when name is empty."),
    f("namespace", 3, STRING, "Namespace of a namespaced object; empty for cluster-scoped ones."),
    f("selfLink", 4, STRING, "Deprecated; never set."),
    f("uid", 5, STRING, "Unique id assigned by the server at creation."),
    f("resourceVersion", 6, STRING, "Opaque version of the object, used for optimistic concurrency and watches."),
    f("generation", 7, INT64, "Sequence number of changes to the desired state."),
    f("creationTimestamp", 8, TIME, "When the object was created, set by the server."),
    f("deletionTimestamp", 9, TIME, "When graceful deletion was requested; the object goes once finalizers are done."),
    f("deletionGracePeriodSeconds", 10, INT64, "Grace period granted to the deletion.", pointer=True),
    f("labels", 11, map_of(STRING), "Key/value pairs used to select objects."),
    f("annotations", 12, map_of(STRING), "Non-identifying key/value metadata for tools."),
    f(
        "ownerReferences",
        13,
        list_of(META + "OwnerReference"),
        "Objects this one depends on; the garbage collector removes it when they are gone.",
        strategy="merge",
        merge_key="uid",
        list_type="map",
        map_keys=("uid",),
    ),
    f(
        "finalizers",
        14,
        list_of(STRING),
        "Tasks that must finish before the object is removed from storage.",
        strategy="merge",
        list_type="set",
    ),
    f(
        "managedFields",
        17,
        list_of(META + "ManagedFieldsEntry"),
        "Which manager owns which fields (server-side apply).",
        list_type="atomic",
    ),
)

struct(
    META + "ListMeta",
    "Metadata of a list response.",
    f("selfLink", 1, STRING, "Deprecated; never set."),
    f("resourceVersion", 2, STRING, "Revision the list was read at; a watch may start from it."),
    f("continue", 3, STRING, "Token for the next page when the list was limited."),
    f("remainingItemCount", 4, INT64, "Number of items after this page, when known.", pointer=True),
)

struct(
    META + "OwnerReference",
    "Identifies an owning object in the same namespace (or a cluster-scoped one).",
    f("apiVersion", 5, STRING, "API version of the owner.", required=True),
    f("kind", 1, STRING, "Kind of the owner.", required=True),
    f("name", 3, STRING, "Name of the owner.", required=True),
    f("uid", 4, STRING, "UID of the owner.", required=True),
    f("controller", 6, BOOL, "Whether the owner is the managing controller; at most one may be.", pointer=True),
    f("blockOwnerDeletion", 7, BOOL, "Foreground deletion of the owner waits for this object.", pointer=True),
)

struct(
    META + "ManagedFieldsEntry",
    "The set of fields one manager owns, recorded by server-side apply.",
    f("manager", 1, STRING, "Name of the manager (the fieldManager of the request)."),
    f("operation", 2, STRING, "Apply or Update.", enum=("Apply", "Update")),
    f("apiVersion", 3, STRING, "Version the field set is expressed in."),
    f("time", 4, TIME, "When the entry last changed."),
    f("fieldsType", 6, STRING, "Format of the field set; always FieldsV1."),
    f("fieldsV1", 7, ANY, "The field set as a trie of f:/k:/v:/i: keys."),
    f("subresource", 8, STRING, "Subresource the change was made through, if any."),
)

# -- selectors and conditions -------------------------------------------------------------------------

struct(
    META + "LabelSelector",
    "Selects objects by labels; matchLabels and matchExpressions are ANDed.",
    f("matchLabels", 1, map_of(STRING), "Labels that must be present with these values."),
    f(
        "matchExpressions",
        2,
        list_of(META + "LabelSelectorRequirement"),
        "Set-based requirements.",
        list_type="atomic",
    ),
)

struct(
    META + "LabelSelectorRequirement",
    "One set-based label requirement.",
    f("key", 1, STRING, "Label key.", required=True),
    f("operator", 2, STRING, "In, NotIn, Exists or DoesNotExist.", required=True),
    f("values", 3, list_of(STRING), "Values for In and NotIn; empty for Exists and DoesNotExist.", list_type="atomic"),
)

struct(
    META + "Condition",
    "A standard status condition.",
    f("type", 1, STRING, "Condition type, in CamelCase.", required=True),
    f("status", 2, STRING, "True, False or Unknown.", required=True, enum=("True", "False", "Unknown")),
    f("observedGeneration", 3, INT64, "Generation the condition was computed from."),
    f("lastTransitionTime", 4, TIME, "When status last changed.", required=True),
    f("reason", 5, STRING, "Machine-readable CamelCase reason.", required=True),
    f("message", 6, STRING, "Human-readable details.", required=True),
)

# -- responses: Status ----------------------------------------------------------------------------------

struct(
    META + "Status",
    "Result of an operation that returns no object, and the body of every error.",
    *type_meta_fields(),
    f("metadata", 1, META + "ListMeta", "Standard list metadata."),
    f("status", 2, STRING, "Success or Failure."),
    f("message", 3, STRING, "Human-readable description."),
    f("reason", 4, STRING, "Machine-readable reason (NotFound, AlreadyExists, Conflict, Invalid...)."),
    f("details", 5, META + "StatusDetails", "Extra data depending on the reason."),
    f("code", 6, INT32, "HTTP status code."),
    gvk=("", "v1", "Status"),
)

struct(
    META + "StatusDetails",
    "Details of a Status: the object concerned and the causes.",
    f("name", 1, STRING, "Name of the object concerned."),
    f("group", 2, STRING, "Group of the object concerned."),
    f("kind", 3, STRING, "Kind (or resource) of the object concerned."),
    f("uid", 6, STRING, "UID of the object concerned."),
    f(
        "causes",
        4,
        list_of(META + "StatusCause"),
        "Individual problems, e.g. one per invalid field.",
        list_type="atomic",
    ),
    f("retryAfterSeconds", 5, INT32, "Seconds the client should wait before retrying."),
)

struct(
    META + "StatusCause",
    "One reason an operation failed.",
    f("reason", 1, STRING, "Machine-readable cause (FieldValueInvalid, FieldValueRequired...)."),
    f("message", 2, STRING, "Human-readable description."),
    f("field", 3, STRING, "Path of the offending field, e.g. spec.containers[0].image."),
)

# -- request options ------------------------------------------------------------------------------------

struct(
    META + "DeleteOptions",
    "Options of a delete request.",
    *type_meta_fields(),
    f("gracePeriodSeconds", 1, INT64, "Seconds before the object is deleted; 0 means at once.", pointer=True),
    f("preconditions", 2, META + "Preconditions", "Conditions the object must meet to be deleted."),
    f("orphanDependents", 3, BOOL, "Deprecated: use propagationPolicy Orphan.", pointer=True),
    f(
        "propagationPolicy",
        4,
        STRING,
        "How dependents are garbage collected: Orphan, Background or Foreground.",
        pointer=True,
        enum=("Orphan", "Background", "Foreground"),
    ),
    f("dryRun", 5, list_of(STRING), "When set to All, nothing is persisted.", list_type="atomic"),
    f(
        "ignoreStoreReadErrorWithClusterBreakingPotential",
        6,
        BOOL,
        "Delete even an object that cannot be decoded from storage.",
        pointer=True,
    ),
    gvk=("", "v1", "DeleteOptions"),
)

struct(
    META + "Preconditions",
    "Conditions an object must meet for an operation to proceed.",
    f("uid", 1, STRING, "Expected UID.", pointer=True),
    f("resourceVersion", 2, STRING, "Expected resourceVersion.", pointer=True),
)

# -- discovery (legacy shapes) --------------------------------------------------------------------------

struct(
    META + "APIResource",
    "One resource served by a group-version.",
    f("name", 1, STRING, "Plural resource name, or resource/subresource.", required=True),
    f("singularName", 6, STRING, "Singular name.", required=True),
    f("namespaced", 2, BOOL, "Whether the resource is namespaced.", required=True),
    f("group", 8, STRING, "Group of a subresource's kind when it differs."),
    f("version", 9, STRING, "Version of a subresource's kind when it differs."),
    f("kind", 3, STRING, "Kind of the resource.", required=True),
    f("verbs", 4, list_of(STRING), "Supported verbs.", required=True),
    f("shortNames", 5, list_of(STRING), "Short aliases, e.g. po.", list_type="atomic"),
    f("categories", 7, list_of(STRING), "Categories, e.g. all.", list_type="atomic"),
    f("storageVersionHash", 10, STRING, "Hash of the storage version."),
)

struct(
    META + "APIResourceList",
    "Resources served by one group-version.",
    *type_meta_fields(),
    f("groupVersion", 1, STRING, "The group-version.", required=True),
    f("resources", 2, list_of(META + "APIResource"), "Its resources.", required=True, list_type="atomic"),
    gvk=("", "v1", "APIResourceList"),
)

struct(
    META + "GroupVersionForDiscovery",
    "A group-version as listed in discovery.",
    f("groupVersion", 1, STRING, "group/version.", required=True),
    f("version", 2, STRING, "Version alone.", required=True),
)

struct(
    META + "ServerAddressByClientCIDR",
    "Server address to use for clients in a network.",
    f("clientCIDR", 1, STRING, "Client network.", required=True),
    f("serverAddress", 2, STRING, "host:port to use.", required=True),
)

struct(
    META + "APIGroup",
    "One API group and its versions.",
    *type_meta_fields(),
    f("name", 1, STRING, "Group name.", required=True),
    f("versions", 2, list_of(META + "GroupVersionForDiscovery"), "Served versions.", required=True, list_type="atomic"),
    f("preferredVersion", 3, META + "GroupVersionForDiscovery", "Version clients should use."),
    f(
        "serverAddressByClientCIDRs",
        4,
        list_of(META + "ServerAddressByClientCIDR"),
        "Addresses by client network.",
        list_type="atomic",
    ),
    gvk=("", "v1", "APIGroup"),
)

struct(
    META + "APIGroupList",
    "All API groups (answer of /apis).",
    *type_meta_fields(),
    f("groups", 1, list_of(META + "APIGroup"), "The groups.", required=True, list_type="atomic"),
    gvk=("", "v1", "APIGroupList"),
)

struct(
    META + "APIVersions",
    "Versions of the core group (answer of /api).",
    *type_meta_fields(),
    f("versions", 1, list_of(STRING), "Served versions.", required=True, list_type="atomic"),
    f(
        "serverAddressByClientCIDRs",
        2,
        list_of(META + "ServerAddressByClientCIDR"),
        "Addresses by client network.",
        required=True,
        list_type="atomic",
    ),
    gvk=("", "v1", "APIVersions"),
)

# -- watch ----------------------------------------------------------------------------------------------

struct(
    META + "WatchEvent",
    "One event of a watch stream.",
    f("type", 1, STRING, "ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.", required=True),
    f("object", 2, RAW, "The object (a Status for ERROR).", required=True),
    gvk=("", "v1", "WatchEvent"),
)
