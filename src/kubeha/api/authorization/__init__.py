"""authorization.k8s.io: access reviews and rules reviews."""
