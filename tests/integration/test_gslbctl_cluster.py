#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl on a cluster node against one real etcd: changes as etcd transactions, cluster import,
cluster status, votes and the journal's node (README "Two or more nameservers", gslbctl(8))."""

import base64
import json
import os
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
ETCD = '/usr/bin/etcd'
ETCDCTL = '/usr/bin/etcdctl'
PREFIX = '/gslbd/'
P = 'www.example.com.'


class Etcd:
    """One etcd member on free loopback ports in a directory of its own, stopped by its PID."""

    def __init__(self, tmp):
        self.dir = os.path.join(tmp, 'etcd')
        self.port = g.free_port(False)
        self.peer = g.free_port(False)
        while self.peer == self.port:
            self.peer = g.free_port(False)
        self.url = 'http://127.0.0.1:%d' % self.port
        self.proc = None

    def start(self):
        peer = 'http://127.0.0.1:%d' % self.peer
        self.log = open(self.dir + '.log', 'wb')
        self.proc = subprocess.Popen(
            [ETCD, '--name', 'ctl', '--data-dir', self.dir, '--listen-client-urls', self.url,
             '--advertise-client-urls', self.url, '--listen-peer-urls', peer,
             '--initial-advertise-peer-urls', peer, '--initial-cluster', 'ctl=' + peer],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('etcd exited with %d' % self.proc.returncode)
            try:
                with urllib.request.urlopen(self.url + '/health', timeout=1) as r:
                    if json.loads(r.read()).get('health') == 'true':
                        return self
            except (OSError, ValueError):
                pass
            time.sleep(0.1)
        raise RuntimeError('etcd not healthy within 20 s')

    def stop(self):
        if self.proc:
            g.terminate(self.proc)
            self.proc = None
            self.log.close()

    def ctl(self, *args):
        auth = ['--user', self.user] if getattr(self, 'user', None) else []
        p = subprocess.run([ETCDCTL, '--endpoints', self.url] + auth + list(args),
                           capture_output=True, text=True, timeout=20)
        if p.returncode != 0:
            raise RuntimeError('etcdctl %s: %s' % (' '.join(args), p.stderr))
        return p.stdout

    def get(self, key, prefix=False):
        """{key: (value, mod_revision, create_revision)} and etcd's revision."""
        out = json.loads(self.ctl('get', key, '-w', 'json', *(['--prefix'] if prefix else [])))
        kvs = {}
        for kv in out.get('kvs', []):
            k = base64.b64decode(kv['key']).decode()
            v = base64.b64decode(kv.get('value', '')).decode()
            kvs[k] = (v, int(kv['mod_revision']), int(kv['create_revision']))
        return kvs, int(out['header']['revision'])


class Ctl:
    def __init__(self, db):
        self.db = db

    def run(self, *args, timeout=60):
        env = dict(os.environ)
        env.pop('GSLB_DB', None)
        p = subprocess.run([GSLBCTL, '--db', self.db] + list(args), capture_output=True,
                           text=True, errors='replace', env=env, timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            raise AssertionError('%r: exit %d: %s' % (args, rc, err))
        return out

    def sql(self, query, *params):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            rows = con.execute(query, params).fetchall()
            con.commit()
            return rows
        finally:
            con.close()

    def record(self, url, node='n1'):
        """What gslbd --cluster records in its database (src/db/cluster.c)."""
        self.sql('DELETE FROM cluster_setting')
        for name, value in (('urls', url), ('prefix', PREFIX), ('node', node), ('lease', '10')):
            self.sql('INSERT INTO cluster_setting(name, value) VALUES(?, ?)', name, value)

    def mirrored(self, rev):
        """The revision gslbd would record as mirrored."""
        self.sql('INSERT OR REPLACE INTO cluster_state(id, cluster_id, applied_rev, connected, '
                 'changed) VALUES(1, 0, ?, 0, 0)', rev)

    def local(self):
        """Everything a change could write locally."""
        return (self.ok('export'), self.ok('log', '--limit', '1000000'),
                self.sql('SELECT * FROM cluster_key ORDER BY key'))


def host_node():
    return socket.gethostname().split('.')[0].lower()


def one_line(err):
    return err.count('\n') == 1 and err.endswith('\n')


def options(t, c, e):
    """The global options: checked before anything is opened."""
    rc, out, err = c.run('--cluster', 'ftp://127.0.0.1:1', 'pool', 'list')
    t.ok(rc == 2 and 'not an http:// or https:// URL' in err and one_line(err),
         '--cluster with a non-http URL: exit 2', err)
    rc, out, err = c.run('--cluster-prefix', 'gslbd', 'pool', 'list')
    t.ok(rc == 2 and 'does not start and end with /' in err and one_line(err),
         '--cluster-prefix not starting and ending with /: exit 2', err)
    rc, out, err = c.run('--help')
    t.ok(rc == 0 and '--cluster' in out and '--no-wait' in out and 'cluster import' in out and
         'cluster status' in out, '--help names the cluster options and commands', out)
    rc, out, err = c.run('--cluster', e.url, 'member', 'add', P, 'x', '--address', '192.0.2.99')
    t.ok(rc == 1 and 'not a cluster node' in err and one_line(err),
         'a change with --cluster on a standalone database: exit 1', err)
    t.ok('192.0.2.99' not in c.ok('export'), '... and nothing written')


def import_(t, c, e):
    """cluster import: an empty prefix takes it; a configured one only with --replace."""
    rc, out, err = c.run('cluster', 'import')
    t.ok(rc == 1 and 'not a cluster node' in err and one_line(err),
         'cluster import without --cluster on a standalone database: exit 1', err)
    rc, out, err = c.run('--cluster', e.url, 'cluster', 'import')
    t.ok(rc == 0 and '2 pools' in out, 'cluster import into an empty prefix: exit 0, says 2 pools',
         out + err)
    kvs, rev = e.get(PREFIX, prefix=True)
    pool = json.loads(c.ok('--json', 'pool', 'show', P))
    t.eq(json.loads(kvs.get(PREFIX + 'pools/' + P, ('null',))[0]), pool,
         'the pool in etcd is what pool show --json (export) writes')
    t.eq(json.loads(kvs.get(PREFIX + 'meta', ('null',))[0]), {'schema': 1}, 'meta {"schema":1}')
    t.ok(kvs.get(PREFIX + 'meta', ('', 0))[1] == rev, 'meta is written last')
    journal = json.loads(c.ok('--json', 'log', '--limit', '1000'))['entries']
    up = [json.loads(v[0]) for k, v in sorted(kvs.items()) if k.startswith(PREFIX + 'journal/')]
    t.eq([(j['command'], j['summary'], j['actor'], j['time']) for j in up],
         [(j['command'], j['summary'], j['actor'], j['time']) for j in reversed(journal)],
         'every journal entry uploaded, oldest first')
    t.ok(all(j['node'] == host_node() for j in up), 'journal entries of no node: this node\'s')

    rc, out, err = c.run('--cluster', e.url, 'cluster', 'import')
    t.ok(rc == 1 and '--replace' in err and one_line(err),
         'cluster import into a configured prefix: exit 1 naming --replace', err)
    t.eq(e.get(PREFIX, prefix=True)[1], rev, '... and nothing written in etcd')

    e.ctl('put', PREFIX + 'pools/stale.example.', '{}')
    e.ctl('del', PREFIX + 'meta')
    rc, out, err = c.run('--cluster', e.url, 'cluster', 'import')
    t.ok(rc == 1, 'a prefix with pools but no meta is configured too', err)
    rc, out, err = c.run('--cluster', e.url, 'cluster', 'import', '--replace')
    t.ok(rc == 0 and '2 pools' in out, 'cluster import --replace: exit 0', out + err)
    kvs, rev = e.get(PREFIX + 'pools/', prefix=True)
    t.eq(sorted(kvs), [PREFIX + 'pools/other.example.com.', PREFIX + 'pools/' + P],
         '--replace deleted the pool the local configuration lacks')


def dnssec_keys(t, e, tmp):
    """DNSSEC keys on a cluster node (README "DNSSEC"): cluster import uploads them, a dnssec
    change goes to etcd as P dnssec/ZONE (read back on a conflict), nothing is written locally."""
    prefix, zone = '/dk/', 'signed.example.'
    k = Ctl(os.path.join(tmp, 'keys.db'))
    k.ok('init')
    k.ok('dnssec', 'enable', zone)
    pub = k.sql('SELECT public_key FROM dnssec_key')[0][0]
    rc, out, err = k.run('--cluster', e.url, '--cluster-prefix', prefix, 'cluster', 'import')
    t.ok(rc == 0 and 'DNSSEC keys of 1 zone' in out, 'cluster import uploads the zone\'s keys',
         out + err)
    key = prefix + 'dnssec/' + zone
    v = json.loads(e.get(key)[0].get(key, ('{}',))[0])
    t.ok(v.get('zone') == zone and [base64.b64decode(x['public_key']) for x in v['keys']] ==
         [pub] and v['keys'][0]['retire'] is None and v['keys'][0]['private_key'],
         'etcd holds the key under P dnssec/ZONE: public key, private key, times', v)

    e.ctl('put', prefix + 'dnssec/stale.example.', '{}')
    rc, out, err = k.run('--cluster', e.url, '--cluster-prefix', prefix, 'cluster', 'import',
                         '--replace')
    kvs = e.get(prefix + 'dnssec/', prefix=True)[0]
    t.ok(rc == 0 and sorted(kvs) == [key], 'cluster import --replace deletes the keys of a zone '
         'the database lacks, keeps the others', out + err + repr(sorted(kvs)))

    k.sql('DELETE FROM cluster_setting')
    for name, value in (('urls', e.url), ('prefix', prefix), ('node', 'n1'), ('lease', '10')):
        k.sql('INSERT INTO cluster_setting(name, value) VALUES(?, ?)', name, value)
    before = k.sql('SELECT * FROM dnssec_key')
    rc, out, err = k.run('--no-wait', 'dnssec', 'rollover', zone, '--max-ttl', '5')
    v = json.loads(e.get(key)[0].get(key, ('{}',))[0])
    t.ok(rc == 0 and len(v.get('keys', [])) == 2 and out.count('dnssec ' + zone) == 2,
         'dnssec rollover on a cluster node: both keys in etcd (after reading the key back '
         'on the first try\'s conflict)', out + err + json.dumps(v))
    t.eq(k.sql('SELECT * FROM dnssec_key'), before, '... and the local database unchanged')
    kvs = e.get(prefix + 'journal/', prefix=True)[0]
    t.ok(any('dnssec rollover' in json.loads(x[0])['command'] for x in kvs.values()),
         '... with its journal entry in etcd')
    rc, out, err = k.run('--no-wait', 'dnssec', 'disable', zone)
    t.ok(rc == 0 and key not in e.get(key)[0], 'dnssec disable on a cluster node deletes the '
         'key in etcd', out + err)
    e.ctl('del', prefix, '--prefix')


def import_big(t, e, tmp):
    """An import larger than one etcd request: batches cut by size as well as by count."""
    b = Ctl(os.path.join(tmp, 'bignets.db'))
    b.ok('init')
    nets = ['10.%d.%d.0/24' % (i // 256, i % 256) for i in range(1000)]
    pools = [{'name': 'big%d.example.com.' % i,
              'members': [{'name': 'a', 'addresses': ['192.0.2.1'], 'networks': nets}]}
             for i in range(110)]
    path = os.path.join(tmp, 'bignets.json')
    with open(path, 'w') as f:
        json.dump({'version': 1, 'pools': pools}, f)
    b.ok('apply', path)
    rc, out, err = b.run('--cluster', e.url, '--cluster-prefix', '/big/', 'cluster', 'import')
    t.ok(rc == 0 and '110 pools' in out, 'an import of 110 pools of 14 KiB each (1.5 MiB in 100 '
         'of them): exit 0', out + err)
    kvs = e.get('/big/pools/', prefix=True)[0]
    t.eq(len(kvs), 110, '... all of them in etcd')
    e.ctl('del', '/big/', '--prefix')


def change(t, c, e):
    """A change: one etcd transaction with its journal entry; nothing written locally."""
    before = c.local()
    rc, out, err = c.run('--no-wait', 'member', 'add', P, 'm2', '--address', '192.0.2.2')
    t.ok(rc == 0 and err == '', 'member add on a cluster node --no-wait: exit 0, quiet', out + err)
    kvs, rev = e.get(PREFIX, prefix=True)
    pool = json.loads(kvs.get(PREFIX + 'pools/' + P, ('{"members": []}',))[0])
    t.ok('m2' in [m['name'] for m in pool['members']], 'the member is in the pool in etcd')
    jkeys = [k for k in kvs if k.startswith(PREFIX + 'journal/') and '-n1-' in k]
    t.eq(len(jkeys), 1, 'one journal key of node n1')
    j = json.loads(kvs[jkeys[0]][0]) if jkeys else {}
    t.ok(j.get('node') == 'n1' and '@' in j.get('actor', '') and
         'member add' in j.get('command', '') and
         j.get('summary') == '+ member %s/m2' % P and j.get('time', '').endswith('Z'),
         'the journal entry: node, user@host, command, summary, time', j)
    t.ok(jkeys and kvs[jkeys[0]][1] == kvs.get(PREFIX + 'pools/' + P, ('', 0))[1] == rev,
         'the pool and its journal entry in one transaction (one revision)')
    t.eq(c.local()[:2], before[:2], 'nothing of it written to the local database')

    # Without a gslbd to mirror it: committed, said so, exit 0 after the wait.
    t0 = time.monotonic()
    rc, out, err = c.run('member', 'add', P, 'm3', '--address', '192.0.2.3')
    took = time.monotonic() - t0
    rev3 = e.get(PREFIX + 'pools/' + P)[0].get(PREFIX + 'pools/' + P, ('', 0))[1]
    t.ok(rc == 0 and ('committed at revision %d' % rev3) in err and 'not mirrored' in err
         and one_line(err), 'not mirrored within the wait: exit 0, says the revision', err)
    t.ok(4.5 <= took <= 8, 'waited about 5 s (%.1f s)' % took)

    # The local mirror catching up ends the wait.
    def mirror():
        time.sleep(1)
        r = e.get(PREFIX)[1]
        c.mirrored(r + 1)
    th = threading.Thread(target=mirror)
    th.start()
    t0 = time.monotonic()
    rc, out, err = c.run('member', 'add', P, 'm4', '--address', '192.0.2.4')
    took = time.monotonic() - t0
    th.join()
    t.ok(rc == 0 and err == '' and 0.8 <= took < 4,
         'the wait ends once the local node mirrored the revision (%.1f s)' % took, err)

    # A change that is no change: nothing sent.
    rc_before = e.get(PREFIX, prefix=True)[1]
    rc, out, err = c.run('--no-wait', 'member', 'state', 'other.example.com.', 'a', 'auto')
    t.ok(rc == 0 and 'no changes' in out, 'no change: "no changes"', out + err)
    t.eq(e.get(PREFIX, prefix=True)[1], rc_before, '... and nothing sent to etcd')

    # A pool removed and one added.
    c.ok('--no-wait', 'pool', 'rm', 'other.example.com.')
    c.ok('--no-wait', 'pool', 'add', 'new.example.com.', '--ttl', '7')
    kvs, rev = e.get(PREFIX + 'pools/', prefix=True)
    t.eq(sorted(kvs), [PREFIX + 'pools/new.example.com.', PREFIX + 'pools/' + P],
         'pool rm deletes its key, pool add creates one')
    t.eq(json.loads(kvs.get(PREFIX + 'pools/new.example.com.', ('{}',))[0]).get('ttl'), 7,
         'the new pool\'s ttl')

    # apply whose first try meets a newer pool in etcd (no gslbd mirrors here): its edit runs
    # again, and the lines are printed once.
    doc = {'version': 1, 'pools': [json.loads(c.ok('--json', 'pool', 'show', P))]}
    doc['pools'][0]['members'].append({'name': 'ap1', 'addresses': ['192.0.2.61']})
    path = c.db + '.apply.json'
    with open(path, 'w') as f:
        json.dump(doc, f)
    c.ok('--no-wait', 'member', 'add', P, 'm5', '--address', '192.0.2.5')
    rc, out, err = c.run('--no-wait', 'apply', path)
    t.ok(rc == 0 and out == '+ member %s/ap1\n' % P and err == '',
         'apply retried after a conflict: its lines printed once', out + err)
    kvs = e.get(PREFIX + 'pools/' + P)[0]
    names = [m['name'] for m in json.loads(kvs.get(PREFIX + 'pools/' + P, ('{"members":[]}',))[0])
             ['members']]
    t.ok('ap1' in names and 'm5' in names, '... on top of the other change', names)


def unreachable(t, c, e):
    """etcd out of reach: exit 1, one line, nothing written anywhere."""
    dead = 'http://127.0.0.1:%d' % g.free_port(False)
    before, (_, rev) = c.local(), e.get(PREFIX, prefix=True)
    rc, out, err = c.run('--no-wait', '--cluster', dead, 'member', 'add', P, 'm9', '--address',
                         '192.0.2.9')
    t.ok(rc == 1 and err.startswith('gslbctl: member add: etcd ') and
         'nothing was changed' in err and dead[7:] in err and one_line(err),
         'etcd unreachable: exit 1 with one line naming it', err)
    t.eq(c.local(), before, '... nothing written locally')
    t.eq(e.get(PREFIX, prefix=True)[1], rev, '... nor in etcd')

    # A member that takes the request and never answers: whether it was made is not known.
    os.kill(e.proc.pid, signal.SIGSTOP)
    try:
        t0 = time.monotonic()
        rc, out, err = c.run('--no-wait', 'member', 'add', P, 'm9', '--address', '192.0.2.9')
        took = time.monotonic() - t0
    finally:
        os.kill(e.proc.pid, signal.SIGCONT)
    t.ok(rc == 1 and 'timed out' in err and 'may or may not have been made' in err and
         one_line(err) and took < 10, 'etcd not answering: exit 1 after %.1f s, the outcome is '
         'unknown, one line' % took, err)
    t.eq(c.local(), before, '... nothing written locally')


def too_big(t, c, e, tmp):
    """A change with more keys than etcd takes in one transaction: exit 1 saying so."""
    doc = json.loads(c.ok('export'))
    for i in range(140):
        doc['pools'].append({'name': 'p%d.example.com.' % i, 'members': []})
    path = os.path.join(tmp, 'big.json')
    with open(path, 'w') as f:
        json.dump(doc, f)
    rev = e.get(PREFIX, prefix=True)[1]
    rc, out, err = c.run('--no-wait', 'apply', path)
    t.ok(rc == 1 and 'too many pools' in err and err.endswith('\n') and
         err.strip().count('\n') == 0, '140 pools in one change: exit 1, too many pools', err)
    t.eq(e.get(PREFIX, prefix=True)[1], rev, '... and nothing written in etcd')


def big_journal(t, e, tmp):
    """A journal entry larger than etcd takes in one request (an apply of thousands of pools has
    a line per pool) stopped cluster import at its end; its summary is now cut in etcd."""
    big = Ctl(os.path.join(tmp, 'big.db'))
    big.ok('init')
    doc = {'version': 1, 'pools': [{'name': 'p%d.example.net.' % i,
                                    'members': [{'name': 'm', 'addresses': ['192.0.2.9']}]}
                                   for i in range(20000)]}
    path = os.path.join(tmp, 'big-apply.json')
    with open(path, 'w') as f:
        json.dump(doc, f)
    big.ok('apply', path)
    rc, out, err = big.run('--cluster', e.url, '--cluster-prefix', '/big/', 'cluster', 'import')
    t.ok(rc == 0, 'cluster import of a journal entry of 20000 lines: exit 0', err)
    kvs, _ = e.get('/big/journal/', prefix=True)
    sums = [json.loads(v)['summary'] for v, _, _ in kvs.values()]
    longest = max(sums, key=len) if sums else ''
    t.ok(len(sums) == 1 and len(longest) <= 64 * 1024 + 100 and
         longest.endswith(' more lines)') and longest.startswith('+ pool p'),
         'in etcd its summary is cut to 64 KiB, the lines left out counted',
         '%d entries, longest %d bytes, ends %r' % (len(sums), len(longest), longest[-40:]))
    e.ctl('del', '/big/', '--prefix')


def race(t, c, e):
    """Two writers adding members to one pool at once: no member lost."""
    results = {}

    def writer(tag):
        for i in range(20):
            name = '%s%d' % (tag, i)
            results[name] = c.run('--no-wait', 'member', 'add', P, name, '--address',
                                  '198.51.100.%d' % (i + (0 if tag == 'a' else 100)))
    ths = [threading.Thread(target=writer, args=(tag,)) for tag in 'ab']
    for th in ths:
        th.start()
    for th in ths:
        th.join()
    kvs, rev = e.get(PREFIX + 'pools/' + P)
    have = {m['name']
            for m in json.loads(kvs.get(PREFIX + 'pools/' + P, ('{"members": []}',))[0])['members']}
    done = {n for n, r in results.items() if r[0] == 0}
    gave_up = {n for n, r in results.items() if r[0] == 1 and 'another writer' in r[2]}
    t.ok(done | gave_up == set(results), 'each writer exits 0, or 1 saying another writer won',
         {n: r for n, r in results.items() if n not in done | gave_up})
    t.ok(done <= have and not (gave_up & have), 'no member lost (%d of 40 added, %d gave up)'
         % (len(done), len(gave_up)), sorted(done - have))
    t.ok(len(done) >= 36, 'most writes get through within 5 tries (%d of 40)' % len(done))

    # A writer that never catches up (here: a mirror that claims a revision etcd has not reached,
    # so every compare fails): 5 tries, then exit 1 saying so, nothing written.
    key = PREFIX + 'pools/' + P
    c.sql('UPDATE cluster_key SET mod_revision = 999999999 WHERE key = ?', key)
    rev = e.get(PREFIX, prefix=True)[1]
    rc, out, err = c.run('--no-wait', 'member', 'add', P, 'late', '--address', '192.0.2.200')
    t.ok(rc == 1 and 'another writer kept changing %s' % P in err and '5 tries' in err and
         one_line(err), 'conflicts on every try: exit 1 after 5 tries, saying so', err)
    t.eq(e.get(PREFIX, prefix=True)[1], rev, '... nothing written in etcd')
    c.sql('DELETE FROM cluster_key WHERE key = ?', key)


def status(t, c, e):
    """cluster status: live nodes from etcd, the others from the mirror; exit 0 without etcd."""
    lease = e.ctl('lease', 'grant', '30').split()[1]
    e.ctl('put', '--lease=' + lease, PREFIX + 'nodes/n1',
          '{"revision":5,"down_votes":1,"started":1,"version":"x"}')
    c.sql('INSERT OR REPLACE INTO cluster_node(name, live, last_seen, revision, down_votes) '
          'VALUES(?, ?, ?, ?, ?)', 'n9', 1, 1700000000, 3, 2)
    rev = e.get(PREFIX, prefix=True)[1]
    rc, out, err = c.run('--json', 'cluster', 'status')
    st = json.loads(out) if rc == 0 else {}
    t.ok(rc == 0 and isinstance(st.get('revision'), int) and st['revision'] >= rev and
         st.get('connected') is True, 'cluster status --json: revision, connected', out + err)
    nodes = {n['name']: n for n in st.get('nodes', [])}
    n1, n9 = nodes.get('n1', {}), nodes.get('n9', {})
    now = time.time()
    t.ok(n1.get('live') is True and n1.get('revision') == 5 and n1.get('down_votes') == 1 and
         isinstance(n1.get('last_seen'), int) and now - 35 <= n1['last_seen'] <= now + 1,
         'a live node from etcd', n1)
    t.ok(n9.get('live') is False and n9.get('last_seen') == 1700000000 and
         n9.get('revision') == 3 and n9.get('down_votes') == 2,
         'a node etcd does not hold: from the mirror, not live', n9)
    t.ok(all(isinstance(n['live'], bool) and isinstance(n['revision'], int) and
             isinstance(n['down_votes'], int) and isinstance(n['name'], str)
             for n in st.get('nodes', [])), 'every node\'s types')
    rc, out, err = c.run('cluster', 'status')
    t.ok(rc == 0 and 'n1' in out and 'n9' in out and 'connected' in out, 'cluster status text',
         out + err)

    dead = 'http://127.0.0.1:%d' % g.free_port(False)
    c.mirrored(42)
    rc, out, err = c.run('--json', '--cluster', dead, 'cluster', 'status')
    st = json.loads(out) if rc == 0 else {}
    t.ok(rc == 0 and st.get('connected') is False and st.get('revision') == 42,
         'etcd unreachable: exit 0, connected false, the mirror\'s revision', out + err)
    t.eq(sorted(n['name'] for n in st.get('nodes', [])), ['n9'], '... nodes from the mirror')


def votes_and_log(t, c, tmp):
    """status shows each node's vote on each address; log shows each change's node."""
    s = Ctl(os.path.join(tmp, 'standalone.db'))
    s.ok('init')
    s.ok('pool', 'add', P)
    s.ok('member', 'add', P, 'a', '--address', '192.0.2.1')
    s.ok('check', 'set', P, '--type', 'tcp', '--port', '80')
    addr = json.loads(s.ok('--json', 'status'))['pools'][0]['members'][0]['addresses'][0]
    t.ok('votes' not in addr, 'standalone: no votes in status --json')
    key = addr['target']
    s.record('http://127.0.0.1:1')
    for node, up in (('n1', 1), ('n2', 0)):
        s.sql('INSERT INTO cluster_vote(node, target_key, up) VALUES(?, ?, ?)', node, key, up)
    addr = json.loads(s.ok('--json', 'status'))['pools'][0]['members'][0]['addresses'][0]
    t.eq(addr.get('votes'), {'n1': 'up', 'n2': 'down'}, 'cluster node: status --json votes')
    out = s.ok('status')
    t.ok('votes n1 up, n2 down' in out, 'status text shows the votes', out)

    text = s.ok('log')
    t.ok(' on ' not in text, 'log of standalone changes: no node', text)
    s.sql("INSERT INTO journal(time, actor, command, summary, node) VALUES("
          "'2026-01-01T00:00:00Z', 'u@h', 'gslbctl pool add x.', '+ pool x.', 'n2')")
    out = s.ok('log', '--limit', '1')
    t.ok(out.startswith('2026-01-01T00:00:00Z u@h on n2 gslbctl pool add x.'),
         'log shows the node of a change', out)
    e = json.loads(s.ok('--json', 'log', '--limit', '1'))['entries'][0]
    t.eq(e.get('node'), 'n2', 'log --json: node')


def with_gslbd(t, e):
    """One real gslbd --cluster: gslbctl on its database waits for it, sees its votes and state."""
    p = subprocess.run([g.GSLBD, '--help'], capture_output=True, text=True, timeout=10)
    if '--cluster' not in p.stdout + p.stderr:
        t.skip('gslbctl with a running gslbd --cluster', 'this gslbd has no --cluster')
        return
    prefix = '/gnode/'
    n = g.Gslbd(identity=False, extra_args=['--cluster', e.url, '--node', 'gn1',
                                            '--cluster-prefix', prefix, '--cluster-lease', '3'])
    n.start()
    try:
        c = Ctl(os.path.join(n.tmp, 'gslb.db'))
        live = g.wait_for(lambda: e.get(prefix + 'nodes/gn1')[0], 10)
        t.ok(live, 'gslbd registered its node in etcd')
        t0 = time.monotonic()
        name = 'cl.example.test.'
        rc1, _, err1 = c.run('pool', 'add', name)
        rc, out, err = c.run('member', 'add', name, 'a', '--address', '192.0.2.10')
        took = time.monotonic() - t0
        t.ok(rc1 == rc == 0 and err1 == err == '' and took < 4,
             'changes on a node with gslbd: exit 0, quiet, mirrored within the wait (%.2f s)'
             % took, err1 + err)
        kv = e.get(prefix + 'pools/' + name)[0].get(prefix + 'pools/' + name, ('{}',))[0]
        t.eq([m['name'] for m in json.loads(kv).get('members', [])], ['a'],
             'the changes went through etcd')
        shown = json.loads(c.run('--json', 'pool', 'show', name)[1] or '{}')
        t.eq([m['name'] for m in shown.get('members', [])], ['a'],
             'when gslbctl returns, the local mirror has the change')
        r = g.exchange(g.make_query(name, 'A'), n.addr4, 'udp', timeout=1)
        t.eq(sorted(rr.address for rrs in r.msg.answer for rr in rrs) if r.msg else None,
             ['192.0.2.10'], 'gslbd answers the change')
        # An alias (README "Alias members") goes through etcd and gslbd's mirror like the rest.
        rc, out, err = c.run('member', 'set', name, 'a', '--alias', 'LB.cl.example.invalid')
        kv = e.get(prefix + 'pools/' + name)[0].get(prefix + 'pools/' + name, ('{}',))[0]
        shown = json.loads(c.run('--json', 'pool', 'show', name)[1] or '{}')
        t.ok(rc == 0 and [m.get('alias') for m in json.loads(kv).get('members', [])] ==
             [m.get('alias') for m in shown.get('members', [])] == ['lb.cl.example.invalid.'],
             'an alias: in the pool in etcd, and in the local mirror when gslbctl returns',
             out + err + kv)
        log = c.ok('log', '--limit', '1')
        t.ok(' on gn1 gslbctl ' in log, 'log: the change was made on gn1', log)

        st = json.loads(c.run('--json', 'cluster', 'status')[1] or '{}')
        gn1 = [x for x in st.get('nodes', []) if x['name'] == 'gn1']
        t.ok(st.get('connected') is True and gn1 and gn1[0]['live'] is True,
             'cluster status on the node: connected, gn1 live', st)

        closed = g.free_port(False)
        c.ok('check', 'set', name, '--type', 'tcp', '--port', str(closed), '--interval', '1',
             '--rise', '1', '--fall', '1')

        def votes():
            rc, out, err = c.run('--json', 'status', '--zones', n.zones_dir)
            if rc:
                return None
            addr = json.loads(out)['pools'][0]['members'][0]['addresses'][0]
            return addr.get('votes') == {'gn1': 'down'} and addr
        t.ok(g.wait_for(votes, 10, 0.2), 'status shows gslbd\'s own vote on the address')
    finally:
        n.stop()
        n.cleanup()


def auth(t, c, e, tmp):
    """etcd with authentication: the password comes from the recorded file, never shown."""
    secret = 'S3cret-%d' % os.getpid()
    e.ctl('user', 'add', 'root', '--new-user-password=' + secret)
    e.ctl('user', 'grant-role', 'root', 'root')
    e.ctl('auth', 'enable')
    e.user = 'root:' + secret
    pw = os.path.join(tmp, 'password')
    with open(pw, 'w') as f:
        f.write(secret + '\n')
    c.record(e.url)
    c.sql("INSERT INTO cluster_setting(name, value) VALUES('user', 'root')")
    c.sql("INSERT INTO cluster_setting(name, value) VALUES('password_file', ?)", pw)
    rc, out, err = c.run('--no-wait', 'member', 'add', P, 'auth1', '--address', '192.0.2.77')
    t.ok(rc == 0, 'etcd with authentication: the change is made (password file, newline cut)',
         out + err)
    kvs = e.get(PREFIX + 'pools/' + P)[0]
    t.ok('auth1' in kvs.get(PREFIX + 'pools/' + P, ('',))[0], '... it is in etcd')
    with open(pw, 'w') as f:
        f.write('wrong-' + secret + '\n')
    rc, out, err = c.run('--no-wait', 'member', 'add', P, 'auth2', '--address', '192.0.2.78')
    t.ok(rc == 1 and one_line(err) and 'nothing was changed' in err and secret not in out + err,
         'a wrong password: exit 1, one line, the password not in it', err)
    os.unlink(pw)
    rc, out, err = c.run('--no-wait', 'member', 'add', P, 'auth2', '--address', '192.0.2.78')
    t.ok(rc == 1 and one_line(err) and pw in err, 'the password file missing: exit 1 naming it',
         err)


def etcd_down(t, c, e):
    """etcd stopped: cluster status still exits 0 from the mirror; a change exits 1."""
    c.record(e.url)
    c.mirrored(77)
    e.stop()
    rc, out, err = c.run('--json', 'cluster', 'status')
    st = json.loads(out) if rc == 0 else {}
    t.ok(rc == 0 and st.get('connected') is False and st.get('revision') == 77 and
         isinstance(st.get('nodes'), list), 'etcd stopped: cluster status exits 0, not connected, '
         'the mirrored revision', out + err)
    before = c.local()
    rc, out, err = c.run('member', 'add', P, 'down1', '--address', '192.0.2.111')
    t.ok(rc == 1 and one_line(err) and 'nothing was changed' in err,
         'etcd stopped: a change exits 1, one line', err)
    t.eq(c.local(), before, '... nothing written locally')


def main(t):
    if not (os.access(ETCD, os.X_OK) and os.access(ETCDCTL, os.X_OK)):
        g.skip_all('etcd and etcdctl are not installed')
    tmp = tempfile.mkdtemp(prefix='gslbctl-cluster-')
    e = Etcd(tmp)
    try:
        e.start()
        c = Ctl(os.path.join(tmp, 'n1.db'))
        c.ok('init')
        c.ok('pool', 'add', P)
        c.ok('member', 'add', P, 'm1', '--address', '192.0.2.1')
        c.ok('pool', 'add', 'other.example.com.')
        c.ok('member', 'add', 'other.example.com.', 'a', '--address', '192.0.2.50')
        steps = [(options, (t, c, e)), (import_, (t, c, e)),
                 (import_big, (t, e, tmp)), (dnssec_keys, (t, e, tmp)), (c.record, (e.url,)),
                 (change, (t, c, e)), (unreachable, (t, c, e)), (too_big, (t, c, e, tmp)), (big_journal, (t, e, tmp)),
                 (race, (t, c, e)), (status, (t, c, e)), (votes_and_log, (t, c, tmp)),
                 (with_gslbd, (t, e)), (auth, (t, c, e, tmp)),
                 (etcd_down, (t, c, e))]
        for step, args in steps:
            # One part failing leaves the others to run: each says what it found.
            try:
                step(*args)
            except Exception:
                t.ok(False, '%s raised an exception' % step.__name__, traceback.format_exc())
    finally:
        e.stop()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
