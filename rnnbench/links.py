"""Links into the MLflow UI: an experiment, a run, and a sweep's final runs listed for comparison.

    make ui      # serves the UI these links open for the local store, at http://127.0.0.1:5000

The runs page takes `searchFilter`, `orderByKey` and `orderByAsc` from its URL; with a filter and an
order other than by date it lists nested runs flat (MLflow 3.17's UI), so the final runs, which nest
under their sweep's run, are listed one per row, best first, ready to chart and compare.
"""

from __future__ import annotations

import dataclasses
import urllib.parse

from rnnbench import credentials, names, tracking

DEFAULT_UI_URL = "http://127.0.0.1:5000"
"""Where `make ui` serves the MLflow UI for the local store."""


def ui_url() -> str:
    """The tracking server's own UI (without its credentials: the browser asks) when the store is a server, else
    `make ui`'s address."""
    uri = tracking.tracking_uri()
    return credentials.without_credentials(uri.rstrip("/")) if tracking.is_server(uri) else DEFAULT_UI_URL


@dataclasses.dataclass(frozen=True)
class Links:
    base: str
    experiment_id: str

    def experiment(self) -> str:
        return f"{self.base}/#/experiments/{self.experiment_id}"

    def run(self, run_id: str) -> str:
        return f"{self.experiment()}/runs/{run_id}"

    def final_runs(self) -> str:
        """The sweep's final runs, flat, highest test accuracy first."""
        query = {
            "searchFilter": f"tags.`{names.STAGE}` = 'final'",
            "orderByKey": f"metrics.`{names.TEST_ACCURACY}`",
            "orderByAsc": "false",
        }
        return f"{self.experiment()}/runs?{urllib.parse.urlencode(query, quote_via=urllib.parse.quote)}"
