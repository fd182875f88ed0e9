"""``python -m bench`` runs the ``t2mbench`` CLI."""

from bench.cli import main

raise SystemExit(main())
