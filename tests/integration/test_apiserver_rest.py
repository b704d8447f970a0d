"""REST semantics of the api-server against a real etcd (in-process app, aiohttp test client)."""

from __future__ import annotations

import asyncio

import orjson

from tests.integration.test_apiserver_support import Api, api
from tests.support.etcd import etcd_server

__all__ = ["api", "etcd_server"]

CM = "/api/v1/namespaces/{ns}/configmaps"


def cm(name: str, **data: str) -> dict[str, object]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "data": dict(data)}


async def test_configmap_crud(api: Api) -> None:
    ns = await api.namespace()
    code, created = await api.post(CM.format(ns=ns), cm("a", x="1"))
    assert code == 201, created
    md = created["metadata"]
    assert md["namespace"] == ns and md["uid"] and md["creationTimestamp"].endswith("Z")
    assert int(md["resourceVersion"]) > 0

    code, got = await api.get(f"{CM.format(ns=ns)}/a")
    assert code == 200 and got["data"] == {"x": "1"}

    got["data"]["x"] = "2"
    code, updated = await api.put(f"{CM.format(ns=ns)}/a", got)
    assert code == 200 and updated["data"] == {"x": "2"}
    assert updated["metadata"]["uid"] == md["uid"]
    assert int(updated["metadata"]["resourceVersion"]) > int(md["resourceVersion"])

    # a no-op update does not bump the resourceVersion
    code, same = await api.put(f"{CM.format(ns=ns)}/a", updated)
    assert code == 200 and same["metadata"]["resourceVersion"] == updated["metadata"]["resourceVersion"]

    # stale resourceVersion -> 409 Conflict with upstream's message
    code, st = await api.put(f"{CM.format(ns=ns)}/a", got)
    assert code == 409 and st["reason"] == "Conflict"
    assert st["message"] == (
        'Operation cannot be fulfilled on configmaps "a": the object has been modified; '
        "please apply your changes to the latest version and try again"
    )

    code, patched = await api.patch(f"{CM.format(ns=ns)}/a", {"data": {"y": "3"}})
    assert code == 200 and patched["data"] == {"x": "2", "y": "3"}

    code, lst = await api.get(CM.format(ns=ns))
    assert code == 200 and lst["kind"] == "ConfigMapList" and [i["metadata"]["name"] for i in lst["items"]] == ["a"]

    code, st = await api.delete(f"{CM.format(ns=ns)}/a")
    assert code == 200 and st["kind"] == "Status" and st["status"] == "Success"
    assert st["details"]["name"] == "a" and st["details"]["kind"] == "configmaps" and st["details"]["uid"] == md["uid"]
    code, st = await api.get(f"{CM.format(ns=ns)}/a")
    assert code == 404 and st["message"] == 'configmaps "a" not found' and st["reason"] == "NotFound"


async def test_create_errors(api: Api) -> None:
    ns = await api.namespace()
    assert (await api.post(CM.format(ns=ns), cm("dup")))[0] == 201
    code, st = await api.post(CM.format(ns=ns), cm("dup"))
    assert code == 409 and st["reason"] == "AlreadyExists" and st["message"] == 'configmaps "dup" already exists'

    code, st = await api.post(CM.format(ns="no-such-ns"), cm("x"))
    assert code == 404 and st["message"] == 'namespaces "no-such-ns" not found'

    body = cm("x")
    body["metadata"]["namespace"] = "other"  # type: ignore[index]
    code, st = await api.post(CM.format(ns=ns), body)
    assert code == 400
    assert st["message"] == "the namespace of the provided object does not match the namespace sent on the request"

    body = {"apiVersion": "apps/v1", "kind": "ConfigMap", "metadata": {"name": "x"}}
    code, st = await api.post(CM.format(ns=ns), body)
    assert code == 400 and "does not match the expected API version" in st["message"]

    code, st = await api.post(CM.format(ns=ns), cm("Bad_Name"))
    assert code == 422 and st["reason"] == "Invalid"
    assert st["details"]["causes"][0]["field"] == "metadata.name"

    code, st, _ = await api.call("POST", CM.format(ns=ns), raw=b"{not json", ctype="application/json")
    assert code == 400 and st["kind"] == "Status"

    code, st, _ = await api.call("POST", CM.format(ns=ns), raw=b"x", ctype="text/plain")
    assert code == 415 and st["reason"] == "UnsupportedMediaType"

    big = cm("big", blob="x" * (3 * 1024 * 1024 + 10))
    code, st = await api.post(CM.format(ns=ns), big)
    assert code == 413

    code, st = await api.get("/api/v1/nosuchthings")
    assert code == 404 and st["kind"] == "Status"


