#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The status page (README "Status page"): GET / and GET /status.json on a real gslbd's --metrics.

Backends on their own 127.0.0.x addresses go down and up to make history; /status.json is checked
against `gslbctl status --json` on the same database, the timeline against `gslbctl history
--json`, names holding <, & and " against the HTML, and the HTTP side (HEAD, 404, 405, headers,
concurrent requests, a database held locked by another process).  The page for 1,000 targets is
timed and its size bounded.
"""

import concurrent.futures
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')
PY = '/usr/bin/python3'
ZONE_NAME = 'status.test.'
ZONE = """\
$TTL 3600
$ORIGIN status.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""
CHECK = ['--type', 'http', '--interval', '1', '--timeout', '0.5', '--rise', '1', '--fall', '1']
WEIRD = 'x<b>&"y'           # a member name gslbctl would refuse; the database holds it all the same
WEIRD_HTML = 'x&lt;b&gt;&amp;&quot;y'
MATCH = '<&">'              # the reason of a failed --match quotes it
TIMEOUT_S = 5               # METRICS_TIMEOUT_MS in src/server/http.c

_procs = []


def cleanup_procs():
    for p in _procs:
        if p.poll() is None:
            p.kill()
            p.wait()


class Backend:
    """tests/backend.py on one loopback address."""

    def __init__(self, host, mode='200', body='ok\n'):
        self.host = host
        self.p = subprocess.Popen([PY, BACKEND, '--host', host, '--port', '0', '--mode', mode,
                                   '--body', body], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                                  preexec_fn=g._pdeathsig)
        _procs.append(self.p)
        line = self.p.stdout.readline().decode()
        if not line.startswith('ready '):
            raise RuntimeError('backend on %s did not start: %r' % (host, line))
        self.port = int(line.split()[1])

    def control(self, mode):
        url = 'http://%s:%d/_control?mode=%s' % (self.host, self.port, mode)
        with urllib.request.urlopen(url, timeout=5) as r:
            r.read()


def ctl(db, *args):
    rc, out, err = g.gslbctl(db, *args, timeout=30)
    if rc != 0:
        raise RuntimeError('gslbctl %s: exit %d: %s' % (' '.join(map(str, args)), rc, err))
    return out


def read_to_close(s):
    data = b''
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def http(port, request, timeout=TIMEOUT_S + 3):
    """Send a raw request; (status, {header: value}, body, seconds)."""
    t0 = time.monotonic()
    s = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    try:
        s.sendall(request)
        data = read_to_close(s)
    finally:
        s.close()
    took = time.monotonic() - t0
    head, _, body = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    m = re.match(r'HTTP/1\.1 (\d{3}) ', lines[0])
    if not m:
        raise RuntimeError('not an HTTP response: %r' % data[:200])
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(':')
        headers[k.strip().lower()] = v.strip()
    return int(m.group(1)), headers, body, took


def get(port, path, method='GET'):
    return http(port, ('%s %s HTTP/1.1\r\nHost: x\r\n\r\n' % (method, path)).encode())


def status_json(port, path='/status.json'):
    st, hd, body, _ = get(port, path)
    if st != 200:
        raise RuntimeError('GET %s: %d %r' % (path, st, body[:200]))
    return json.loads(body)


def setup(tmp, db, metrics_port, extra=()):
    """Zone, pools and backends; returns (gslbd not started, backends)."""
    zone = os.path.join(tmp, 'status.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    be = {'a': Backend('127.0.0.61'), 'b': Backend('127.0.0.62'),
          'm': Backend('127.0.0.63', mode='body', body='plain\n')}
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=120, v6=False,
                  extra_args=['--metrics', '127.0.0.1:%d' % metrics_port] + list(extra))
    db_path = os.path.join(srv.tmp, 'gslb.db')
    ctl(db_path, 'init')
    web = 'web.' + ZONE_NAME
    ctl(db_path, 'pool', 'add', web)
    for name in ('a', 'b'):
        ctl(db_path, 'member', 'add', web, name, '--address', be[name].host)
    ctl(db_path, 'check', 'set', web, '--port', be['a'].port, *CHECK)
    # b's own port; m matches text with <, & and " in it (its reason quotes them).
    ctl(db_path, 'check', 'set', web, '--member', 'b', '--port', be['b'].port, *CHECK)
    ctl(db_path, 'member', 'add', web, 'm', '--address', be['m'].host)
    ctl(db_path, 'check', 'set', web, '--member', 'm', '--port', be['m'].port, '--match', MATCH,
        *CHECK)
    ctl(db_path, 'member', 'state', web, 'a', 'drain')
    ctl(db_path, 'pool', 'add', 'plain.' + ZONE_NAME)
    ctl(db_path, 'member', 'add', 'plain.' + ZONE_NAME, 'solo', '--address', '192.0.2.10',
        '--address', '2001:db8::10')
    # In no zone gslbd serves.
    rc, _, _ = g.gslbctl(db_path, 'pool', 'add', 'lost.example.')
    if rc != 0:
        raise RuntimeError('pool add lost.example. failed')
    ctl(db_path, 'member', 'add', 'lost.example.', 'z', '--address', '192.0.2.20')
    return srv, db_path, be


