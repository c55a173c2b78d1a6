"""``manage.py serve``: the web server (gunicorn) and a Celery worker with beat, together, in one command."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from django.core.management.base import BaseCommand, CommandParser

from core.queues import QUEUES


class Command(BaseCommand):
    help = "Start the web server and a background worker (with the periodic scheduler); stop both on Ctrl+C."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)
        parser.add_argument("--web-workers", type=int, default=1, help="gunicorn worker processes")
        parser.add_argument("--threads", type=int, default=4, help="threads per gunicorn worker")
        parser.add_argument("--worker-concurrency", type=int, default=1, help="Celery worker processes")

    def handle(self, *args: object, **options: object) -> None:
        python = sys.executable
        worker = subprocess.Popen(
            [python, "-m", "celery", "-A", "semsearch_site", "worker", "--beat", "--loglevel", "INFO",
             "--queues", ",".join(QUEUES), "--concurrency", str(options["worker_concurrency"]),
             "--without-gossip", "--without-mingle"],
        )  # fmt: skip
        web = subprocess.Popen(
            [python, "-m", "gunicorn", "semsearch_site.wsgi", "--bind", f"{options['host']}:{options['port']}",
             "--workers", str(options["web_workers"]), "--threads", str(options["threads"]),
             "--timeout", "120", "--access-logfile", "-"],
        )  # fmt: skip
        self.stdout.write(f"semsearch is serving on http://{options['host']}:{options['port']}/ (Ctrl+C stops)")
        stopping = False

        def stop(signum: int, frame: object) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            while not stopping and worker.poll() is None and web.poll() is None:
                time.sleep(0.5)
        finally:
            for process in (web, worker):
                if process.poll() is None:
                    process.send_signal(signal.SIGTERM)
            for process in (web, worker):
                try:
                    process.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.kill(process.pid, signal.SIGKILL)
        if not stopping:
            sys.exit("semsearch: a child process exited unexpectedly; see the log above.")
