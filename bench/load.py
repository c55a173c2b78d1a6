"""Load benchmark: a mixed workload (searches, uploads, deletes) from concurrent clients against gunicorn in service
mode, then a consistency check. Bounded (stops by itself after ``--duration`` seconds plus a drain), loopback only.

By default it starts everything it needs and removes it afterwards: a private PostgreSQL cluster and Redis on free
ports, ``manage.py migrate``, gunicorn and one Celery worker (bundled toy model). ``--database-url``/``--redis-url``
point it at existing services instead (their data is left in place).

    .venv/bin/python bench/load.py                # the real run (3 minutes of load)
    .venv/bin/python bench/load.py --duration 20  # a smoke run

Prints a table and writes ``bench/results/load.json`` with top-level ``targets``: ``server_errors`` ≤ 0 and
``lost_images`` ≤ 0 (an uploaded image that is not present, embedded once and findable, or a deleted one that is
still there). Exit status 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import urllib3

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.reliability.services import (  # noqa: E402
    PrivatePostgres,
    PrivateRedis,
    app_env,
    free_port,
    make_tempdir,
    manage,
    png_pictures,
    start_web,
    start_worker,
)

QUERIES = ("a red circle", "two blue squares on the left", "a yellow star at the top", "three green triangles",
           "a purple cross on a black background", "orange circles", "a white square in the centre",
           "beach + 0.5 * sunset - people", "red - circle")  # fmt: skip


@dataclass
class Tally:
    """Outcomes of one operation across clients (latencies in seconds)."""

    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)

    def add(self, seconds: float, status: int) -> None:
        self.latencies.append(seconds)
        self.statuses[status] += 1

    def summary(self, duration: float) -> dict[str, Any]:
        ordered = sorted(self.latencies)

        def pct(p: float) -> float | None:
            return round(ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000, 1) if ordered else None

        return {
            "count": len(ordered),
            "rps": round(len(ordered) / duration, 2),
            "p50_ms": pct(0.50),
            "p99_ms": pct(0.99),
            "mean_ms": round(statistics.fmean(ordered) * 1000, 1) if ordered else None,
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": sum(v for k, v in self.statuses.items() if k == 0 or k >= 500),
            "client_errors": sum(v for k, v in self.statuses.items() if 400 <= k < 500),
        }


class Api:
    """The REST calls the workload makes (urllib3, no retries: every failure counts)."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.headers = {"Authorization": f"Token {token}"}
        self.pool = urllib3.PoolManager(maxsize=64, retries=False, timeout=urllib3.Timeout(total=60))
        self.failures: list[dict[str, Any]] = []

    def _failed(self, method: str, path: str, status: int, detail: str) -> None:
        if len(self.failures) < 20:
            self.failures.append({"request": f"{method} {path}", "status": status, "detail": detail})

    def call(self, method: str, path: str, headers: dict[str, str] | None = None, **kwargs: Any) -> tuple[int, Any]:
        try:
            response = self.pool.request(method, self.base_url + path, headers={**self.headers, **(headers or {})},
                                         **kwargs)  # fmt: skip
        except urllib3.exceptions.HTTPError as exc:
            self._failed(method, path, 0, repr(exc))
            return 0, None
        if response.status >= 500:
            self._failed(method, path, response.status, response.data[:300].decode("utf-8", "replace"))
        try:
            body = json.loads(response.data) if response.data else None
        except ValueError:
            body = None
        return response.status, body

    def search(self, query: str, limit: int = 10) -> tuple[int, Any]:
        return self.call("GET", "/api/v1/search", fields={"q": query, "limit": str(limit)})

    def upload(self, content: bytes, name: str, title: str) -> tuple[int, list[int]]:
        status, body = self.call("POST", "/api/v1/images/", fields={"files": (name, content, "image/png"),
                                                                     "title": title})  # fmt: skip
        ids = [int(r["id"]) for r in (body or {}).get("results", []) if r.get("status") in ("created", "existing")]
        return status, ids

    def delete(self, image_id: int) -> int:
        return self.call("DELETE", f"/api/v1/images/{image_id}")[0]

    def image(self, image_id: int) -> tuple[int, Any]:
        return self.call("GET", f"/api/v1/images/{image_id}")

    def findable(self, image_id: int) -> bool:
        status, body = self.search(f"image:{image_id}", limit=10)
        return status == 200 and image_id in [hit["image"]["id"] for hit in body["results"]]


