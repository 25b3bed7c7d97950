"""A WebSub hub for tests: `python recording_hub.py PORT LOG` listens on 127.0.0.1:PORT (0: any free port,
printed on the first line of stdout) and appends each publish ping it hears to LOG as a JSON line."""

from __future__ import annotations

import json
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Recorder(BaseHTTPRequestHandler):
    """Answers 204 to every POST and writes down what it was told."""

    log_path = ""

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0)).decode("ascii")
        form = urllib.parse.parse_qs(body)
        told = {"mode": form.get("hub.mode", [""])[0], "url": form.get("hub.url", [""])[0]}
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(json.dumps(told) + "\n")
        self.send_response(204)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def main() -> None:
    port, Recorder.log_path = int(sys.argv[1]), sys.argv[2]
    server = ThreadingHTTPServer(("127.0.0.1", port), Recorder)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
