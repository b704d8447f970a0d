"""authentication.k8s.io: token requests and reviews, self subject reviews."""
