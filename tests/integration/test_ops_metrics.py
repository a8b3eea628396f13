#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Operating metrics and certificate expiry (README "Metrics" and "Health checks", gslbd(8),
gslbctl(8)): a real gslbd with real HTTP and HTTPS backends (tests/backend.py).

- gslbd_pool_members and gslbd_pool_eligible_members per family follow a backend going down and
  a member drained; gslbd_pool_fallback_active goes 0, 1, 0 as every IPv4 member fails and
  recovers.
- gslbd_target_cert_expiry_timestamp_seconds is the notAfter of the certificate each HTTPS
  backend serves (made here with the openssl CLI: one ending in 3 days, one in 100 days, one
  ended 2 days ago), with --insecure checks so that the handshake completes for all three.
- The expiry warning is logged once per certificate (not per probe), not for the 100-day one,
  again when a backend's certificate changes, and never with cert-warn = 0 (in the -c file).
- gslbctl status flags the certificate on the address line, and its JSON gives "cert_expires"
  for every address (null where there is no certificate).
"""

import calendar
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
import ssl

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402
from test_metrics import scrape  # noqa: E402

BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')
PY = '/usr/bin/python3'
ZONE_NAME = 'ops.test.'
ZONE = """\
$TTL 3600
$ORIGIN ops.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""
ELIG = 'elig.' + ZONE_NAME
CERTS = 'certs.' + ZONE_NAME
COMMON = ['--interval', '1', '--timeout', '0.5', '--rise', '1', '--fall', '1']
DAY = 86400
WARNING = 'the TLS certificate'

_procs = []


def _cleanup():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


class Backend:
    """tests/backend.py on one loopback address; HTTPS when given a certificate and key."""

    def __init__(self, host, cert=None, key=None):
        args = [PY, BACKEND, '--host', host, '--port', '0']
        if cert:
            args += ['--cert', cert, '--key', key]
        self.host = host
        self.tls = bool(cert)
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
        _procs.append(self.p)
        line = self.p.stdout.readline().decode()
        if not line.startswith('ready '):
            raise RuntimeError('backend on %s did not start: %r' % (host, line))
        self.port = int(line.split()[1])

    def control(self, **q):
        scheme = 'https' if self.tls else 'http'
        ctx = ssl._create_unverified_context() if self.tls else None
        url = '%s://%s:%d/_control?%s' % (scheme, self.host, self.port, urllib.parse.urlencode(q))
        with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
            return r.read()


CNF = """
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
[leaf]
basicConstraints = CA:FALSE
subjectAltName = DNS:localhost
"""


def asn1(t):
    return time.strftime('%Y%m%d%H%M%SZ', time.gmtime(t))


def make_certs(d, ends):
    """Self-signed certificates for localhost, one per (name, notBefore, notAfter) of ends, made
    with openssl ca -selfsign so that both dates are exact.  Returns {name: (cert, key)}."""
    with open(os.path.join(d, 'ca.cnf'), 'w') as f:
        f.write(CNF)
    open(os.path.join(d, 'index.txt'), 'w').close()
    with open(os.path.join(d, 'serial'), 'w') as f:
        f.write('1000\n')
    out = {}
    for name, start, end in ends:
        run = lambda *a: subprocess.run(['openssl'] + list(a), cwd=d, check=True,  # noqa: E731
                                        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                        timeout=30)
        run('req', '-config', 'ca.cnf', '-new', '-subj', '/CN=localhost', '-newkey', 'ec',
            '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', name + '.key',
            '-out', name + '.csr')
        run('ca', '-batch', '-config', 'ca.cnf', '-selfsign', '-keyfile', name + '.key',
            '-in', name + '.csr', '-out', name + '.pem', '-extensions', 'leaf', '-notext',
            '-startdate', asn1(start), '-enddate', asn1(end))
        out[name] = (os.path.join(d, name + '.pem'), os.path.join(d, name + '.key'))
    return out


def not_after(pem):
    """The certificate's notAfter as Unix seconds, as openssl reads it."""
    p = subprocess.run(['openssl', 'x509', '-in', pem, '-noout', '-enddate'], check=True,
                       capture_output=True, text=True, timeout=10)
    text = p.stdout.strip().split('=', 1)[1]
    return calendar.timegm(time.strptime(text, '%b %d %H:%M:%S %Y GMT'))


