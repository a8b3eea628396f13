#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The etcd client of README "Two or more nameservers" against a real etcd: tests/etcd_client drives
the blocking client (gslbctl's) and the asynchronous one (gslbd's) from the command line.

Every etcd here is a single member on free loopback ports, in a temporary directory, stopped by
its PID; never on etcd's default ports.
"""

import http.server
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import ssl
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

CLIENT = os.environ.get('ETCD_CLIENT') or os.path.join(g.BUILDDIR, 'tests', 'etcd_client')
ETCD = shutil.which('etcd') or '/usr/bin/etcd'
ETCDCTL = shutil.which('etcdctl') or '/usr/bin/etcdctl'
MODES = ((False, 'sync'), (True, 'async'))

_etcds = []


class Etcd:
    """One etcd member; tls = (ca, cert, key) serves https with client certificates required."""

    def __init__(self, tmp, name, tls=None, extra=()):
        self.dir = os.path.join(tmp, name)
        os.makedirs(self.dir)
        self.port = g.free_port(v6=False)
        peer = g.free_port(v6=False)
        self.tls = tls
        self.url = '%s://127.0.0.1:%d' % ('https' if tls else 'http', self.port)
        purl = 'http://127.0.0.1:%d' % peer
        args = [ETCD, '--name', name, '--data-dir', os.path.join(self.dir, 'data'),
                '--listen-client-urls', self.url, '--advertise-client-urls', self.url,
                '--listen-peer-urls', purl, '--initial-advertise-peer-urls', purl,
                '--initial-cluster', '%s=%s' % (name, purl)] + list(extra)
        if tls:
            args += ['--trusted-ca-file', tls[0], '--cert-file', tls[1], '--key-file', tls[2],
                     '--client-cert-auth']
        self.log = open(os.path.join(self.dir, 'log'), 'wb')
        self.p = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
        _etcds.append(self)

    def wait_healthy(self, timeout=15.0):
        ctx = None
        if self.tls:
            ctx = ssl.create_default_context(cafile=self.tls[0])
            ctx.load_cert_chain(self.tls[1], self.tls[2])
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if self.p.poll() is not None:
                return False
            try:
                with urllib.request.urlopen(self.url + '/health', timeout=1, context=ctx) as r:
                    if b'"true"' in r.read():
                        return True
            except Exception:
                pass
            time.sleep(0.1)
        return False

    def ctl(self, *args, stdin=None):
        env = dict(os.environ, ETCDCTL_API='3')
        p = subprocess.run([ETCDCTL, '--endpoints', self.url, '--dial-timeout', '3s',
                            '--command-timeout', '5s'] + list(args),
                           input=stdin, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           env=env, timeout=15)
        return p.returncode, p.stdout.decode('utf-8', 'replace')

    def stop(self):
        g.terminate(self.p)
        self.log.close()

    def tail(self):
        with open(os.path.join(self.dir, 'log'), 'rb') as f:
            return f.read()[-3000:].decode('utf-8', 'replace')


def stop_etcds():
    for e in _etcds:
        if e.p.poll() is None:
            e.stop()


class Silent:
    """A TCP listener that accepts and never answers: a frozen member, as the client sees it."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.bind(('127.0.0.1', 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.url = 'http://127.0.0.1:%d' % self.port
        self.conns = []
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.s.close()
        for c in self.conns:
            c.close()