def addr_of(doc, pool, member, address):
    for p in doc.get('pools', []):
        if p['name'] != pool:
            continue
        for m in p['members']:
            if m['name'] != member:
                continue
            for a in m['addresses']:
                if a['address'] == address:
                    return a
    return None


def wait_state(port, pool, member, address, state, timeout=15):
    def f():
        a = addr_of(status_json(port), pool, member, address)
        return a if a and a['state'] == state and a['last_probe'] else None
    return g.wait_for(f, timeout)


def make_history(t, port, db, be):
    """b: down, then up again.  Returns gslbctl history's changes of b."""
    web = 'web.' + ZONE_NAME
    t.ok(wait_state(port, web, 'b', be['b'].host, 'up'), 'b is probed up')
    be['b'].control('503')
    t.ok(wait_state(port, web, 'b', be['b'].host, 'down'), 'b goes down (HTTP 503)')
    time.sleep(1.2)
    be['b'].control('200')
    t.ok(wait_state(port, web, 'b', be['b'].host, 'up'), 'b comes back up')
    t.ok(wait_state(port, web, 'm', be['m'].host, 'down'), 'm is down: its body lacks the match')
    hist = json.loads(ctl(db, '--json', 'history', web, 'b'))
    return hist['changes']


def test_same_as_gslbctl(t, port, srv, db):
    """GET /status.json is gslbctl status --json for the same database and zones."""
    want = got = None
    for _ in range(30):
        before = status_json(port)
        want = json.loads(ctl(db, '--json', 'status', '--zones', srv.zones_dir))
        after = status_json(port)
        # Probes move last_probe and latency between reads: compare across a quiet moment.
        if before == after:
            got = before
            break
        time.sleep(0.1)
    t.ok(got is not None, 'a quiet moment to compare in')
    t.eq(got, want, '/status.json equals gslbctl status --json, key for key')
    for pool in ('web.' + ZONE_NAME, 'lost.example.'):
        want = json.loads(ctl(db, '--json', 'status', '--zones', srv.zones_dir, pool))
        got = status_json(port, '/status.json?pool=' + pool)
        for d in (want, got):
            for p in d['pools']:
                for m in p['members']:
                    for a in m['addresses']:
                        a.pop('last_probe', None)
                        a.pop('latency_ms', None)
        t.eq(got, want, '/status.json?pool=%s equals gslbctl status %s (but for the probe '
             'times)' % (pool, pool))
    served = {p['name']: (p['served'], p['serving']) for p in status_json(port)['pools']}
    t.eq(served.get('lost.example.'), (False, 'in no served zone'),
         'a pool in no zone: not served, and why')
    t.eq(served.get('web.' + ZONE_NAME), (True, 'served'), 'a pool in the zone: served')
    st, _, body, _ = get(port, '/status.json?pool=nosuch.example.')
    t.ok(st == 404 and b'no pool nosuch.example.' in body, 'an unknown pool: 404 saying so',
         (st, body[:100]))