class Workload:
    """Clients that pick search / upload / delete at random (by the mix) until the deadline."""

    def __init__(self, api: Api, mix: dict[str, float], clients: int, seed: int) -> None:
        self.api = api
        self.mix = mix
        self.clients = clients
        self.seed = seed
        self.tallies: dict[str, Tally] = defaultdict(Tally)
        self.uploaded: set[int] = set()
        self.deleted: set[int] = set()
        self.lock = threading.Lock()
        self.pictures = iter(png_pictures(10**7, seed=seed))

    def _next_picture(self) -> tuple[bytes, str]:
        with self.lock:
            return next(self.pictures)

    def _client(self, number: int, deadline: float) -> None:
        rng = random.Random(self.seed * 1000 + number)
        mine: list[int] = []
        ops, weights = zip(*self.mix.items(), strict=True)
        while time.monotonic() < deadline:
            op = rng.choices(ops, weights)[0]
            if op == "delete" and not mine:
                op = "upload"
            started = time.perf_counter()
            if op == "search":
                status = self.api.search(rng.choice(QUERIES))[0]
            elif op == "upload":
                content, caption = self._next_picture()
                status, ids = self.api.upload(content, f"load-{number}.png", caption)
                if status in (200, 201):
                    mine.extend(ids)
                    with self.lock:
                        self.uploaded.update(ids)
            else:
                victim = mine.pop(rng.randrange(len(mine)))
                status = self.api.delete(victim)
                if status == 204:
                    with self.lock:
                        self.deleted.add(victim)
            elapsed = time.perf_counter() - started
            with self.lock:
                self.tallies[op].add(elapsed, status)

    def run(self, duration: float) -> float:
        deadline = time.monotonic() + duration
        started = time.monotonic()
        threads = [threading.Thread(target=self._client, args=(n, deadline), daemon=True) for n in range(self.clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=duration + 120)
        return time.monotonic() - started


def embeddings_per_image(database_url: str, ids: list[int]) -> dict[int, tuple[str, int]]:
    import psycopg

    with psycopg.connect(database_url, connect_timeout=10) as conn:
        rows = conn.execute(
            "SELECT i.id, i.status, (SELECT count(*) FROM search_embedding e WHERE e.image_id = i.id) "
            "FROM images_image i WHERE i.id = ANY(%s)",
            (ids,),
        ).fetchall()
    return {int(pk): (status, int(count)) for pk, status, count in rows}


def consistency(api: Api, database_url: str, kept: list[int], deleted: list[int], drain_s: float) -> dict[str, Any]:
    """Wait (up to ``drain_s``) for the worker to embed every kept image, then check each one and each deletion."""
    started = time.monotonic()
    while time.monotonic() - started < drain_s:
        rows = embeddings_per_image(database_url, kept)
        if len(rows) == len(kept) and all(row == ("ready", 1) for row in rows.values()):
            break
        time.sleep(1)
    drained = time.monotonic() - started
    rows = embeddings_per_image(database_url, kept)
    missing = [pk for pk in kept if pk not in rows]
    not_ready = [pk for pk in kept if pk in rows and rows[pk][0] != "ready"]
    wrong_embeddings = [pk for pk in kept if pk in rows and rows[pk][1] != 1]
    not_served = [pk for pk in kept if api.image(pk)[0] != 200]
    not_findable = [pk for pk in kept if pk in rows and not api.findable(pk)]
    still_present = sorted(set(embeddings_per_image(database_url, deleted)) | {pk for pk in deleted
                                                                             if api.image(pk)[0] != 404})  # fmt: skip
    lost = set(missing) | set(not_ready) | set(wrong_embeddings) | set(not_served) | set(not_findable)
    return {
        "kept_images": len(kept),
        "deleted_images": len(deleted),
        "drain_seconds": round(drained, 1),
        "missing": missing[:50],
        "not_ready": not_ready[:50],
        "not_exactly_one_embedding": wrong_embeddings[:50],
        "not_served": not_served[:50],
        "not_findable": not_findable[:50],
        "deleted_still_present": still_present[:50],
        "lost_images": len(lost) + len(still_present),
    }


def warm_up(api: Api, clients: int, timeout: float = 180) -> None:
    """Concurrent text searches until a whole round answers fast: every web process has loaded the model and the
    index, so the measured run does not time first-request model loading."""
    print("load: warming up the web processes ...", flush=True)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        latencies: list[float] = []

        def one(query: str, latencies: list[float] = latencies) -> None:
            started = time.perf_counter()
            status = api.search(query)[0]
            latencies.append(time.perf_counter() - started if status == 200 else float("inf"))

        threads = [threading.Thread(target=one, args=(QUERIES[n % len(QUERIES)],)) for n in range(clients * 2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        if max(latencies) < 2.0:
            return
    raise RuntimeError("the web processes never answered text searches quickly")


def parse_mix(text: str) -> dict[str, float]:
    mix = {name.strip(): float(weight) for name, weight in (part.split("=") for part in text.split(","))}
    unknown = set(mix) - {"search", "upload", "delete"}
    if unknown or not mix:
        raise argparse.ArgumentTypeError(f"unknown operations in --mix: {sorted(unknown)}")
    return mix


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=180, help="seconds of load (default 180)")
    parser.add_argument("--clients", type=int, default=8, help="concurrent clients (threads)")
    parser.add_argument("--mix", type=parse_mix, default=parse_mix("search=0.75,upload=0.18,delete=0.07"))
    parser.add_argument("--seed-images", type=int, default=60, help="pictures uploaded before the load starts")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
    parser.add_argument("--drain", type=float, default=180, help="max seconds to wait for embeddings afterwards")
    parser.add_argument("--database-url", help="use this PostgreSQL instead of a private one")
    parser.add_argument("--redis-url", help="use this Redis instead of a private one")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--output", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    if args.duration <= 0 or args.duration > 1800:
        parser.error("--duration must be in (0, 1800] seconds")

    base = make_tempdir("semsearch-load-")
    os.chmod(base, 0o755)
    postgres = redis = web = worker = None
    try:
        if args.database_url:
            database_url = args.database_url
        else:
            postgres = PrivatePostgres(base / "postgres")
            postgres.init()
            database_url = postgres.url
        if args.redis_url:
            redis_url = args.redis_url
        else:
            redis = PrivateRedis(base / "redis")
            redis.start()
            redis_url = redis.url
        env = app_env(database_url=database_url, redis_url=redis_url, data_dir=base / "data")
        (base / "data").mkdir(exist_ok=True)
        print("load: migrating, starting gunicorn and a worker ...", flush=True)
        manage(env, "migrate", "--noinput")
        token = manage(env, "shell", "-c", (
            "from django.contrib.auth import get_user_model; from rest_framework.authtoken.models import Token;"
            "u, _ = get_user_model().objects.get_or_create(username='load-staff', defaults={'is_staff': True});"
            "print(Token.objects.get_or_create(user=u)[0].key)")).strip().splitlines()[-1]  # fmt: skip
        port = free_port()
        web = start_web(env, port=port, workers=args.web_workers, threads=args.threads)
        worker = start_worker(env, name="load-worker")
        api = Api(f"http://127.0.0.1:{port}", token)

        workload = Workload(api, args.mix, args.clients, args.seed)
        print(f"load: seeding {args.seed_images} pictures ...", flush=True)
        seeded: list[int] = []
        for content, caption in png_pictures(args.seed_images, seed=args.seed + 10_000):
            status, ids = api.upload(content, "seed.png", caption)
            if status not in (200, 201):
                raise RuntimeError(f"seeding failed with {status}")
            seeded.extend(ids)
        seed_check = consistency(api, database_url, seeded, [], args.drain)
        if seed_check["lost_images"]:
            raise RuntimeError(f"seed pictures never became searchable: {seed_check}")

        warm_up(api, args.clients)
        print(f"load: {args.clients} clients for {args.duration:.0f}s, mix {args.mix} ...", flush=True)
        elapsed = workload.run(args.duration)
        kept = sorted(workload.uploaded - workload.deleted)
        print(f"load: checking {len(kept)} kept and {len(workload.deleted)} deleted pictures ...", flush=True)
        check = consistency(api, database_url, kept + seeded, sorted(workload.deleted), args.drain)
        operations = {op: tally.summary(elapsed) for op, tally in sorted(workload.tallies.items())}
        requests = sum(op["count"] for op in operations.values())
        server_errors = sum(op["server_errors"] for op in operations.values())
        result = {
            "benchmark": "load",
            "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()},
            "config": {
                "duration_s": args.duration,
                "clients": args.clients,
                "mix": args.mix,
                "seed_images": args.seed_images,
                "web_workers": args.web_workers,
                "threads": args.threads,
                "services": "private" if not (args.database_url or args.redis_url) else "given",
                "model": "toy",
            },
            "elapsed_s": round(elapsed, 1),
            "requests": requests,
            "rps": round(requests / elapsed, 2),
            "operations": operations,
            "server_errors": server_errors,
            "client_errors": sum(op["client_errors"] for op in operations.values()),
            "consistency": check,
            "failures": api.failures,
            "web_error_lines": [line.rstrip() for line in web.log if "Error" in line or "ERROR" in line][-30:],
            "targets": {
                "server_errors": {"value": server_errors, "target": 0, "op": "<="},
                "lost_images": {"value": check["lost_images"], "target": 0, "op": "<="},
            },
        }
        result["ok"] = all(t["value"] <= t["target"] for t in result["targets"].values())
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(result, indent=2) + "\n")
        print_table(result)
        print(f"load: wrote {args.output}")
        return 0 if result["ok"] else 1
    finally:
        for process in (web, worker):
            if process is not None:
                process.stop(timeout=10)
        if redis is not None:
            redis.stop()
        if postgres is not None:
            postgres.destroy()
        shutil.rmtree(base, ignore_errors=True)


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{'operation':<10} {'count':>7} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'5xx/drop':>9} {'4xx':>5}")
    for name, op in result["operations"].items():
        print(f"{name:<10} {op['count']:>7} {op['rps']:>8} {op['p50_ms']!s:>8} {op['p99_ms']!s:>8} "
              f"{op['server_errors']:>9} {op['client_errors']:>5}")  # fmt: skip
    print(f"{'total':<10} {result['requests']:>7} {result['rps']:>8}")
    check = result["consistency"]
    print(f"\nconsistency: {check['kept_images']} kept, {check['deleted_images']} deleted, "
          f"lost {check['lost_images']} (drained in {check['drain_seconds']}s)")  # fmt: skip
    for name, target in result["targets"].items():
        verdict = "ok" if target["value"] <= target["target"] else "MISSED"
        print(f"target {name}: {target['value']} {target['op']} {target['target']}  {verdict}")


if __name__ == "__main__":
    sys.exit(main())
