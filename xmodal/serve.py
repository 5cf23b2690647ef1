"""A frozen source behind HTTP, as a real black box: class probabilities and nothing else.

    xmodal serve bc-resnet-gsc35 --port 8000 --api-key-file key.txt

    GET  /info      the source's name, weights sha256, input spec, class names and limits
    POST /predict   a batch of inputs -> {"probabilities": [[...], ...]}

A batch is sent as a .npy file (Content-Type application/x-npy: float32, shape (N, *input
shape), no pickles) or as JSON {"inputs": [...]}; the answer is always JSON probabilities
(softmax of the source's logits), never logits, features or gradients. Every request but
/info's needs the API key (header X-API-Key) when the server has one. Bodies over the size
limit get 413, batches over the batch limit 413, a wrong key 401, requests beyond the rate
limit 429 with Retry-After, malformed or mis-shaped inputs 422, each with a one-line
"detail" that names the problem. `HttpBlackBoxSource` (xmodal.http_source) is the client.
"""


import hmac
import io
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from xmodal.errors import XmodalError

if TYPE_CHECKING:  # torch and the sources load when a server is made, not when the CLI parses flags
    from adapters_modal.base import SourceModel

NPY = "application/x-npy"


@dataclass(frozen=True)
class ServeLimits:
    """max_batch: inputs per request; max_body_bytes: request body size; rate: requests per
    second per client address, with bursts of up to `burst` requests."""

    max_batch: int = 256
    max_body_bytes: int = 64 * 2**20
    rate: float = 50.0
    burst: int = 100

    @classmethod
    def for_rate(cls, max_batch: int, max_body_bytes: int, rate: float) -> "ServeLimits":
        """Limits with bursts of up to two seconds' worth of requests (at least one)."""
        return cls(max_batch, max_body_bytes, rate, max(1, int(2 * rate)))

    def __post_init__(self):
        for name in ("max_batch", "max_body_bytes", "rate", "burst"):
            if not getattr(self, name) > 0:
                raise XmodalError(f"the serve limit {name} must be positive, got {getattr(self, name)}")


class RateLimiter:
    """A token bucket per client: `rate` tokens a second, at most `burst` saved up."""

    MAX_CLIENTS = 10_000  # beyond this many remembered clients, the ones with full buckets are forgotten

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, time of last refill)
        self.lock = threading.Lock()

    def _forget_idle(self, now: float) -> None:
        self.buckets = {client: (tokens, last) for client, (tokens, last) in self.buckets.items()
                        if tokens + (now - last) * self.rate < self.burst}

    def wait_time(self, client: str) -> float:
        """0 when the request may go now (and spends a token), else seconds until it may."""
        with self.lock:
            now = time.monotonic()
            if len(self.buckets) > self.MAX_CLIENTS:
                self._forget_idle(now)
            tokens, last = self.buckets.get(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate)
            if tokens >= 1:
                self.buckets[client] = (tokens - 1, now)
                return 0.0
            self.buckets[client] = (tokens, now)
            return (1 - tokens) / self.rate


def input_shape(source: "SourceModel") -> tuple[int, ...]:
    """The shape of one input of `source` (without the batch)."""
    if source.input_spec.modality not in ("audio", "image"):
        raise XmodalError(f"{source.name} takes {source.input_spec.modality}; xmodal serve serves audio and image "
                          "sources")
    return source.input_spec.sample_shape


def describe(source: "SourceModel", limits: ServeLimits) -> dict:
    spec = source.input_spec
    return {"name": source.name, "weights_sha256": source.weights_sha256, "modality": spec.modality,
            "input_shape": list(input_shape(source)), "sample_rate": spec.sample_rate,
            "value_range": list(spec.value_range) if spec.value_range else None,
            "class_names": list(source.class_names), "max_batch": limits.max_batch,
            "max_body_bytes": limits.max_body_bytes}


class BadBatch(ValueError):
    """A request body that is not a batch of the source's inputs (HTTP 422)."""


class BatchTooLarge(ValueError):
    """More inputs in one request than the server takes (HTTP 413)."""


