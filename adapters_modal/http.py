"""The http: and https: source schemes: a source served by `xmodal serve` elsewhere, known
only through its class probabilities (a black box: train it with a query budget).

    load_source("http://127.0.0.1:8000")   # xmodal.http_source.HttpBlackBoxSource

A name carries no secrets, so the API key comes from the environment (XMODAL_API_KEY; the
CLI's --api-key-file sets it), as does the query journal that makes an interrupted
black-box fit resumable (XMODAL_QUERY_JOURNAL; the CLI's --query-journal).
"""

from __future__ import annotations

import os

from adapters_modal.base import register_source_scheme

API_KEY_VARIABLE = "XMODAL_API_KEY"
JOURNAL_VARIABLE = "XMODAL_QUERY_JOURNAL"


def _loader(scheme: str):
    def load(location: str):
        from xmodal.http_source import HttpBlackBoxSource  # xmodal's client: only when a URL is used

        return HttpBlackBoxSource(f"{scheme}:{location}", api_key=os.environ.get(API_KEY_VARIABLE),
                                  journal=os.environ.get(JOURNAL_VARIABLE))

    return load


for _scheme in ("http", "https"):
    register_source_scheme(_scheme, _loader(_scheme), "a source behind `xmodal serve` (class probabilities only: "
                                                      "black-box training with --query-budget)")
