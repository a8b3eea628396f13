#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Health checks (README "Health checks"): the health loop driven by tests/health_probe against tests/backend.py.

Until gslbd runs the loop itself, this drives the engine through a small C program that probes the
targets given on its command line and prints every result and state change.
"""

import atexit
import json
import os
import queue
import shutil
import sqlite3
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

PROBE = os.environ.get('HEALTH_PROBE') or os.path.join(g.BUILDDIR, 'tests', 'health_probe')
BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')
PY = '/usr/bin/python3'

_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


class Backend:
    """tests/backend.py on 127.0.0.1; HTTPS when given a certificate and key."""

    def __init__(self, tmp, cert=None, key=None, mode='200', body='ok\n'):
        args = [PY, BACKEND, '--port', '0', '--mode', mode, '--body', body]
        if cert:
            args += ['--cert', cert, '--key', key]
        self.tls = bool(cert)
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
        _procs.append(self.p)
        line = self.p.stdout.readline().decode()
        if not line.startswith('ready '):
            raise RuntimeError('backend did not start: %r' % line)
        self.port = int(line.split()[1])

    def get(self, path):
        scheme = 'https' if self.tls else 'http'
        ctx = ssl._create_unverified_context() if self.tls else None
        url = '%s://127.0.0.1:%d%s' % (scheme, self.port, path)
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            return r.read().decode()

    def control(self, mode, body=None):
        q = 'mode=' + urllib.request.quote(mode)
        if body is not None:
            q += '&body=' + urllib.request.quote(body)
        self.get('/_control?' + q)

    def stats(self):
        return json.loads(self.get('/_stats'))


class Probe:
    """One run of tests/health_probe; lines are collected with their arrival time."""

    def __init__(self, targets, seconds, db=None, ca_file=None, extra=()):
        args = [PROBE, '--seconds', str(seconds)]
        if db:
            args += ['--db', db]
            schema = os.path.join(g.SRCDIR, 'src', 'db', 'schema.sql')
            if os.path.exists(schema):
                args += ['--schema', schema]
        if ca_file:
            args += ['--ca-file', ca_file]
        args += list(extra) + list(targets)
        self.args = args
        self.t0 = time.monotonic()
        self.p = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, preexec_fn=g._pdeathsig)
        _procs.append(self.p)
        self.lines = []
        self.q = queue.Queue()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for raw in self.p.stdout:
            item = (time.monotonic(), raw.decode('utf-8', 'replace').rstrip('\n'))
            self.lines.append(item)
            self.q.put(item)
        self.q.put(None)

    def wait_for(self, pred, timeout):
        """The first line after now that satisfies pred, as (time, line), or None."""
        end = time.monotonic() + timeout
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            try:
                item = self.q.get(timeout=left)
            except queue.Empty:
                return None
            if item is None:
                return None
            if pred(item[1]):
                return item

    def finish(self, timeout):
        try:
            self.p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()
        self.reader.join(5)
        self.stderr = self.p.stderr.read().decode('utf-8', 'replace')
        return self.p.returncode

    @staticmethod
    def _of(rest, key, words):
        """What follows key in rest when a word of words does (keys hold spaces, and one key may
        begin another: "... fall 2" and "... fall 2 match \"ok\""), else None."""
        for w in words:
            if rest.startswith(key + ' ' + w + ' ') or rest == key + ' ' + w:
                return rest[len(key) + 1:]
        return None

    def results(self, key):
        """[(ok, reason)] of the probe results of key."""
        out = []
        for _, line in self.lines:
            if line.startswith('result '):
                tail = self._of(line.split(' ', 2)[2], key, ('ok', 'fail'))
                if tail is not None:
                    rest = tail.split(' ', 2)
                    out.append((rest[0] == 'ok', rest[2] if len(rest) > 2 else ''))
        return out

    def changes(self, key):
        out = []
        for _, line in self.lines:
            if line.startswith('change '):
                tail = self._of(line.split(' ', 2)[2], key, ('up', 'down'))
                if tail is not None:
                    rest = tail.split(' ', 1)
                    out.append((rest[0], rest[1] if len(rest) > 1 else ''))
        return out

    def timed_results(self, key, after=None):
        """[(time, ok, reason)] of key's results, those printed after the line `after` if given."""
        out, seen = [], after is None
        for when, line in self.lines:
            if line == after:
                seen = True
            elif seen and line.startswith('result '):
                tail = self._of(line.split(' ', 2)[2], key, ('ok', 'fail'))
                if tail is not None:
                    f = tail.split(' ', 2)
                    out.append((when, f[0] == 'ok', f[2] if len(f) > 2 else ''))
        return out

    def start_state(self, key):
        for _, line in self.lines:
            for state in ('up', 'down'):
                if line == 'start %s %s' % (key, state):
                    return state
        return None

    def dump(self, t):
        t.diag('command: ' + ' '.join(self.args))
        for _, line in self.lines[-60:]:
            t.diag('  ' + line)
        t.diag('stderr: ' + getattr(self, 'stderr', ''))


