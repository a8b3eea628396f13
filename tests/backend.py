#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A test backend for health checks: HTTP or HTTPS on loopback, told at runtime how to answer.

    backend.py [--host 127.0.0.1] [--port 0] [--cert FILE --key FILE] [--mode 200] [--body TEXT]

Prints "ready PORT" on stdout once listening.  Every path answers according to the mode, except:
  GET /_control?mode=200|503|CODE|close|hang|body[&body=TEXT]   change how it answers (then 200)
  GET /_control?cert=FILE&key=FILE   serve another certificate from the next handshake on (HTTPS;
                  session tickets issued before stay valid, as with a real server's reload)
  GET /_stats     JSON {"requests": {"HOST PATH": n}, "total": n, "connections": n,
                  "handshakes": n, "resumed": n, "resumed_requests": {"HOST PATH": n}}
                  (HTTPS: TLS handshakes completed, and those that resumed a session)
  GET /_reset     zero the counters
Modes: a status code (200, 503, ...) answers it with the body (default "ok\\n"); "body" answers 200
with the given body; "close" closes the connection without answering; "hang" reads the request and
never answers (the connection is closed after 60 s or when the mode changes).
A request path's query may ask for the body with Transfer-Encoding: chunked instead of
Content-Length:
  chunked=OFFSETS  split the body at these byte offsets (":"-separated; "" = one chunk), each chunk
                   sent and flushed on its own, then the last chunk and an empty trailer
  ext=TEXT         append TEXT (e.g. ";name=value") to every chunk-size line
  gap=MS           pause MS milliseconds between chunks (so they arrive in separate reads)
  bad=KIND         malformed first chunk: "size" (a chunk-size that is not hex), "crlf" (chunk data
                   not followed by CRLF), "truncated" (the connection closes inside a chunk)
Standard library only; exits when stdin closes or on SIGTERM.
"""

import argparse
import json
import os
import signal
import socket
import ssl
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class State:
    def __init__(self, mode, body):
        self.lock = threading.Lock()
        self.changed = threading.Condition(self.lock)
        self.mode = mode
        self.body = body
        self.generation = 0
        self.requests = {}
        self.total = 0
        self.connections = 0
        self.handshakes = 0
        self.resumed = 0
        self.resumed_requests = {}


STATE = None


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'gslb-test-backend'

    def log_message(self, fmt, *args):
        pass

    def setup(self):
        with STATE.lock:
            STATE.connections += 1
        super().setup()

    def _tls_count(self, key):
        """Count this connection's handshake (one request per connection: we always close)."""
        conn = self.connection
        if not isinstance(conn, ssl.SSLSocket) or conn.version() is None:
            return
        with STATE.lock:
            STATE.handshakes += 1
            if conn.session_reused:
                STATE.resumed += 1
                if key:
                    STATE.resumed_requests[key] = STATE.resumed_requests.get(key, 0) + 1

    def _send_chunked(self, code, body, q):
        data = body.encode() if isinstance(body, str) else body
        spec = q.get('chunked', [''])[0]
        cuts = sorted({int(x) for x in spec.replace(',', ':').split(':') if x.strip()})
        cuts = [c for c in cuts if 0 < c < len(data)]
        ext = q.get('ext', [''])[0].encode()
        gap = float(q.get('gap', ['0'])[0]) / 1000.0
        bad = q.get('bad', [''])[0]
        pieces = [data[a:b] for a, b in zip([0] + cuts, cuts + [len(data)])]
        self.send_response(code)
        self.send_header('Content-Type', 'text/plain')
        self.send_header('Transfer-Encoding', 'chunked')
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.flush()
        self.close_connection = True
        for i, p in enumerate(pieces):
            if gap and i:
                time.sleep(gap)
            size = b'%x' % len(p)
            if bad == 'size' and i == 0:
                size = b'z' + size
            tail = b'\r\n'
            if bad == 'crlf' and i == 0:
                tail = b'XX'
            if bad == 'truncated' and i == 0:
                self.wfile.write(b'%x' % (len(p) + 10) + ext + b'\r\n' + p)
                self.wfile.flush()
                return
            self.wfile.write(size + ext + b'\r\n' + p + tail)
            self.wfile.flush()
        self.wfile.write(b'0' + ext + b'\r\n\r\n')

    def _send(self, code, body, ctype='text/plain'):
        data = body.encode() if isinstance(body, str) else body
        self.send_response(code)
        self.send_header('Content-Type', ctype)
        self.send_header('Content-Length', str(len(data)))
        self.send_header('Connection', 'close')
        self.end_headers()
        self.wfile.write(data)
        self.close_connection = True

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        q = urllib.parse.parse_qs(url.query, keep_blank_values=True)
        if url.path == '/_control':
            self._tls_count(None)
            if 'cert' in q and self.server.tls_ctx:
                self.server.tls_ctx.load_cert_chain(q['cert'][0], q.get('key', [None])[0])
            with STATE.lock:
                if 'mode' in q:
                    STATE.mode = q['mode'][0]
                if 'body' in q:
                    STATE.body = q['body'][0]
                STATE.generation += 1
                STATE.changed.notify_all()
            return self._send(200, 'mode %s\n' % STATE.mode)
        if url.path == '/_stats':
            self._tls_count(None)
            with STATE.lock:
                data = {'requests': dict(STATE.requests), 'total': STATE.total,
                        'connections': STATE.connections, 'mode': STATE.mode,
                        'handshakes': STATE.handshakes, 'resumed': STATE.resumed,
                        'resumed_requests': dict(STATE.resumed_requests)}
            return self._send(200, json.dumps(data), 'application/json')
        if url.path == '/_reset':
            with STATE.lock:
                STATE.requests.clear()
                STATE.total = 0
                STATE.connections = 0
                STATE.handshakes = 0
                STATE.resumed = 0
                STATE.resumed_requests.clear()
            return self._send(200, 'reset\n')

        key = '%s %s' % (self.headers.get('Host', ''), self.path)
        self._tls_count(key)
        with STATE.lock:
            STATE.requests[key] = STATE.requests.get(key, 0) + 1
            STATE.total += 1
            mode, body, gen = STATE.mode, STATE.body, STATE.generation
        if mode == 'close':
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if mode == 'hang':
            deadline = time.monotonic() + 60
            with STATE.lock:
                while STATE.generation == gen and time.monotonic() < deadline:
                    STATE.changed.wait(deadline - time.monotonic())
            self.close_connection = True
            return
        try:
            code = 200 if mode == 'body' else int(mode)
        except ValueError:
            code = 500
        if 'chunked' in q or 'bad' in q:
            return self._send_chunked(code, body, q)
        return self._send(code, body)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, tls_ctx):
        self.tls_ctx = tls_ctx
        super().__init__(addr, Handler)

    def get_request(self):
        sock, addr = super().get_request()
        if self.tls_ctx:
            # The handshake runs in the handler's thread, so a stuck client stalls only itself.
            sock = self.tls_ctx.wrap_socket(sock, server_side=True, do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        pass   # TLS clients that reject our certificate are expected


def main():
    global STATE
    ap = argparse.ArgumentParser()
    ap.add_argument('--host', default='127.0.0.1')
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--cert')
    ap.add_argument('--key')
    ap.add_argument('--mode', default='200')
    ap.add_argument('--body', default='ok\n')
    args = ap.parse_args()
    STATE = State(args.mode, args.body)
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    if ':' in args.host:
        Server.address_family = socket.AF_INET6
    srv = Server((args.host, args.port), ctx)
    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    print('ready %d' % srv.server_address[1], flush=True)
    # Our parent holds stdin: when it goes away, so do we.
    try:
        while sys.stdin.read(4096):
            pass
    except (OSError, ValueError):
        pass
    os._exit(0)


if __name__ == '__main__':
    main()