class Blackhole:
    """A listener whose accept queue is full: SYNs are dropped, a connect hangs (a lost host)."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.s.bind(('127.0.0.1', 0))
        self.s.listen(0)
        addr = self.s.getsockname()
        self.url = 'http://127.0.0.1:%d' % addr[1]
        self.fill = []
        for _ in range(4):
            c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            c.setblocking(False)
            try:
                c.connect(addr)
            except BlockingIOError:
                pass
            self.fill.append(c)
        time.sleep(0.2)

    def close(self):
        for c in self.fill:
            c.close()
        self.s.close()


class NoLeader:
    """
    An HTTP server that answers a watch as a member without a leader does: "created", then the
    gateway's error line, then the end of the stream; it records the request headers.
    """

    CREATED = b'{"result":{"header":{"cluster_id":"1","revision":"5"},"created":true}}\n'
    ERROR = (b'{"error":{"grpc_code":14,"http_code":503,"message":"etcdserver: no leader",'
             b'"http_status":"Service Unavailable"}}\n')

    def __init__(self):
        outer = self
        self.headers = []

        class H(http.server.BaseHTTPRequestHandler):
            protocol_version = 'HTTP/1.1'

            def do_POST(self):
                outer.headers.append(dict(self.headers))
                self.rfile.read(int(self.headers.get('Content-Length', '0')))
                self.send_response(200)
                self.send_header('Content-Type', 'application/json')
                self.send_header('Transfer-Encoding', 'chunked')
                self.end_headers()
                for part in (outer.CREATED, outer.ERROR):
                    self.wfile.write(b'%x\r\n%s\r\n' % (len(part), part))
                    self.wfile.flush()
                    time.sleep(0.1)
                self.wfile.write(b'0\r\n\r\n')
                self.close_connection = True

            def log_message(self, *args):
                pass

        self.srv = http.server.ThreadingHTTPServer(('127.0.0.1', 0), H)
        self.url = 'http://127.0.0.1:%d' % self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def close(self):
        self.srv.shutdown()
        self.srv.server_close()


def dead_url():
    """A loopback port nothing listens on (connection refused)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return 'http://127.0.0.1:%d' % port


def client(urls, *args, async_=False, opts=(), timeout=30, env=None):
    """tests/etcd_client; (exit status, output lines, seconds)."""
    argv = [CLIENT] + (['--async'] if async_ else []) + ['--url', ','.join(urls)] + list(opts)
    argv += list(args)
    t0 = time.monotonic()
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout,
                       env=dict(os.environ, **(env or {})))
    out = p.stdout.decode('utf-8', 'replace')
    return p.returncode, out.splitlines(), time.monotonic() - t0


def revision(lines):
    for ln in lines:
        if ln.startswith('rev ') or ln.startswith('txn '):
            return int(ln.split()[1] if ln.startswith('rev ') else ln.split()[2])
    return None


class Watcher:
    """An async watch in the background; lines arrive in a list."""

    def __init__(self, urls, prefix, from_rev, count, opts=()):
        argv = [CLIENT, '--async', '--url', ','.join(urls)] + list(opts) + \
            ['watch', prefix, str(from_rev), str(count)]
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                  preexec_fn=g._pdeathsig)
        self.lines = []
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for ln in self.p.stdout:
            self.lines.append(ln.decode('utf-8', 'replace').rstrip('\n'))

    def wait_line(self, prefix, timeout):
        return g.wait_for(lambda: any(ln.startswith(prefix) for ln in self.lines), timeout)

    def finish(self, timeout=10):
        try:
            self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.t.join(2)
        return self.p.returncode