def openssl(args, cwd):
    subprocess.run(['openssl'] + args, cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.DEVNULL, timeout=30)


CA_CNF = """
[req]
distinguished_name = dn
prompt = no
[dn]
CN = placeholder
[ca]
default_ca = tca
[tca]
dir = .
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = pol
unique_subject = no
[pol]
commonName = supplied
[v3_ca]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash
[localhost]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost,IP:127.0.0.1
[other]
basicConstraints = CA:FALSE
subjectAltName = DNS:other.example
"""


def make_certs(d):
    """A test CA; server certificates for localhost (good, expired), other.example, self-signed."""
    with open(os.path.join(d, 'ca.cnf'), 'w') as f:
        f.write(CA_CNF)
    open(os.path.join(d, 'index.txt'), 'w').close()
    with open(os.path.join(d, 'serial'), 'w') as f:
        f.write('1000\n')
    ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
    openssl(['req', '-config', 'ca.cnf', '-x509', '-days', '3', '-subj', '/CN=gslb test CA',
             '-extensions', 'v3_ca', '-keyout', 'ca.key', '-out', 'ca.pem'] + ec, d)

    def issue(name, cn, ext, dates):
        openssl(['req', '-config', 'ca.cnf', '-new', '-subj', '/CN=' + cn, '-keyout',
                 name + '.key', '-out', name + '.csr'] + ec, d)
        openssl(['ca', '-batch', '-config', 'ca.cnf', '-cert', 'ca.pem', '-keyfile', 'ca.key',
                 '-in', name + '.csr', '-out', name + '.pem', '-extensions', ext, '-notext']
                + dates, d)

    issue('good', 'localhost', 'localhost', ['-days', '3'])
    issue('expired', 'localhost', 'localhost',
          ['-startdate', '20200101000000Z', '-enddate', '20200201000000Z'])
    issue('other', 'other.example', 'other', ['-days', '3'])
    openssl(['req', '-config', 'ca.cnf', '-x509', '-days', '3', '-subj', '/CN=localhost',
             '-extensions', 'localhost', '-keyout', 'self.key', '-out', 'self.pem'] + ec, d)
    return {n: (os.path.join(d, n + '.pem'), os.path.join(d, n + '.key'))
            for n in ('good', 'expired', 'other', 'self')}


def key_http(scheme, port, host, path):
    """The key of a request alone (health_probe_key()): a check with every default setting."""
    return '%s 127.0.0.1:%d %s%s' % (scheme, port, host, path)


