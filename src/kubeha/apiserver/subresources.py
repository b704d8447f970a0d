"""Subresources with their own semantics: scale, pods/binding (+ bindings), pods/eviction,
namespaces/finalize."""

from __future__ import annotations

from typing import Any

from kubeha.api import decode, errors
from kubeha.api.registry import ResourceInfo, lookup
from kubeha.api.schema import Obj
from kubeha.apiserver import admission, objmeta
from kubeha.apiserver.delete import DeleteOptions, delete_object
from kubeha.apiserver.rest import Rest, WriteOptions, apply_patch, field_checks, update_managed_fields

SCALE_GV = "autoscaling/v1"
SCALE_SCHEMA = "io.k8s.api.autoscaling.v1.Scale"


def _autoscaling() -> Any:
    from kubeha.api.autoscaling import v1

    return v1


def scale_of(info: ResourceInfo, obj: Obj) -> Obj:
    return dict(_autoscaling().scale_of(info.kind, obj))


async def get_scale(rest: Rest, info: ResourceInfo, namespace: str, name: str) -> Obj:
    return scale_of(info, await rest.get_object(info, namespace, name))


async def write_scale(
    rest: Rest,
    info: ResourceInfo,
    namespace: str,
    name: str,
    opts: WriteOptions,
    *,
    scale: Obj | None = None,
    patch_type: str = "",
    patch: Any = None,
) -> Obj:
    """PUT or PATCH on /scale: the Scale's spec.replicas goes into the object."""

    async def mutate(current: Obj) -> Obj:
        cur_scale = scale_of(info, current)
        if scale is not None:
            want = decode.clone(scale)
            if want.get("kind") not in (None, "Scale") or want.get("apiVersion") not in (None, SCALE_GV):
                raise errors.bad_request(
                    f"the API version in the data ({want.get('apiVersion')}) does not match the expected API "
                    f"version ({SCALE_GV})"
                )
            wmd = objmeta.meta(want)
            if wmd.get("name") not in (None, name):
                raise errors.bad_request(
                    f"the name of the object ({wmd.get('name')}) does not match the name on the URL ({name})"
                )
        else:
            want = apply_patch(info, cur_scale, patch_type, patch, schema=SCALE_SCHEMA)
        field_checks(info, want, None, opts, schema=SCALE_SCHEMA)
        replicas = (want.get("spec") or {}).get("replicas")
        if replicas is not None and (not isinstance(replicas, int) or replicas < 0):
            raise errors.invalid(
                "autoscaling",
                "Scale",
                name,
                [errors.invalid_value("spec.replicas", replicas, "must be greater than or equal to 0")],
            )
        new = decode.clone(current)
        _autoscaling().apply_scale(new, want)
        rv = objmeta.resource_version(want)
        if rv:
            objmeta.meta(new)["resourceVersion"] = rv
        return update_managed_fields(info, current, new, opts, "Update", "scale")

    stored, _ = await rest.write_update(info, namespace, name, mutate, opts, subresource="scale")
    return scale_of(info, stored)


async def bind_pod(rest: Rest, namespace: str, name: str, binding: Obj, opts: WriteOptions) -> Obj:
    """Set spec.nodeName once (pods/binding, bindings)."""
    pods = lookup("", "v1", "pods")
    if pods is None:
        raise errors.not_found("", "pods", name)
    bmd = binding.get("metadata") or {}
    if bmd.get("namespace") not in (None, "", namespace):
        raise errors.bad_request(
            "the namespace of the provided object does not match the namespace sent on the request"
        )
    target = binding.get("target") or {}
    node = target.get("name")
    if not node:
        raise errors.invalid("", "Binding", name, [errors.required("target.name")])
    if target.get("kind") not in (None, "", "Node"):
        raise errors.invalid(
            "", "Binding", name, [errors.invalid_value("target.kind", target.get("kind"), "must be empty or 'Node'")]
        )
    want_uid = bmd.get("uid")
    await admission.chain_of(rest.ctx).run(
        admission.attributes(
            admission.CREATE, pods, namespace, name, binding, subresource="binding", dry_run=opts.dry_run
        )
    )

    async def mutate(current: Obj) -> Obj:
        md = current.get("metadata") or {}
        if want_uid and want_uid != md.get("uid"):
            raise errors.conflict(
                "",
                "pods/binding",
                name,
                f"Precondition failed: UID in precondition: {want_uid}, UID in object meta: {md.get('uid')}",
            )
        if md.get("deletionTimestamp"):
            raise errors.conflict(
                "", "pods/binding", name, f"pod {name} is being deleted, cannot be assigned to a host"
            )
        spec = current.setdefault("spec", {})
        if spec.get("nodeName"):
            raise errors.conflict(
                "", "pods/binding", name, f'pod {name} is already assigned to node "{spec["nodeName"]}"'
            )
        spec["nodeName"] = node
        for k, v in (bmd.get("annotations") or {}).items():
            current["metadata"].setdefault("annotations", {})[k] = v
        status = current.setdefault("status", {})
        conds = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conds.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": objmeta.rfc3339(objmeta.now()),
            }
        )
        status["conditions"] = conds
        return current

    await rest.write_update(pods, namespace, name, mutate, opts, validate=False)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def evict_pod(rest: Rest, namespace: str, name: str, eviction: Obj) -> Obj:
    """policy/v1 Eviction: delete the pod with the eviction's deleteOptions (PDBs not checked yet)."""
    pods = lookup("", "v1", "pods")
    if pods is None:
        raise errors.not_found("", "pods", name)
    emd = eviction.get("metadata") or {}
    if emd.get("name") not in (None, "", name):
        raise errors.bad_request("name in URL does not match name in Eviction object")
    do = eviction.get("deleteOptions") or {}
    opts = DeleteOptions()
    if do.get("gracePeriodSeconds") is not None:
        opts.grace_period = int(do["gracePeriodSeconds"])
    opts.propagation = do.get("propagationPolicy")
    pre = do.get("preconditions") or {}
    opts.uid = pre.get("uid")
    opts.resource_version = pre.get("resourceVersion")
    opts.dry_run = "All" in (do.get("dryRun") or [])
    await admission.chain_of(rest.ctx).run(
        admission.attributes(
            admission.CREATE, pods, namespace, name, eviction, subresource="eviction", dry_run=opts.dry_run
        )
    )
    await delete_object(rest, pods, namespace, name, opts)
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}


async def finalize_namespace(rest: Rest, info: ResourceInfo, name: str, obj: Obj, opts: WriteOptions) -> Obj:
    """PUT namespaces/{name}/finalize: only spec.finalizers may change."""
    fins = list((obj.get("spec") or {}).get("finalizers") or [])

    async def mutate(current: Obj) -> Obj:
        new = decode.clone(current)
        new.setdefault("spec", {})["finalizers"] = fins
        if not fins:
            new["spec"].pop("finalizers", None)
        rv = objmeta.resource_version(obj)
        if rv:
            objmeta.meta(new)["resourceVersion"] = rv
        return new

    stored, _ = await rest.write_update(info, "", name, mutate, opts, status=True, subresource="finalize")
    md = stored.get("metadata") or {}
    if md.get("deletionTimestamp") and not fins and not md.get("finalizers"):
        key = info.key("", name)
        try:
            await rest.store.delete(key, expected_mod_revision=int(objmeta.resource_version(stored)))
        except Exception:  # raced with another writer; the namespace controller retries
            pass
    return stored