def test_kv(t, e):
    u = [e.url]
    for async_, mode in MODES:
        key = '/gslbd/pools/%s.example.' % mode
        rc, out, _ = client(u, 'txn', key, '0', 'v1', async_=async_)
        t.ok(rc == 0 and out[0].startswith('txn succeeded'),
             '%s: txn creating a key that does not exist succeeds' % mode, out)
        rev = revision(out)
        rc, out, _ = client(u, 'txn', key, '0', 'v-again', async_=async_)
        t.ok(rc == 0 and out[0].startswith('txn failed'),
             '%s: the same create again: the compare fails' % mode, out)
        rc, out, _ = client(u, 'range', key, async_=async_)
        t.ok(rc == 0 and out[0] == 'kv %s %d v1' % (key, rev),
             '%s: range reads the value and its mod_revision' % mode, out)
        rc, out, _ = client(u, 'txn', key, str(rev), 'v2', async_=async_)
        t.ok(rc == 0 and out[0].startswith('txn succeeded'),
             '%s: txn with mod_revision == the current one succeeds' % mode, out)
        rc, out, _ = client(u, 'txn', key, str(rev), 'v3', async_=async_)
        t.ok(rc == 0 and out[0].startswith('txn failed'),
             '%s: txn with a stale mod_revision fails' % mode, out)
        rc, out, _ = client(u, 'range', key, async_=async_)
        t.ok(rc == 0 and out[0].split()[3] == 'v2', '%s: the failed txn wrote nothing' % mode,
             out)
        # A raw call: etcd's own error text comes back as a code.
        rc, out, _ = client(u, 'call', '/v3/kv/range', '{"key":"AA==","revision":"999999"}',
                            async_=async_)
        t.ok(rc == 2 and out[0].startswith('error ETCD_EREQUEST') and 'future revision' in out[0],
             '%s: a range at a future revision: ETCD_EREQUEST with etcd\'s text' % mode, out)
        # A proxy of the environment is not used for the members.
        proxy = dead_url()
        rc, out, _ = client(u, 'range', key, async_=async_,
                            env={'http_proxy': proxy, 'HTTPS_PROXY': proxy, 'ALL_PROXY': proxy})
        t.ok(rc == 0 and out[0].split()[3] == 'v2', '%s: http_proxy in the environment ignored'
             % mode, out)
    rc, out, _ = client(u, 'range', '/gslbd/pools/', 'prefix', async_=True)
    keys = [ln.split()[1] for ln in out if ln.startswith('kv ')]
    t.eq(keys, ['/gslbd/pools/async.example.', '/gslbd/pools/sync.example.'],
         'range of a prefix: both keys, in key order')


def test_watch(t, e):
    u = [e.url]
    rc, out, _ = client(u, 'range', '/w/', 'prefix')
    rev = revision(out)
    w = Watcher(u, '/w/', rev + 1, 1)
    t.ok(w.wait_line('msg ', 10), 'watch: created', w.lines)
    rc, out, _ = client(u, 'txn', '/w/a', '0', 'va', '/w/b', 'vb')
    txn_rev = revision(out)
    t.ok(w.wait_line('done', 10), 'watch: the txn arrived', w.lines)
    w.finish()
    msgs = [ln for ln in w.lines if ln.startswith('msg ') and ' events ' in ln]
    t.eq(msgs, ['msg %d events 2' % txn_rev],
         'watch: a txn of two keys is ONE message with both events')
    t.eq([ln for ln in w.lines if ln.startswith('event ')],
         ['event PUT /w/a %d va' % txn_rev, 'event PUT /w/b %d vb' % txn_rev],
         'watch: both events at the txn\'s revision')
    t.ok('closed 0' in w.lines, 'watch: etcd_free() from the watch\'s callback, every handle closed',
         w.lines)

    # A delete is an event without "type" trouble: DELETE, the value empty.
    rc, out, _ = client(u, 'range', '/w/', 'prefix')
    rev = revision(out)
    w = Watcher(u, '/w/', rev + 1, 1)
    w.wait_line('msg ', 10)
    rc, out, _ = client(u, 'call', '/v3/kv/deleterange', '{"key":"L3cvYQ=="}')
    t.ok(w.wait_line('done', 10) and any(ln.startswith('event DELETE /w/a ') for ln in w.lines),
         'watch: a delete arrives as DELETE', w.lines)
    w.finish()

    # etcd_free() with the watch running: its callback gets -ECANCELED, the loop has nothing left.
    rc, out, secs = client(u, 'watch', '/w/', '1', '1000', '300', async_=True, timeout=15)
    t.ok(rc == 0 and 'end ECANCELED canceled' in out and out[-1] == 'closed 0' and secs < 5,
         'etcd_free(): the watch ends with -ECANCELED, every uv handle closed', out)


