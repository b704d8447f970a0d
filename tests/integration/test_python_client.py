"""Acceptance: the official `kubernetes` Python client works unchanged (kubeconfig, CRUD, watch)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, config, watch
from kubernetes.client.rest import ApiException

from tests.support.apiserver import ApiServer


@pytest.fixture
def api(apiservers: list[ApiServer]) -> Iterator[client.ApiClient]:
    with config.new_client_from_config(config_file=str(apiservers[0].kubeconfig)) as api_client:
        yield api_client


@pytest.fixture
def namespace(api: client.ApiClient) -> Iterator[str]:
    name = f"py-{uuid.uuid4().hex[:10]}"
    core = client.CoreV1Api(api)
    core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    yield name
    core.delete_namespace(name)


def test_configmap_lifecycle(api: client.ApiClient, namespace: str) -> None:
    core = client.CoreV1Api(api)
    listing = core.list_namespaced_config_map(namespace)
    assert listing.items == []
    start_rv = listing.metadata.resource_version

    body = client.V1ConfigMap(metadata=client.V1ObjectMeta(name="cfg", labels={"app": "py"}), data={"a": "1"})
    created = core.create_namespaced_config_map(namespace, body)
    assert created.metadata.uid and created.data == {"a": "1"}

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(namespace, body)
    assert exc.value.status == 409

    names = [cm.metadata.name for cm in core.list_namespaced_config_map(namespace, label_selector="app=py").items]
    assert names == ["cfg"]

    # Watch from the list's resourceVersion sees the creation.
    events = []
    for event in watch.Watch().stream(
        core.list_namespaced_config_map, namespace, resource_version=start_rv, timeout_seconds=5
    ):
        events.append((event["type"], event["object"].metadata.name))
        break
    assert events == [("ADDED", "cfg")]

    patched = core.patch_namespaced_config_map("cfg", namespace, {"data": {"b": "2"}})
    assert patched.data == {"a": "1", "b": "2"}
    assert int(patched.metadata.resource_version) > int(created.metadata.resource_version)

    core.delete_namespaced_config_map("cfg", namespace)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("cfg", namespace)
    assert exc.value.status == 404


def test_deployment_lifecycle(api: client.ApiClient, namespace: str) -> None:
    apps = client.AppsV1Api(api)
    labels = {"app": "web"}
    deployment = client.V1Deployment(
        metadata=client.V1ObjectMeta(name="web"),
        spec=client.V1DeploymentSpec(
            replicas=1,
            selector=client.V1LabelSelector(match_labels=labels),
            template=client.V1PodTemplateSpec(
                metadata=client.V1ObjectMeta(labels=labels),
                spec=client.V1PodSpec(containers=[client.V1Container(name="web", image="nginx:1.27")]),
            ),
        ),
    )
    created = apps.create_namespaced_deployment(namespace, deployment)
    assert created.spec.replicas == 1
    assert created.spec.template.spec.containers[0].image_pull_policy == "IfNotPresent"

    w = watch.Watch()
    rv = apps.list_namespaced_deployment(namespace).metadata.resource_version
    # A dict body is sent as a strategic merge patch: the container list merges by name.
    patch = {"spec": {"replicas": 3, "template": {"spec": {"containers": [{"name": "web", "image": "nginx:1.26"}]}}}}
    apps.patch_namespaced_deployment("web", namespace, patch)
    seen = None
    for event in w.stream(apps.list_namespaced_deployment, namespace, resource_version=rv, timeout_seconds=5):
        seen = event
        break
    assert seen is not None and seen["type"] == "MODIFIED"
    assert seen["object"].spec.replicas == 3

    got = apps.read_namespaced_deployment("web", namespace)
    assert [(c.name, c.image) for c in got.spec.template.spec.containers] == [("web", "nginx:1.26")]
    assert got.metadata.generation == 2

    scale = apps.read_namespaced_deployment_scale("web", namespace)
    assert scale.spec.replicas == 3

    apps.delete_namespaced_deployment("web", namespace)
    with pytest.raises(ApiException) as exc:
        apps.read_namespaced_deployment("web", namespace)
    assert exc.value.status == 404
