#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl -c: gslbd's configuration file, read by both programs with one syntax (gslbctl(8))."""

import json
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GEOIP = os.path.join(g.SRCDIR, 'geoip', 'gslb-test-city.mmdb')
ZONE = '''$ORIGIN conf.test.
$TTL 300
@ SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 192.0.2.53
'''


def run(*args, env=None, timeout=20):
    """gslbctl ARGS with GSLB_DB as env says (never the caller's): (rc, stdout, stderr)."""
    e = dict(os.environ)
    e.pop('GSLB_DB', None)
    e.update(env or {})
    p = subprocess.run([g.GSLBCTL] + [str(a) for a in args], capture_output=True, text=True,
                       env=e, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def write(path, text):
    with open(path, 'w') as f:
        f.write(text)
    return path


def pools(rc_out_err):
    rc, out, err = rc_out_err
    try:
        return [p['name'] for p in json.loads(out)['pools']] if rc == 0 else err.strip()
    except (ValueError, KeyError, TypeError):
        return out + err


def precedence(t, tmp):
    """db: command line, then GSLB_DB, then the file, then the default."""
    dbs = {}
    for who in ('cli', 'env', 'file'):
        dbs[who] = os.path.join(tmp, who + '.db')
        g.gslbctl(dbs[who], 'init')
        g.gslbctl(dbs[who], 'pool', 'add', '%s.example.' % who)
    conf = write(os.path.join(tmp, 'p.conf'), 'db = %s\n' % dbs['file'])
    env = {'GSLB_DB': dbs['env']}
    t.eq(pools(run('-c', conf, '--json', 'pool', 'list')), ['file.example.'],
         '-c FILE: the file\'s db')
    t.eq(pools(run('-c', conf, '--json', 'pool', 'list', env=env)), ['env.example.'],
         'GSLB_DB wins over the file')
    t.eq(pools(run('-c', conf, '--db', dbs['cli'], '--json', 'pool', 'list', env=env)),
         ['cli.example.'], '--db wins over GSLB_DB and the file')
    t.eq(pools(run('-c', conf, '--json', 'pool', 'list', '--db', dbs['cli'])), ['cli.example.'],
         '--db after the command wins over the file too')
    t.eq(pools(run('--json', 'pool', 'list', env=env)), ['env.example.'],
         'no -c: GSLB_DB (the default file, if any, below it)')
    # No -c, no GSLB_DB, no --db: the default, which --help names (absent in a build tree).
    helptext = run('--help')[1]
    m = re.search(r'else the file\'s db, else\s+(\S+)\.\n', helptext)
    default_db = m.group(1) if m else '?'
    rc, out, err = run('-c', write(os.path.join(tmp, 'empty.conf'), '# nothing\n'), 'pool', 'list')
    t.ok(default_db in err or (rc == 0 and os.path.exists(default_db)),
         'a file without db: the default database (%s)' % default_db, err)
    # A file given that is not there: exit 1, named.
    rc, out, err = run('-c', os.path.join(tmp, 'missing.conf'), 'pool', 'list')
    t.ok(rc == 1 and err == 'gslbctl: -c: cannot read %s: No such file or directory\n'
         % os.path.join(tmp, 'missing.conf'), '-c with a missing file: exit 1, one line', err)
    return dbs


def syntax(t, tmp):
    """The file's syntax: one reader for gslbd and gslbctl, errors with FILE:LINE."""
    db = os.path.join(tmp, 'file.db')
    good = write(os.path.join(tmp, 'good.conf'),
                 '# gslbd and gslbctl\n\n'
                 'db = "%s"   \n'
                 'listen = 127.0.0.1:5353  # gslbd only: gslbctl skips it\n'
                 'threads = 2\n'
                 'server-id = "a # b"\n' % db)
    t.eq(pools(run('-c', good, '--json', 'pool', 'list')), ['file.example.'],
         'quotes, comments and keys gslbctl does not use')
    cases = [
        ('db = %s\nthis line has no equals sign\n' % db, 2, "expected 'name = value'"),
        ('db = %s\n\nzones = "/etc/zones\n' % db, 3, "unbalanced '\"'"),
        ('geoip =   # nothing\n', 1, 'geoip: empty value'),
        ('db = %s\n' % db + 'x' * 5000 + ' = 1\n', 2, 'line too long'),
    ]
    for i, (text, line, what) in enumerate(cases):
        path = write(os.path.join(tmp, 'bad%d.conf' % i), text)
        want = '%s:%d: %s' % (path, line, what)
        rc, out, err = run('-c', path, 'pool', 'list')
        t.ok(rc == 2 and out == '' and err == 'gslbctl: %s\n' % want,
             'gslbctl -c: %s: exit 2, FILE:LINE' % what, 'exit %d: %r' % (rc, err))
        p = subprocess.run([g.GSLBD, '-c', path, '--check-config'], capture_output=True,
                           text=True, timeout=20)
        t.ok(p.returncode == 1 and p.stderr == 'gslbd: %s\n' % want,
             'gslbd -c: the same message', 'exit %d: %r' % (p.returncode, p.stderr))
    rc, out, err = run('--json', '-c', os.path.join(tmp, 'bad0.conf'), 'pool', 'list')
    t.ok(rc == 2 and json.loads(err).get('status') == 2 and ':2: expected' in err,
         'gslbctl --json -c: the error as JSON', err)
    # Values gslbctl uses are checked as gslbd checks them.
    for text, what in (('control = rel.sock\n', "control: 'rel.sock' is not an absolute path or none"),
                       ('cluster = ftp://x\n', "cluster: 'ftp://x' is not an http:// or https:// URL"),
                       ('cluster-prefix = gslbd\n', "cluster-prefix: 'gslbd' must start and end with '/'")):
        path = write(os.path.join(tmp, 'val.conf'), text)
        rc, out, err = run('-c', path, 'pool', 'list')
        t.ok(rc == 2 and err == 'gslbctl: %s:1: %s\n' % (path, what),
             'gslbctl -c: %s' % what, err)
    # gslbd itself still refuses a name it does not know.
    path = write(os.path.join(tmp, 'unknown.conf'), 'frobnicate = 1\n')
    p = subprocess.run([g.GSLBD, '-c', path, '--check-config'], capture_output=True, text=True,
                       timeout=20)
    t.ok(p.returncode == 1 and "%s:1: 'frobnicate' is not an option of the file" % path in p.stderr,
         'gslbd -c: an unknown name is an error there', p.stderr)
    rc, out, err = run('-c', path, '--db', db, 'pool', 'list')
    t.ok(rc == 0 and err == '', 'gslbctl -c: an unknown name is skipped', err)


def journal(t, tmp):
    """gslbd's start-up option errors carry the error priority when stderr is the journal."""
    path = write(os.path.join(tmp, 'bad-threads.conf'), 'threads = lots\n')
    for args, want in (([g.GSLBD, '-c', path, '--check-config'],
                        "<3>gslbd: %s:1: threads: 'lots' is not a number" % path),
                       ([g.GSLBD, '--threads', '0', '--check-config'],
                        "<3>gslbd: --threads: '0' is not a number"),
                       ([g.GSLBD, '--no-such-option'], '<3>gslbd: --no-such-option: unknown option')):
        err = os.path.join(tmp, 'journal.err')
        with open(err, 'w') as f:
            st = os.fstat(f.fileno())
            env = dict(os.environ, JOURNAL_STREAM='%d:%d' % (st.st_dev, st.st_ino))
            p = subprocess.run(args, stdout=subprocess.DEVNULL, stderr=f, env=env, timeout=20)
        text = open(err).read()
        lines = text.splitlines()
        t.ok(p.returncode == 1 and lines and lines[0].startswith(want) and
             all(ln.startswith('<') for ln in lines),
             'JOURNAL_STREAM: %s: every line with its priority' % ' '.join(args[1:3]), text)


def zones_geo_warnings(t, tmp, dbs):
    """status without --zones, explain with the configured geo file, warnings for lost pools."""
    zones = os.path.join(tmp, 'zones')
    os.mkdir(zones)
    write(os.path.join(zones, 'conf.test.zone'), ZONE)
    db = os.path.join(tmp, 'z.db')
    conf = write(os.path.join(tmp, 'z.conf'),
                 'db = %s\nzones = %s\ngeoip = %s\ncontrol = none\n' % (db, zones, GEOIP))
    g.gslbctl(db, 'init')
    # pool add: a warning for a pool in no zone gslbd serves, none for one it serves.
    rc, out, err = run('-c', conf, 'pool', 'add', 'www.conf.test', '--policy', 'geo')
    t.ok(rc == 0 and err == '', 'pool add of a served pool: no warning', err)
    rc, out, err = run('-c', conf, 'pool', 'add', 'lost.example.net')
    t.ok(rc == 0 and err == 'gslbctl: pool add: warning: pool lost.example.net. is in no zone '
         'gslbd serves (zones in %s): it is not answered\n' % zones,
         'pool add of a pool in no zone: exit 0, a warning on stderr', err)
    rc, out, err = run('-c', conf, '--json', 'pool', 'add', 'lost2.example.net')
    t.ok(rc == 0 and 'lost2.example.net.' in json.loads(err or '{}').get('warning', ''),
         'pool add --json: the warning as a JSON object', err)
    # Unreadable zones: no warning rather than a guess.
    noz = write(os.path.join(tmp, 'noz.conf'), 'db = %s\nzones = %s/none\n' % (db, tmp))
    rc, out, err = run('-c', noz, 'pool', 'add', 'lost3.example.net')
    t.ok(rc == 0 and err == '', 'pool add with an unreadable zone directory: no warning', err)
    # apply: the same warning for each pool of the file gslbd would not serve.
    rc, out, err = run('-c', conf, 'export')
    doc = json.loads(out)
    path = write(os.path.join(tmp, 'apply.json'), json.dumps(doc))
    rc, out, err = run('-c', conf, 'apply', path, '--dry-run')
    warned = re.findall(r'^gslbctl: apply: warning: pool (\S+) is in no zone', err, re.M)
    t.ok(rc == 0 and sorted(warned) == ['lost.example.net.', 'lost2.example.net.',
                                        'lost3.example.net.'],
         'apply: a warning for each pool in no zone, exit 0', err)

    # status: the file's zones, without --zones.
    rc, out, err = run('-c', conf, '--json', 'status')
    st = json.loads(out) if rc == 0 else {}
    t.ok(st.get('zones') == zones and st.get('zones_readable') is True and
         {p['name']: p['served'] for p in st.get('pools', [])}.get('www.conf.test.') is True,
         'status without --zones: the configured zone directory', out + err)
    t.ok('warning' not in err, 'status with control = none: no warning about the socket', err)
    rc, out, err = run('-c', conf, '--json', 'status', '--zones', os.path.join(tmp, 'nonexistent'))
    t.ok(rc == 1, '--zones still wins over the file', err)

    # explain: the file's geo file unless --geoip.
    g.gslbctl(db, 'member', 'add', 'www.conf.test', 'us', '--address', '192.0.2.1',
              '--country', 'US')
    g.gslbctl(db, 'member', 'add', 'www.conf.test', 'de', '--address', '192.0.2.2',
              '--country', 'DE')
    rc, out, err = run('-c', conf, '--json', 'explain', 'www.conf.test', '--client',
                       '198.51.100.7')
    ex = json.loads(out) if rc == 0 else {}
    t.ok(ex.get('client', {}).get('country') == 'US', 'explain: the configured geo file locates '
         'the client', out + err)
    rc, out, err = run('-c', conf, 'explain', 'www.conf.test', '--geoip', os.path.join(tmp, 'x.mmdb'))
    t.ok(rc == 1 and '--geoip: %s' % os.path.join(tmp, 'x.mmdb') in err,
         'explain: --geoip wins over the file', err)
    bad = write(os.path.join(tmp, 'badgeo.conf'), 'db = %s\ngeoip = %s/x.mmdb\n' % (db, tmp))
    rc, out, err = run('-c', bad, 'explain', 'www.conf.test')
    t.ok(rc == 1 and 'geoip: %s/x.mmdb' % tmp in err, 'explain: a configured geo file that '
         'does not open is named', err)


def control_and_cluster(t, tmp):
    """The control socket and the cluster endpoints of the file."""
    sock = os.path.join(tmp, 'control.sock')
    zones = os.path.join(tmp, 'zones')
    srv = g.Gslbd(zones=(os.path.join(zones, 'conf.test.zone'),), wait_zone='conf.test.',
                  identity=False, extra_args=('--control', sock)).start()
    t.on_fail.append(lambda: srv.dump(t))
    conf = write(os.path.join(tmp, 'c.conf'), 'control = %s\ndb = %s/gslb.db\n' % (sock, srv.tmp))
    rc, out, err = run('-c', conf, '--json', 'daemon', 'status')
    t.ok(rc == 0 and json.loads(out).get('pid') == srv.proc.pid,
         'daemon status: the socket of control =', out + err)
    rc, out, err = run('-c', conf, '--control', os.path.join(tmp, 'other.sock'), 'daemon',
                       'status')
    t.ok(rc == 1 and 'other.sock' in err, '--control wins over the file', err)
    rc, out, err = run('-c', conf, 'status')
    t.ok(rc == 0 and 'warning' not in err, 'status through the file\'s socket: no warning', err)
    srv.check_stop(t)

    # The cluster endpoints: cluster status asks the file's etcd (not reachable here).
    db = os.path.join(tmp, 'cl.db')
    g.gslbctl(db, 'init')
    dead = 'http://127.0.0.1:%d' % g.free_port(False)
    conf = write(os.path.join(tmp, 'cl.conf'),
                 'db = %s\ncluster = %s\ncluster-prefix = /conf-test/\nnode = n7\n' % (db, dead))
    rc, out, err = run('-c', conf, '--json', 'cluster', 'status', timeout=30)
    st = json.loads(out) if rc == 0 and out.strip() else {}
    t.ok(rc == 0 and st.get('connected') is False,
         'cluster status with the file\'s cluster: etcd tried, not connected, exit 0', out + err)
    rc, out, err = run('-c', conf, 'cluster', 'import', timeout=30)
    t.ok(rc == 1 and dead.split('//')[1] in err,
         'cluster import: the file\'s etcd URL is the one tried', err)
    rc, out, err = run('--db', db, 'cluster', 'import', timeout=30)
    t.ok(rc == 1 and 'no --cluster URL was given' in err,
         '... and without the file, there is none', err)


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbtest-conf-')
    dbs = precedence(t, tmp)
    syntax(t, tmp)
    journal(t, tmp)
    zones_geo_warnings(t, tmp, dbs)
    control_and_cluster(t, tmp)


if __name__ == '__main__':
    g.run(main)
