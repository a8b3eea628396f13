#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbd under systemd (README "Running gslbd", gslbd(8)): the readiness protocol (sd_notify(3)),
syslog priorities on the journal's stream (JOURNAL_STREAM), and the installed unit and
configuration file.  No running systemd is needed: the notify socket is the test's own, the journal
stream a file, and the unit is checked with systemd-analyze offline.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.message  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

BAD_ZONE = """\
$TTL 3600
$ORIGIN bad.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN BOGUS 192.0.2.1
"""


def recv_until(sock, want, timeout=10.0):
    """Notify messages until one with the line want; returns all of them, in order."""
    got = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        try:
            msg = sock.recv(4096).decode('utf-8', 'replace')
        except socket.timeout:
            break
        got.append(msg)
        if want in msg.split('\n'):
            break
    return got


def answered(srv, zone='example.test.'):
    q = dns.message.make_query(zone, 'SOA', use_edns=False)
    try:
        r = g.exchange(q, srv.addr4, 'udp', timeout=1.0)
    except OSError:
        return False
    return r.msg is not None and r.msg.rcode() == dns.rcode.NOERROR and bool(r.msg.answer)


def test_notify(t):
    tmp = tempfile.mkdtemp(prefix='gslbtest-notify-')
    path = os.path.join(tmp, 'notify')
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    os.environ['NOTIFY_SOCKET'] = path
    srv = g.Gslbd(wait_zone=None)
    try:
        srv.start()
    finally:
        del os.environ['NOTIFY_SOCKET']
    try:
        got = recv_until(sock, 'READY=1')
        ready = [m for m in got if 'READY=1' in m.split('\n')]
        t.ok(ready, 'READY=1 is sent at start-up', repr(got))
        t.ok(answered(srv), 'a query right after READY=1 is answered')
        status = [ln for m in ready for ln in m.split('\n') if ln.startswith('STATUS=')]
        t.ok(status and re.match(r'STATUS=serving 2 zones, 0 pools$', status[0]),
             'READY=1 comes with a one-line STATUS= of zones and pools', repr(ready))

        srv.signal(signal.SIGHUP)
        got = recv_until(sock, 'READY=1')
        lines = [ln for m in got for ln in m.split('\n')]
        t.ok('RELOADING=1' in lines and 'READY=1' in lines
             and lines.index('RELOADING=1') < lines.index('READY=1'),
             'SIGHUP: RELOADING=1, then READY=1 once reloaded', repr(got))
        t.ok(any(ln.startswith('MONOTONIC_USEC=') for ln in lines),
             'RELOADING=1 comes with MONOTONIC_USEC=', repr(got))

        srv.signal(signal.SIGTERM)
        got = recv_until(sock, 'STOPPING=1')
        t.ok(any('STOPPING=1' in m.split('\n') for m in got), 'SIGTERM: STOPPING=1', repr(got))
        srv.check_stop(t)
    finally:
        srv.stop()
        sock.close()
        shutil.rmtree(tmp, ignore_errors=True)


