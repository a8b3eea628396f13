#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The control socket (gslbd --control, gslbctl daemon status|reload; gslbd(8) CONTROL SOCKET)."""

import json
import os
import pwd
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

SERIAL = 2026120701
ZONE = '''$ORIGIN ctl.test.
$TTL 300
@ SOA ns hostmaster %d 3600 600 86400 60
@ NS ns
ns A 192.0.2.53
'''


def zone_text(serial):
    return ZONE % serial


def ctl(sock, db, *args, timeout=20):
    """gslbctl --control SOCK --db DB ARGS: (exit status, stdout, stderr)."""
    return g.gslbctl(db, '--control', sock, *args, timeout=timeout)


def raw(sock, data, timeout=5.0, shut=False):
    """Send data on the control socket, read to the end: (bytes, seconds until closed)."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    start = time.monotonic()
    s.connect(sock)
    if data:
        s.sendall(data)
    if shut:
        s.shutdown(socket.SHUT_WR)
    out = b''
    try:
        while True:
            got = s.recv(65536)
            if not got:
                break
            out += got
    except socket.timeout:
        out += b'<timeout>'
    s.close()
    return out, time.monotonic() - start


def jload(text):
    try:
        return json.loads(text)
    except ValueError:
        return None


def start(tmp, sock, name='ctl.test.zone', serial=SERIAL, extra=()):
    zfile = os.path.join(tmp, name)
    with open(zfile, 'w') as f:
        f.write(zone_text(serial))
    srv = g.Gslbd(zones=(zfile,), wait_zone='ctl.test.', identity=False,
                  extra_args=('--control', sock) + tuple(extra))
    return srv.start()


def status_and_reload(t, srv, sock):
    db = os.path.join(srv.tmp, 'gslb.db')
    zdir = srv.zones_dir

    # ---- the socket file
    st = os.stat(sock)
    t.ok(stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o660,
         'the control socket is a socket of mode 0660', oct(st.st_mode))

    # ---- daemon status, text and JSON, with real values
    rc, out, err = ctl(sock, db, 'daemon', 'status')
    t.ok(rc == 0 and 'PID %d' % srv.proc.pid in out and
         'ctl.test. serial %d' % SERIAL in out and '127.0.0.1:%d' % srv.port in out,
         'daemon status: PID, the zone serial set and the listener, as text', out + err)
    rc, out, err = ctl(sock, db, '--json', 'daemon', 'status')
    s = jload(out) or {}
    t.ok(rc == 0 and s.get('pid') == srv.proc.pid and isinstance(s.get('version'), str) and
         isinstance(s.get('uptime_s'), int) and s['uptime_s'] >= 0,
         'daemon status --json: pid, version, uptime', out + err)
    t.ok('127.0.0.1:%d' % srv.port in s.get('listeners', []), '... listeners', out)
    zones = {z['name']: z for z in s.get('zones', [])}
    t.ok(zones.get('ctl.test.', {}).get('serial') == SERIAL and
         zones['ctl.test.'].get('loaded', '').endswith('Z'),
         '... each zone with its serial and when it was loaded', out)
    snap = s.get('snapshot', {})
    t.ok(isinstance(snap.get('generation'), int) and snap['generation'] >= 1 and
         isinstance(snap.get('age_s'), (int, float)) and snap['age_s'] >= 0,
         '... the snapshot\'s generation and age', out)
    t.ok(s.get('health', {}).get('targets') == 0 and 'probe_lag_s' in s.get('health', {}),
         '... health targets and probe lag', out)
    t.ok(s.get('database', {}).get('path') == db and s.get('cluster') is None and
         s.get('pools') == {'served': [], 'not_served': []},
         '... database, no cluster, no pools yet', out)
    gen0 = snap.get('generation', 0)

    # ---- a change to the database: a new snapshot, the pool served
    g.gslbctl(db, 'pool', 'add', 'www.ctl.test')
    g.gslbctl(db, 'member', 'add', 'www.ctl.test', 'a', '--address', '192.0.2.1')
    g.gslbctl(db, 'pool', 'add', 'lost.example.net')

    def changed():
        d = jload(ctl(sock, db, '--json', 'daemon', 'status')[1]) or {}
        pools = d.get('pools', {})
        return d if d.get('snapshot', {}).get('generation', 0) > gen0 and \
            'www.ctl.test.' in pools.get('served', []) and pools.get('not_served') else None
    d = g.wait_for(changed, 3)
    t.ok(d is not None, 'generation increments after a change; the pool is served',
         ctl(sock, db, '--json', 'daemon', 'status')[1])
    if d:
        t.eq(d['pools']['not_served'], [{'name': 'lost.example.net.', 'reason': 'in no served zone'}],
             'a pool not served, with the reason')
        t.ok(d['health']['targets'] == 0, 'no check: no target', d['health'])

    # ---- a health check: one target, probed (gslbd's own TCP listener answers it)
    g.gslbctl(db, 'check', 'set', 'www.ctl.test', '--type', 'tcp', '--port', srv.port,
              '--interval', '1', '--timeout', '0.5')

    def probed():
        d = jload(ctl(sock, db, '--json', 'daemon', 'status')[1]) or {}
        h = d.get('health', {})
        return h if h.get('targets') == 1 and h.get('probes', 0) >= 1 else None
    h = g.wait_for(probed, 5)
    t.ok(h is not None and isinstance(h.get('probe_lag_s'), (int, float)) and
         0 <= h['probe_lag_s'] < 3, 'health: one target, probed, the probe lag in seconds',
         repr(h))
    rc, out, err = ctl(sock, db, 'daemon', 'status')
    t.ok(rc == 0 and 'health: 1 targets, last probe' in out, '... in the text too', out)

    # ---- reload: a bad zone file is named with its error, exit 1
    with open(os.path.join(zdir, 'bad.test.zone'), 'w') as f:
        f.write('$ORIGIN bad.test.\n@ SOA ns hostmaster 1 3600 600 86400 60\n@ NS ns\n'
                'www IN A not-an-address\n')
    with open(os.path.join(zdir, 'ctl.test.zone'), 'w') as f:
        f.write(zone_text(SERIAL + 1))
    rc, out, err = ctl(sock, db, 'daemon', 'reload')
    t.ok(rc == 1 and 'bad.test.zone' in out and 'FAILED' in out and
         'ctl.test. serial %d' % (SERIAL + 1) in out and 'daemon reload' in err,
         'daemon reload with a bad zone file: exit 1, the file named, the good zone loaded',
         'exit %d\n%s%s' % (rc, out, err))
    rc, out, err = ctl(sock, db, '--json', 'daemon', 'reload')
    r = jload(out) or {}
    fails = r.get('zones_failed', [])
    t.ok(rc == 1 and r.get('ok') is False and len(fails) == 1 and
         fails[0].get('file') == 'bad.test.zone' and
         fails[0].get('error', '').startswith('bad.test.zone:4: '),
         'daemon reload --json: zones_failed names the file and the error text', out + err)
    os.unlink(os.path.join(zdir, 'bad.test.zone'))
    rc, out, err = ctl(sock, db, '--json', 'daemon', 'reload')
    r = jload(out) or {}
    t.ok(rc == 0 and r.get('ok') is True and r.get('zones_failed') == [] and
         [z['serial'] for z in r.get('zones', [])] == [SERIAL + 1],
         'daemon reload after the fix: exit 0, nothing failed', out + err)
    rc, out, err = ctl(sock, db, 'daemon', 'reload')
    t.ok(rc == 0 and err == '' and 'FAILED' not in out, 'daemon reload, text: exit 0',
         out + err)

    # ---- gslbctl status: no warning while gslbd answers; exit 0 either way
    rc, out, err = ctl(sock, db, 'status')
    t.ok(rc == 0 and 'warning' not in err, 'status with gslbd answering: no warning',
         out + err)
    other = os.path.join(srv.tmp, 'other.db')
    g.gslbctl(other, 'init')
    rc, out, err = ctl(sock, other, 'status')
    t.ok(rc == 0 and 'answers from another database, %s' % db in err,
         'status of another database than gslbd\'s: exit 0, a warning naming gslbd\'s', err)
    nobody = os.path.join(srv.tmp, 'nobody.sock')
    rc, out, err = ctl(nobody, db, 'status')
    t.ok(rc == 0 and 'no gslbd answers on the control socket %s' % nobody in err and
         'as last stored' in err and 'www.ctl.test.' in out,
         'status with no gslbd answering: exit 0, the warning on stderr', out + err)
    rc, out, err = ctl(nobody, db, '--json', 'status')
    w = jload(err.strip()) or {}
    t.ok(rc == 0 and jload(out) is not None and 'as last stored' in w.get('warning', ''),
         'status --json with no gslbd: the warning as a JSON object on stderr', err)
    rc, out, err = ctl(nobody, db, 'daemon', 'status')
    t.ok(rc == 1 and out == '' and err.startswith('gslbctl: daemon status: no gslbd answers') and
         len(err.splitlines()) == 1, 'daemon status with no gslbd: exit 1, one line', err)
    rc, out, err = ctl('none', db, 'daemon', 'reload')
    t.ok(rc == 1 and 'off' in err, 'daemon reload with --control none: exit 1', err)

    # ---- the protocol's edges
    out, secs = raw(sock, b'status\n')
    t.ok((jload(out) or {}).get('pid') == srv.proc.pid and out.endswith(b'}\n') and
         out.count(b'\n') == 1, 'one command line in, one JSON line out, then closed', out[:200])
    out, secs = raw(sock, b'status', shut=True)
    t.ok((jload(out) or {}).get('pid') == srv.proc.pid,
         'a command ended by the end of the stream is answered', out[:200])
    out, secs = raw(sock, b'frobnicate\n')
    t.ok('unknown command' in (jload(out) or {}).get('error', ''),
         'an unknown command: an error object', out)
    out, secs = raw(sock, b'x' * 5000)
    t.ok('request longer than' in (jload(out) or {}).get('error', '') and secs < 1.5,
         'an oversize request: an error object at once, closed', '%r %.1f s' % (out[:200], secs))

    # A client that sends nothing is closed after the timeout; others are answered meanwhile.
    result = {}

    def idle():
        result['idle'] = raw(sock, b'', timeout=10)
    th = threading.Thread(target=idle)
    th.start()
    time.sleep(0.2)
    out, secs = raw(sock, b'status\n')
    t.ok((jload(out) or {}).get('pid') == srv.proc.pid and secs < 1,
         'a client that sends nothing does not hold up another', '%.2f s' % secs)
    th.join(12)
    out, secs = result.get('idle', (b'<none>', 0))
    t.ok(out == b'' and 1.0 <= secs <= 5.0, 'a client that sends nothing is closed after the '
         'timeout, without an answer', '%r after %.1f s' % (out, secs))

    # Many clients at once: every one answered, and DNS goes on meanwhile.
    answers = []
    lock = threading.Lock()

    def one():
        try:
            o, _ = raw(sock, b'status\n', timeout=10)
        except OSError as e:
            o = str(e).encode()
        with lock:
            answers.append(o)
    threads = [threading.Thread(target=one) for _ in range(24)]
    for x in threads:
        x.start()
    q = g.make_query('ctl.test.', 'SOA')
    dns_ok = g.exchange(q, srv.addr4, 'udp', timeout=1.0).msg is not None
    for x in threads:
        x.join(15)
    good = [a for a in answers if (jload(a) or {}).get('pid') == srv.proc.pid]
    t.ok(len(good) == 24 and dns_ok, '24 clients at once: all answered; DNS answered meanwhile',
         '%d good of %d; dns %s; %r' % (len(good), len(answers), dns_ok,
                                        [a[:80] for a in answers if a not in good][:3]))
    t.ok(srv.alive(), 'gslbd still running')


def second_and_stale(t, tmp):
    sock = os.path.join(tmp, 'c2.sock')
    a = start(tmp, sock)
    t.on_fail.append(lambda: a.dump(t, 'first gslbd'))
    # A second gslbd on the same socket: refused, the first one named.
    zfile = os.path.join(tmp, 'ctl.test.zone')
    zdir = os.path.join(tmp, 'z2')
    os.mkdir(zdir)
    os.link(zfile, os.path.join(zdir, 'ctl.test.zone'))
    args = [g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones', zdir,
            '--db', os.path.join(tmp, 'second.db'), '--threads', '1', '--control', sock]
    p = subprocess.run(args, capture_output=True, text=True, timeout=20)
    t.ok(p.returncode == 1 and 'control socket %s: another gslbd (PID %d) answers on it' %
         (sock, a.proc.pid) in p.stderr,
         'a second gslbd on a live socket: exit 1, with the PID that answers',
         'exit %d: %s' % (p.returncode, p.stderr))
    rc, out, err = ctl(sock, os.path.join(a.tmp, 'gslb.db'), '--json', 'daemon', 'status')
    t.ok(rc == 0 and (jload(out) or {}).get('pid') == a.proc.pid,
         'the first gslbd still answers on it', out + err)

    # Killed: the socket file stays, stale; the next gslbd replaces it.
    a.proc.kill()
    a.proc.wait()
    t.ok(stat.S_ISSOCK(os.lstat(sock).st_mode), 'a killed gslbd leaves its socket file')
    b = start(tmp, sock)
    t.on_fail.append(lambda: b.dump(t, 'third gslbd'))
    rc, out, err = ctl(sock, os.path.join(b.tmp, 'gslb.db'), '--json', 'daemon', 'status')
    t.ok(rc == 0 and (jload(out) or {}).get('pid') == b.proc.pid and
         'replacing a stale socket' in b.stderr(),
         'a stale socket is replaced by the next gslbd', out + err)
    b.check_stop(t, 'gslbd after a stale socket')
    t.ok(not os.path.exists(sock), 'the socket file is removed on exit')
    a.stop()
    a.cleanup()

    # A file that is not a socket is never removed.
    path = os.path.join(tmp, 'not-a-socket')
    open(path, 'w').close()
    args[-1] = path
    p = subprocess.run(args, capture_output=True, text=True, timeout=20)
    t.ok(p.returncode == 1 and 'not a socket' in p.stderr and os.path.isfile(path),
         'a regular file at the path: exit 1, the file left alone', p.stderr)


def control_none(t, tmp):
    conf = os.path.join(tmp, 'none.conf')
    with open(conf, 'w') as f:
        f.write('control = none\n')
    srv = start(tmp, 'none', extra=('-c', conf))
    t.on_fail.append(lambda: srv.dump(t, 'gslbd --control none'))
    t.ok(srv.alive() and 'control socket' not in srv.stderr(),
         '--control none: gslbd serves with no control socket', srv.stderr()[-500:])
    srv.check_stop(t, 'gslbd --control none')
    # A relative path is refused, with the option named.
    p = subprocess.run([g.GSLBD, '--control', 'rel.sock', '--check-config'], capture_output=True,
                       text=True, timeout=20)
    t.ok(p.returncode == 1 and "--control: 'rel.sock' is not an absolute path or none" in p.stderr,
         '--control with a relative path: exit 1, one message', p.stderr)


def runtime_directory(t, tmp):
    """Under systemd the default socket is in $RUNTIME_DIRECTORY, for gslbd and gslbctl alike."""
    rt = os.path.join(tmp, 'rt')
    zdir = os.path.join(tmp, 'rt-zones')
    os.mkdir(rt)
    os.mkdir(zdir)
    with open(os.path.join(zdir, 'ctl.test.zone'), 'w') as f:
        f.write(zone_text(SERIAL))
    env = dict(os.environ, RUNTIME_DIRECTORY=rt)
    env.pop('GSLB_DB', None)
    db = os.path.join(tmp, 'rt.db')
    log = open(os.path.join(tmp, 'rt.log'), 'wb')
    p = subprocess.Popen([g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones', zdir,
                          '--db', db, '--threads', '1'], env=env, stdout=log, stderr=log)
    try:
        sock = os.path.join(rt, 'control.sock')
        t.ok(g.wait_for(lambda: os.path.exists(sock), 5),
             'no --control, RUNTIME_DIRECTORY set: the socket is in that directory')
        # The unit's ExecReload: gslbctl -c gslbd.conf daemon reload, the file without control.
        conf = os.path.join(tmp, 'rt.conf')
        with open(conf, 'w') as f:
            f.write('db = %s\nzones = %s\n' % (db, zdir))
        r = subprocess.run([g.GSLBCTL, '-c', conf, 'daemon', 'reload'], env=env,
                           capture_output=True, text=True, timeout=30)
        t.ok(r.returncode == 0 and 'ctl.test. serial %d' % SERIAL in r.stdout,
             'gslbctl -c FILE daemon reload finds it through RUNTIME_DIRECTORY too',
             r.stdout + r.stderr)
    finally:
        g.terminate(p)
        log.close()
    t.ok(p.returncode == 0 and not os.path.exists(os.path.join(rt, 'control.sock')),
         'removed at exit', open(os.path.join(tmp, 'rt.log')).read()[-2000:])


def cluster_state(t, tmp):
    """With --cluster: the node's cluster state (etcd unreachable here: not connected)."""
    sock = os.path.join(tmp, 'cl.sock')
    dead = 'http://127.0.0.1:%d' % g.free_port(False)
    srv = start(tmp, sock, extra=('--cluster', dead, '--node', 'n1'))
    t.on_fail.append(lambda: srv.dump(t, 'gslbd --cluster'))
    rc, out, err = ctl(sock, os.path.join(srv.tmp, 'gslb.db'), '--json', 'daemon', 'status')
    cl = (jload(out) or {}).get('cluster') or {}
    t.ok(rc == 0 and cl.get('node') == 'n1' and cl.get('connected') is False and
         cl.get('revision') == 0 and cl.get('nodes_live') == 0,
         'daemon status with --cluster: node, connected, revision, nodes live', out + err)
    rc, out, err = ctl(sock, os.path.join(srv.tmp, 'gslb.db'), 'daemon', 'status')
    t.ok(rc == 0 and 'cluster: node n1, NOT CONNECTED, revision 0, 0 nodes live' in out,
         '... as text', out + err)
    srv.check_stop(t, 'gslbd --cluster')