async def test_field_validation(api: Api) -> None:
    ns = await api.namespace()
    body = cm("fv")
    body["spec"] = {"foo": 1}
    body["bar"] = 2
    code, st = await api.post(CM.format(ns=ns) + "?fieldValidation=Strict", body)
    assert code == 400
    assert st["message"].startswith(
        'ConfigMap in version "v1" cannot be handled as a ConfigMap: strict decoding error: '
    )
    assert 'unknown field "bar"' in st["message"] and 'unknown field "spec"' in st["message"]

    code, obj, headers = await api.call("POST", CM.format(ns=ns) + "?fieldValidation=Warn", body)
    assert code == 201 and "spec" not in obj and "bar" not in obj
    assert 'unknown field \\"bar\\"' in headers["Warning"] and headers["Warning"].startswith("299 - ")

    body["metadata"] = {"name": "fv2"}
    code, obj, headers = await api.call("POST", CM.format(ns=ns) + "?fieldValidation=Ignore", body)
    assert code == 201 and "Warning" not in headers

    dup = b'{"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"fv3","name":"fv3"}}'
    code, st, _ = await api.call("POST", CM.format(ns=ns) + "?fieldValidation=Strict", raw=dup)
    assert code == 400 and 'duplicate field "metadata.name"' in st["message"]


async def test_generate_name_and_dry_run(api: Api) -> None:
    ns = await api.namespace()
    code, obj = await api.post(CM.format(ns=ns), {"metadata": {"generateName": "gen-"}})
    assert code == 201
    name = obj["metadata"]["name"]
    assert name.startswith("gen-") and len(name) == 9
    assert all(c in "bcdfghjklmnpqrstvwxz2456789" for c in name[4:])

    code, obj = await api.post(CM.format(ns=ns) + "?dryRun=All", cm("dry"))
    assert code == 201 and obj["metadata"]["name"] == "dry"
    assert (await api.get(f"{CM.format(ns=ns)}/dry"))[0] == 404


async def test_list_paging_and_selectors(api: Api) -> None:
    ns = await api.namespace()
    for i in range(7):
        body = cm(f"p{i}")
        body["metadata"]["labels"] = {"parity": "even" if i % 2 == 0 else "odd", "i": str(i)}  # type: ignore[index]
        assert (await api.post(CM.format(ns=ns), body))[0] == 201

    names: list[str] = []
    code, page = await api.get(CM.format(ns=ns) + "?limit=3")
    assert code == 200 and len(page["items"]) == 3
    assert page["metadata"]["remainingItemCount"] == 4
    rv = page["metadata"]["resourceVersion"]
    names += [i["metadata"]["name"] for i in page["items"]]
    # a change between pages is not seen: the pages are at the first page's revision
    assert (await api.post(CM.format(ns=ns), cm("p9")))[0] == 201
    while page["metadata"].get("continue"):
        code, page = await api.get(CM.format(ns=ns) + f"?limit=3&continue={page['metadata']['continue']}")
        assert code == 200, page
        assert page["metadata"]["resourceVersion"] == rv
        names += [i["metadata"]["name"] for i in page["items"]]
    assert names == [f"p{i}" for i in range(7)]

    code, lst = await api.get(CM.format(ns=ns) + "?labelSelector=parity%3Deven")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["p0", "p2", "p4", "p6"]
    code, lst = await api.get(CM.format(ns=ns) + "?labelSelector=parity%3Deven,i+notin+(0,2)&limit=1")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["p4"] and lst["metadata"]["continue"]
    code, lst = await api.get(CM.format(ns=ns) + "?labelSelector=!parity")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["p9"]
    code, lst = await api.get(CM.format(ns=ns) + "?fieldSelector=metadata.name%3Dp3")
    assert [i["metadata"]["name"] for i in lst["items"]] == ["p3"]
    code, st = await api.get(CM.format(ns=ns) + "?fieldSelector=spec.foo%3Dx")
    assert code == 400
    assert st["message"] == '"spec.foo" is not a known field selector: only "metadata.name", "metadata.namespace"'

    code, st = await api.get(CM.format(ns=ns) + "?limit=2&continue=bm90LWEtdG9rZW4")
    assert code == 400

    # all namespaces, resourceVersion=0 (from the cache)
    code, lst = await api.get("/api/v1/configmaps?resourceVersion=0&labelSelector=parity")
    assert code == 200 and len([i for i in lst["items"] if i["metadata"]["namespace"] == ns]) == 7

    code, st = await api.delete(CM.format(ns=ns) + "?labelSelector=parity%3Dodd")
    assert code == 200 and sorted(i["metadata"]["name"] for i in st["items"]) == ["p1", "p3", "p5"]
    code, lst = await api.get(CM.format(ns=ns))
    assert [i["metadata"]["name"] for i in lst["items"]] == ["p0", "p2", "p4", "p6", "p9"]


