#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
gslbd --cluster against one real etcd serving https with client certificates required and
authentication on (README "Two or more nameservers", gslbd(8) --cluster-ca-file, --cluster-cert,
--cluster-key, --cluster-user, --cluster-password-file): a pool put into etcd and a change made
with gslbctl on the node's database go through and are answered; the password is in none of the
command line, the log, the database file and its WAL, gslbctl's output; a wrong password or a
missing CA leaves the node answering from its database, said once in the log and in the
metrics; a password file that cannot be read stops start-up.  etcd runs on free loopback ports
in a temporary directory and is stopped by its PID.
"""

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gslbtest as g  # noqa: E402
import test_etcd_client as tec  # noqa: E402  (its Etcd and make_certs)

POOL = 'gslb.example.test.'
KEY = '/gslbd/pools/' + POOL
PASSWORD = 'Zq7-gslb-pw-%d-Xk' % os.getpid()
ROOT_PASSWORD = 'Root-pw-%d' % os.getpid()


class SecureEtcd:
    """tec.Etcd over https with --client-cert-auth, and etcdctl with the client certificate."""

    def __init__(self, tmp, certs):
        self.c = certs
        self.e = tec.Etcd(tmp, 'secure', tls=(certs['ca'], certs['scert'], certs['skey']))
        # Its health poll presents the client certificate.
        self.e.tls = (certs['ca'], certs['ccert'], certs['ckey'])
        self.url = self.e.url

    def ctl(self, *args, user=None, stdin=None):
        tls = ['--cacert', self.c['ca'], '--cert', self.c['ccert'], '--key', self.c['ckey']]
        auth = ['--user', user] if user else []
        return self.e.ctl(*(tls + auth + list(args)), stdin=stdin)

    def setup_auth(self):
        """root (role root before auth enable), then user gslb with readwrite on /gslbd/."""
        root = 'root:' + ROOT_PASSWORD
        steps = [(None, ('user', 'add', 'root', '--new-user-password=' + ROOT_PASSWORD)),
                 (None, ('user', 'grant-role', 'root', 'root')),
                 (None, ('auth', 'enable')),
                 (root, ('role', 'add', 'gslbrw')),
                 (root, ('role', 'grant-permission', 'gslbrw', 'readwrite', '/gslbd/',
                         '--prefix=true')),
                 (root, ('user', 'add', 'gslb', '--new-user-password=' + PASSWORD)),
                 (root, ('user', 'grant-role', 'gslb', 'gslbrw'))]
        for user, args in steps:
            rc, out = self.ctl(*args, user=user)
            if rc != 0:
                return 'etcdctl %s: %s' % (' '.join(args[:2]), out)
        return None

    def get(self, key):
        rc, out = self.ctl('get', key, '--print-value-only', user='gslb:' + PASSWORD)
        return out if rc == 0 else None


def cnless_client_cert(certs):
    """A client certificate of tec.make_certs's CA without a CommonName: with authentication on,
    etcd's JSON gateway refuses a client certificate that has one (HTTP 400 "CommonName of
    client sending a request against gateway will be ignored"), the user being the one of the
    token."""
    d = os.path.dirname(certs['ca'])
    for args in (('req', '-new', '-key', 'client.key', '-out', 'nocn.csr', '-subj', '/O=gslbd'),
                 ('x509', '-req', '-in', 'nocn.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key',
                  '-CAcreateserial', '-out', 'nocn.pem', '-days', '2', '-extfile', 'client.ext')):
        subprocess.run(['openssl'] + list(args), cwd=d, check=True, stdout=subprocess.DEVNULL,
                       stderr=subprocess.DEVNULL, timeout=30)
    return os.path.join(d, 'nocn.pem')


def pool_json(address):
    """The object gslbctl export writes for POOL with one member m1 at address."""
    tmp = tempfile.mkdtemp(prefix='gslbtest-pool-')
    db = os.path.join(tmp, 'x.db')
    try:
        for s in [('init',), ('pool', 'add', POOL, '--ttl', '30'),
                  ('member', 'add', POOL, 'm1', '--address', address), ('export',)]:
            rc, out, err = g.gslbctl(db, *s)
            if rc != 0:
                raise RuntimeError('gslbctl %s: %s' % (' '.join(s), err))
        return json.dumps(json.loads(out)['pools'][0])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def answer(n):
    try:
        r = g.exchange(g.make_query(POOL, 'A'), n.addr4, 'udp', timeout=0.5)
    except OSError:
        return None
    if r.msg is None:
        return None
    return sorted(rr.address for rrset in r.msg.answer for rr in rrset if rrset.rdtype == 1)


def metrics(port):
    out = {}
    try:
        with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=2) as r:
            text = r.read().decode()
    except OSError:
        return out
    for line in text.splitlines():
        m = re.match(r'^(gslbd_cluster_[a-z_]+) (\S+)$', line)
        if m:
            out[m.group(1)] = float(m.group(2))
    return out


def raw_files(db):
    """The bytes of the database and its -wal (and -shm), read as they are on disk."""
    data = b''
    for path in (db, db + '-wal', db + '-shm'):
        try:
            with open(path, 'rb') as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def settings(db):
    c = sqlite3.connect(db)
    try:
        return dict(c.execute('SELECT name, value FROM cluster_setting').fetchall())
    finally:
        c.close()


def auth_lines(text):
    """The lines above debug level saying the authentication failed (at debug level every
    retry says why it failed)."""
    return [ln for ln in text.splitlines()
            if 'authentication failed' in ln and not ln.startswith('gslbd[debug]')]


def main(t):
    if not os.access(tec.ETCD, os.X_OK) or not os.access(tec.ETCDCTL, os.X_OK):
        g.skip_all('etcd is not installed (apt-get install etcd-server etcd-client)')
    for v in ('http_proxy', 'https_proxy', 'all_proxy', 'HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY'):
        os.environ.pop(v, None)
    tmp = tempfile.mkdtemp(prefix='gslbtest-secure-')
    n = None
    try:
        certs = tec.make_certs(tmp)
        certs['cn_cert'] = certs['ccert']   # make_certs's client certificate: CN=client
        certs['ccert'] = cnless_client_cert(certs)
        etcd = SecureEtcd(tmp, certs)
        t.on_fail.append(lambda: t.diag('etcd log:\n' + etcd.e.tail()))
        if not t.ok(etcd.e.wait_healthy(), 'etcd serves https with client certificates',
                    etcd.e.tail()):
            return
        why = etcd.setup_auth()
        if not t.ok(why is None, 'etcd authentication on, user gslb with readwrite on /gslbd/',
                    why):
            return
        n = run_node(t, tmp, certs, etcd)
    finally:
        if n is not None:
            n.stop()
            if t.failed:
                n.dump(t, 'gslbd stderr')
            n.cleanup()
        tec.stop_etcds()
        shutil.rmtree(tmp, ignore_errors=True)


def run_node(t, tmp, certs, etcd):
    pwfile = os.path.join(tmp, 'gslb.password')
    with open(pwfile, 'w') as f:
        f.write(PASSWORD + '\n')
    os.chmod(pwfile, 0o600)
    mport = g.free_port(False)
    tls = ['--cluster-ca-file', certs['ca'], '--cluster-cert', certs['ccert'],
           '--cluster-key', certs['ckey']]
    auth = ['--cluster-user', 'gslb', '--cluster-password-file', pwfile]
    base = ['--cluster', etcd.url, '--node', 'n1', '--metrics', '127.0.0.1:%d' % mport]
    n = g.Gslbd(identity=False, extra_args=base + tls + auth)
    n.start()
    db = os.path.join(n.tmp, 'gslb.db')

    # 1. A pool put into etcd (by user gslb, over TLS) is answered; a change made with gslbctl on
    # the node's database goes through etcd and is answered.
    rc, out = etcd.ctl('put', KEY, user='gslb:' + PASSWORD, stdin=pool_json('192.0.2.77').encode())
    t.ok(rc == 0, 'etcdctl put of a pool as user gslb', out)
    t.ok(g.wait_for(lambda: answer(n) == ['192.0.2.77'], 5),
         'a pool put into etcd is answered within 5 s (https, client certificate, user gslb)',
         'answer %r' % answer(n))
    t.ok(g.wait_for(lambda: metrics(mport).get('gslbd_cluster_connected') == 1, 3),
         'metric: connected', repr(metrics(mport)))
    outputs = []
    for args in (('member', 'set', POOL, 'm1', '--address', '192.0.2.78'),
                 ('cluster', 'status')):
        rc, out, err = g.gslbctl(db, *args, timeout=15)
        outputs.append(out + err)
        t.ok(rc == 0, 'gslbctl %s on the node\'s database' % ' '.join(args[:2]), out + err)
    val = etcd.get(KEY) or ''
    t.ok('192.0.2.78' in val and '192.0.2.77' not in val,
         'the change made with gslbctl is in etcd', val)
    t.ok(g.wait_for(lambda: answer(n) == ['192.0.2.78'], 5), 'and it is answered',
         'answer %r' % answer(n))

    # 2. The password is nowhere: command line, log, database and WAL bytes, gslbctl's output.
    with open('/proc/%d/cmdline' % n.proc.pid, 'rb') as f:
        cmdline = f.read()
    t.ok(pwfile.encode() in cmdline and PASSWORD.encode() not in cmdline,
         'the password is not in /proc/PID/cmdline (its file is)')
    log = n.stderr()
    t.ok('connected to etcd' in log and PASSWORD not in log,
         'the password is not in the log (--log-level debug)')
    raw = raw_files(db)
    t.ok(pwfile.encode() in raw and PASSWORD.encode() not in raw,
         'the password is not in the bytes of the database and its WAL (its file path is)',
         '%d bytes read' % len(raw))
    t.ok(all(PASSWORD not in o for o in outputs), 'the password is not in gslbctl\'s output')
    s = settings(db)
    t.ok(s.get('password_file') == pwfile and s.get('user') == 'gslb' and
         s.get('ca_file') == certs['ca'] and PASSWORD not in repr(s),
         'cluster_setting holds the password file path, the user and the CA path', repr(s))

    # 3a. A wrong password: the node answers from its database, says it once, not connected.
    n.stop()
    wrong = 'Wrong-' + PASSWORD
    with open(pwfile, 'w') as f:
        f.write(wrong + '\n')
    n.start()
    t.ok(answer(n) == ['192.0.2.78'], 'a wrong password: the node answers from its database',
         'answer %r' % answer(n))
    t.ok(g.wait_for(lambda: auth_lines(n.stderr()), 5), 'the authentication failure is logged',
         n.stderr()[-2000:])
    # Several retries (250 ms doubling to 2 s) happen in 4 s.
    time.sleep(4)
    log = n.stderr()
    t.ok(len(auth_lines(log)) == 1, 'it is logged once, not on every retry (%d lines)'
         % len(auth_lines(log)), '\n'.join(auth_lines(log)[:10]))
    t.ok(wrong not in log and PASSWORD not in log, 'the wrong password is not logged either')
    t.ok(metrics(mport).get('gslbd_cluster_connected') == 0, 'metric: not connected',
         repr(metrics(mport)))
    t.ok(answer(n) == ['192.0.2.78'], 'it still answers from its database')

    # 3b. The right password but no CA file: the system store does not trust etcd's certificate.
    n.stop()
    with open(pwfile, 'w') as f:
        f.write(PASSWORD + '\n')
    n.extra_args = base + tls[2:] + auth
    n.start()
    t.ok(answer(n) == ['192.0.2.78'], 'without the CA file: answers from its database')
    t.ok(g.wait_for(lambda: re.search(r'cluster: cannot reach etcd.*certificate', n.stderr()), 5),
         'the TLS failure is logged (certificate)', n.stderr()[-2000:])
    time.sleep(1)
    t.ok(metrics(mport).get('gslbd_cluster_connected') == 0 and
         'connected to etcd' not in n.stderr(), 'it does not connect', repr(metrics(mport)))
    n.stop()

    # 3c. A client certificate with a CommonName while etcd's authentication is on: etcd's
    # gateway refuses every request in plain text.  gslbd said nothing above debug level.
    n.extra_args = base + ['--cluster-ca-file', certs['ca'], '--cluster-cert',
                           certs['cn_cert'], '--cluster-key', certs['ckey']] + auth
    n.start()
    t.ok(answer(n) == ['192.0.2.78'], 'a client certificate with a CommonName: answers from its '
         'database')
    cn = lambda: [ln for ln in n.stderr().splitlines()  # noqa: E731
                  if 'CommonName' in ln and not ln.startswith('gslbd[debug]')]
    t.ok(g.wait_for(cn, 5), 'etcd\'s reason (the CommonName) is logged above debug level',
         n.stderr()[-2000:])
    time.sleep(2)
    t.ok(len(cn()) == 1 and metrics(mport).get('gslbd_cluster_connected') == 0,
         'once, and the node is not connected (%d lines)' % len(cn()), '\n'.join(cn()[:5]))
    n.stop()

    # 4. A password file that cannot be read (root reads any mode: a path that does not exist).
    missing = os.path.join(tmp, 'no-such-password')
    args = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones', n.zones_dir,
            '--db', db, '--cluster', etcd.url, '--node', 'n1', '--cluster-user', 'gslb',
            '--cluster-password-file', missing] + tls
    try:
        p = subprocess.run(args, capture_output=True, text=True, timeout=10,
                           preexec_fn=g._pdeathsig)
        rc, err = p.returncode, p.stderr
    except subprocess.TimeoutExpired:
        rc, err = None, 'still running after 10 s'
    lines = err.strip().splitlines()
    t.ok(rc == 1 and len(lines) == 1 and missing in lines[0],
         'an unreadable password file: exit 1 at start, one message naming the file',
         'rc %r: %s' % (rc, err))
    return n


if __name__ == '__main__':
    signal.signal(signal.SIGTERM, lambda *a: sys.exit(1))
    g.run(main)
