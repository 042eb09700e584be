"""Lets `python -m rnnbench run experiments/smoke.yaml` work like the `rnnbench` command."""

from rnnbench.cli import main

raise SystemExit(main())
