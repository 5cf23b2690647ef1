"""The journal of a black-box fit: answers already paid for, kept so that an interrupted fit
resumes without paying for them again (xmodal.http_source explains the resumption).

The file is append-only, so recording a batch costs that batch, not the whole journal (an
image API answers 1 000 probabilities per input: rewriting 20 000 answers after every batch
would write about 100 GB over a fit):

    line 1     JSON {"xmodal_query_journal": 1, "url": ..., "weights_sha256": ..., "classes": K}
    then       one record per answer: the input's sha256 (32 bytes) and K float64 probabilities

Each batch is appended with one write and fsync'd. A kill during the write leaves a torn last
record, which the next opening drops (that answer is asked again). Journals of the
first format (an .npz rewritten whole) are read and converted once. A record whose
probabilities are not finite, non-negative and summing to 1 (the zeros a power loss can
leave) ends the journal there, like a torn one.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np

from xmodal.atomic import atomic_write
from xmodal.errors import XmodalError

FORMAT = "xmodal_query_journal"
ZIP_MAGIC = b"PK\x03\x04"  # how an .npz (a zip archive) starts
VERSION = 1
DIGEST_BYTES = 32


class QueryJournal:
    """Answers already paid for, input sha256 -> probabilities, of one server (URL and weights
    sha256); `path` None keeps them in memory only."""

    def __init__(self, path: str | Path | None, server: tuple[str, str], num_classes: int):
        self.path, self.server, self.num_classes = None if path is None else Path(path), server, num_classes
        self.answers: dict[str, np.ndarray] = {}
        if self.path is None or not self.path.is_file():
            return
        with open(self.path, "rb") as handle:
            start = handle.read(len(ZIP_MAGIC))
        if start == ZIP_MAGIC:  # not zipfile.is_zipfile: it searches the end, where a record may hold those bytes
            self._convert_npz()
        self._read()

    @property
    def record_bytes(self) -> int:
        return DIGEST_BYTES + 8 * self.num_classes

    @staticmethod
    def key(sample: np.ndarray) -> str:
        return hashlib.sha256(np.ascontiguousarray(sample, dtype=np.float32).tobytes()).hexdigest()

    def _header(self) -> bytes:
        url, sha = self.server
        header = {FORMAT: VERSION, "url": url, "weights_sha256": sha, "classes": self.num_classes}
        return (json.dumps(header) + "\n").encode()

    def _refuse(self, why: str) -> XmodalError:
        return XmodalError(f"{self.path} is not a query journal ({why}); give another --query-journal or remove it")

    def _check_server(self, url: str, sha: str) -> None:
        if (url, sha) != tuple(self.server):
            raise XmodalError(f"{self.path} holds answers of {url} (model sha256 {sha[:12]}…), not of "
                              f"{self.server[0]} (model sha256 {self.server[1][:12]}…); give another --query-journal")

    def _read(self) -> None:
        data = self.path.read_bytes()
        end = data.find(b"\n")
        try:
            header = json.loads(data[:end]) if end >= 0 else None
        except (ValueError, RecursionError):
            header = None
        if not isinstance(header, dict) or header.get(FORMAT) != VERSION:
            raise self._refuse(f"its first line is not an {FORMAT} version {VERSION} header")
        self._check_server(str(header.get("url")), str(header.get("weights_sha256")))
        if header.get("classes") != self.num_classes:
            raise self._refuse(f"{header.get('classes')} classes per answer, the server gives {self.num_classes}")
        body = data[end + 1:]
        whole = 0  # bytes of sound records; a torn or damaged one and all after it are dropped
        for start in range(0, len(body) - self.record_bytes + 1, self.record_bytes):
            record = body[start:start + self.record_bytes]
            probabilities = np.frombuffer(record[DIGEST_BYTES:], dtype=np.float64).copy()
            if not (np.isfinite(probabilities).all() and (probabilities >= 0).all()
                    and abs(probabilities.sum() - 1) < 1e-3):
                break
            self.answers[record[:DIGEST_BYTES].hex()] = probabilities
            whole = start + self.record_bytes
        if whole < len(body):  # cut the rest off, so that appended records line up again
            try:
                with open(self.path, "r+b") as handle:
                    handle.truncate(end + 1 + whole)
            except OSError as exc:
                raise XmodalError(f"{self.path} ends in a torn record that cannot be cut off ({exc.strerror}); "
                                  "make the file writable, or give another --query-journal") from None

    def _convert_npz(self) -> None:
        """A journal of the first format (server, keys, probabilities in one .npz), rewritten as this one."""
        try:
            with np.load(self.path, allow_pickle=False) as saved:
                url, sha = saved["server"].tolist()
                keys, probabilities = saved["keys"].tolist(), saved["probabilities"]
        except (OSError, ValueError, KeyError, EOFError) as exc:
            raise self._refuse(str(exc)) from None
        self._check_server(url, sha)
        if probabilities.shape != (len(keys), self.num_classes):
            raise self._refuse(f"answers of shape {probabilities.shape}, the server gives {self.num_classes} classes")
        atomic_write(self.path, self._header() + b"".join(self._records(keys, probabilities)))

    def _records(self, keys: list[str], probabilities: np.ndarray) -> list[bytes]:
        rows = np.ascontiguousarray(probabilities, dtype=np.float64)
        return [bytes.fromhex(key) + row.tobytes() for key, row in zip(keys, rows)]

    def record(self, keys: list[str], probabilities: np.ndarray) -> None:
        """Keep the answers; on disk, appended in one write and fsync'd."""
        self.answers.update(zip(keys, np.asarray(probabilities, dtype=np.float64)))
        if self.path is None:
            return
        if not self.path.is_file():
            atomic_write(self.path, self._header())
        with open(self.path, "ab") as handle:
            handle.write(b"".join(self._records(keys, probabilities)))
            handle.flush()
            os.fsync(handle.fileno())
