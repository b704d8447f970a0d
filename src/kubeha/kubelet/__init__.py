"""The kubelet: runs the pods bound to one node (``kubeha kubelet``)."""
