"""``python -m kubeha`` runs the same entry point as the ``kubeha`` console script."""

from kubeha.cli.main import main

raise SystemExit(main())
