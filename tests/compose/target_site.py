"""The website the e2e suite's sites monitor: a container of its own on the compose network (`target`,
tests/compose/compose.target.yaml). Every GET answers 200 with a small page and is logged to stdout as
`hit <client address> <path>`, so the suite counts the probes each site received and from which sync
container. Standard library only: it runs on the stack's python base image."""

import http.server
import sys
import threading

LOG_LOCK = threading.Lock()  # concurrent probes: one whole line at a time (print writes in two parts)


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        # Logged before the answer, so a probe's hit is in the log before its check can be stored.
        with LOG_LOCK:
            sys.stdout.write(f"hit {self.client_address[0]} {self.path}\n")
            sys.stdout.flush()
        body = f"<html><body><h1>e2e target</h1><p>{self.path}</p></body></html>".encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


if __name__ == "__main__":
    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8000
    http.server.ThreadingHTTPServer(("0.0.0.0", port), Handler).serve_forever()  # noqa: S104 - in its container