async def test_table_and_metadata_shapes(api: Api) -> None:
    ns = await api.namespace()
    await api.post(CM.format(ns=ns), cm("t1", a="1"))
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    code, t = await api.get(CM.format(ns=ns) + "?limit=500", headers={"Accept": accept})
    assert code == 200 and t["kind"] == "Table" and t["columnDefinitions"][0]["name"] == "Name"
    assert t["rows"][0]["cells"][0] == "t1" and t["rows"][0]["object"]["kind"] == "PartialObjectMetadata"
    code, t = await api.get(CM.format(ns=ns) + "/t1", headers={"Accept": accept})
    assert code == 200 and t["kind"] == "Table" and len(t["rows"]) == 1
    code, p = await api.get(
        CM.format(ns=ns), headers={"Accept": "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io"}
    )
    assert p["kind"] == "PartialObjectMetadataList" and "data" not in p["items"][0]


async def test_patch_types(api: Api) -> None:
    ns = await api.namespace()
    await api.post(CM.format(ns=ns), cm("pt", a="1", b="2"))
    path = f"{CM.format(ns=ns)}/pt"
    code, o = await api.patch(path, [{"op": "replace", "path": "/data/a", "value": "9"}], "application/json-patch+json")
    assert code == 200 and o["data"]["a"] == "9"
    code, st = await api.patch(path, [{"op": "test", "path": "/data/a", "value": "0"}], "application/json-patch+json")
    assert code == 422
    code, o = await api.patch(path, {"data": {"b": None}}, "application/strategic-merge-patch+json")
    assert code == 200 and o["data"] == {"a": "9"}
    code, st = await api.patch(path, {"data": {"a": "1"}}, "application/xml")
    assert code == 415
    code, st = await api.patch(f"{CM.format(ns=ns)}/missing", {"data": {}})
    assert code == 404
    # resourceVersion in a merge patch is a precondition
    code, st = await api.patch(path, {"metadata": {"resourceVersion": "1"}, "data": {"a": "2"}})
    assert code == 409

    apply = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: sa}\ndata: {k: v}\n"
    code, st, _ = await api.call(
        "PATCH", f"{CM.format(ns=ns)}/sa", raw=apply.encode(), ctype="application/apply-patch+yaml"
    )
    assert code == 400 and "fieldManager" in st["message"]
    code, o, _ = await api.call(
        "PATCH", f"{CM.format(ns=ns)}/sa?fieldManager=me", raw=apply.encode(), ctype="application/apply-patch+yaml"
    )
    assert code == 201 and o["data"] == {"k": "v"}
    assert any(m["manager"] == "me" and m["operation"] == "Apply" for m in o["metadata"]["managedFields"])
    code, o, _ = await api.call(
        "PATCH",
        f"{CM.format(ns=ns)}/sa?fieldManager=me",
        raw=apply.replace("v}", "w}").encode(),
        ctype="application/apply-patch+yaml",
    )
    assert code == 200 and o["data"] == {"k": "w"}


async def test_finalizers_keep_object_until_removed(api: Api) -> None:
    ns = await api.namespace()
    body = cm("fin")
    body["metadata"]["finalizers"] = ["example.com/hold"]  # type: ignore[index]
    await api.post(CM.format(ns=ns), body)
    path = f"{CM.format(ns=ns)}/fin"
    code, o = await api.delete(path)
    assert code == 200 and o["metadata"]["deletionTimestamp"] and o["metadata"]["finalizers"] == ["example.com/hold"]
    code, o = await api.get(path)
    assert code == 200 and o["metadata"]["deletionGracePeriodSeconds"] == 0
    code, o = await api.patch(path, {"metadata": {"finalizers": None}})
    assert code == 200
    assert (await api.get(path))[0] == 404

    # propagation policies add the GC finalizers
    await api.post(CM.format(ns=ns), cm("orph"))
    code, o = await api.delete(f"{CM.format(ns=ns)}/orph", {"kind": "DeleteOptions", "propagationPolicy": "Orphan"})
    assert code == 200 and o["metadata"]["finalizers"] == ["orphan"]

    # preconditions
    code, o = await api.post(CM.format(ns=ns), cm("pre"))
    code, st = await api.delete(f"{CM.format(ns=ns)}/pre", {"preconditions": {"uid": "nope"}})
    assert code == 409 and "Precondition failed: UID in precondition: nope" in st["message"]
    code, st = await api.delete(f"{CM.format(ns=ns)}/pre?dryRun=All")
    assert code == 200 and (await api.get(f"{CM.format(ns=ns)}/pre"))[0] == 200


