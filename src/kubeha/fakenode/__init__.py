"""Nodes without a kubelet (``kubeha fake-nodes``, like kwok): for tests and benchmarks."""
