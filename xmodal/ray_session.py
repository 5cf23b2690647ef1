"""Ray started and stopped for one piece of work: a sweep (xmodal.sweep.runner) or a search on
Ray Tune (xmodal.training.search_tune).

    with ray_session(None, workers=2) as ray: ...          # a new local Ray, shut down after
    with ray_session("HOST:6379", None) as ray: ...        # a running cluster

Ray is an extra (`pip install 'xmodal[sweep]'`): only this module imports it, when called.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

from xmodal.errors import DataError


def import_ray():
    """The ray module, or one line naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise DataError("xmodal sweep and --search-backend ray run on Ray, which is not installed: "
                        "pip install 'xmodal[sweep]'") from None
    return ray


@contextmanager
def ray_session(address: str | None, workers: int | None):
    """ray.init for the duration: a new local Ray of `workers` CPUs (default: Ray's count of
    this machine's), never another cluster that happens to be visible, or the cluster at
    `address` ("auto", "HOST:PORT" or "ray://HOST:PORT"); shut down after, unless Ray was
    already running in this process (then it is used as it is)."""
    import logging

    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    env = {k: v for k, v in os.environ.items() if k.startswith(("XMODAL_", "HF_HUB_"))}  # never a token
    options = {"include_dashboard": False, "log_to_driver": False, "logging_level": logging.WARNING,
               "runtime_env": {"env_vars": env} if env else None}
    failed = (f"cannot reach the Ray cluster at {address}: {{}}; start one with `ray start --head` or leave out "
              "--address for a local Ray" if address else "cannot start a local Ray: {}")
    try:
        if address is None:
            ray.init(address="local", num_cpus=workers, **options)
        else:
            _check_reachable(address, failed)
            ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise DataError(failed.format(" ".join(str(exc).split())[:300])) from None
    try:
        yield ray
    finally:
        ray.shutdown()


def _check_reachable(address: str, message: str) -> None:
    """A HOST:PORT that nothing answers on fails in seconds (ray.init would retry for minutes)."""
    import socket

    host, _, port = address.removeprefix("ray://").rpartition(":")
    if not host or not port.isdigit():
        return  # "auto" and the like: ray.init finds the cluster itself
    try:
        socket.create_connection((host, int(port)), timeout=5).close()
    except OSError as exc:
        raise DataError(message.format(exc.strerror or type(exc).__name__)) from None