POD = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "p"},
    "spec": {"containers": [{"name": "c", "image": "busybox"}]},
}


async def test_pod_binding_and_graceful_delete(api: Api) -> None:
    ns = await api.namespace()
    pods = f"/api/v1/namespaces/{ns}/pods"
    code, p = await api.post(pods, POD)
    assert code == 201, p
    binding = {
        "apiVersion": "v1",
        "kind": "Binding",
        "metadata": {"name": "p"},
        "target": {"kind": "Node", "name": "n1"},
    }
    code, st = await api.post(f"{pods}/p/binding", binding)
    assert code == 201, st
    code, p = await api.get(f"{pods}/p")
    assert p["spec"]["nodeName"] == "n1"
    assert any(c["type"] == "PodScheduled" and c["status"] == "True" for c in p["status"]["conditions"])
    binding["target"]["name"] = "n2"  # type: ignore[index]
    code, st = await api.post(f"{pods}/p/binding", binding)
    assert code == 409 and 'pod p is already assigned to node "n1"' in st["message"]

    # graceful: a bound pod gets a deletionTimestamp and stays
    code, p = await api.delete(f"{pods}/p")
    assert code == 200 and p["metadata"]["deletionGracePeriodSeconds"] == 30
    assert (await api.get(f"{pods}/p"))[0] == 200
    # the kubelet's confirmation
    code, p = await api.delete(f"{pods}/p?gracePeriodSeconds=0")
    assert code == 200 and p["kind"] == "Pod"
    assert (await api.get(f"{pods}/p"))[0] == 404

    # an unscheduled pod goes at once
    await api.post(pods, POD)
    code, p = await api.delete(f"{pods}/p")
    assert code == 200 and (await api.get(f"{pods}/p"))[0] == 404

    # bindings resource + eviction
    await api.post(pods, POD)
    code, st = await api.post(f"/api/v1/namespaces/{ns}/bindings", binding)
    assert code == 201, st
    ev = {
        "apiVersion": "policy/v1",
        "kind": "Eviction",
        "metadata": {"name": "p"},
        "deleteOptions": {"gracePeriodSeconds": 0},
    }
    code, st = await api.post(f"{pods}/p/eviction", ev)
    assert code == 201, st
    assert (await api.get(f"{pods}/p"))[0] == 404


async def test_status_and_scale_subresources(api: Api) -> None:
    ns = await api.namespace()
    deps = f"/apis/apps/v1/namespaces/{ns}/deployments"
    dep = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "d"},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"a": "b"}},
            "template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": [{"name": "c", "image": "x"}]}},
        },
        "status": {"replicas": 99},
    }
    code, d = await api.post(deps, dep)
    assert code == 201, d
    assert d["metadata"]["generation"] == 1 and d.get("status", {}).get("replicas") in (None, 0)
    code, d2 = await api.patch(f"{deps}/d/status", {"status": {"replicas": 5}})
    assert code == 200 and d2["status"]["replicas"] == 5 and d2["metadata"]["generation"] == 1
    code, sc = await api.get(f"{deps}/d/scale")
    assert (
        code == 200 and sc["kind"] == "Scale" and sc["apiVersion"] == "autoscaling/v1" and sc["spec"]["replicas"] == 1
    )
    code, sc = await api.patch(f"{deps}/d/scale", {"spec": {"replicas": 3}})
    assert code == 200 and sc["spec"]["replicas"] == 3
    code, d3 = await api.get(f"{deps}/d")
    assert d3["spec"]["replicas"] == 3 and d3["metadata"]["generation"] == 2
    sc["spec"]["replicas"] = 4
    sc["metadata"]["resourceVersion"] = d2["metadata"]["resourceVersion"]  # stale
    code, _st = await api.put(f"{deps}/d/scale", sc)
    assert code == 409
    # the main endpoint ignores status
    d3["status"] = {"replicas": 1}
    code, d4 = await api.put(f"{deps}/d", d3)
    assert code == 200 and d4["status"]["replicas"] == 5


