"""The client of `xmodal serve` (or of any server speaking its protocol): a black-box source
reached over HTTP, with timeouts, retries with backoff, every sample sent charged to the
query budget, and an optional journal of answers that makes an interrupted fit resumable.

    source = HttpBlackBoxSource("http://127.0.0.1:8000", api_key="...", journal="queries.journal")

The journal (xmodal.query_journal) maps the sha256 of each input (float32 bytes) to the
probabilities the server gave for it, and records which server and model (URL, weights
sha256) gave them: another server's journal is refused. Black-box training is deterministic for a seed, so a fit run
again after an interruption asks about the same inputs in the same order: every one the
journal holds is answered from it without sending anything, and only the rest is sent. The
query budget still counts every question asked, journalled or not, so the resumed fit stops
where the uninterrupted one would have and ends with the same model. Each answered batch is
appended to the journal, so a kill loses at most the batch in flight.
"""

from __future__ import annotations

import io
import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from adapters_modal.base import InputSpec
from xmodal.blackbox import BlackBoxSource
from xmodal.errors import XmodalError
from xmodal.query_journal import QueryJournal
from xmodal.serve import NPY

RETRIED_STATUSES = (429, 500, 502, 503, 504)
MAX_WAIT_SECONDS = 60.0  # the longest pause between attempts, whatever Retry-After says
NPY_HEADER_ROOM = 1024  # bytes: an .npy header is at most a few hundred


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is an error: following it would send the API key and the inputs elsewhere."""

    def redirect_request(self, request, fp, code, message, headers, new_url):
        raise urllib.error.HTTPError(request.full_url, code, f"redirect to {new_url} refused", headers, fp)


_OPENER = urllib.request.build_opener(_NoRedirects)


class HttpBlackBoxSource(BlackBoxSource):
    """A source known only through an `xmodal serve` endpoint. Its identity is the one the
    server reports for its model, under the URL as name: a run trained through it reloads
    through the same URL (`trust_source`: a run that makes xmodal contact a server is a
    trust decision), or with the served model itself via `load_reprogrammer(source=...)`."""

    def __init__(self, url: str, api_key: str | None = None, timeout: float = 30.0, retries: int = 4,
                 backoff: float = 0.5, journal: str | Path | None = None):
        self.url, self.api_key = url.rstrip("/"), api_key
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        info = self._info()
        shape = info["input_shape"]
        if info["modality"] == "audio":
            spec = InputSpec("audio", sample_rate=info["sample_rate"], num_samples=shape[0])
        else:
            spec = InputSpec("image", channels=shape[0], height=shape[1], width=shape[2],
                             value_range=tuple(info["value_range"]))
        super().__init__(self._ask, spec, info["class_names"], self.url, info["weights_sha256"])
        self.served_name = info["name"]
        # Inputs per request: the server's batch limit, and as many as its body limit takes (an
        # image is 600 kB as float32).
        sample_bytes, max_body = 4 * int(np.prod(shape)), info.get("max_body_bytes")
        by_body = (int(max_body) - NPY_HEADER_ROOM) // sample_bytes if max_body else int(info["max_batch"])
        if by_body < 1:
            raise XmodalError(f"{self.url} takes request bodies of at most {max_body} bytes, less than "
                              f"one input ({sample_bytes} bytes as float32 plus the .npy header); restart the server "
                              "with a larger --max-body-mb")
        self.max_batch = min(int(info["max_batch"]), by_body)
        self.journal = QueryJournal(journal, (self.url, info["weights_sha256"]), len(info["class_names"]))
        self.sent = 0  # samples sent over the network, retries included (what an API bills)
        self.from_journal = 0  # distinct inputs per call answered by the journal instead

    # -- HTTP ---------------------------------------------------------------------------
    def _request(self, path: str, body: bytes | None = None, samples: int = 0) -> dict:
        """One call, retried with backoff on 429, 5xx and connection errors; every attempt's
        samples count as sent (an API may bill a request whose answer was lost), and every
        retry is charged to the budget first."""
        headers = {"Content-Type": NPY} if body is not None else {}
        if self.api_key is not None:
            headers["X-API-Key"] = self.api_key
        for attempt in range(self.retries + 1):
            if samples:  # /predict (/info is free, and comes before the budget exists)
                if attempt:
                    self.budget.charge(samples)
                self.sent += samples
            request = urllib.request.Request(self.url + path, data=body, headers=headers,
                                             method="POST" if body is not None else "GET")
            try:
                with _OPENER.open(request, timeout=self.timeout) as response:
                    answer = json.loads(response.read())
                if not isinstance(answer, dict):
                    raise ValueError("not a JSON object")
                return answer
            except urllib.error.HTTPError as exc:
                if exc.code not in RETRIED_STATUSES or attempt == self.retries:
                    raise XmodalError(f"{self.url}{path} answered HTTP {exc.code}: {_detail(exc)}") from None
                wait = _retry_after(exc) or self.backoff * 2 ** attempt
            except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
                if attempt == self.retries:
                    raise XmodalError(f"cannot reach {self.url}{path} after {self.retries + 1} attempts "
                                      f"({getattr(exc, 'reason', exc)}); is `xmodal serve` running there?") from None
                wait = self.backoff * 2 ** attempt
            except ValueError as exc:  # a 200 whose body is not a JSON object: not an xmodal server
                raise XmodalError(f"{self.url}{path} answered something that is not xmodal's JSON ({exc})") from None
            time.sleep(min(wait, MAX_WAIT_SECONDS))
        raise AssertionError("unreachable")

    def _info(self) -> dict:
        info = self._request("/info")
        needed = {"name", "weights_sha256", "modality", "input_shape", "class_names", "max_batch"}
        if not isinstance(info, dict) or not needed <= set(info):
            raise XmodalError(f"{self.url}/info did not describe a source (needs {sorted(needed)}); "
                              "is this an `xmodal serve` endpoint?")
        return info

    def _ask(self, batch: np.ndarray) -> np.ndarray:
        """Probabilities for `batch`: journalled answers free, the rest sent in chunks the server takes."""
        keys = [QueryJournal.key(sample) for sample in batch]
        first = {}  # each new input once, however often the batch repeats it
        for i, key in enumerate(keys):
            if key not in self.journal.answers:
                first.setdefault(key, i)
        self.from_journal += len(set(keys)) - len(first)
        missing = list(first.values())
        for start in range(0, len(missing), self.max_batch):
            chunk = missing[start:start + self.max_batch]
            buffer = io.BytesIO()
            np.save(buffer, batch[chunk].astype(np.float32), allow_pickle=False)
            answer = self._request("/predict", buffer.getvalue(), samples=len(chunk))
            probabilities = np.asarray(answer.get("probabilities"), dtype=np.float64)
            if probabilities.shape != (len(chunk), self.num_classes):
                raise XmodalError(f"{self.url}/predict answered shape {probabilities.shape} for {len(chunk)} inputs; "
                                  f"expected ({len(chunk)}, {self.num_classes}) probabilities")
            self.journal.record([keys[i] for i in chunk], probabilities)
        return np.stack([self.journal.answers[key] for key in keys])


def _detail(error: urllib.error.HTTPError) -> str:
    try:
        return str(json.loads(error.read())["detail"])
    except Exception:  # not JSON, or no detail: the status line says enough
        return error.reason or "no detail"


def _retry_after(error: urllib.error.HTTPError) -> float:
    """Retry-After in seconds (0 when absent or given as a date: then the backoff decides)."""
    try:
        return max(0.0, float(error.headers.get("Retry-After") or 0))
    except ValueError:
        return 0.0