def test_timeline(t, port, be, changes):
    web = 'web.' + ZONE_NAME
    doc = status_json(port, '/status.json?timeline=1')
    a = addr_of(doc, web, 'b', be['b'].host)
    tl = a and a.get('timeline')
    t.ok(tl is not None, '?timeline=1: the address has a timeline', a)
    if not tl:
        return
    segs = tl['segments']
    t.diag('b timeline: %s' % json.dumps(segs))
    t.diag('b history: %s' % json.dumps(changes))
    t.ok(segs and segs[0]['from'] == tl['from'] and segs[-1]['to'] == tl['to'] and
         all(segs[i]['to'] == segs[i + 1]['from'] for i in range(len(segs) - 1)),
         'the segments cover the window without gaps', segs)
    f = time.strptime(tl['from'], '%Y-%m-%dT%H:%M:%SZ')
    tt = time.strptime(tl['to'], '%Y-%m-%dT%H:%M:%SZ')
    t.ok(abs(time.mktime(tt) - time.mktime(f) - 86400) < 1, 'the window is 24 hours',
         (tl['from'], tl['to']))
    # Every stored change begins a segment at its time, in the state it changed to.
    starts = {(s['from'], s['state']) for s in segs}
    want = {(c['time'], c['to']) for c in changes}
    t.ok(want and want <= starts, 'each state change of gslbctl history starts a segment then',
         (sorted(want), sorted(starts)))
    t.eq(segs[0]['state'], 'unknown', 'before gslbd first probed b: unknown')
    t.ok(len(segs) >= 2 and segs[1]['state'] == 'up' and segs[1]['to'] == min(want)[0],
         'then up (b was probed up) until it went down', segs[:2])
    down = [s for s in segs if s['state'] == 'down']
    t.ok(len(down) == 1 and down[0]['reason'] == 'HTTP 503',
         'one down stretch, with the reason of its change', down)
    t.eq(segs[-1]['state'], 'up', 'it ends up')
    nocheck = addr_of(doc, 'plain.' + ZONE_NAME, 'solo', '192.0.2.10')
    t.ok(nocheck is not None and 'timeline' not in nocheck, 'an address without a check has none')
    plain = status_json(port)
    t.ok(all('timeline' not in a for p in plain['pools'] for m in p['members']
             for a in m['addresses']), 'without ?timeline=1 there is none (gslbctl\'s shape)')


def test_html(t, port, be, changes, db):
    web = 'web.' + ZONE_NAME
    st, hd, body, _ = get(port, '/')
    t.eq(st, 200, 'GET /: 200')
    t.eq(hd.get('content-type'), 'text/html; charset=utf-8', 'GET /: Content-Type HTML, UTF-8')
    t.eq(hd.get('cache-control'), 'no-store', 'GET /: Cache-Control: no-store')
    t.eq(hd.get('content-length'), str(len(body)), 'GET /: Content-Length matches the body')
    html = body.decode('utf-8')
    t.ok(html.startswith('<!DOCTYPE html>'), 'an HTML document')
    t.ok(not re.search(r'<(script|link|img)\b|\bsrc=|url\(|@import', html, re.I),
         'no script and no external asset (no src, link, url() or @import)')
    for name in (web, 'plain.' + ZONE_NAME, 'lost.example.', 'a', 'b', 'solo', be['a'].host,
                 be['b'].host, '192.0.2.10', '2001:db8::10'):
        t.ok('>%s<' % name in html, 'the page shows %s' % name)
    t.ok('class="addr state-down' in html and 'class="addr state-up' in html,
         'state classes on the address rows')
    t.ok('admin-drain' in html, 'a drained member is marked')
    t.ok('not-served' in html and 'in no served zone' in html, 'the pool not served says why')
    # The change times, in the timeline's tooltips.
    for c in changes:
        hhmmss = c['time'][11:19]
        t.ok(re.search(r'<title>[^<]*%s[^<]*</title>' % re.escape(hhmmss), html),
             'the change at %s is in a tooltip' % c['time'])
    for h in ('00:00', '06:00', '12:00', '18:00'):
        t.ok('>%s<' % h in html, 'the time axis labels %s' % h)
    # Escaping: a member name and a reason holding <, & and ".
    con = sqlite3.connect(db, timeout=10)
    with con:
        con.execute("UPDATE member SET name = ? WHERE name = 'm'", (WEIRD,))
    con.close()

    def weird_shown():
        _, _, b, _ = get(port, '/')
        return b.decode() if WEIRD_HTML.encode() in b else None
    html = g.wait_for(weird_shown, 10)
    t.ok(html is not None, 'a member renamed to %s is shown escaped' % WEIRD)
    if html:
        t.ok(WEIRD not in html and '<b>' not in html, 'the raw name is nowhere in the page')
        t.ok('body did not contain &quot;&lt;&amp;&quot;&gt;&quot;' in html,
             'the reason quoting <&"> is escaped', re.findall(r'body did not[^<]*', html)[:2])
        t.ok(MATCH not in html, 'the raw reason is nowhere in the page')
    doc = status_json(port)
    t.ok(addr_of(doc, web, WEIRD, be['m'].host) is not None,
         '/status.json has the name as it is (JSON escapes its own)')