def ctl(db, *args):
    rc, out, err = g.gslbctl(db, *[str(a) for a in args], timeout=30)
    if rc != 0:
        raise RuntimeError('gslbctl %s: exit %d: %s' % (' '.join(map(str, args)), rc, err))
    return out


def elig(m, pool=ELIG):
    """{family: (members, eligible)} of a pool, and its fallback_active."""
    out = {}
    for fam in ('ipv4', 'ipv6'):
        out[fam] = (m.get('gslbd_pool_members', pool=pool, family=fam),
                    m.get('gslbd_pool_eligible_members', pool=pool, family=fam))
    return out, m.get('gslbd_pool_fallback_active', pool=pool)


def wait_metrics(port, pred, timeout):
    """Scrape until pred(metrics) holds; returns the last scrape."""
    deadline = time.monotonic() + timeout
    while True:
        m = scrape(port)
        if pred(m) or time.monotonic() > deadline:
            return m
        time.sleep(0.2)


def cert_series(m, host):
    """{target: notAfter} of the cert expiry samples whose target probes host."""
    return {dict(k)['target']: v for k, v in
            m.series('gslbd_target_cert_expiry_timestamp_seconds').items()
            if (' %s:' % host) in dict(k)['target']}


def warnings(srv, host):
    """The expiry warnings gslbd logged for targets on host."""
    return [ln for ln in srv.stderr().splitlines()
            if WARNING in ln and (' %s:' % host) in ln]


def status_addrs(db):
    st = json.loads(ctl(db, '--json', 'status'))
    return {a['address']: a for p in st['pools'] for mb in p['members']
            for a in mb['addresses']}


def status_lines(db):
    out = ctl(db, 'status')
    lines = {}
    for ln in out.splitlines():
        mo = re.match(r'^\s+(\S+) (up|down)', ln)
        if mo:
            lines[mo.group(1)] = ln
    return lines


def rfc3339(t):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(t))


def configure(db, be):
    ctl(db, 'init')
    # Eligibility: two IPv4 members with http checks, one IPv6 member with none (healthy).
    ctl(db, 'pool', 'add', ELIG, '--answers', '2')
    for m in ('a', 'b'):
        ctl(db, 'member', 'add', ELIG, m, '--address', be[m].host)
        ctl(db, 'check', 'set', ELIG, '--member', m, '--type', 'http', '--port', be[m].port,
            *COMMON)
    ctl(db, 'member', 'add', ELIG, 'c', '--address', '2001:db8::5')
    # Certificates: one member per backend, https checks that do not verify.
    ctl(db, 'pool', 'add', CERTS)
    for m in ('soon', 'far', 'gone'):
        ctl(db, 'member', 'add', CERTS, m, '--address', be[m].host)
        ctl(db, 'check', 'set', CERTS, '--member', m, '--type', 'https', '--port', be[m].port,
            '--host', 'localhost', '--insecure', *COMMON)


def test_eligible(t, srv, db, port, be):
    ok = lambda want, fb: (lambda m: elig(m) == (want, fb))  # noqa: E731
    all_up = {'ipv4': (2, 2), 'ipv6': (1, 1)}
    m = wait_metrics(port, ok(all_up, 0), 10)
    t.eq(elig(m), (all_up, 0), 'all up: 2 of 2 IPv4 members and 1 of 1 IPv6 member eligible, '
         'no fallback')
    t.eq(m.types.get('gslbd_pool_eligible_members'), 'gauge', 'eligible members is a gauge')

    be['a'].control(mode='503')
    want = {'ipv4': (2, 1), 'ipv6': (1, 1)}
    m = wait_metrics(port, ok(want, 0), 10)
    t.eq(elig(m), (want, 0), 'a backend down: 1 of 2 IPv4 members eligible')

    be['b'].control(mode='503')
    want = {'ipv4': (2, 0), 'ipv6': (1, 1)}
    m = wait_metrics(port, ok(want, 1), 10)
    t.eq(elig(m), (want, 1), 'both IPv4 backends down: none eligible, fallback_active 1')
    r = g.exchange(g.make_query(ELIG, 'A'), srv.addr4)
    got = sorted(str(rd) for rr in (r.msg.answer if r.msg else []) for rd in rr)
    t.eq(got, ['127.0.0.94', '127.0.0.95'], 'the answers come from the fallback meanwhile')

    be['a'].control(mode='200')
    be['b'].control(mode='200')
    m = wait_metrics(port, ok(all_up, 0), 10)
    t.eq(elig(m), (all_up, 0), 'both back up: fallback_active 0 again')

    ctl(db, 'member', 'state', ELIG, 'b', 'drain')
    want = {'ipv4': (1, 1), 'ipv6': (1, 1)}
    m = wait_metrics(port, ok(want, 0), 10)
    t.eq(elig(m), (want, 0), 'b drained: out of service, 1 of 1 IPv4 member eligible')
    ctl(db, 'member', 'state', ELIG, 'b', 'down')
    m = wait_metrics(port, ok(want, 0), 10)
    t.eq(elig(m), (want, 0), 'b admin down: the same')
    ctl(db, 'member', 'state', ELIG, 'b', 'auto')
    m = wait_metrics(port, ok(all_up, 0), 10)
    t.eq(elig(m), (all_up, 0), 'b back to auto: 2 of 2')


