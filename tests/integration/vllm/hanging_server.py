"""A server that hangs: run as `python hanging_server.py [UPSTREAM]`; prints its port.

Without UPSTREAM it accepts connections and never answers. With UPSTREAM (a vLLM server's root,
http://127.0.0.1:PORT) it forwards every request there except ``POST /v1/completions``, on which
it hangs: a server whose engine is stuck in the middle of a decision.
"""

import http.server
import socket
import sys
import threading
import time
import urllib.request


class Forward(http.server.BaseHTTPRequestHandler):
    upstream = ""

    def _relay(self, method):
        body = self.rfile.read(int(self.headers.get("content-length") or 0)) if method == "POST" else None
        if self.path.endswith("/completions"):
            time.sleep(3600)  # never answers
        req = urllib.request.Request(self.upstream + self.path, data=body, method=method,
                                     headers={"content-type": "application/json"})
        try:
            with urllib.request.urlopen(req) as r:
                status, data = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, data = e.code, e.read()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._relay("GET")

    def do_POST(self):
        self._relay("POST")

    def log_message(self, *args):
        pass


def main():
    if len(sys.argv) > 1:
        Forward.upstream = sys.argv[1]
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Forward)
        print(server.server_address[1], flush=True)
        server.serve_forever()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    print(sock.getsockname()[1], flush=True)
    held = []
    while True:
        conn, _ = sock.accept()
        held.append(conn)  # accepted, never read, never answered


if __name__ == "__main__":
    threading.current_thread().name = "hanging-server"
    main()
