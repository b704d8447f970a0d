"""rbac.authorization.k8s.io: roles, cluster roles and their bindings."""