def as_user(t, tmp):
    """--user: the socket bound as root, given the user's group, removed at exit as the user."""
    if os.geteuid() != 0:
        t.skip('--user: the socket\'s group', 'not root')
        return
    try:
        pw = pwd.getpwnam('nobody')
    except KeyError:
        t.skip('--user: the socket\'s group', 'no user nobody')
        return
    top = tempfile.mkdtemp(prefix='gslbtest-ctl-user-')
    os.chmod(top, 0o755)
    zdir = os.path.join(top, 'zones')
    os.mkdir(zdir, 0o755)
    with open(os.path.join(zdir, 'ctl.test.zone'), 'w') as f:
        f.write(zone_text(SERIAL))
    os.chmod(os.path.join(zdir, 'ctl.test.zone'), 0o644)
    for d in ('db', 'run'):     # as StateDirectory= and RuntimeDirectory= make them
        os.mkdir(os.path.join(top, d), 0o750)
        os.chown(os.path.join(top, d), pw.pw_uid, pw.pw_gid)
    sock = os.path.join(top, 'run', 'control.sock')
    db = os.path.join(top, 'db', 'gslb.db')
    log = open(os.path.join(top, 'log'), 'wb')
    p = subprocess.Popen([g.GSLBD, '--listen', '127.0.0.1:%d' % g.free_port(False), '--zones', zdir,
                          '--db', db, '--threads', '1', '--user', 'nobody', '--control', sock],
                         stdout=log, stderr=log, preexec_fn=g._pdeathsig)
    try:
        up = g.wait_for(lambda: g.gslbctl(db, '--control', sock, 'daemon', 'status')[0] == 0, 5)
        st = os.stat(sock) if os.path.exists(sock) else None
        t.ok(up and st and st.st_gid == pw.pw_gid and stat.S_IMODE(st.st_mode) == 0o660,
             '--user nobody: the socket is group %d, mode 0660, and answers' % pw.pw_gid,
             repr(st) + open(os.path.join(top, 'log')).read()[-1500:])
    finally:
        g.terminate(p)
        log.close()
    t.ok(p.returncode == 0 and not os.path.exists(sock),
         '--user nobody: the socket is removed at exit', open(os.path.join(top, 'log')).read()[-1500:])


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbtest-ctl-')
    sock = os.path.join(tmp, 'control.sock')
    srv = start(tmp, sock)
    t.on_fail.append(lambda: srv.dump(t))
    status_and_reload(t, srv, sock)
    srv.check_stop(t)
    t.ok(not os.path.exists(sock), 'the socket file is removed after SIGTERM')
    second_and_stale(t, tmp)
    control_none(t, tmp)
    runtime_directory(t, tmp)
    cluster_state(t, tmp)
    as_user(t, tmp)


if __name__ == '__main__':
    g.run(main)