def parse_batch(body: bytes, content_type: str, shape: tuple[int, ...], max_batch: int) -> np.ndarray:
    """The request's inputs as float32 (N, *shape), or BadBatch / BatchTooLarge naming what is wrong."""
    if content_type.split(";")[0].strip() == NPY:
        try:
            batch = np.load(io.BytesIO(body), allow_pickle=False)
        except Exception as exc:  # numpy raises ValueError, OSError, EOFError... for a bad file
            raise BadBatch(f"the body is not a readable .npy array ({type(exc).__name__}: {exc})") from None
        if not isinstance(batch, np.ndarray):  # an .npz archive loads as an NpzFile
            raise BadBatch("the body is an .npz archive; send one .npy array")
    else:
        import json

        try:
            document = json.loads(body)
            batch = np.asarray(document["inputs"], dtype=np.float32)
        except (ValueError, TypeError, KeyError, RecursionError) as exc:
            raise BadBatch(f'send {NPY} or JSON {{"inputs": [[...], ...]}} of numbers ({type(exc).__name__})') \
                from None
    if batch.dtype.kind not in "fiu":
        raise BadBatch(f"inputs must be numbers, got dtype {batch.dtype}")
    batch = batch.astype(np.float32, copy=False)
    if batch.ndim != len(shape) + 1 or tuple(batch.shape[1:]) != shape:
        raise BadBatch(f"inputs must have shape (N, {', '.join(map(str, shape))}), got {tuple(batch.shape)}")
    if not 1 <= len(batch) <= max_batch:
        raise BatchTooLarge(f"a batch holds 1 to {max_batch} inputs, got {len(batch)}")
    if not np.isfinite(batch).all():
        raise BadBatch("inputs hold NaN or infinite values")
    return batch


def create_app(source: "SourceModel", api_key: str | None = None, limits: ServeLimits = ServeLimits()):
    """The FastAPI application serving `source` (frozen, eval mode)."""
    import torch
    from fastapi import FastAPI, Request
    from fastapi.concurrency import run_in_threadpool
    from fastapi.responses import JSONResponse

    shape = input_shape(source)
    limiter = RateLimiter(limits.rate, limits.burst)
    lock = threading.Lock()  # one forward pass at a time (in the thread pool): torch's threads are shared
    expected_key = None if api_key is None else api_key.encode()
    app = FastAPI(title=f"xmodal serve {source.name}", docs_url=None, redoc_url=None, openapi_url=None)

    def refuse(status: int, detail: str, headers: dict | None = None):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)

    @app.get("/info")
    def info():
        return describe(source, limits)

    @app.post("/predict")
    async def predict(request: Request):
        client = request.client.host if request.client else "unknown"
        wait = limiter.wait_time(client)  # before the key check: guessing keys is rate-limited too
        if wait > 0:
            return refuse(429, f"rate limit of {limits.rate:g} requests/s exceeded; retry after {wait:.2f} s",
                          {"Retry-After": f"{max(1, round(wait))}"})
        given = request.headers.get("x-api-key", "").encode("utf-8", "surrogateescape")
        if expected_key is not None and not hmac.compare_digest(given, expected_key):
            return refuse(401, "missing or wrong API key (header X-API-Key)")
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limits.max_body_bytes):
            return refuse(413, f"the body is larger than {limits.max_body_bytes} bytes; send smaller batches")
        body = bytearray()
        async for chunk in request.stream():  # counted as it arrives: a lying Content-Length does not help
            body += chunk
            if len(body) > limits.max_body_bytes:
                return refuse(413, f"the body is larger than {limits.max_body_bytes} bytes; send smaller batches")
        try:
            batch = parse_batch(bytes(body), request.headers.get("content-type", ""), shape, limits.max_batch)
        except BatchTooLarge as exc:
            return refuse(413, str(exc))
        except BadBatch as exc:
            return refuse(422, str(exc))
        return {"probabilities": await run_in_threadpool(answer, batch)}  # the event loop stays free

    def answer(batch: np.ndarray) -> list:
        # One input at a time: a batched forward pass may differ in the last bits with the
        # batch's other inputs, and then the answer for an input would depend on what else was
        # sent with it; a client's journal of answers (resuming a fit) relies on it not.
        with lock, torch.no_grad():
            return [source.logits(torch.from_numpy(row[None])).softmax(dim=1)[0].double().tolist() for row in batch]

    return app


def serve(source: "SourceModel", host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          limits: ServeLimits = ServeLimits()) -> None:
    """Run the server until interrupted (uvicorn)."""
    import uvicorn

    uvicorn.run(create_app(source, api_key, limits), host=host, port=port, log_level="warning")


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class BackgroundServer:
    """`app` served by uvicorn on 127.0.0.1 in a thread of this process, on a free port, until
    `stop()` (or the end of a `with` block): for tests, benchmarks and notebooks.

        with BackgroundServer(create_app(load_source("efficientnet-lite0"))) as server:
            HttpBlackBoxSource(server.url)
    """

    def __init__(self, app, start_timeout: float = 30.0):
        import uvicorn

        self.port = free_port()
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="error"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + start_timeout
        while not self.server.started:
            if not self.thread.is_alive():  # e.g. another process took the port first
                raise XmodalError(f"the server on 127.0.0.1:{self.port} stopped while starting (see the log above)")
            if time.monotonic() > deadline:
                self.stop()
                raise XmodalError(f"the server on 127.0.0.1:{self.port} did not start within {start_timeout:g} s")
            time.sleep(0.05)
        self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