def test_certs(t, srv, db, port, be, ends, certs):
    want = {h: ends[n] for n, h in (('soon', be['soon'].host), ('far', be['far'].host),
                                    ('gone', be['gone'].host))}
    got = {}
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        m = scrape(port)
        got = {h: sorted(cert_series(m, h).values()) for h in want}
        if all(got[h] == [want[h]] for h in want):
            break
        time.sleep(0.2)
    t.eq(got, {h: [v] for h, v in want.items()},
         'gslbd_target_cert_expiry_timestamp_seconds is each certificate\'s notAfter '
         '(the expired one\'s too, with --insecure)')
    t.eq(m.types.get('gslbd_target_cert_expiry_timestamp_seconds'), 'gauge',
         'cert expiry is a gauge')
    t.eq([h for h in (be['a'].host, be['b'].host) if cert_series(m, h)], [],
         'no cert expiry for http targets')

    # Several probes each (interval 1 s), then count the warnings.
    time.sleep(4)
    soon, far, gone = (warnings(srv, be[n].host) for n in ('soon', 'far', 'gone'))
    t.ok(len(soon) == 1, 'the certificate ending in 3 days: one warning, not one per probe', soon)
    t.ok(soon and 'expires in 3 days' in soon[0], 'it says "expires in 3 days"', soon)
    t.ok(len(gone) == 1, 'the expired certificate: one warning', gone)
    t.ok(gone and 'expired 2 days ago' in gone[0], 'it says "expired 2 days ago"', gone)
    t.eq(far, [], 'the certificate ending in 100 days: no warning')
    journal = [ln for ln in srv.stderr().splitlines() if WARNING in ln]
    t.ok(journal and all('gslbd[warning]: health: ' in ln for ln in journal),
         'the expiry is logged at warning level (priority <4> on the journal)', journal)

    # Stored with the state: gslbctl status.
    def stored():
        a = status_addrs(db)
        return all(a.get(h, {}).get('cert_expires') == rfc3339(v) for h, v in want.items())
    g.wait_for(stored, 5)
    addrs = status_addrs(db)
    t.eq({h: addrs.get(h, {}).get('cert_expires') for h in want},
         {h: rfc3339(v) for h, v in want.items()},
         'status --json: "cert_expires" is each certificate\'s notAfter (RFC 3339)')
    t.eq([addrs.get(h, {}).get('cert_expires', 'absent') for h in
          (be['a'].host, be['b'].host, '2001:db8::5')], [None, None, None],
         'status --json: "cert_expires" is null for addresses without a certificate')
    lines = status_lines(db)
    t.ok('certificate expires in 3 days' in lines.get(be['soon'].host, ''),
         'status flags the certificate ending in 3 days', lines.get(be['soon'].host))
    t.ok('certificate expired 2 days ago' in lines.get(be['gone'].host, ''),
         'status flags the expired certificate', lines.get(be['gone'].host))
    t.ok('certificate' not in lines.get(be['far'].host, 'certificate'),
         'status does not flag the certificate ending in 100 days', lines.get(be['far'].host))

    # A new certificate on the far backend, ending in 5 days: it is seen at the next full
    # handshake (a failed probe forgets the TLS session), warned about once, and replaces the
    # metric.
    be['far'].control(cert=certs['five'][0], key=certs['five'][1])
    be['far'].control(mode='close')
    time.sleep(1.5)
    be['far'].control(mode='200')
    m = wait_metrics(port, lambda m: list(cert_series(m, be['far'].host).values())
                     == [ends['five']], 10)
    t.eq(list(cert_series(m, be['far'].host).values()), [ends['five']],
         'a changed certificate: the metric is the new notAfter')
    time.sleep(3)
    far = warnings(srv, be['far'].host)
    t.ok(len(far) == 1 and 'expires in 5 days' in far[0],
         'a changed certificate that ends within --cert-warn: warned once', far)