def wait_log(srv, text, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if text in srv.stderr():
            return True
        time.sleep(0.1)
    return False


def test_journal(t):
    if not os.access(g.GSLBCTL, os.X_OK):
        t.skip('journal priorities', 'gslbctl not built: %s' % g.GSLBCTL)
        return
    for journal in (True, False):
        srv = g.Gslbd(wait_zone=None)
        with open(os.path.join(srv.zones_dir, 'bad.test.zone'), 'w') as f:
            f.write(BAD_ZONE)
        db = os.path.join(srv.tmp, 'gslb.db')
        port = g.free_port(False)  # nothing listens there: the check fails
        for args in (['init'], ['pool', 'add', 'www.example.test.'],
                     ['member', 'add', 'www.example.test.', 'a', '--address', '127.0.0.1'],
                     ['check', 'set', 'www.example.test.', '--type', 'http', '--port', str(port),
                      '--interval', '1', '--timeout', '0.5', '--rise', '1', '--fall', '1']):
            p = subprocess.run([g.GSLBCTL, '--db', db] + args, capture_output=True, text=True,
                               timeout=30)
            t.ok(p.returncode == 0, 'gslbctl %s' % ' '.join(args[:2]), p.stderr)
        open(srv.log_path, 'wb').close()
        if journal:
            st = os.stat(srv.log_path)
            os.environ['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino)
        try:
            srv.start()
        finally:
            os.environ.pop('JOURNAL_STREAM', None)
        srv.wait_ready('example.test.')
        label = 'JOURNAL_STREAM' if journal else 'no JOURNAL_STREAM'
        t.ok(wait_log(srv, 'is now down'), '%s: the target goes down' % label)
        srv.signal(signal.SIGHUP)
        t.ok(wait_log(srv, 'reloaded:'), '%s: reloaded' % label)
        text = srv.stderr()
        srv.check_stop(t)
        lines = [ln for ln in text.splitlines() if ln]
        down = [ln for ln in lines if 'is now down' in ln]
        bad = [ln for ln in lines if 'bad.test.zone' in ln]
        if journal:
            t.ok(lines and all(re.match(r'<[3467]>', ln) for ln in lines),
                 'JOURNAL_STREAM: every line starts with its priority',
                 '\n'.join(ln for ln in lines if not re.match(r'<[3467]>', ln))[:2000])
            t.ok(down and all(ln.startswith('<4>') for ln in down),
                 'JOURNAL_STREAM: a target going down is a warning (<4>)', repr(down))
            t.eq(len(bad), 2, 'the bad zone file is logged at start-up and on the reload')
            t.ok(bad and all(ln.startswith('<3>') for ln in bad),
                 'JOURNAL_STREAM: a zone file that cannot be served is an error (<3>)', repr(bad))
            t.ok(any(ln.startswith('<6>') for ln in lines), 'JOURNAL_STREAM: info is <6>')
            t.ok(any(ln.startswith('<7>') for ln in lines), 'JOURNAL_STREAM: debug is <7>')
        else:
            t.ok(lines and not any(re.match(r'<\d>', ln) for ln in lines),
                 'no JOURNAL_STREAM: no priority prefixes', repr(lines[:3]))
            t.ok(down and all(ln.startswith('gslbd[warning]') for ln in down),
                 'no JOURNAL_STREAM: a target going down is a warning', repr(down))


def test_other_stream(t):
    """JOURNAL_STREAM naming another file (stderr redirected since): no prefixes."""
    srv = g.Gslbd(wait_zone=None)
    other = os.path.join(srv.tmp, 'other')
    open(other, 'w').close()
    st = os.stat(other)
    os.environ['JOURNAL_STREAM'] = '%d:%d' % (st.st_dev, st.st_ino)
    try:
        srv.start()
    finally:
        os.environ.pop('JOURNAL_STREAM', None)
    srv.wait_ready('example.test.')
    text = srv.stderr()
    srv.check_stop(t)
    lines = [ln for ln in text.splitlines() if ln]
    t.ok(lines and not any(re.match(r'<\d>', ln) for ln in lines),
         'JOURNAL_STREAM of another file: no priority prefixes', repr(lines[:3]))


def unit_values(text, key):
    return [ln.split('=', 1)[1] for ln in text.splitlines() if ln.startswith(key + '=')]


def test_unit(t):
    unit = os.path.join(g.BUILDDIR, 'etc', 'gslbd.service')
    if not os.path.exists(unit):
        p = subprocess.run(['make', '-C', g.BUILDDIR, 'etc/gslbd.service'], capture_output=True,
                           text=True, timeout=60)
    if not os.path.exists(unit):
        t.ok(False, 'etc/gslbd.service is built', p.stderr)
        return
    text = open(unit).read()
    t.eq(unit_values(text, 'Type'), ['notify'], 'Type=notify')
    pre = unit_values(text, 'ExecStartPre')
    start = unit_values(text, 'ExecStart')
    t.ok(len(pre) == 1 and re.search(r'/gslbd -c \S+/gslbd/gslbd\.conf --check-config$', pre[0]),
         'ExecStartPre= runs gslbd -c .../gslbd.conf --check-config', repr(pre))
    t.ok(len(start) == 1 and re.search(r'/gslbd -c \S+/gslbd/gslbd\.conf$', start[0]),
         'ExecStart= runs gslbd -c .../gslbd.conf', repr(start))
    reload = unit_values(text, 'ExecReload')
    t.ok(len(reload) == 1 and re.search(r'/gslbctl -c \S+/gslbd/gslbd\.conf daemon reload$',
                                        reload[0]),
         'ExecReload= runs gslbctl -c .../gslbd.conf daemon reload', repr(reload))
    t.eq(unit_values(text, 'User'), ['gslbd'], 'User=gslbd')
    t.eq(unit_values(text, 'Group'), ['gslbd'], 'Group=gslbd')
    t.eq(unit_values(text, 'DynamicUser'), [], 'no DynamicUser (the database is group gslbd)')
    t.eq(unit_values(text, 'StateDirectory'), ['gslbd'], 'StateDirectory=gslbd')
    t.eq(unit_values(text, 'RuntimeDirectory'), ['gslbd'], 'RuntimeDirectory=gslbd')

    # make install into a temporary root: the configuration file, sysusers.d, the zone directory.
    dest = tempfile.mkdtemp(prefix='gslbtest-install-')
    try:
        p = subprocess.run(['make', '-C', g.BUILDDIR, 'install', 'DESTDIR=' + dest],
                           capture_output=True, text=True, timeout=300)
        if not t.ok(p.returncode == 0, 'make install DESTDIR=...', p.stderr[-2000:]):
            return
        conf_path = start[0].split(' -c ', 1)[1].split()[0] if start and ' -c ' in start[0] else ''
        conf = dest + conf_path
        t.ok(os.path.isfile(conf), 'the configuration file the unit reads is installed',
             conf_path)
        settings = {}
        if os.path.isfile(conf):
            for ln in open(conf):
                ln = ln.split('#', 1)[0].strip()
                if '=' in ln:
                    k, v = ln.split('=', 1)
                    settings[k.strip()] = v.strip()
        t.eq(settings.get('db'), '/var/lib/gslbd/gslb.db',
             'gslbd.conf: db is under StateDirectory=gslbd (/var/lib/gslbd)')
        t.eq(settings.get('control'), '/run/gslbd/control.sock',
             'gslbd.conf: control is under RuntimeDirectory=gslbd (/run/gslbd)')
        zones = settings.get('zones', '')
        t.ok(zones and os.path.isdir(dest + zones),
             'gslbd.conf: the zone directory exists after make install', zones)
        sysusers = [os.path.join(r, f) for r, _, fs in os.walk(dest) for f in fs
                    if os.path.basename(r) == 'sysusers.d' and f == 'gslbd.conf']
        t.ok(len(sysusers) == 1 and re.search(r'^u gslbd ', open(sysusers[0]).read(), re.M),
             'a sysusers.d file makes the gslbd user and group', repr(sysusers))
        if shutil.which('systemd-analyze') and os.path.isfile(conf):
            p = subprocess.run([g.GSLBD, '-c', conf, '--check-config', '--zones',
                                os.path.join(g.SRCDIR, 'zones'),
                                '--db', os.path.join(dest, 'check.db')],
                               capture_output=True, text=True, timeout=30)
            t.ok(p.returncode == 0, 'the installed gslbd.conf passes --check-config', p.stderr)
    finally:
        shutil.rmtree(dest, ignore_errors=True)

    analyze = shutil.which('systemd-analyze')
    if not analyze:
        t.skip('systemd-analyze security', 'systemd-analyze is not installed')
        return
    p = subprocess.run([analyze, 'security', '--offline=true', '--threshold=25', '--no-pager',
                        unit], capture_output=True, text=True, timeout=60)
    m = re.search(r'Overall exposure level for \S+: ([\d.]+)', p.stdout + p.stderr)
    t.diag('systemd-analyze security: %s' % (m.group(1) if m else '?'))
    t.ok(p.returncode == 0 and m and float(m.group(1)) <= 2.5,
         'systemd-analyze security --offline: exposure at most 2.5',
         (p.stdout + p.stderr)[-3000:])


def main(t):
    test_notify(t)
    test_journal(t)
    test_other_stream(t)
    test_unit(t)


if __name__ == '__main__':
    g.run(main)