def test_failover(t, e):
    dead = dead_url()
    for async_, mode in MODES:
        rc, out, secs = client([dead, e.url], 'range', '/gslbd/pools/', 'prefix', async_=async_)
        t.ok(rc == 0 and any(ln.startswith('kv ') for ln in out) and secs < 5,
             '%s: first endpoint refuses connections: the second answers' % mode, out)
        if async_:
            t.ok('endpoint ' + e.url in out, 'async: the client moved on to the second endpoint',
                 out)
    s = Silent()
    try:
        for async_, mode in MODES:
            rc, out, secs = client([s.url, e.url], 'range', '/gslbd/pools/', 'prefix',
                                   async_=async_, opts=('--timeout-ms', '1000'))
            t.ok(rc == 0 and any(ln.startswith('kv ') for ln in out),
                 '%s: first endpoint accepts and never answers: the second answers' % mode, out)
            t.ok(0.9 <= secs < 3, '%s: after the request timeout (1 s), not before: %.2f s'
                 % (mode, secs))
        bh = Blackhole()
        for async_, mode in MODES:
            rc, out, secs = client([bh.url, e.url], 'range', '/gslbd/pools/', 'prefix',
                                   async_=async_,
                                   opts=('--connect-timeout-ms', '500', '--timeout-ms', '10000'))
            t.ok(rc == 0 and any(ln.startswith('kv ') for ln in out),
                 '%s: first endpoint drops SYNs: the second answers' % mode, out)
            t.ok(0.4 <= secs < 3, '%s: after the connect timeout (0.5 s), not the request\'s: '
                 '%.2f s' % (mode, secs))
        bh.close()
        rc, out, _ = client([dead, s.url, e.url], 'range', '/gslbd/pools/', 'prefix',
                            async_=True, opts=('--timeout-ms', '1000', '--parallel', '30'))
        t.ok(rc == 0 and sum(1 for ln in out if ln.startswith('rev ')) == 30 and
             'endpoint ' + e.url in out,
             'async: 30 calls at once past a dead and a silent endpoint all reach the third',
             out[-8:])
        # A watch whose first endpoint is dead goes to the next one.
        w = Watcher([dead, e.url], '/w/', 1, 1)
        t.ok(w.wait_line('done', 10), 'async watch: the first endpoint dead, the second serves it',
             w.lines)
        w.finish()
        for async_, mode in MODES:
            rc, out, secs = client([dead, s.url], 'range', '/x', async_=async_,
                                   opts=('--timeout-ms', '800'))
            t.ok(rc == 2 and out[0].startswith('error ETCD_EUNAVAIL') and dead in out[0] and
                 s.url in out[0] if not async_ else rc == 2 and
                 out[0].startswith('error ETCD_EUNAVAIL'),
                 '%s: no endpoint answers: ETCD_EUNAVAIL naming them' % mode, out)
            t.ok(secs < 3, '%s: bounded by the request timeout (0.8 s): %.2f s' % (mode, secs))
    finally:
        s.close()


def test_no_leader(t, e):
    nl = NoLeader()
    try:
        rc, out, secs = client([nl.url, e.url], 'watch', '/w/', '1', '1', async_=True,
                               timeout=15)
        t.ok(any(ln.startswith('msg 5 created') for ln in out),
             'no leader: the watch was created first', out)
        t.ok(rc == 2 and any(ln.startswith('end ETCD_EUNAVAIL') and 'no leader' in ln
                             for ln in out),
             'no leader: the stream\'s error line ends the watch with ETCD_EUNAVAIL', out)
        t.ok('endpoint ' + e.url in out, 'no leader: the client moved on to the next endpoint',
             out)
        t.ok(len(nl.headers) == 1 and nl.headers[0].get('Grpc-Metadata-hasleader') == 'true',
             'the watch is sent with "Grpc-Metadata-hasleader: true"', nl.headers)
    finally:
        nl.close()


