"""HTTP for the gateways: libcurl (pycurl), many requests at once from one thread.

Why libcurl: the delivery path is CPU-bound on a small box, and the page has
to share it with the broker, Redis and the other workers.  One POST through
httpx on a thread pool cost about 1.7 ms of CPU here; the same POST through
a libcurl multi handle costs about 0.2 ms, because connecting, writing and
parsing happen in C without the GIL and without a thread per request.

Every request goes to exactly the addresses the destination guard checked:
the URL's host is resolved once, checked (shared/destinations.py)
and pinned with ``CURLOPT_RESOLVE``, so a DNS answer that changes between
the check and the connect (rebinding) cannot reach a private address.  The
Host header and the TLS server name stay the URL's own.  Redirects are not
followed, only http and https are spoken, and the response body is never
kept: a failure is described by its status line alone.
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pycurl

from services.gateways.core import HttpRequest, SendOutcome, SendResult, classify
from shared.destinations import Allowlist, DestinationDenied, check_destination

USER_AGENT = "tocsin-gateway/0.2"
_PROTOCOLS = pycurl.PROTO_HTTP | pycurl.PROTO_HTTPS

try:  # libcurl's own CA path may not exist on this system; certifi's bundle always does
    import certifi

    CA_BUNDLE: str | None = certifi.where()
except ImportError:  # pragma: no cover - certifi comes with httpx
    CA_BUNDLE = None


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request that passed the destination guard, with the addresses to pin."""

    request: HttpRequest
    resolve: tuple[str, ...]  # CURLOPT_RESOLVE entries ("host:port:addr")


def prepare(req: HttpRequest, allow: Allowlist) -> Prepared | SendResult:
    """Check the destination of ``req``; a refusal or a DNS failure is the send's result."""
    try:
        addresses = check_destination(req.url, allow)
    except DestinationDenied as exc:
        return SendResult.failed(str(exc))
    except OSError as exc:
        return SendResult.retry(f"cannot resolve destination: {exc}")
    parts = urlsplit(req.url)
    host = parts.hostname or ""
    try:
        ipaddress.ip_address(host)
        return Prepared(req, ())  # an address literal: nothing to resolve, nothing to rebind
    except ValueError:
        pass
    port = parts.port or (443 if parts.scheme == "https" else 80)
    pins = ",".join(f"[{ip}]" if ip.version == 6 else str(ip) for ip in addresses)
    return Prepared(req, (f"{host}:{port}:{pins}",) if pins else ())


def _configure(c: pycurl.Curl, p: Prepared, timeout_s: float) -> None:
    req = p.request
    c.setopt(pycurl.URL, req.url)
    c.setopt(pycurl.POSTFIELDS, req.body)
    c.setopt(
        pycurl.HTTPHEADER,
        [
            "Content-Type: application/json",
            "Expect:",
            *(f"{k}: {v}" for k, v in req.headers.items()),
        ],
    )
    c.setopt(pycurl.RESOLVE, list(p.resolve))
    c.setopt(pycurl.TIMEOUT_MS, max(1, int(timeout_s * 1000)))


def new_handle() -> pycurl.Curl:
    """An easy handle with the options every delivery shares."""
    c = pycurl.Curl()
    c.setopt(pycurl.NOSIGNAL, 1)
    c.setopt(pycurl.USERAGENT, USER_AGENT)
    c.setopt(pycurl.FOLLOWLOCATION, 0)
    c.setopt(pycurl.PROTOCOLS, _PROTOCOLS)
    c.setopt(pycurl.WRITEFUNCTION, _discard)
    if CA_BUNDLE:
        c.setopt(pycurl.CAINFO, CA_BUNDLE)
    return c


def _discard(_data: bytes) -> None:
    return None


def result_of(c: pycurl.Curl, timeout_s: float, errno: int = 0, errmsg: str = "") -> SendResult:
    """Classify a finished transfer: its status, or the transport error."""
    if errno:
        if errno == pycurl.E_OPERATION_TIMEDOUT:
            return SendResult.retry(f"timeout after {timeout_s:g} s")
        return SendResult.retry(f"curl error {errno}: {errmsg}")
    status = int(c.getinfo(pycurl.RESPONSE_CODE))
    outcome = classify(status)
    if outcome is SendOutcome.DELIVERED:
        return SendResult.ok(status)
    error = f"HTTP {status}"
    if outcome is SendOutcome.RETRY:
        after = int(c.getinfo(pycurl.RETRY_AFTER) or 0)
        return SendResult.retry(error, status=status, retry_after=float(after) if after else None)
    return SendResult.failed(error, status=status)