async def test_namespace_termination(api: Api) -> None:
    ns = await api.namespace()
    await api.post(CM.format(ns=ns), cm("keep"))
    code, o = await api.delete(f"/api/v1/namespaces/{ns}")
    assert code == 200 and o["status"]["phase"] == "Terminating"
    code, st = await api.post(CM.format(ns=ns), cm("new"))
    assert code == 403
    assert st["message"].endswith(f"unable to create new content in namespace {ns} because it is being terminated")
    # emptying it finishes the deletion
    assert (await api.delete(f"{CM.format(ns=ns)}/keep"))[0] == 200
    assert (await api.get(f"/api/v1/namespaces/{ns}"))[0] == 404
    # an empty namespace goes at once
    ns2 = await api.namespace()
    assert (await api.delete(f"/api/v1/namespaces/{ns2}"))[0] == 200
    assert (await api.get(f"/api/v1/namespaces/{ns2}"))[0] == 404


async def test_health_version_metrics_discovery(api: Api) -> None:
    code, v = await api.get("/version")
    assert code == 200 and v["major"] == "1"
    code, text, _ = await api.call("GET", "/readyz?verbose")
    assert code == 200 and "[+]etcd ok" in text and "readyz check passed" in text
    assert (await api.call("GET", "/readyz/etcd"))[0] == 200
    assert (await api.call("GET", "/livez"))[0] == 200
    code, text, _ = await api.call("GET", "/metrics")
    assert code == 200 and "apiserver_request_total" in text
    code, doc, headers = await api.call(
        "GET",
        "/apis",
        headers={"Accept": "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"},
    )
    assert code == 200 and "as=APIGroupDiscoveryList" in headers["Content-Type"]
    code, doc = await api.get("/api/v1")
    assert code == 200 and any(r["name"] == "configmaps" for r in doc["resources"])
    code, _, headers = await api.call("GET", "/openapi/v2")
    assert code == 200


async def test_watch_semantics(api: Api) -> None:
    ns = await api.namespace()
    code, a = await api.post(CM.format(ns=ns), cm("w1"))
    rv = a["metadata"]["resourceVersion"]
    # unset resourceVersion: current state as ADDED
    evs = await api.watch_lines(CM.format(ns=ns) + "?watch=true&timeoutSeconds=5", 1)
    assert evs[0]["type"] == "ADDED" and evs[0]["object"]["metadata"]["name"] == "w1"

    async def changes() -> None:
        await asyncio.sleep(0.2)
        await api.patch(f"{CM.format(ns=ns)}/w1", {"data": {"a": "1"}})
        await api.delete(f"{CM.format(ns=ns)}/w1")

    task = asyncio.create_task(changes())
    evs = await api.watch_lines(CM.format(ns=ns) + f"?watch=true&resourceVersion={rv}&timeoutSeconds=10", 2)
    await task
    assert [e["type"] for e in evs] == ["MODIFIED", "DELETED"]

    # timeout ends the stream; bookmarks carry a resourceVersion
    evs = await api.watch_lines(
        CM.format(ns=ns) + f"?watch=true&resourceVersion={rv}&timeoutSeconds=1&allowWatchBookmarks=true", 10
    )
    assert evs[-1]["type"] == "BOOKMARK" and int(evs[-1]["object"]["metadata"]["resourceVersion"]) >= int(rv)

    # too old
    evs = await api.watch_lines(CM.format(ns=ns) + "?watch=true&resourceVersion=1", 1)
    assert evs[0]["type"] == "ERROR" and evs[0]["object"]["code"] == 410 and evs[0]["object"]["reason"] == "Expired"
    assert evs[0]["object"]["message"].startswith("too old resource version: 1 (")

    # sendInitialEvents: initial state, then the end-of-initial-events bookmark
    await api.post(CM.format(ns=ns), cm("w2"))
    evs = await api.watch_lines(
        CM.format(ns=ns)
        + "?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan&allowWatchBookmarks=true&timeoutSeconds=5",
        2,
    )
    assert evs[0]["type"] == "ADDED" and evs[1]["type"] == "BOOKMARK"
    assert evs[1]["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    code, _st = await api.get(CM.format(ns=ns) + "?watch=true&sendInitialEvents=true")
    assert code == 422

    # selector transitions, legacy /watch/ path, Table watch
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json"
    evs = await api.watch_lines(
        f"/api/v1/watch/namespaces/{ns}/configmaps?fieldSelector=metadata.name%3Dw2&timeoutSeconds=5", 1
    )
    assert evs[0]["object"]["metadata"]["name"] == "w2"
    async with api.client.get(CM.format(ns=ns) + "?watch=true&timeoutSeconds=2", headers={"Accept": accept}) as r:
        first = orjson.loads(await r.content.readline())
    assert first["object"]["kind"] == "Table" and "columnDefinitions" in first["object"]
