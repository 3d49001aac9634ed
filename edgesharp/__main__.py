"""`python -m edgesharp` is the `edgesharp` command."""

from edgesharp.edge.cli import main

raise SystemExit(main())