def test_http(t, port):
    st, hd, body, _ = get(port, '/', 'HEAD')
    t.ok(st == 200 and body == b'' and int(hd.get('content-length', '0')) > 1000 and
         hd.get('content-type') == 'text/html; charset=utf-8',
         'HEAD /: 200, the headers of the page, no body', (st, hd, body[:80]))
    st, hd, body, _ = get(port, '/status.json', 'HEAD')
    t.ok(st == 200 and body == b'' and hd.get('content-type') ==
         'application/json; charset=utf-8' and hd.get('cache-control') == 'no-store',
         'HEAD /status.json: 200, JSON headers, no body', (st, hd, body[:80]))
    st, hd, body, _ = get(port, '/status.json')
    t.ok(st == 200 and hd.get('content-type') == 'application/json; charset=utf-8',
         'GET /status.json: Content-Type JSON, UTF-8', hd)
    for path in ('/index.html', '/status.jsonx', '/status', '/status.json/', '//', '/x/'):
        st, _, _, _ = get(port, path)
        t.eq(st, 404, 'GET %s: 404' % path)
    for method in ('POST', 'PUT', 'DELETE'):
        for path in ('/', '/status.json'):
            st, hd, _, _ = get(port, path, method)
            t.ok(st == 405 and hd.get('allow') == 'GET, HEAD', '%s %s: 405 with Allow'
                 % (method, path), (st, hd))
    st, _, body, _ = get(port, '/metrics')
    t.ok(st == 200 and b'gslbd_queries_total' in body, '/metrics is still served')
    st, _, body, _ = get(port, '/?pool=web.' + ZONE_NAME)
    t.ok(st == 200 and b'web.status.test.' in body and b'plain.status.test.' not in body,
         '/?pool=NAME: that pool alone')


def test_concurrent(t, port):
    paths = ['/', '/status.json', '/status.json?timeline=1'] * 4
    with concurrent.futures.ThreadPoolExecutor(len(paths)) as ex:
        res = list(ex.map(lambda p: get(port, p), paths))
    t.ok(all(r[0] == 200 for r in res), '%d requests at once: all 200' % len(paths),
         [r[0] for r in res])
    t.ok(max(r[3] for r in res) < 3, 'all within 3 s', [round(r[3], 2) for r in res])


def test_locked_db(t, port, db):
    """Another process holds the write lock: the page still comes, or a 503 saying why."""
    con = sqlite3.connect(db, timeout=10, isolation_level=None)
    con.execute('BEGIN EXCLUSIVE')
    con.execute("UPDATE pool SET ttl = ttl WHERE 0")
    try:
        st, _, body, took = get(port, '/')
        t.ok(st in (200, 503) and took < TIMEOUT_S, 'GET / while the database is locked: '
             '%d after %.2f s' % (st, took), body[:200] if st != 200 else None)
        st, _, body, took = get(port, '/status.json')
        t.ok(st in (200, 503) and took < TIMEOUT_S, 'GET /status.json while the database is '
             'locked: %d after %.2f s' % (st, took))
        st, _, body, took = get(port, '/metrics')
        t.ok(st == 200 and took < 1, '/metrics meanwhile: at once')
    finally:
        con.execute('ROLLBACK')
        con.close()
    t.ok(g.wait_for(lambda: get(port, '/')[0] == 200, 15), 'the page again once the lock is gone')


