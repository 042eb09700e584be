"""The HTML report: `rnnbench report` (see `rnnbench.report.page`)."""
