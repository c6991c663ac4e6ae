"""Incident listing cost against the number of incidents: a page of 100 must not grow with it.

``python -m benchmarks.incident_listing [--sizes 1000,1000000] [--repeat 20]``
starts a private ``redis-server`` (free port, temporary directory, killed at
the end; ``--redis-url`` uses an existing one instead), and for each size:

1. writes that many incidents straight into Redis with a server-side script,
   in the layout from before the listing indexes (incident hash and
   ``incident::ids`` only): 1% open, 0.5% acknowledged, 10% from an Argus
   source, tags ``team=0..9``;
2. runs the start-up migration (shared/incident_index.py ``build``) and
   times it;
3. times ``GET /api/v2/incidents/`` pages of 100 through the real API app
   (in process, Litestar's test client) - the first page, the third page by
   its ``next`` cursor, ``open=true``, ``acked=true``, one tag, one source -
   and the dashboard's ``CheckStore.list_incidents(open=True, limit=100)``.

Prints the median and spread (min/max) of ``--repeat`` timings per query and
size on stderr, and one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import json
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import msgspec
import redis
from litestar.testing import TestClient

from benchmarks.ports import free_port as _free_port
from services.api.app import create_app
from services.api.argus.store import ArgusStore
from services.api.context import ApiContext
from shared import incident_index
from shared.check_store import CheckStore
from shared.config import Settings
from shared.keys import Keys
from shared.sender import Sender
from shared.store import connect_redis, delete_namespace

# Writes incidents ARGV[2]..ARGV[3] under prefix ARGV[1]: hash + incident::ids, as before the
# indexes.  ARGV[4] is the Argus source's pk.  One call per chunk keeps Redis responsive.
_GENERATE = """
local p, first, last, src = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4]
for i = first, last do
  local key = p .. 'incident:' .. i .. ':attrs'
  local start = 1600000000 + i * 10
  local source = (i % 10 == 0) and src or 'tocsin'
  redis.call('HSET', key, 'id', i, 'start_time', start, 'level', 1 + i % 5,
    'source_incident_id', 'host-' .. (i % 5000) .. ':svc-' .. (i % 7),
    'description', 'host-' .. (i % 5000) .. ':svc is critical', 'check_id', 'c' .. i,
    'entity', 'host-' .. (i % 5000), 'check', 'svc-' .. (i % 7), 'source', source,
    'tags', '["team=' .. (i % 10) .. '"]')
  if i % 100 ~= 0 then redis.call('HSET', key, 'end_time', start + 600) end
  if i % 200 == 0 then redis.call('HSET', key, 'acked', 'true') end
  redis.call('ZADD', p .. 'incident::ids', start, i)
end
return last - first + 1
"""
CHUNK = 20_000


def log(msg: str) -> None:
    print(f"[listing {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def generate(r: redis.Redis, keys: Keys, n: int, source_pk: int) -> None:
    script = r.register_script(_GENERATE)
    for first in range(1, n + 1, CHUNK):
        script(args=[keys.p, first, min(n, first + CHUNK - 1), source_pk])


def timed(fn: Callable[[], object], repeat: int) -> dict[str, float]:
    fn()  # warm: connection, sources, first script load
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append((time.perf_counter() - started) * 1000)
    return {
        "median_ms": round(statistics.median(times), 2),
        "min_ms": round(min(times), 2),
        "max_ms": round(max(times), 2),
    }


def measure(base: Settings, size: int, repeat: int) -> dict[str, Any]:
    token = secrets.token_hex(16)
    settings = msgspec.structs.replace(
        base, namespace="listing" + secrets.token_hex(4), api_token=token
    )
    r = connect_redis(settings)
    keys = Keys(settings.namespace)
    store = ArgusStore(r, keys)
    try:
        source, _ = store.create_source("glue", "bench", "")
        started = time.perf_counter()
        generate(r, keys, size, source.pk)
        generated_s = time.perf_counter() - started
        started = time.perf_counter()
        indexed = incident_index.build(r, keys)
        migration_s = time.perf_counter() - started
        assert indexed == size, (indexed, size)
        log(f"{size} incidents: generated in {generated_s:.1f} s, indexed in {migration_s:.1f} s")
        ctx = ApiContext(settings=settings, redis=r, sender=Sender(settings))
        auth = {"Authorization": f"Token {token}"}
        out: dict[str, Any] = {
            "incidents": size,
            "generate_s": round(generated_s, 2),
            "migration_s": round(migration_s, 2),
            "redis_used_mb": round(int(r.info("memory")["used_memory"]) / 1e6, 1),
        }
        with TestClient(app=create_app(ctx)) as client:

            def page(query: str) -> Callable[[], object]:
                def get() -> object:
                    resp = client.get(f"/api/v2/incidents/?page_size=100{query}", headers=auth)
                    assert resp.status_code == 200, resp.text
                    assert resp.json()["results"], query
                    return resp

                return get

            first = client.get("/api/v2/incidents/?page_size=100", headers=auth).json()
            second = client.get(first["next"], headers=auth).json()

            def third() -> object:
                resp = client.get(second["next"], headers=auth)
                assert resp.status_code == 200 and len(resp.json()["results"]) == 100
                return resp

            queries: dict[str, Callable[[], object]] = {
                "first_page": page(""),
                "third_page_by_cursor": third,
                "open": page("&open=true"),
                "acked": page("&acked=true"),
                "tag": page("&tags=team=3"),
                "source": page(f"&source__id__in={source.pk}"),
                "dashboard_open": lambda: CheckStore(r, keys).list_incidents(open=True, limit=100),
            }
            for name, fn in queries.items():
                out[name] = timed(fn, repeat)
                log(f"{size}: {name} {out[name]}")
        ctx.sender.close()
        return out
    finally:
        delete_namespace(r, settings.namespace)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.incident_listing", description=__doc__)
    p.add_argument("--sizes", default="1000,1000000")
    p.add_argument("--repeat", type=int, default=20)
    p.add_argument("--redis-url", default=None, help="use this Redis instead of a private one")
    args = p.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    base = Settings.from_env()
    proc = None
    tmp = None
    if args.redis_url is None:
        if shutil.which("redis-server") is None:
            p.error("redis-server is not installed; pass --redis-url")
        tmp = tempfile.mkdtemp(prefix="tocsin-listing-")
        port = _free_port()
        proc = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--dir",
                tmp,
                "--save",
                "",
                "--appendonly",
                "no",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        url = f"redis://127.0.0.1:{port}/0"
        deadline = time.monotonic() + 10
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.exceptions.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
    else:
        url = args.redis_url
    base = msgspec.structs.replace(base, redis_url=url)
    try:
        results = [measure(base, size, args.repeat) for size in sizes]
    finally:
        if proc is not None:
            proc.kill()
            proc.wait()
        if tmp is not None:
            shutil.rmtree(tmp, ignore_errors=True)
    print(json.dumps({"repeat": args.repeat, "results": results}, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
