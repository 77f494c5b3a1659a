"""A Ray connection for the length of one command: a local instance started and stopped with it, or a cluster.

Shared by ``compsec scan-many`` (:mod:`compsec.cluster.driver`) and ``compsec audit --ray``
(:mod:`compsec.audit.on_ray`).
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from contextlib import contextmanager

from compsec.errors import CompsecError, MissingDependencyError

OBJECT_STORE_BYTES = 128 << 20  # rows and records are small; a local instance needs little shared memory
CONNECT_S = 5.0  # a HOST:PORT that does not accept a TCP connection by then is refused (ray.init retries minutes)


def import_ray(verb: str):
    """The ``ray`` module; MissingDependencyError with the install line when it is missing."""
    try:
        import ray
    except ImportError:
        raise MissingDependencyError("ray", "cluster", verb) from None
    return ray


@contextmanager
def ray_session(address: str, num_cpus: int, verb: str = "scan-many") -> Iterator[None]:
    """Ray connected for the block: ``address`` "" starts a local instance of ``num_cpus`` CPUs (and the GPUs Ray
    finds), stopped after the block; "auto" joins the running cluster, "HOST:PORT" / "ray://..." that one.
    A session a caller (a test, a notebook) already opened is used as it is."""
    ray = import_ray(verb)
    if ray.is_initialized():
        yield
        return
    if address:
        require_listening(address)
        ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
    else:
        ray.init(address="local", num_cpus=num_cpus, object_store_memory=OBJECT_STORE_BYTES,
                 include_dashboard=False,  # "local": a new instance even where RAY_ADDRESS names a cluster
                 logging_level=logging.ERROR, log_to_driver=False)
    try:
        yield
    finally:
        ray.shutdown()


def require_listening(address: str) -> None:
    """CompsecError at once when ``address`` is ``HOST:PORT`` and nothing accepts a connection there ("auto" and
    ``ray://`` URLs are left to Ray)."""
    host, _, port = address.rpartition(":")
    if address == "auto" or "://" in address or not host or not port.isdigit():
        return
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_S).close()
    except OSError as err:
        raise CompsecError(f"--ray {address}: no Ray cluster answers there ({err}); start one with `ray start "
                           "--head` and give its address, or use --ray auto on a cluster node") from None