def test_thousand(t, tmp):
    """1,000 targets: the page's time and size (figures for README "Status page")."""
    port = g.free_port(False)
    os.makedirs(os.path.join(tmp, 'big'), exist_ok=True)
    zone = os.path.join(tmp, 'big', 'status.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=120, v6=False,
                  extra_args=['--metrics', '127.0.0.1:%d' % port])
    db = os.path.join(srv.tmp, 'gslb.db')
    ctl(db, 'init')
    pools = []
    for i in range(10):
        members = [{'name': 'm%03d' % j, 'addresses': ['127.1.%d.%d' % (i, j + 1)]}
                   for j in range(100)]
        pools.append({'name': 'p%d.%s' % (i, ZONE_NAME), 'members': members,
                      'check': {'type': 'tcp', 'port': 9, 'interval': 60, 'timeout': 0.5}})
    spec = os.path.join(tmp, 'big.json')
    with open(spec, 'w') as f:
        json.dump({'version': 1, 'pools': pools}, f)
    ctl(db, '--quiet', 'apply', spec)
    now = int(time.time())
    srv.start()
    try:
        doc = status_json(port)
        keys = [a['target'] for p in doc['pools'] for m in p['members'] for a in m['addresses']]
        t.eq(len(keys), 1000, '1,000 addresses in /status.json')
        # A day of flapping for each target: 24 changes each, 24,000 in all.
        con = sqlite3.connect(db, timeout=10)
        with con:
            for k in keys:
                con.execute('INSERT OR IGNORE INTO target(key) VALUES (?)', (k,))
                tid = con.execute('SELECT id FROM target WHERE key = ?', (k,)).fetchone()[0]
                con.executemany(
                    'INSERT INTO state_change(time, target_id, from_state, to_state, reason) '
                    'VALUES (?, ?, ?, ?, ?)',
                    [(now - 86000 + h * 3600, tid, 'up' if h % 2 == 0 else 'down',
                      'down' if h % 2 == 0 else 'up', 'connect refused' if h % 2 == 0 else
                      'connected') for h in range(24)])
        con.close()
        took, size = [], 0
        for _ in range(3):
            st, _, body, s = get(port, '/')
            took.append(s)
            size = len(body)
        t.eq(st, 200, 'GET / for 1,000 targets: 200')
        t.diag('1,000 targets, 24,000 changes: page %d bytes, %s s' % (
            size, ', '.join('%.3f' % x for x in took)))
        t.ok(body.count(b'class="seg down"') >= 1000 * 12,
             'every target\'s 12 down stretches drawn', body.count(b'class="seg down"'))
        t.ok(size < 8 * 1024 * 1024, 'the page is under 8 MiB (%d bytes)' % size)
        t.ok(min(took) < 2.5, 'and comes in under 2.5 s (%.3f s)' % min(took))
        # A client that asks for the 4 MB page and does not read it: the write stays pending
        # past the time the page had to come, and the connection is closed at its limit, the
        # daemon unharmed (once, the answer deadline fired into the pending write).
        lazy = socket.create_connection(('127.0.0.1', port))
        lazy.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        lazy.sendall(b'GET / HTTP/1.1\r\nHost: x\r\n\r\n')
        time.sleep(TIMEOUT_S + 1)
        st, _, _, _ = get(port, '/status.json')
        t.ok(srv.alive() and st == 200, 'a client not reading its page: closed at the time '
             'limit, gslbd serves on')
        lazy.close()
        st, _, body, s = get(port, '/status.json?timeline=1')
        t.diag('/status.json?timeline=1 for 1,000 targets: %d bytes, %.3f s' % (len(body), s))
        t.eq(st, 200, '/status.json?timeline=1 for 1,000 targets: 200')
    finally:
        srv.check_stop(t, 'the 1,000-target gslbd')
        srv.cleanup()


def main(t):
    if not os.access(GSLBCTL, os.X_OK):
        t.skip('status page', 'gslbctl not built: %s' % GSLBCTL)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-sp-')
    try:
        port = g.free_port(False)
        srv, db, be = setup(tmp, None, port)
        srv.start()
        t.on_fail.append(lambda: srv.dump(t))
        changes = make_history(t, port, db, be)
        test_same_as_gslbctl(t, port, srv, db)
        test_timeline(t, port, be, changes)
        test_http(t, port)
        test_concurrent(t, port)
        test_locked_db(t, port, db)
        test_html(t, port, be, changes, db)
        srv.check_stop(t)
        srv.cleanup()
        test_thousand(t, tmp)
    finally:
        cleanup_procs()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        cleanup_procs()