def perform(req: HttpRequest, allow: Allowlist, timeout_s: float) -> SendResult:
    """One request, blocking (``tocsin media test``, and media sent outside the runner)."""
    prepared = prepare(req, allow)
    if isinstance(prepared, SendResult):
        return prepared
    c = new_handle()
    try:
        _configure(c, prepared, timeout_s)
        try:
            c.perform()
        except pycurl.error as exc:
            code, msg = exc.args[0], str(exc.args[1]) if len(exc.args) > 1 else ""
            return result_of(c, timeout_s, int(code), msg)
        return result_of(c, timeout_s)
    finally:
        c.close()


Work = tuple[Any, HttpRequest | SendResult]
# Called with the transfers that finished together; returns the work to start next.
Done = Callable[[list[tuple[Any, SendResult, float]]], Iterable[Work]]


@dataclass
class MultiSender:
    """Runs many requests at once on one libcurl multi handle, in the calling thread.

    :meth:`run` takes ``(token, request)`` pairs and calls ``done`` with the
    ``(token, result, seconds)`` of the transfers that finished together (so
    the caller records them in one Redis round trip); ``done`` returns the
    pairs to start next (a lane's following delivery), so ordered chains run
    without a thread each.  ``idle`` is called between waits (AMQP heartbeats).
    """

    allow: Allowlist
    timeout_s: float
    concurrency: int = 64
    _multi: pycurl.CurlMulti = field(init=False)
    _free: list[pycurl.Curl] = field(init=False, default_factory=list)

    def __post_init__(self) -> None:
        self._multi = pycurl.CurlMulti()
        # Keep connections to receivers that allow keep-alive (Slack, PagerDuty, most webhooks).
        self._multi.setopt(pycurl.M_MAXCONNECTS, max(8, self.concurrency))

    def close(self) -> None:
        for c in self._free:
            c.close()
        self._free.clear()
        self._multi.close()

    def run(
        self,
        work: Iterable[Work],
        done: Done,
        idle: Callable[[], None] | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> list[Work]:
        """Send everything in ``work`` (and what ``done`` adds); return when all finished.

        Once ``stopping()`` is true (SIGTERM), nothing new starts: the sends in
        flight finish and the work not started is returned, in order, for the
        caller to hand back to the queue, so a large batch cannot outlast the
        shutdown grace period.
        """
        queue: list[Work] = list(work)
        queue.reverse()  # pop() from the end keeps the given order
        active: dict[pycurl.Curl, tuple[Any, float]] = {}
        broken: BaseException | None = None
        left: list[Work] = []
        try:
            while queue or active:
                if queue and stopping is not None and stopping():
                    left, queue = queue[::-1], []
                    continue
                broken = self._step(queue, active, done, None if broken else idle) or broken
        finally:
            for c in active:  # only after an exception: leave the multi handle clean
                self._multi.remove_handle(c)
                self._free.append(c)
        if broken is not None:
            # The broker connection dropped while we waited: every started send has
            # finished and been recorded; now let the consumer reconnect.
            raise broken
        return left

    def _step(
        self,
        queue: list[Work],
        active: dict[pycurl.Curl, tuple[Any, float]],
        done: Done,
        idle: Callable[[], None] | None,
    ) -> BaseException | None:
        """Start what fits, wait a little, hand back what finished; returns an ``idle`` error."""
        while queue and len(active) < self.concurrency:
            token, req = queue.pop()
            started = time.perf_counter()
            prepared = req if isinstance(req, SendResult) else prepare(req, self.allow)
            if isinstance(prepared, SendResult):
                self._requeue(queue, done([(token, prepared, time.perf_counter() - started)]))
                continue
            c = self._free.pop() if self._free else new_handle()
            _configure(c, prepared, self.timeout_s)
            self._multi.add_handle(c)
            active[c] = (token, started)
        if not active:
            return None
        while self._multi.perform()[0] == pycurl.E_CALL_MULTI_PERFORM:
            pass
        finished: list[tuple[pycurl.Curl, int, str]] = []
        while True:
            left, ok, failed = self._multi.info_read()
            finished.extend((c, 0, "") for c in ok)
            finished.extend((c, int(code), str(msg)) for c, code, msg in failed)
            if not left:
                break
        if not finished:
            self._multi.select(0.05)
            if idle is not None:
                try:
                    idle()
                except Exception as exc:
                    return exc
            return None
        now = time.perf_counter()
        results: list[tuple[Any, SendResult, float]] = []
        for c, code, msg in finished:
            token, started = active.pop(c)
            results.append((token, result_of(c, self.timeout_s, code, msg), now - started))
            self._multi.remove_handle(c)
            self._free.append(c)
        self._requeue(queue, done(results))
        return None

    @staticmethod
    def _requeue(queue: list[Work], more: Iterable[Work]) -> None:
        # Follow-ups go first: the lane's next delivery should not wait behind the batch.
        queue.extend(reversed(list(more)))
