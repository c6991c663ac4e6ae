"""How fast the Argus glue workload can go at all on this box: its client against a server that costs nothing.

``python -m benchmarks.argus_client_ceiling [--load PATH] [-n 2000] [-k 4]``
runs the shared glue-service load generator (``../shared/bench/argus/load.py``:
the real argus-api-client, K threads, N incidents created then resolved)
against a canned HTTP/1.1 server in another process.  The server answers
every create with the same incident and every event post with the same event,
both encoded from the Argus API's own response types
(``services/api/argus/schemas.py``), so the client parses exactly the shape it
parses from Tocsin; it reads no Redis and publishes nothing, and its own CPU
is reported so it can be told apart.

What comes out is the client's ceiling: no server on this box, Tocsin's or
argus-server, can be measured faster than this with that client.  The load
generator's JSON goes to stdout as its last line, with ``client_cpu_ms_per_request``
and ``server_cpu_ms_per_request`` (from ``/proc``) and the load average added.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from benchmarks.children import bound_to_me
from benchmarks.observe import proc_usage
from benchmarks.ports import free_port, wait_listening
from services.api.argus.schemas import (
    Actor,
    EventOut,
    EventType,
    IncidentOut,
    SourceOut,
    SourceType,
    TagOut,
)

DEFAULT_LOAD = Path(__file__).resolve().parents[2] / "shared" / "bench" / "argus" / "load.py"
_INCIDENTS = re.compile(rb"^POST /api/v2/incidents/ ")
_EVENTS = re.compile(rb"^POST /api/v2/incidents/\d+/events/ ")
_TIME = "2026-12-03T21:00:00.000000+00:00"


def _incident() -> bytes:
    source = SourceOut(pk=2, name="bench", type=SourceType(name="tocsin"), user=2, base_url="")
    tags = [
        TagOut(tag=tag, added_by=2, added_time=_TIME)
        for tag in ("host=host1.example.org", "bench_run=0123abcd")
    ]
    return msgspec.json.encode(
        IncidentOut(
            pk=4242,
            start_time=_TIME,
            end_time="infinity",
            source=source,
            source_incident_id="bench-0123abcd-1",
            details_url="http://example.invalid/1",
            description="bench incident 1 of run 0123abcd",
            level=2,
            ticket_url="",
            tags=tags,
            metadata={},
            stateful=True,
            open=True,
            acked=False,
            check="argus-bench:bench-0123abcd-1",
        )
    )


def _event() -> bytes:
    return msgspec.json.encode(
        EventOut(
            pk=9191,
            incident=4242,
            actor=Actor(pk=2, username="bench"),
            timestamp=_TIME,
            received=_TIME,
            type=EventType(value="END", display="Incident end"),
            description="bench resolve",
        )
    )


def _response(status: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _serve(port: int) -> None:
    """HTTP/1.1 with keep-alive: a create gets the incident, an event post the event."""
    created, resolved = _response("201 Created", _incident()), _response("201 Created", _event())
    missing = _response("404 Not Found", b'{"detail":"not found"}')

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                if _EVENTS.match(head):
                    writer.write(resolved)
                elif _INCIDENTS.match(head):
                    writer.write(created)
                else:
                    writer.write(missing)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=512)
    async with server:
        await server.serve_forever()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--load", type=Path, default=DEFAULT_LOAD, help="the shared load generator")
    p.add_argument("-n", type=int, default=2000, help="incidents created, then resolved")
    p.add_argument("-k", type=int, default=4, help="client threads")
    p.add_argument("--serve", type=int, help=argparse.SUPPRESS)  # the server child
    args = p.parse_args()
    if args.serve:
        asyncio.run(_serve(args.serve))
        return 0
    if not args.load.exists():
        p.error(f"{args.load}: no such load generator (--load)")
    port = free_port()
    server = subprocess.Popen(
        bound_to_me([sys.executable, "-m", "benchmarks.argus_client_ceiling", "--serve", str(port)])
    )
    try:
        if not wait_listening(port, 10):
            raise RuntimeError(f"canned server did not listen on {port}")
        with tempfile.NamedTemporaryFile("w", suffix=".token") as token:
            token.write("canned")
            token.flush()
            load_before = os.getloadavg()[0]
            usage = resource.getrusage(resource.RUSAGE_CHILDREN)
            before = usage.ru_utime + usage.ru_stime
            server_cpu = proc_usage(server.pid)["cpu_s"]
            started = time.monotonic()
            client = subprocess.Popen(
                [
                    sys.executable,
                    str(args.load),
                    "-n",
                    str(args.n),
                    "-k",
                    str(args.k),
                    "--api-root",
                    f"http://127.0.0.1:{port}/api/v2/",
                    "--token",
                    "x",
                    "--label",
                    "canned server",
                ],
                stdout=subprocess.PIPE,
                text=True,
            )
            out, _ = client.communicate()
            wall = time.monotonic() - started
            server_cpu = proc_usage(server.pid)["cpu_s"] - server_cpu
            # The client's CPU: what the children reaped so far gained (the server is not).
            reaped = resource.getrusage(resource.RUSAGE_CHILDREN)
            client_cpu = reaped.ru_utime + reaped.ru_stime - before
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)
    report = json.loads(out.strip().splitlines()[-1])
    requests = report["create"]["ok"] + report["resolve"]["ok"] + 2 * report["warmup"]
    report["loadavg1_at_start"] = round(load_before, 2)
    report["wall_s"] = round(wall, 2)
    report["server_cpu_ms_per_request"] = round(server_cpu * 1000 / max(1, requests), 3)
    report["client_cpu_ms_per_request"] = round(client_cpu * 1000 / max(1, requests), 3)
    print(json.dumps(report))
    return client.returncode


if __name__ == "__main__":
    sys.exit(main())