def test_compaction(t, e):
    u = [e.url]
    for i in range(3):
        client(u, 'call', '/v3/kv/put', '{"key":"L2Mvaw==","value":"%s"}'
               % ['YQ==', 'Yg==', 'Yw=='][i])
    rc, out, _ = client(u, 'range', '/c/', 'prefix')
    rev = revision(out)
    rc, out, _ = client(u, 'call', '/v3/kv/compaction', '{"revision":"%d"}' % rev)
    t.ok(rc == 0, 'compaction at revision %d' % rev, out)
    rc, out, secs = client(u, 'watch', '/c/', '2', '1', async_=True, timeout=15)
    t.ok(any(ln.startswith('msg ') and ' canceled ' in ln and 'compact %d' % rev in ln
             for ln in out), 'watch from a compacted revision: canceled with compact_revision',
         out)
    t.ok(rc == 2 and any(ln.startswith('end ETCD_ECOMPACTED') for ln in out),
         'watch from a compacted revision: ends with ETCD_ECOMPACTED', out)
    for async_, mode in MODES:
        rc, out, _ = client(u, 'range', '/c/', 'prefix', '2', async_=async_)
        t.ok(rc == 2 and out[0].startswith('error ETCD_ECOMPACTED'),
             '%s: a range at a compacted revision: ETCD_ECOMPACTED' % mode, out)


def test_auth(t, tmp):
    # Tokens live 2 s here, so that a client that waits longer must fetch a new one.
    e = Etcd(tmp, 'auth', extra=('--auth-token-ttl', '2'))
    if not t.ok(e.wait_healthy(), 'auth: etcd started', e.tail()):
        return
    pw = 'S3cret-%d-pw' % os.getpid()
    # Role root before auth enable, or auth disable is refused later (etcd 3.4).
    for args in (('user', 'add', 'root', '--new-user-password=' + pw),
                 ('user', 'grant-role', 'root', 'root'), ('auth', 'enable')):
        rc, out = e.ctl(*args)
        if not t.ok(rc == 0, 'auth: etcdctl %s' % args[0:2][-1], out):
            return
    pwfile = os.path.join(tmp, 'password')
    with open(pwfile, 'w') as f:
        f.write(pw + '\n')
    badfile = os.path.join(tmp, 'bad')
    bad = 'Wr0ng-%d-pw' % os.getpid()
    with open(badfile, 'w') as f:
        f.write(bad + '\n')
    u = [e.url]
    for async_, mode in MODES:
        rc, out, _ = client(u, 'range', '/a', async_=async_)
        t.ok(rc == 2 and out[0].startswith('error ETCD_EAUTH') and 'user name is empty' in out[0],
             '%s: no user: ETCD_EAUTH (user name is empty)' % mode, out)
        rc, out, _ = client(u, 'range', '/a', async_=async_,
                            opts=('--user', 'root', '--password-file', badfile))
        t.ok(rc == 2 and out[0].startswith('error ETCD_EAUTH') and
             'authentication failed' in out[0],
             '%s: a wrong password: ETCD_EAUTH (authentication failed)' % mode, out)
        t.ok(bad not in '\n'.join(out), '%s: the wrong password is not printed' % mode)
        rc, out, _ = client(u, 'txn', '/a/%s' % mode, '0', 'x', async_=async_,
                            opts=('--user', 'root', '--password-file', pwfile))
        t.ok(rc == 0 and out[0].startswith('txn succeeded'),
             '%s: the right password: the txn goes through' % mode, out)
        t.ok(pw not in '\n'.join(out), '%s: the password is not printed' % mode)
        # The token expires between two calls: a new one, once, and the call goes through.
        rc, out, _ = client(u, 'range', '/a/', 'prefix', async_=async_,
                            opts=('--user', 'root', '--password-file', pwfile,
                                  '--repeat', '2:3500'))
        t.ok(rc == 0 and sum(1 for ln in out if ln.startswith('rev ')) == 2,
             '%s: the token expired between two calls: authenticated again' % mode, out)
    # Twenty calls at once wait for one authentication, twice (the token expires in between).
    rc, out, _ = client(u, 'range', '/a/', 'prefix', async_=True,
                        opts=('--user', 'root', '--password-file', pwfile, '--parallel', '20',
                              '--repeat', '2:3500'))
    t.ok(rc == 0 and sum(1 for ln in out if ln.startswith('rev ')) == 40 and
         out[-1] == 'closed 0', 'async: 20 calls at once, twice, through a new token each time',
         out[-8:])
    w = Watcher(u, '/a/', 1, 1, opts=('--user', 'root', '--password-file', pwfile))
    t.ok(w.wait_line('done', 10), 'async: a watch with a token', w.lines)
    w.finish()
    w = Watcher(u, '/a/', 1, 1)
    t.ok(w.finish(10) == 2 and any(ln.startswith('end ETCD_EAUTH') for ln in w.lines),
         'async: a watch without a token ends with ETCD_EAUTH', w.lines)
    e.stop()