def test_cert_warn_off(t, tmp, db, be):
    """cert-warn = 0 in the -c file, on a copy of the database: the metric is there, no
    warning."""
    mport = g.free_port(False)
    zone = os.path.join(tmp, 'ops.test.zone')
    conf = os.path.join(tmp, 'gslbd.conf')
    with open(conf, 'w') as f:
        f.write('cert-warn = 0\n')
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=60, v6=False,
                  extra_args=['--metrics', '127.0.0.1:%d' % mport, '-c', conf])
    shutil.copy(db, os.path.join(srv.tmp, 'gslb.db'))
    srv.start()
    m = wait_metrics(mport, lambda m: cert_series(m, be['soon'].host), 10)
    t.ok(cert_series(m, be['soon'].host), 'cert-warn = 0 (-c file): the expiry metric is still there')
    time.sleep(3)
    t.eq([ln for ln in srv.stderr().splitlines() if WARNING in ln], [],
         'cert-warn = 0 (-c file): no warning')
    srv.check_stop(t, 'gslbd with cert-warn = 0')


def test_option(t):
    for bad in ('-1', 'x', '3651', ''):
        p = subprocess.run([g.GSLBD, '--cert-warn', bad, '--check-config', '--zones', '/nonexistent'],
                           capture_output=True, text=True, timeout=10)
        t.ok(p.returncode == 1 and '--cert-warn' in p.stderr,
             '--cert-warn %r refused with a message' % bad, (p.returncode, p.stderr))


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslb-ops-')
    try:
        run_tests(t, tmp)
    finally:
        _cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run_tests(t, tmp):
    now = int(time.time())
    # Half a day past the whole days, so that the days counted do not depend on the seconds the
    # test takes.
    spec = [('soon', now - DAY, now + 3 * DAY + DAY // 2),
            ('far', now - DAY, now + 100 * DAY + DAY // 2),
            ('gone', now - 30 * DAY, now - 2 * DAY - DAY // 2),
            ('five', now - DAY, now + 5 * DAY + DAY // 2)]
    try:
        certs = make_certs(tmp, spec)
        ends = {n: not_after(certs[n][0]) for n, _, _ in spec}
    except (subprocess.CalledProcessError, OSError, subprocess.TimeoutExpired) as e:
        t.ok(False, 'make test certificates with the openssl CLI', str(e))
        return
    t.eq(ends, {n: e for n, _, e in spec}, 'the certificates end when asked')
    test_option(t)
    be = {'a': Backend('127.0.0.94'), 'b': Backend('127.0.0.95'),
          'soon': Backend('127.0.0.91', *certs['soon']),
          'far': Backend('127.0.0.92', *certs['far']),
          'gone': Backend('127.0.0.93', *certs['gone'])}
    zone = os.path.join(tmp, 'ops.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    mport = g.free_port(False)
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=90, v6=False,
                  extra_args=['--metrics', '127.0.0.1:%d' % mport])
    db = os.path.join(srv.tmp, 'gslb.db')
    configure(db, be)
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))
    test_eligible(t, srv, db, mport, be)
    test_certs(t, srv, db, mport, be, ends, certs)
    rc = srv.stop()
    t.eq(rc, 0, 'gslbd exits 0 after SIGTERM')
    copy = os.path.join(tmp, 'ops.db')
    shutil.copy(db, copy)
    if t.failed:
        srv.dump(t)
    srv.cleanup()
    test_cert_warn_off(t, tmp, copy, be)


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        _cleanup()
