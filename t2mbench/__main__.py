"""``python -m t2mbench`` runs the ``t2mbench`` CLI."""

from t2mbench.cli import main

raise SystemExit(main())