def make_certs(tmp):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, with openssl."""
    d = os.path.join(tmp, 'pki')
    os.makedirs(d)

    def ossl(*args):
        subprocess.run(['openssl'] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    ossl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem',
         '-days', '2', '-subj', '/CN=gslbd test CA')
    with open(os.path.join(d, 'server.ext'), 'w') as f:
        f.write('subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth,clientAuth\n')
    with open(os.path.join(d, 'client.ext'), 'w') as f:
        f.write('extendedKeyUsage=clientAuth\n')
    for who in ('server', 'client'):
        ossl('req', '-newkey', 'rsa:2048', '-nodes', '-keyout', who + '.key', '-out',
             who + '.csr', '-subj', '/CN=' + who)
        ossl('x509', '-req', '-in', who + '.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
             '-CAcreateserial', '-out', who + '.pem', '-days', '2', '-extfile', who + '.ext')
    return {k: os.path.join(d, v) for k, v in (('ca', 'ca.pem'), ('scert', 'server.pem'),
                                                ('skey', 'server.key'), ('ccert', 'client.pem'),
                                                ('ckey', 'client.key'))}


def test_tls(t, tmp):
    c = make_certs(tmp)
    e = Etcd(tmp, 'tls', tls=(c['ca'], c['scert'], c['skey']))
    # wait_healthy presents the server's certificate as a client one (clientAuth in it).
    e.tls = (c['ca'], c['ccert'], c['ckey'])
    if not t.ok(e.wait_healthy(), 'tls: etcd started on https', e.tail()):
        return
    u = [e.url]
    full = ('--ca', c['ca'], '--cert', c['ccert'], '--key', c['ckey'])
    for async_, mode in MODES:
        rc, out, _ = client(u, 'txn', '/t/%s' % mode, '0', 'x', async_=async_, opts=full)
        t.ok(rc == 0 and out[0].startswith('txn succeeded'),
             '%s: https with the CA and a client certificate' % mode, out)
        rc, out, _ = client(u, 'range', '/t/x', async_=async_,
                            opts=('--cert', c['ccert'], '--key', c['ckey']))
        t.ok(rc == 2 and out[0].startswith('error ETCD_EUNAVAIL') and 'certificate' in out[0],
             '%s: without the CA: refused, saying why (certificate)' % mode, out)
        rc, out, _ = client(u, 'range', '/t/x', async_=async_, opts=('--ca', c['ca']))
        t.ok(rc == 2 and out[0].startswith('error ETCD_EUNAVAIL'),
             '%s: without a client certificate: refused' % mode, out)
    w = Watcher(u, '/t/', 1, 1, opts=full)
    t.ok(w.wait_line('done', 10), 'tls: an async watch over https', w.lines)
    w.finish()
    e.stop()


def main(t):
    if not os.access(ETCD, os.X_OK) or not os.access(ETCDCTL, os.X_OK):
        g.skip_all('etcd and etcdctl are not installed (Debian etcd-server, etcd-client)')
    # Everything here is on loopback: this script's own HTTP (urllib, etcdctl) goes direct.
    for v in ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'):
        os.environ.pop(v, None)
    tmp = tempfile.mkdtemp(prefix='gslb-etcd-')
    try:
        e = Etcd(tmp, 'main')
        t.on_fail.append(lambda: t.diag('etcd log:\n' + e.tail()))
        if not t.ok(e.wait_healthy(), 'etcd started', e.tail()):
            return
        test_kv(t, e)
        test_watch(t, e)
        test_failover(t, e)
        test_no_leader(t, e)
        test_compaction(t, e)
        e.stop()
        test_auth(t, tmp)
        test_tls(t, tmp)
    finally:
        stop_etcds()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    g.run(main)