def secs(ms):
    return ('%d' % (ms // 1000) if ms % 1000 == 0 else ('%.3f' % (ms / 1000.0)).rstrip('0')) + 's'


def keyof(spec):
    """The target key health_probe gives the check of spec (health_target_key()): the request,
    then the settings that differ from the defaults (README "Health checks"), as gslbctl would name them."""
    fields = spec.split(',')
    kind, addr = fields[0], fields[1]
    opt = {'interval': '1', 'timeout': '0.5', 'rise': '2', 'fall': '3'}   # health_probe's own
    for f in fields[2:]:
        k, _, v = f.partition('=')
        opt[k] = v if _ else True
    key = '%s %s' % (kind, addr)
    if kind != 'tcp':
        key += ' %s%s' % (opt.get('host', addr.rsplit(':', 1)[0]), opt.get('path', '/'))
    interval = int(round(float(opt['interval']) * 1000))
    timeout = min(int(round(float(opt['timeout']) * 1000)), interval - 1)
    if kind == 'https' and opt.get('insecure'):
        key += ' insecure'
    if kind != 'tcp' and 'expect' in opt:
        codes = set()
        for r in opt['expect'].split('+'):
            lo, _, hi = r.partition('-')
            codes |= set(range(int(lo), int(hi or lo) + 1))
        if codes != set(range(200, 400)):
            runs, c = [], 100
            while c < 600:
                if c in codes:
                    hi = c
                    while hi + 1 in codes:
                        hi += 1
                    runs.append('%d' % c if hi == c else '%d-%d' % (c, hi))
                    c = hi
                c += 1
            key += ' expect ' + ','.join(runs)
    if interval != 10000:
        key += ' interval ' + secs(interval)
    if timeout != 2000:
        key += ' timeout ' + secs(timeout)
    for k, dflt in (('rise', 2), ('fall', 3)):
        if int(opt[k]) != dflt:
            key += ' %s %d' % (k, int(opt[k]))
    if kind != 'tcp' and opt.get('match'):
        key += ' match "%s"' % opt['match'].replace('\\', '\\\\').replace('"', '\\"')
    return key


def test_rise_fall(t, tmp):
    """A 503 goes down within interval x fall + 1 s and comes back within interval x rise + 1 s."""
    be = Backend(tmp)
    interval, rise, fall = 1, 2, 2
    spec = ('http,127.0.0.1:%d,path=/rf,host=localhost,interval=%d,timeout=0.5,rise=%d,fall=%d'
            % (be.port, interval, rise, fall))
    key = keyof(spec)
    pr = Probe([spec], 14)
    first = pr.wait_for(lambda l: l.startswith('result ') and key in l, 3)
    t.ok(first and ' ok ' in first[1], 'first probe of a healthy backend succeeds',
         first and first[1])
    be.control('503')
    t_fail = time.monotonic()
    down = pr.wait_for(lambda l: l.startswith('change ') and key + ' down' in l,
                       interval * fall + 2)
    took_down = down[0] - t_fail if down else None
    t.ok(down is not None and took_down <= interval * fall + 1,
         'a backend switched to 503 goes down within interval x fall + 1 s',
         'took %r s' % took_down)
    t.ok(down is not None and down[1].endswith('down HTTP 503'), 'the reason is "HTTP 503"',
         down and down[1])
    be.control('200')
    t_ok = time.monotonic()
    up = pr.wait_for(lambda l: l.startswith('change ') and key + ' up' in l, interval * rise + 2)
    took_up = up[0] - t_ok if up else None
    t.ok(up is not None and took_up <= interval * rise + 1,
         'it comes back within interval x rise + 1 s', 'took %r s' % took_up)
    if took_down is not None and took_up is not None:
        t.diag('measured: down after %.2f s (interval %d s, fall %d), up after %.2f s (rise %d)'
               % (took_down, interval, fall, took_up, rise))
    pr.p.kill()
    pr.finish(5)
    return pr


def test_tls_sessions(tmp, certs, ca):
    """Session resumption and its limits; returns [(cond, desc, diag)] for the main thread."""
    checks = []
    good = Backend(tmp, *certs['good'])

    # A check change (insecure switched off) never resumes a session made without verification:
    # the verifying check is a target of its own (its key says so), with no session.
    spec = 'https,127.0.0.1:%d,path=/sw,host=localhost,interval=0.3,timeout=0.25,rise=1,fall=1' \
        % good.port
    key, key_insecure = keyof(spec), keyof(spec + ',insecure')
    p = Probe([spec + ',insecure', '--', spec], 4, extra=['--swap', '1.8'])
    p.finish(15)
    before = p.timed_results(key_insecure)
    after = p.timed_results(key, after='swap')
    resumed = good.stats()['resumed_requests'].get('localhost /sw', 0)
    checks.append((len(before) >= 3 and all(ok for _, ok, _ in before) and resumed >= 2,
                   'https insecure: probes pass and resume their TLS session (%d resumed)'
                   % resumed, (before, resumed, p.lines[-20:])))
    checks.append((len(after) >= 3 and all(not ok and r == 'TLS: unable to get local issuer '
                                           'certificate' for _, ok, r in after),
                   'https: insecure switched off, the untrusted certificate fails at once '
                   '(no session resumed across the check change)', (after, p.lines[-20:])))

    # Any other check change (the timeout) is a new target too, which starts its own session:
    # one full handshake per target, then resumed ones.
    keep = Backend(tmp, *certs['good'])
    spec = ('https,127.0.0.1:%d,path=/keep,host=localhost,interval=0.3,timeout=%s,rise=1,fall=1,'
            'insecure')
    p = Probe([spec % (keep.port, '0.25'), '--', spec % (keep.port, '0.2')], 4,
              extra=['--swap', '1.8'])
    p.finish(15)
    st = keep.stats()
    nreq = st['requests'].get('localhost /keep', 0)
    nres = st['resumed_requests'].get('localhost /keep', 0)
    full = nreq - nres
    after = p.timed_results(keyof(spec % (keep.port, '0.2')), after='swap')
    checks.append((nres >= 5 and full == 2 and len(after) >= 3 and all(ok for _, ok, _ in after),
                   'https: a timeout change is a new target that passes, with one full handshake '
                   'of its own, then resumed ones (%d full handshakes, %d resumed)' % (full, nres),
                   (st, after, p.lines[-20:])))

    # A certificate replaced by an expired one behind resumed sessions: noticed at the next full
    # handshake (--tls-reverify 1.5 s here, 5 min by default), and then no probe resumes.
    good2 = Backend(tmp, *certs['good'])
    spec = 'https,127.0.0.1:%d,path=/ex,host=localhost,interval=0.25,timeout=0.2,rise=1,fall=1' \
        % good2.port
    key = keyof(spec)
    reverify = 1.5
    p = Probe([spec], 6, ca_file=ca, extra=['--tls-reverify', str(reverify)])
    time.sleep(2)
    resumed = good2.stats()['resumed_requests'].get('localhost /ex', 0)
    cert, keyf = certs['expired']
    good2.get('/_control?cert=%s&key=%s' % (urllib.request.quote(cert),
                                             urllib.request.quote(keyf)))
    t_switch = time.monotonic()
    p.finish(15)
    res = p.timed_results(key)
    fails = [(w, r) for w, ok, r in res if not ok]
    first = fails[0] if fails else None
    checks.append((resumed >= 2, 'https: probes with --ca-file resume sessions (%d resumed before '
                   'the certificate changed)' % resumed, res))
    took = first[0] - t_switch if first else None
    checks.append((first is not None and first[1] == 'TLS: certificate has expired' and
                   took <= reverify + 1.5,
                   'https: a certificate that expired behind resumed sessions is noticed at the '
                   'next full handshake (after %s s; reverify every %.1f s)'
                   % (took and '%.2f' % took, reverify), res))
    late = [x for x in res if first and x[0] >= first[0]]
    checks.append((len(late) >= 3 and all(not ok and r == 'TLS: certificate has expired'
                                          for _, ok, r in late),
                   'https: after a failed probe no session is resumed (every later probe fails)',
                   late))
    return checks


def main(t):
    if not os.access(PROBE, os.X_OK):
        t.skip('health_probe driver', 'not built: %s' % PROBE)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-health-')
    atexit.register(shutil.rmtree, tmp, True)
    try:
        certs = make_certs(tmp)
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as e:
        t.ok(False, 'make test certificates with the openssl CLI', str(e))
        return

    # The rise/fall timing runs on its own, in parallel with everything else.
    rf = {}
    rf_thread = threading.Thread(target=lambda: rf.update(pr=test_rise_fall(t, tmp)))
    rf_thread.start()

    ca = os.path.join(tmp, 'ca.pem')
    sess = {}
    sess_thread = threading.Thread(
        target=lambda: sess.update(checks=test_tls_sessions(tmp, certs, ca)))
    sess_thread.start()

    plain = Backend(tmp)
    hang = Backend(tmp, mode='hang')
    bodyb = Backend(tmp, mode='body', body='status: all good\n')
    closer = Backend(tmp, mode='close')
    good = Backend(tmp, *certs['good'])
    expired = Backend(tmp, *certs['expired'])
    other = Backend(tmp, *certs['other'])
    selfs = Backend(tmp, *certs['self'])
    closed_port = g.free_port(v6=False)
    db = os.path.join(tmp, 'health.db')

    common = 'interval=1,timeout=0.5,rise=2,fall=2'
    targets = {
        'tcp_ok': 'tcp,127.0.0.1:%d,%s' % (plain.port, common),
        'tcp_closed': 'tcp,127.0.0.1:%d,%s' % (closed_port, common),
        'hang': 'http,127.0.0.1:%d,path=/,host=localhost,%s' % (hang.port, common),
        'match_ok': 'http,127.0.0.1:%d,path=/m1,host=localhost,match=all good,%s'
                    % (bodyb.port, common),
        'match_bad': 'http,127.0.0.1:%d,path=/m2,host=localhost,match=ok,%s'
                     % (bodyb.port, common),
        'closer': 'http,127.0.0.1:%d,path=/,host=localhost,%s' % (closer.port, common),
        'expect': 'http,127.0.0.1:%d,path=/e,host=localhost,expect=500-599,%s'
                  % (plain.port, common),
        # Transfer-Encoding: chunked, decoded before match (the backend splits where told).
        'chunk_one': 'http,127.0.0.1:%d,path=/k1?chunked=,host=localhost,match=all good,%s'
                     % (bodyb.port, common),
        'chunk_split': 'http,127.0.0.1:%d,path=/k2?chunked=11:14&ext=;x=y&gap=30,host=localhost,'
                       'match=all good,%s' % (bodyb.port, common),
        'chunk_nomatch': 'http,127.0.0.1:%d,path=/k3?chunked=4,host=localhost,match=bad news,%s'
                         % (bodyb.port, common),
        'chunk_badsize': 'http,127.0.0.1:%d,path=/k4?chunked=4&bad=size,host=localhost,'
                         'match=all good,%s' % (bodyb.port, common),
        'chunk_badcrlf': 'http,127.0.0.1:%d,path=/k5?chunked=4&bad=crlf,host=localhost,'
                         'match=all good,%s' % (bodyb.port, common),
        'chunk_trunc': 'http,127.0.0.1:%d,path=/k6?chunked=4&bad=truncated,host=localhost,'
                       'match=all good,%s' % (bodyb.port, common),
        # The same probe twice, as two pools sharing a backend would configure it.
        'shared': 'http,127.0.0.1:%d,path=/shared,host=localhost,%s' % (plain.port, common),
        # The same request as match_bad and expect, judged without match / expect (issue 13).
        'match_none': 'http,127.0.0.1:%d,path=/m2,host=localhost,%s' % (bodyb.port, common),
        'expect_none': 'http,127.0.0.1:%d,path=/e,host=localhost,%s' % (plain.port, common),
    }
    https = {
        'https_untrusted': 'https,127.0.0.1:%d,path=/u,host=localhost,%s' % (good.port, common),
        'https_insecure': 'https,127.0.0.1:%d,path=/i,host=localhost,insecure,%s'
                          % (good.port, common),
        'https_self': 'https,127.0.0.1:%d,path=/s,host=localhost,%s' % (selfs.port, common),
        # The request of https_self, with --insecure: a target of its own (issue 13).
        'https_self_insecure': 'https,127.0.0.1:%d,path=/s,host=localhost,insecure,%s'
                               % (selfs.port, common),
    }
    https_ca = {
        'https_ca': 'https,127.0.0.1:%d,path=/c,host=localhost,match=ok,%s' % (good.port, common),
        # "ok" split between two chunks.
        'https_chunk': 'https,127.0.0.1:%d,path=/kc?chunked=1,host=localhost,match=ok,%s'
                       % (good.port, common),
        'https_ip': 'https,127.0.0.1:%d,path=/ip,%s' % (good.port, common),
        'https_wronghost': 'https,127.0.0.1:%d,path=/w,host=wrong.example,%s'
                           % (good.port, common),
        'https_expired': 'https,127.0.0.1:%d,path=/x,host=localhost,%s' % (expired.port, common),
        'https_othercert': 'https,127.0.0.1:%d,path=/o,host=localhost,%s' % (other.port, common),
    }
    # (spec, key) of each target.
    for table in (targets, https, https_ca):
        table.update({name: (spec, keyof(spec)) for name, spec in table.items()})
    t.eq(targets['tcp_ok'][1], 'tcp 127.0.0.1:%d interval 1s timeout 0.5s fall 2' % plain.port,
         'the key of a check names its settings that are not the defaults')
    seconds = 4.5
    p1 = Probe([v[0] for v in targets.values()] + [targets['shared'][0]], seconds, db=db)
    p2 = Probe([v[0] for v in https.values()], seconds)
    p3 = Probe([v[0] for v in https_ca.values()], seconds, ca_file=ca)
    for p in (p1, p2, p3):
        t.ok(p.finish(seconds + 10) == 0, 'health_probe ran and exited cleanly',
             p.stderr if hasattr(p, 'stderr') else None)
        t.on_fail.append(lambda p=p: p.dump(t))

    def first_fail(p, key):
        r = [x for x in p.results(key) if not x[0]]
        return r[0][1] if r else None

    def all_ok(p, key):
        r = p.results(key)
        return len(r) >= 3 and all(x[0] for x in r)

    def check_fail(p, name, table, want, desc, prefix=False):
        key = table[name][1]
        got = first_fail(p, key)
        cond = got is not None and (got.startswith(want) if prefix else got == want)
        t.ok(cond and not all_ok(p, key), desc, 'key %s: results %r' % (key, p.results(key)))
        ch = p.changes(key)
        t.ok(ch and ch[0][0] == 'down', '%s: goes down after fall failures' % name,
             'changes %r' % ch)

    t.ok(all_ok(p1, targets['tcp_ok'][1]), 'tcp: an open port passes',
         p1.results(targets['tcp_ok'][1]))
    check_fail(p1, 'tcp_closed', targets, 'connect refused', 'tcp: a closed port fails with '
               '"connect refused"')
    check_fail(p1, 'hang', targets, 'timeout after 500 ms',
               'http: a hung backend fails with "timeout after 500 ms"')
    t.ok(all_ok(p1, targets['match_ok'][1]), 'http: match finds its string in the body',
         p1.results(targets['match_ok'][1]))
    check_fail(p1, 'match_bad', targets, 'body did not contain "ok"',
               'http: match fails with \'body did not contain "ok"\'')
    check_fail(p1, 'closer', targets, 'connection closed before a response',
               'http: a backend that closes fails with "connection closed before a response"')
    t.ok(all_ok(p1, targets['chunk_one'][1]), 'http chunked: match finds its string in a '
         'one-chunk body', p1.results(targets['chunk_one'][1]))
    t.ok(all_ok(p1, targets['chunk_split'][1]), 'http chunked: match finds a string split over '
         'three chunks (extensions, separate reads)', p1.results(targets['chunk_split'][1]))
    check_fail(p1, 'chunk_nomatch', targets, 'body did not contain "bad news"',
               'http chunked: a complete body without the string fails with "body did not '
               'contain"')
    check_fail(p1, 'chunk_badsize', targets,
               'HTTP: bad chunked encoding (chunk-size is not hexadecimal)',
               'http chunked: a chunk-size that is not hex fails with "HTTP: bad chunked '
               'encoding (...)"')
    check_fail(p1, 'chunk_badcrlf', targets, 'HTTP: bad chunked encoding (no CRLF after chunk '
               'data)', 'http chunked: chunk data without its CRLF fails')
    check_fail(p1, 'chunk_trunc', targets, 'HTTP: bad chunked encoding (the connection closed '
               'inside the body)', 'http chunked: a connection closed inside a chunk fails')
    r = p1.results(targets['expect'][1])
    t.ok(r and all(not x[0] and x[1] == 'HTTP 200' for x in r),
         'http: expect 500-599 turns a 200 into a failure "HTTP 200"', r)
    # Checks sharing a request, each judged by its own settings, whichever is given first.
    t.ok(all_ok(p1, targets['expect_none'][1]) and all_ok(p1, targets['match_none'][1]),
         'http: the requests of the expect 500-599 and match ok checks, checked without them, '
         'pass', (p1.results(targets['expect_none'][1]), p1.results(targets['match_none'][1])))

    # One probe per interval for a target configured twice.
    st = plain.stats()
    n_shared = st['requests'].get('localhost /shared', 0)
    n_results = len(p1.results(targets['shared'][1]))
    t.ok(3 <= n_shared <= 6 and n_shared == n_results,
         'a target given twice is probed once per interval (%d requests in %.1f s)'
         % (n_shared, seconds), 'stats %r, results %d' % (st, n_results))

    check_fail(p2, 'https_untrusted', https, 'TLS: unable to get local issuer certificate',
               'https: a certificate from an unknown CA fails with a TLS reason')
    t.ok(all_ok(p2, https['https_insecure'][1]), 'https: insecure skips verification',
         p2.results(https['https_insecure'][1]))
    t.ok(all_ok(p2, https['https_self_insecure'][1]),
         'https: the request of the self-signed check, with --insecure, passes',
         p2.results(https['https_self_insecure'][1]))
    check_fail(p2, 'https_self', https, 'TLS: self',
               'https: a self-signed certificate fails with "TLS: self-signed certificate"',
               prefix=True)
    t.ok(all_ok(p3, https_ca['https_ca'][1]), 'https: --ca-file trusts the test CA (and match)',
         p3.results(https_ca['https_ca'][1]))
    t.ok(all_ok(p3, https_ca['https_chunk'][1]),
         'https chunked: match finds "ok" split over two chunks',
         p3.results(https_ca['https_chunk'][1]))
    st = good.stats()
    res = st['resumed_requests']
    t.ok(res.get('localhost /c', 0) >= 2 and res.get('localhost /i', 0) >= 2,
         'https: after the first probe, probes resume their TLS session (backend counts %d of %d '
         'handshakes resumed)' % (st['resumed'], st['handshakes']), st)
    t.ok(not res.get('localhost /u') and not res.get('localhost /w'),
         'https: probes that fail verification never resume a session', st)
    t.ok(all_ok(p3, https_ca['https_ip'][1]),
         'https: without host, the address is verified against the IP SAN',
         p3.results(https_ca['https_ip'][1]))
    check_fail(p3, 'https_wronghost', https_ca, 'TLS: host name mismatch',
               'https: a host the certificate does not name fails with "TLS: host name mismatch"')
    check_fail(p3, 'https_expired', https_ca, 'TLS: certificate has expired',
               'https: an expired certificate fails with "TLS: certificate has expired"')
    check_fail(p3, 'https_othercert', https_ca, 'TLS: host name mismatch',
               'https: a certificate for another name fails with "TLS: host name mismatch"')

    # The database: every probe, every state change, the current states.
    con = sqlite3.connect(db, timeout=5)
    n_probes = con.execute('SELECT count(*) FROM probe_result').fetchone()[0]
    n_lines = sum(1 for _, l in p1.lines if l.startswith('result '))
    t.ok(n_probes == n_lines and n_probes > 0, 'every probe result is in probe_result (%d)'
         % n_probes, 'db %d, printed %d' % (n_probes, n_lines))
    rows = con.execute('SELECT t.key, s.from_state, s.to_state, s.reason FROM state_change s '
                       'JOIN target t ON t.id = s.target_id ORDER BY s.id').fetchall()
    t.ok((targets['tcp_closed'][1], 'up', 'down', 'connect refused') in rows,
         'the state change is in state_change with its reason', rows)
    row = con.execute('SELECT s.state, s.reason FROM target_state s '
                      'JOIN target t ON t.id = s.target_id WHERE t.key = ?',
                      (targets['hang'][1],)).fetchone()
    t.eq(row, ('down', 'timeout after 500 ms'), 'target_state holds the state and last reason')
    row = con.execute('SELECT p.ok, r.text FROM probe_result p JOIN target t ON t.id = p.target_id '
                      'JOIN reason r ON r.id = p.reason_id WHERE t.key = ? '
                      'ORDER BY p.time_ms DESC LIMIT 1', (targets['match_ok'][1],)).fetchone()
    t.eq(row, (1, 'HTTP 200'), 'probe_result holds success and reason')
    con.close()

    # A new target set (a reload): kept targets keep their state at their new index, a removed
    # target stops, even with a probe in flight.
    p5 = Probe([targets['tcp_closed'][0], targets['tcp_ok'][0], targets['hang'][0]], 4,
               extra=['--reload', '2.7'])
    t.on_fail.append(lambda: p5.dump(t))
    t.ok(p5.finish(15) == 0, 'health_probe with a reload exited cleanly')
    after = {l[6:].rsplit(' ', 1)[0]: l.rsplit(' ', 1)[1]
             for _, l in p5.lines if l.startswith('after ')}
    t.eq(after.get(targets['tcp_closed'][1]), 'down',
         'reload: a kept target keeps its down state at its new index')
    t.eq(after.get(targets['tcp_ok'][1]), 'up', 'reload: a kept up target stays up')
    idx = next((i for i, (_, l) in enumerate(p5.lines) if l == 'reload'), len(p5.lines))
    late = [l for _, l in p5.lines[idx:] if targets['hang'][1] in l and l.startswith('result')]
    t.eq(late, [], 'reload: a removed target is probed no more')
    late = [l for _, l in p5.lines[idx:] if targets['tcp_closed'][1] in l]
    t.ok(any(l.startswith('result') for l in late) and
         not any(l.startswith('change') for l in late),
         'reload: a kept target goes on probing with its counters', late)

    # A restart starts from the stored state: the dead target is down before its first probe.
    p4 = Probe([targets['tcp_closed'][0], targets['tcp_ok'][0]], 0.3, db=db)
    p4.finish(10)
    t.eq(p4.start_state(targets['tcp_closed'][1]), 'down',
         'a restart keeps a down target down from the start')
    t.eq(p4.start_state(targets['tcp_ok'][1]), 'up', 'and an up one up')

    # An upgrade: a state stored under the key of the request alone, as gslbd stored every check's
    # before the settings were part of the key, is where a check with settings starts.
    old_port = g.free_port(v6=False)
    old_key = 'tcp 127.0.0.1:%d' % old_port
    con = sqlite3.connect(db, timeout=5)
    con.execute('INSERT INTO target(key) VALUES (?)', (old_key,))
    con.execute("INSERT INTO target_state(target_id, state, since, reason) VALUES "
                "((SELECT id FROM target WHERE key = ?), 'down', ?, 'connect refused')",
                (old_key, int(time.time()) - 3600))
    con.commit()
    con.close()
    spec = 'tcp,127.0.0.1:%d,%s' % (old_port, common)
    p6 = Probe([spec], 0.3, db=db)
    p6.finish(10)
    t.ok(keyof(spec) != old_key and p6.start_state(keyof(spec)) == 'down',
         'upgrade: a check with settings starts down when its request alone was stored down',
         (keyof(spec), p6.lines))

    # A setting changed at run time makes a new key; the new target starts in the state of the
    # check it replaces (the same request), so a dead target is not resurrected.
    spec_a = 'tcp,127.0.0.1:%d,interval=0.3,timeout=0.2,rise=1,fall=1' % closed_port
    spec_b = spec_a.replace('fall=1', 'fall=3')
    p7 = Probe([spec_a, '--', spec_b], 2.6, extra=['--swap', '1.2'])
    t.on_fail.append(lambda: p7.dump(t))
    p7.finish(15)
    res_b = p7.timed_results(keyof(spec_b), after='swap')
    t.ok(p7.changes(keyof(spec_a))[:1] == [('down', 'connect refused')] and len(res_b) >= 3 and
         not p7.changes(keyof(spec_b)),
         'a check whose fall changes while its target is down stays down (%d failed probes, no '
         'state change)' % len(res_b), (p7.changes(keyof(spec_a)), res_b,
                                        p7.changes(keyof(spec_b))))

    sess_thread.join(60)
    for cond, desc, diag in sess.get('checks', [(False, 'TLS session checks ran', None)]):
        t.ok(cond, desc, diag)

    rf_thread.join(40)
    if 'pr' in rf:
        t.on_fail.append(lambda: rf['pr'].dump(t))


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        _cleanup()
