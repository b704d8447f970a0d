"""Async REST client for the Kubernetes API, kubeconfig loading and resource references."""

from kubeha.client.kubeconfig import ClientConfig, ConfigError, in_cluster_config, load_kubeconfig
from kubeha.client.resources import ResourceRef, ref_for
from kubeha.client.rest import ApiClient, ApiConnectionError, ApiTimeoutError

__all__ = [
    "ApiClient",
    "ApiConnectionError",
    "ApiTimeoutError",
    "ClientConfig",
    "ConfigError",
    "ResourceRef",
    "in_cluster_config",
    "load_kubeconfig",
    "ref_for",
]
