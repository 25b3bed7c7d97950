"""gunicorn settings for the feedsvc web app: `gunicorn -c deploy/gunicorn.conf.py 'feedsvc.web:create_app()'`.

Set PROMETHEUS_MULTIPROC_DIR (a folder only this gunicorn uses, e.g. /run/feedsvc/prometheus) so that /metrics
sums the counters of every worker process rather than showing whichever process answered.
"""

import multiprocessing
import os

from feedsvc.ops.logs import dict_config
from feedsvc.ops.metrics import multiprocess_dir

bind = os.environ.get("FEEDSVC_BIND", "127.0.0.1:8000")
workers = int(os.environ.get("FEEDSVC_WEB_WORKERS", multiprocessing.cpu_count() * 2 + 1))
threads = int(os.environ.get("FEEDSVC_WEB_THREADS", "2"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 20
keepalive = 5
max_requests = 5000
max_requests_jitter = 500
forwarded_allow_ips = os.environ.get("FEEDSVC_FORWARDED_ALLOW_IPS", "127.0.0.1")
accesslog = "-"
errorlog = "-"
# gunicorn 25.1+ opens a control socket for gunicornc at one path per user ($XDG_RUNTIME_DIR/gunicorn.ctl or
# ~/.gunicorn/gunicorn.ctl): two gunicorns on one machine (a second site, a redeploy beside the old one, the
# tests) would take it from each other, and the first to stop deletes the other's. Off unless a path of this
# gunicorn's own is named (older gunicorns ignore both settings).
control_socket = os.environ.get("FEEDSVC_GUNICORN_CONTROL_SOCKET", "")
control_socket_disable = not control_socket

# One log format for gunicorn, the app and the worker: FEEDSVC_LOG_FORMAT=json for one JSON object a line.
logconfig_dict = dict_config()


def on_starting(server):
    """Start prometheus_client's multiprocess folder empty: values of a previous run must not be summed in."""
    folder = multiprocess_dir()
    if folder:
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if name.endswith(".db"):
                os.remove(os.path.join(folder, name))


def child_exit(server, worker):
    """Let /metrics forget the live gauges of a worker that exited (its counters stay summed in)."""
    if multiprocess_dir():
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(worker.pid)
