#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The alerting rules (etc/prometheus/gslbd.rules.yml, README "Alerting") against a real gslbd.

A gslbd with a pool, an HTTPS check (tests/backend.py with a certificate made here) and --cluster
pointing at an etcd that is not there (so the cluster metrics are there, disconnected) is scraped;
`promtool check metrics` must accept the scrape, and every gslbd_ metric the rules name must be in
it, with a TYPE line and a sample: a metric renamed in src/server/metrics.c breaks this test, not
the alerts of someone's Prometheus.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402
from test_metrics import scrape  # noqa: E402
from test_ops_metrics import Backend, _cleanup, make_certs  # noqa: E402

RULES = os.path.join(g.SRCDIR, 'etc', 'prometheus', 'gslbd.rules.yml')
PROMTOOL = os.environ.get('PROMTOOL') or shutil.which('promtool') or '/usr/bin/promtool'
ZONE_NAME = 'rules.test.'
ZONE = """\
$TTL 3600
$ORIGIN rules.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	192.0.2.1
"""
POOL = 'www.' + ZONE_NAME


def rule_metrics():
    """The gslbd_ metric names the rules' expressions use."""
    names, in_expr = set(), False
    with open(RULES) as f:
        for line in f:
            s = line.strip()
            if s.startswith('expr:'):
                in_expr = True
            elif re.match(r'^(-\s*)?[a-z_]+:', s):
                in_expr = False
            if in_expr:
                names.update(re.findall(r'\bgslbd_[a-z0-9_]+', s))
    return names


def ctl(db, *args):
    rc, out, err = g.gslbctl(db, *[str(a) for a in args], timeout=30)
    if rc != 0:
        raise RuntimeError('gslbctl %s: exit %d: %s' % (' '.join(map(str, args)), rc, err))
    return out


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslb-rules-')
    try:
        run_tests(t, tmp)
    finally:
        _cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


def run_tests(t, tmp):
    names = rule_metrics()
    want = {'gslbd_pool_eligible_members', 'gslbd_pool_members', 'gslbd_pool_fallback_active',
            'gslbd_target_up', 'gslbd_target_cert_expiry_timestamp_seconds',
            'gslbd_cluster_connected', 'gslbd_reload_failures_total'}
    t.eq(sorted(names), sorted(want), 'the gslbd metrics the rules use, as read from the file')

    now = int(time.time())
    certs = make_certs(tmp, [('tls', now - 86400, now + 30 * 86400)])
    be = Backend('127.0.0.97', *certs['tls'])
    zone = os.path.join(tmp, 'rules.test.zone')
    with open(zone, 'w') as f:
        f.write(ZONE)
    mport = g.free_port(False)
    srv = g.Gslbd(zones=(zone,), identity=False, wait_zone=ZONE_NAME, lifetime=60, v6=False,
                  extra_args=['--metrics', '127.0.0.1:%d' % mport,
                              '--cluster', 'http://127.0.0.1:%d' % g.free_port(False),
                              '--node', 'n1'])
    db = os.path.join(srv.tmp, 'gslb.db')
    ctl(db, 'init')
    ctl(db, 'pool', 'add', POOL)
    ctl(db, 'member', 'add', POOL, 'a', '--address', be.host, '--address', '2001:db8::7')
    ctl(db, 'check', 'set', POOL, '--type', 'https', '--port', be.port, '--host', 'localhost',
        '--insecure', '--interval', '1', '--timeout', '0.5')
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))
    deadline = time.monotonic() + 10
    while True:
        m = scrape(mport)
        if m.series('gslbd_target_cert_expiry_timestamp_seconds') or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    t.eq(m.errors, [], 'the scrape parses as Prometheus text')
    p = subprocess.run([PROMTOOL, 'check', 'metrics'], input=m.text, capture_output=True,
                       text=True, timeout=30)
    t.ok(p.returncode == 0, 'promtool check metrics accepts the scrape',
         (p.returncode, p.stdout[-2000:], p.stderr[-2000:]))
    t.eq(sorted(n for n in names if n not in m.types), [],
         'every metric the rules use has a TYPE line in the scrape')
    t.eq(sorted(n for n in names if not m.series(n)), [],
         'every metric the rules use has a sample in the scrape')
    srv.check_stop(t)


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        _cleanup()
