#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The database file: schema version 6, the migrations from versions 1 to 5, refusal of a
newer file, the pools' revisions, and config reloads that happen only when the configuration
changed (gslbd(8), README "Balanced names", gslbctl(8)).

Version 1 files are made from tests/db/schema_v1.sql, the schema text gslbd 0.1 shipped, and
filled the way its health loop filled them; version 2 files from tests/db/schema_v2.sql, the
schema before the cluster tables (README "Two or more nameservers"); version 3 files from
tests/db/schema_v3.sql, the schema before the certificate dates of https targets; version 4 files
from tests/db/schema_v4.sql, the schema before the pools' revisions; version 5 files from
tests/db/schema_v5.sql, the schema before alias members and DNSSEC keys. gslbctl and gslbd then
open them for real.
"""

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
SCHEMA_V1 = os.path.join(g.SRCDIR, 'tests', 'db', 'schema_v1.sql')
SCHEMA_V2 = os.path.join(g.SRCDIR, 'tests', 'db', 'schema_v2.sql')
SCHEMA_V3 = os.path.join(g.SRCDIR, 'tests', 'db', 'schema_v3.sql')
SCHEMA_V4 = os.path.join(g.SRCDIR, 'tests', 'db', 'schema_v4.sql')
SCHEMA_V5 = os.path.join(g.SRCDIR, 'tests', 'db', 'schema_v5.sql')
VERSION = 6
POOL = 'pool.example.test.'
# tcp checks on port 9 of loopback addresses nothing listens on: refused at once, every second.
MEMBERS = (('a', '127.0.0.81'), ('b', '127.0.0.82'))
KEYS = {m: 'tcp %s:9' % a for m, a in MEMBERS}
CONFIG_TABLES = ('pool', 'member', 'member_address', 'member_network', 'health_check')


def ctl(db, *args, timeout=20):
    """gslbctl on db: (exit status, stdout, stderr)."""
    return g.gslbctl(db, *args, timeout=timeout)


def ctl_json(t, db, *args):
    rc, out, err = ctl(db, '--json', *args)
    try:
        return json.loads(out) if rc == 0 else None
    except ValueError:
        t.diag('%s: not JSON: %r' % (' '.join(args), out[:500]))
        return None


def rfc3339(s):
    return time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(s))


def schema_of(db):
    con = sqlite3.connect(db)
    try:
        return con.execute('SELECT type, name, tbl_name, sql FROM sqlite_master '
                           'ORDER BY type, name').fetchall()
    finally:
        con.close()


def make_v1(path, now):
    """A version 1 file: a pool with two members and a check, history of one target, a journal.
    Returns what was stored: probes (time, member, ok, latency_ms, reason), changes and state."""
    con = sqlite3.connect(path)
    with open(SCHEMA_V1) as f:
        con.executescript(f.read())
    con.execute('PRAGMA user_version = 1')
    con.execute('PRAGMA journal_mode = WAL')
    pid = con.execute("INSERT INTO pool(name, policy, ttl, answers, fallback) "
                      "VALUES (?, 'weighted', 60, 2, 'all')", (POOL,)).lastrowid
    for i, (m, addr) in enumerate(MEMBERS):
        mid = con.execute('INSERT INTO member(pool_id, name, weight, countries) '
                          'VALUES (?, ?, ?, ?)', (pid, m, 10 * (i + 1), 'DE')).lastrowid
        con.execute('INSERT INTO member_address(member_id, address, family) VALUES (?, ?, 4)',
                    (mid, addr))
        con.execute('INSERT INTO member_network(member_id, prefix) VALUES (?, ?)',
                    (mid, '10.%d.0.0/16' % i))
    con.execute("INSERT INTO health_check(pool_id, member_id, type, port, interval_ms, "
                "timeout_ms, rise, fall) VALUES (?, NULL, 'tcp', 9, 1000, 500, 3, 3)", (pid,))
    probes = []
    # Member a: 40 results over the last ~30 minutes, some two in one second, failures with
    # different reasons; member b: none (never probed).
    for i in range(40):
        sec = now - 1800 + 45 * i - (45 if i % 7 == 3 else 0)   # i % 7 == 3: same second as i-1
        ok = 0 if i % 5 == 4 else 1
        lat = round(0.1 + i * 1.2345, 4) if ok else 500.0
        reason = 'connected' if ok else ('connect refused' if i % 2 else 'timeout after 500 ms')
        con.execute('INSERT INTO probe_result(time, target_key, ok, latency_ms, reason) '
                    'VALUES (?, ?, ?, ?, ?)', (sec, KEYS['a'], ok, lat, reason))
        probes.append((sec, 'a', ok, lat, reason))
    changes = [(now - 1700, 'a', 'up', 'down', 'connect refused'),
               (now - 1600, 'a', 'down', 'up', 'connected')]
    for sec, m, f, to, r in changes:
        con.execute('INSERT INTO state_change(time, target_key, from_state, to_state, reason) '
                    'VALUES (?, ?, ?, ?, ?)', (sec, KEYS[m], f, to, r))
    state = ('down', now - 120, 'timeout after 500 ms', now - 5, 500.25)
    con.execute('INSERT INTO target_state(target_key, state, since, reason, last_probe, '
                'latency_ms) VALUES (?, ?, ?, ?, ?, ?)', (KEYS['a'],) + state)
    for i in range(3):
        con.execute('INSERT INTO journal(time, actor, command, summary) VALUES (?, ?, ?, ?)',
                    (rfc3339(now - 3000 + i), 'tester@host', 'pool add %d' % i, 'change %d' % i))
    con.commit()
    con.close()
    return probes, changes, state


def v2_latency(lat):
    """Version 2 keeps whole microseconds, rounded as the migration rounds (SQLite's round())."""
    con = sqlite3.connect(':memory:')
    us = con.execute('SELECT CAST(round(? * 1000) AS INTEGER)', (lat,)).fetchone()[0]
    con.close()
    return us / 1000.0


def check_history(t, db, probes, changes, label, exact=True):
    h = ctl_json(t, db, 'history', POOL, '--limit', '1000')
    if not t.ok(h is not None, '%s: history --json works' % label):
        return
    got = [(p['time'], p['member'], p['address'], p['ok'], p['latency_ms'], p['reason'],
            p['target']) for p in h['probes']]
    addr = dict(MEMBERS)
    want = [(rfc3339(s), m, addr[m], bool(ok), v2_latency(lat), r, KEYS[m])
            for s, m, ok, lat, r in probes]
    if exact:
        t.eq(sorted(got), sorted(want), '%s: every version 1 probe result, unchanged' % label)
    else:
        missing = [w for w in want if w not in got]
        t.ok(not missing, '%s: every version 1 probe result is still there' % label,
             missing[:5])
    times = [p['time'] for p in h['probes']]
    t.ok(times == sorted(times, reverse=True), '%s: probes newest first' % label)
    # Two results in one second keep their order (the later one first).
    dup = [i for i in range(1, len(probes)) if probes[i][0] == probes[i - 1][0]]
    order_ok = True
    for i in dup:
        a, b = (want[i - 1][:6], want[i][:6])
        ga = [x[:6] for x in got]
        if a in ga and b in ga and ga.index(b) > ga.index(a):
            order_ok = False
    t.ok(dup and order_ok, '%s: results of the same second keep their order (%d pairs)'
         % (label, len(dup)))
    gotc = [(c['time'], c['member'], c['from'], c['to'], c['reason']) for c in h['changes']]
    wantc = [(rfc3339(s), m, f, to, r) for s, m, f, to, r in reversed(changes)]
    t.eq(gotc[-len(wantc):] if not exact else gotc, wantc,
         '%s: the state changes, newest first' % label)


def check_status(t, db, state, label):
    st = ctl_json(t, db, 'status', POOL)
    addrs = {}
    for p in (st or {}).get('pools', []):
        for m in p.get('members', []):
            for a in m.get('addresses', []):
                addrs[m['name']] = a
    a, b = addrs.get('a'), addrs.get('b')
    want = {'address': '127.0.0.81', 'state': state[0], 'since': rfc3339(state[1]),
            'reason': state[2], 'last_probe': rfc3339(state[3]), 'latency_ms': state[4],
            'cert_expires': None, 'target': KEYS['a']}
    t.eq(a, want, '%s: status of the probed target, every key as before (and no certificate)'
         % label)
    t.eq(b and (b['state'], b['reason'], b['since'], b['latency_ms']),
         ('up', 'not probed yet', None, None), '%s: status of a target never probed' % label)


def test_migrate_gslbctl(t, tmp):
    db = os.path.join(tmp, 'v1.db')
    now = int(time.time())
    probes, changes, state = make_v1(db, now)
    fresh = os.path.join(tmp, 'fresh.db')
    rc, out, err = ctl(fresh, 'init')
    t.eq(rc, 0, 'gslbctl init makes a version %d file' % VERSION)

    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 0 and POOL in out, 'gslbctl opens a version 1 file (pool list)', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    n = con.execute('SELECT count(*) FROM probe_result').fetchone()[0]
    integ = con.execute('PRAGMA integrity_check').fetchone()[0]
    fk = con.execute('PRAGMA foreign_key_check').fetchall()
    gen = con.execute('SELECT generation FROM config_generation').fetchone()
    con.close()
    t.eq(uv, VERSION, 'the file is now version %d' % VERSION)
    t.eq(n, len(probes), 'every probe result was carried over (%d)' % len(probes))
    t.eq((integ, fk), ('ok', []), 'integrity and foreign key checks pass after the migration')
    t.ok(gen is not None, 'the configuration generation exists')
    t.eq(schema_of(db), schema_of(fresh), 'a migrated file has the schema of a new one')

    exp = ctl_json(t, db, 'export')
    pools = (exp or {}).get('pools', [])
    p = pools[0] if pools else {}
    members = [(m.get('name'), m.get('addresses'), m.get('weight'), m.get('networks'))
               for m in p.get('members', [])]
    t.eq((len(pools), p.get('name'), p.get('ttl'), p.get('answers'), members,
          (p.get('check') or {}).get('type'), (p.get('check') or {}).get('port')),
         (1, POOL, 60, 2, [('a', ['127.0.0.81'], 10, ['10.0.0.0/16']),
                           ('b', ['127.0.0.82'], 20, ['10.1.0.0/16'])], 'tcp', 9),
         'the configuration is kept (export)')
    log = ctl_json(t, db, 'log')
    t.eq([e['command'] for e in (log or {}).get('entries', [])],
         ['pool add 2', 'pool add 1', 'pool add 0'], 'the journal is kept')
    check_history(t, db, probes, changes, 'gslbctl')
    check_status(t, db, state, 'gslbctl')
    h = ctl_json(t, db, 'history', POOL, 'a', '--limit', '3')
    t.ok(h and len(h['probes']) == 3 and len(h['changes']) == 2
         and h['probes'][0]['time'] == rfc3339(max(p[0] for p in probes)),
         'history --limit 3: the newest three probes', h)
    rc, out, err = ctl(db, 'init')
    t.ok(rc == 0 and 'up to date' in out, 'gslbctl init afterwards: up to date', out + err)


def make_v2(path):
    """A version 2 file: a pool with a member, its check and a member check, a journal and the
    health of a target.  Returns the journal rows (time, actor, command, summary)."""
    con = sqlite3.connect(path)
    with open(SCHEMA_V2) as f:
        con.executescript(f.read())
    con.execute('PRAGMA user_version = 2')
    con.execute('PRAGMA journal_mode = WAL')
    pid = con.execute("INSERT INTO pool(name, policy, ttl, answers, fallback) "
                      "VALUES (?, 'failover', 90, 1, 'none')", (POOL,)).lastrowid
    mid = con.execute("INSERT INTO member(pool_id, name, weight, priority, admin) "
                      "VALUES (?, 'a', 5, 2, 'drain')", (pid,)).lastrowid
    con.execute("INSERT INTO member_address(member_id, address, family) "
                "VALUES (?, '127.0.0.81', 4)", (mid,))
    con.execute("INSERT INTO health_check(pool_id, member_id, type, port, interval_ms, "
                "timeout_ms, rise, fall) VALUES (?, NULL, 'tcp', 9, 1000, 500, 3, 3)", (pid,))
    con.execute("INSERT INTO health_check(pool_id, member_id, type, path, insecure) "
                "VALUES (?, ?, 'https', '/up', 1)", (pid, mid))
    journal = [(rfc3339(1700000000 + i), 'tester@host', 'pool add %d' % i, 'change %d' % i)
               for i in range(3)]
    con.executemany('INSERT INTO journal(time, actor, command, summary) VALUES (?, ?, ?, ?)',
                    journal)
    # Member a's own check is the one probed: its target key names it.
    tid = con.execute("INSERT INTO target(key) VALUES (?)",
                      ('https 127.0.0.81:443 %s/up insecure' % POOL.rstrip('.'),)).lastrowid
    con.execute("INSERT INTO target_state(target_id, state, since) VALUES (?, 'down', 5)",
                (tid,))
    con.commit()
    con.close()
    return journal


def test_migrate_v2(t, tmp):
    db = os.path.join(tmp, 'v2.db')
    journal = make_v2(db)
    fresh = os.path.join(tmp, 'fresh-v2.db')
    ctl(fresh, 'init')
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 0 and POOL in out, 'gslbctl opens a version 2 file (pool list)', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    integ = con.execute('PRAGMA integrity_check').fetchone()[0]
    fk = con.execute('PRAGMA foreign_key_check').fetchall()
    rows = con.execute('SELECT time, actor, command, summary, node, cluster_key FROM journal '
                       'ORDER BY id').fetchall()
    quorum = con.execute('SELECT count(*) FROM health_check WHERE quorum IS NULL').fetchone()[0]
    con.close()
    t.eq(uv, VERSION, 'the version 2 file is now version %d' % VERSION)
    t.eq((integ, fk), ('ok', []), 'integrity and foreign key checks pass after the migration')
    t.eq(schema_of(db), schema_of(fresh), 'a file migrated from version 2 has the schema of a '
         'new one')
    t.eq(rows, [j + (None, None) for j in journal],
         'the journal is kept, without node or cluster key')
    t.eq(quorum, 2, 'both checks kept, quorum NULL (majority)')
    exp = ctl_json(t, db, 'export')
    pools = (exp or {}).get('pools', [])
    p = pools[0] if pools else {}
    m = (p.get('members') or [{}])[0]
    t.eq((len(pools), p.get('name'), p.get('policy'), p.get('ttl'), p.get('fallback'),
          m.get('name'), m.get('weight'), m.get('priority'), m.get('admin'),
          m.get('addresses'), (p.get('check') or {}).get('port'),
          (m.get('check') or {}).get('path'), (m.get('check') or {}).get('insecure')),
         (1, POOL, 'failover', 90, 'none', 'a', 5, 2, 'drain', ['127.0.0.81'], 9, '/up', True),
         'the configuration is kept (export)')
    st = ctl_json(t, db, 'status', POOL)
    addrs = [a for p in (st or {}).get('pools', []) for m in p.get('members', [])
             for a in m.get('addresses', [])]
    t.ok(addrs and addrs[0].get('state') == 'down', 'the stored health is kept (status)', addrs)


def make_v3(path):
    """A version 3 file: a pool with an https member check, the stored state of its target, a
    journal entry.  Returns the target's state row (state, since, reason, last_probe, latency)."""
    con = sqlite3.connect(path)
    with open(SCHEMA_V3) as f:
        con.executescript(f.read())
    con.execute('PRAGMA user_version = 3')
    con.execute('PRAGMA journal_mode = WAL')
    pid = con.execute("INSERT INTO pool(name) VALUES (?)", (POOL,)).lastrowid
    mid = con.execute("INSERT INTO member(pool_id, name) VALUES (?, 'a')", (pid,)).lastrowid
    con.execute("INSERT INTO member_address(member_id, address, family) "
                "VALUES (?, '127.0.0.81', 4)", (mid,))
    con.execute("INSERT INTO health_check(pool_id, member_id, type, insecure, quorum) "
                "VALUES (?, ?, 'https', 1, 'any')", (pid, mid))
    con.execute("INSERT INTO journal(time, actor, command, summary, node) "
                "VALUES ('2026-01-01T00:00:00Z', 'tester@host', 'pool add', 'added', 'n1')")
    tid = con.execute("INSERT INTO target(key) VALUES (?)",
                      ('https 127.0.0.81:443 %s/ insecure quorum any' % POOL.rstrip('.'),)
                      ).lastrowid
    state = ('down', 1700000000, 'TLS: handshake failed', 1700000100, 12.5)
    con.execute("INSERT INTO target_state(target_id, state, since, reason, last_probe, "
                "latency_ms) VALUES (?, ?, ?, ?, ?, ?)", (tid,) + state)
    con.commit()
    con.close()
    return state


def test_migrate_v3(t, tmp):
    db = os.path.join(tmp, 'v3.db')
    state = make_v3(db)
    fresh = os.path.join(tmp, 'fresh-v3.db')
    ctl(fresh, 'init')
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 0 and POOL in out, 'gslbctl opens a version 3 file (pool list)', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    integ = con.execute('PRAGMA integrity_check').fetchone()[0]
    fk = con.execute('PRAGMA foreign_key_check').fetchall()
    rows = con.execute('SELECT state, since, reason, last_probe, latency_ms, cert_not_after '
                       'FROM target_state').fetchall()
    n = con.execute('SELECT count(*) FROM journal WHERE node = ?', ('n1',)).fetchone()[0]
    con.close()
    t.eq(uv, VERSION, 'the version 3 file is now version %d' % VERSION)
    t.eq((integ, fk), ('ok', []), 'integrity and foreign key checks pass after the migration')
    t.eq(schema_of(db), schema_of(fresh), 'a file migrated from version 3 has the schema of a '
         'new one')
    t.eq(rows, [state + (None,)], 'the target\'s state is kept, with no certificate date')
    t.eq(n, 1, 'the journal is kept')
    st = ctl_json(t, db, 'status', POOL)
    addrs = [a for p in (st or {}).get('pools', []) for m in p.get('members', [])
             for a in m.get('addresses', [])]
    t.ok(addrs and addrs[0].get('state') == 'down' and 'cert_expires' in addrs[0]
         and addrs[0]['cert_expires'] is None,
         'status: the stored state, "cert_expires" null', addrs)


def test_migrate_v4(t, tmp):
    """A version 4 file gets the pools' revisions: every pool one, the schema of a new file."""
    db = os.path.join(tmp, 'v4.db')
    con = sqlite3.connect(db)
    with open(SCHEMA_V4) as f:
        con.executescript(f.read())
    con.execute('PRAGMA user_version = 4')
    con.execute('PRAGMA journal_mode = WAL')
    for name in ('a.example.test.', 'b.example.test.', POOL):
        pid = con.execute("INSERT INTO pool(name) VALUES (?)", (name,)).lastrowid
        mid = con.execute("INSERT INTO member(pool_id, name) VALUES (?, 'a')", (pid,)).lastrowid
        con.execute("INSERT INTO member_address(member_id, address, family) "
                    "VALUES (?, '192.0.2.1', 4)", (mid,))
    con.commit()
    gen4 = con.execute('SELECT generation FROM config_generation').fetchone()[0]
    con.close()
    fresh = os.path.join(tmp, 'fresh-v4.db')
    ctl(fresh, 'init')
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 0 and POOL in out, 'gslbctl opens a version 4 file (pool list)', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    integ = con.execute('PRAGMA integrity_check').fetchone()[0]
    revs = con.execute('SELECT name, rev FROM pool_rev ORDER BY name').fetchall()
    con.close()
    t.eq(uv, VERSION, 'the version 4 file is now version %d' % VERSION)
    t.eq(integ, 'ok', 'integrity check passes after the migration')
    t.eq(schema_of(db), schema_of(fresh), 'a file migrated from version 4 has the schema of a '
         'new one')
    t.eq(revs, [('a.example.test.', 0), ('b.example.test.', 0), (POOL, 0)],
         'every pool has revision 0, older than any generation')
    rc, out, err = ctl(db, 'member', 'state', 'b.example.test.', 'a', 'down')
    con = sqlite3.connect(db)
    changed = con.execute('SELECT name FROM pool_rev WHERE rev >= ?', (gen4,)).fetchall()
    con.close()
    t.eq((rc, changed), (0, [('b.example.test.',)]), 'a change to one pool moves its revision '
         'alone')


def test_migrate_v5(t, tmp):
    """A version 5 file gets the alias and DNSSEC tables, keeps everything, and has the schema of
    a new file."""
    db = os.path.join(tmp, 'v5.db')
    con = sqlite3.connect(db)
    with open(SCHEMA_V5) as f:
        con.executescript(f.read())
    con.execute('PRAGMA user_version = 5')
    con.execute('PRAGMA journal_mode = WAL')
    pid = con.execute("INSERT INTO pool(name) VALUES (?)", (POOL,)).lastrowid
    mid = con.execute("INSERT INTO member(pool_id, name) VALUES (?, 'a')", (pid,)).lastrowid
    con.execute("INSERT INTO member_address(member_id, address, family) "
                "VALUES (?, '192.0.2.1', 4)", (mid,))
    con.execute("INSERT INTO journal(time, actor, command, summary) VALUES ('t', 'a', 'c', 's')")
    con.commit()
    con.close()
    fresh = os.path.join(tmp, 'fresh-v5.db')
    ctl(fresh, 'init')
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 0 and POOL in out, 'gslbctl opens a version 5 file (pool list)', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    integ = con.execute('PRAGMA integrity_check').fetchone()[0]
    kept = (con.execute('SELECT count(*) FROM member_address').fetchone()[0],
            con.execute('SELECT count(*) FROM journal').fetchone()[0])
    con.close()
    t.eq(uv, VERSION, 'the version 5 file is now version %d' % VERSION)
    t.eq(integ, 'ok', 'integrity check passes after the migration')
    t.eq(kept, (1, 1), 'the addresses and the journal are kept')
    t.eq(schema_of(db), schema_of(fresh), 'a file migrated from version 5 has the schema of a '
         'new one')


def test_pool_revisions(t, tmp):
    """Every write to a pool or anything of it moves that pool's revision, and no other's."""
    db = os.path.join(tmp, 'rev.db')
    ctl(db, 'init')
    con = sqlite3.connect(db)
    con.execute('PRAGMA foreign_keys = ON')
    con.execute("INSERT INTO pool(name) VALUES ('other.example.test.')")
    con.commit()
    rev = lambda n: (con.execute('SELECT rev FROM pool_rev WHERE name = ?',  # noqa
                                 (n,)).fetchone() or (None,))[0]
    gen = lambda: con.execute('SELECT generation FROM config_generation').fetchone()[0]  # noqa
    steps = [
        ("INSERT INTO pool(name) VALUES ('r.example.test.')", 'pool insert'),
        ("UPDATE pool SET ttl = 5 WHERE name = 'r.example.test.'", 'pool update'),
        ("INSERT INTO member(pool_id, name) SELECT id, 'm' FROM pool "
         "WHERE name = 'r.example.test.'", 'member insert'),
        ("UPDATE member SET weight = 5", 'member update'),
        ("INSERT INTO member_address(member_id, address, family) SELECT id, '10.0.0.1', 4 "
         "FROM member", 'member_address insert'),
        ("UPDATE member_address SET address = '10.0.0.2'", 'member_address update'),
        ("INSERT INTO member_network(member_id, prefix) SELECT id, '10.0.0.0/8' FROM member",
         'member_network insert'),
        ("UPDATE member_network SET prefix = '10.0.0.0/9'", 'member_network update'),
        ("INSERT INTO member_alias(member_id, name) SELECT id, 'lb.example.net.' FROM member",
         'member_alias insert'),
        ("UPDATE member_alias SET name = 'lb2.example.net.'", 'member_alias update'),
        ("DELETE FROM member_alias", 'member_alias delete'),
        ("INSERT INTO health_check(pool_id, type, port) SELECT id, 'tcp', 80 FROM pool "
         "WHERE name = 'r.example.test.'", 'health_check insert'),
        ("INSERT INTO health_check(pool_id, member_id, type, port) SELECT pool_id, id, 'tcp', 81 "
         "FROM member", 'member health_check insert'),
        ("UPDATE health_check SET port = 82", 'health_check update'),
        ("DELETE FROM health_check", 'health_check delete'),
        ("DELETE FROM member_network", 'member_network delete'),
        ("DELETE FROM member_address", 'member_address delete'),
        ("DELETE FROM member", 'member delete'),
        ("DELETE FROM pool WHERE name = 'r.example.test.'", 'pool delete'),
    ]
    unmoved, other = [], []
    o0 = rev('other.example.test.')
    for sql, what in steps:
        g0 = gen()
        con.execute(sql)
        con.commit()
        r = rev('r.example.test.')
        if r is None or r < g0:
            unmoved.append((what, r, g0))
    t.ok(not unmoved, "every write to a pool, its members, addresses, networks and checks "
         "stamps the pool's revision with the generation (at least the one before it)", unmoved)
    t.eq(rev('other.example.test.'), o0, "another pool's revision does not move")
    con.close()


def test_migrate_fails_whole(t, tmp):
    """A migration that fails half way changes nothing: it runs in one transaction."""
    db = os.path.join(tmp, 'v1-broken.db')
    probes, _, _ = make_v1(db, int(time.time()))
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE reason(x)')   # the migration's second CREATE fails on it
    con.commit()
    before = schema_of(db)
    con.close()
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 1 and 'migrate schema from version 1 to 2' in err,
         'a migration that fails: exit 1 with the reason', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    n = con.execute('SELECT count(*) FROM probe_result WHERE target_key = ?',
                    (KEYS['a'],)).fetchone()[0]
    con.close()
    t.eq((uv, n, schema_of(db) == before), (1, len(probes), True),
         'the failed migration left the version 1 file as it was')

    # The step from 2 to 3 likewise.
    db = os.path.join(tmp, 'v2-broken.db')
    make_v2(db)
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE cluster_vote(x)')
    con.commit()
    before = schema_of(db)
    con.close()
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 1 and 'migrate schema from version 2 to 3' in err,
         'a migration from 2 that fails: exit 1 with the reason', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    n = con.execute('SELECT count(*) FROM journal').fetchone()[0]
    con.close()
    t.eq((uv, n, schema_of(db) == before), (2, 3, True),
         'the failed migration left the version 2 file as it was')

    # The step from 3 to 4 likewise.
    db = os.path.join(tmp, 'v3-broken.db')
    make_v3(db)
    con = sqlite3.connect(db)
    con.execute('CREATE TABLE target_state_v3(x)')   # the migration's RENAME fails on it
    con.commit()
    before = schema_of(db)
    con.close()
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 1 and 'migrate schema from version 3 to 4' in err,
         'a migration from 3 that fails: exit 1 with the reason', (rc, out, err))
    con = sqlite3.connect(db)
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    n = con.execute('SELECT count(*) FROM target_state').fetchone()[0]
    con.close()
    t.eq((uv, n, schema_of(db) == before), (3, 1, True),
         'the failed migration left the version 3 file as it was')


def test_newer(t, tmp):
    newer = VERSION + 1
    db = os.path.join(tmp, 'v%d.db' % newer)
    ctl(db, 'init')
    con = sqlite3.connect(db)
    con.execute('PRAGMA user_version = %d' % newer)
    con.commit()
    con.close()
    rc, out, err = ctl(db, 'pool', 'list')
    t.ok(rc == 1 and 'schema version %d, newer than this gslbctl (%d)' % (newer, VERSION) in err,
         'gslbctl refuses a version %d file with a clear message' % newer, (rc, err))
    rc, out, err = ctl(db, 'init')
    t.ok(rc == 1 and 'newer than this gslbctl (%d)' % VERSION in err,
         'gslbctl init refuses to touch a version %d file' % newer, (rc, err))

    srv = g.Gslbd(wait_zone=None, v6=False, identity=False, lifetime=30)
    shutil.copy(db, os.path.join(srv.tmp, 'gslb.db'))
    srv.start()
    try:
        srv.proc.wait(10)
    except subprocess.TimeoutExpired:
        pass
    rc = srv.proc.poll()
    log = srv.stderr()
    t.ok(rc is not None and rc != 0 and 'schema version %d is newer than this build knows (%d)'
         % (newer, VERSION) in log, 'gslbd refuses a version %d file at start-up, saying why'
         % newer, (rc, log[-800:]))
    srv.stop()
    srv.cleanup()


def test_migrate_gslbd(t, tmp):
    srv = g.Gslbd(v6=False, identity=False, lifetime=60)
    db = os.path.join(srv.tmp, 'gslb.db')
    probes, changes, state = make_v1(db, int(time.time()))
    srv.start()
    try:
        log = srv.stderr()
        t.ok('schema upgraded from version 1 to %d' % VERSION in log, 'gslbd migrates a '
             'version 1 file at start-up and says so', log[-800:])
        # gslbd starts from the stored state: a is down (stored), b up (never probed, and
        # three refused connects, 2 s at least, from going down).
        m = g.exchange(g.make_query(POOL, 'A'), srv.addr4, 'udp').msg
        got = sorted(rd.to_text() for rrset in (m.answer if m else []) for rd in rrset)
        t.eq(got, ['127.0.0.82'], 'gslbd answers the migrated pool, from the migrated state '
             '(a stored down)')
        time.sleep(2.5)
        check_history(t, db, probes, changes, 'gslbd', exact=False)
        con = sqlite3.connect(db, timeout=5)
        # Under b's key now, which names its check's settings (interval, timeout, rise).
        new = con.execute('SELECT count(*) FROM probe_result p JOIN target t '
                          'ON t.id = p.target_id WHERE t.key = ?',
                          (KEYS['b'] + ' interval 1s timeout 0.5s rise 3',)).fetchone()[0]
        con.close()
        t.ok(new > 0, 'gslbd stores new results in the migrated file (%d for b)' % new)
    finally:
        srv.check_stop(t)
        if t.failed:
            srv.dump(t)
        srv.cleanup()


def test_generation_triggers(t, tmp):
    """Every write to a configuration table moves the generation; health writes do not."""
    db = os.path.join(tmp, 'gen.db')
    ctl(db, 'init')
    con = sqlite3.connect(db)
    con.execute('PRAGMA foreign_keys = ON')
    gen = lambda: con.execute('SELECT generation FROM config_generation').fetchone()[0]  # noqa
    steps = [
        ("INSERT INTO pool(name) VALUES ('g.example.test.')", 'pool insert'),
        ("UPDATE pool SET ttl = 5", 'pool update'),
        ("INSERT INTO member(pool_id, name) VALUES (1, 'm')", 'member insert'),
        ("UPDATE member SET weight = 5", 'member update'),
        ("INSERT INTO member_address(member_id, address, family) VALUES (1, '10.0.0.1', 4)",
         'member_address insert'),
        ("UPDATE member_address SET address = '10.0.0.2'", 'member_address update'),
        ("INSERT INTO member_network(member_id, prefix) VALUES (1, '10.0.0.0/8')",
         'member_network insert'),
        ("UPDATE member_network SET prefix = '10.0.0.0/9'", 'member_network update'),
        ("INSERT INTO member_alias(member_id, name) VALUES (1, 'lb.example.net.')",
         'member_alias insert'),
        ("UPDATE member_alias SET name = 'lb2.example.net.'", 'member_alias update'),
        ("DELETE FROM member_alias", 'member_alias delete'),
        ("INSERT INTO dnssec_key(zone, algorithm, key_tag, public_key, private_key, created, "
         "publish) VALUES ('example.test.', 13, 1, x'01', x'02', 0, 0)", 'dnssec_key insert'),
        ("UPDATE dnssec_key SET active = 0", 'dnssec_key update'),
        ("DELETE FROM dnssec_key", 'dnssec_key delete'),
        ("INSERT INTO health_check(pool_id, type, port) VALUES (1, 'tcp', 80)",
         'health_check insert'),
        ("UPDATE health_check SET port = 81", 'health_check update'),
        ("UPDATE health_check SET quorum = 'any'", 'health_check quorum update'),
        ("UPDATE health_check SET quorum = NULL", 'health_check quorum reset'),
        ("DELETE FROM health_check", 'health_check delete'),
        ("DELETE FROM member_network", 'member_network delete'),
        ("DELETE FROM member_address", 'member_address delete'),
        ("DELETE FROM member", 'member delete'),
        ("DELETE FROM pool", 'pool delete'),
    ]
    unmoved = []
    for sql, what in steps:
        g0 = gen()
        con.execute(sql)
        con.commit()
        if gen() <= g0:
            unmoved.append(what)
    t.ok(not unmoved, 'every insert, update and delete of a configuration table moves the '
         'configuration generation', unmoved)
    g0 = gen()
    con.execute("INSERT INTO target(key) VALUES ('tcp 10.0.0.1:80')")
    con.execute("INSERT INTO reason(text) VALUES ('connected')")
    con.execute("INSERT INTO probe_result VALUES (1, 1000, 1, 5, 1)")
    con.execute("INSERT INTO target_state(target_id, state) VALUES (1, 'up')")
    con.execute("INSERT INTO state_change(time, target_id, to_state) VALUES (1, 1, 'up')")
    con.execute("INSERT INTO journal(time, actor, command, summary) VALUES ('t', 'a', 'c', 's')")
    con.execute("INSERT INTO alias_state(name, addresses, resolved, expires) "
                "VALUES ('lb.example.net.', '192.0.2.7', 1, 31)")
    con.commit()
    t.eq(gen(), g0, 'health, alias state and journal writes leave the generation alone')
    # The cluster's bookkeeping is not configuration: only the pools it mirrors are.
    con.execute("INSERT INTO cluster_setting(name, value) VALUES ('urls', 'http://127.0.0.1:1')")
    con.execute("INSERT INTO cluster_state(id, cluster_id, applied_rev, connected, changed) "
                "VALUES (1, 7, 9, 1, 0)")
    con.execute("INSERT INTO cluster_key(key, mod_revision, deleted) VALUES ('/gslbd/pools/x.', "
                "9, 0)")
    con.execute("INSERT INTO cluster_node(name, live, last_seen, revision, down_votes) "
                "VALUES ('n1', 1, 0, 9, 0)")
    con.execute("INSERT INTO cluster_vote(node, target_key, up) VALUES ('n1', 'tcp 10.0.0.1:80', 0)")
    con.execute("INSERT INTO journal(time, actor, command, summary, node, cluster_key) "
                "VALUES ('t', 'a', 'c', 's', 'n1', '/gslbd/journal/1')")
    con.commit()
    t.eq(gen(), g0, 'cluster settings, state, keys, nodes, votes and mirrored journal writes leave '
         'the generation alone')
    con.execute("INSERT INTO pool(name) VALUES ('q.example.test.')")
    refused = []
    for q in ('majority', 'any', 'all', 'local', None, 'bogus', 'ANY'):
        try:
            con.execute("INSERT INTO health_check(pool_id, type, port, quorum) "
                        "SELECT id, 'tcp', 80, ? FROM pool WHERE name = 'q.example.test.'", (q,))
            con.execute("DELETE FROM health_check")
        except sqlite3.IntegrityError:
            refused.append(q)
    t.eq(refused, ['bogus', 'ANY'], 'a check\'s quorum is majority, any, all, local or NULL')
    try:
        con.execute("INSERT INTO journal(time, actor, command, summary, node, cluster_key) "
                    "VALUES ('t', 'a', 'c', 's', 'n2', '/gslbd/journal/1')")
        dup = False
    except sqlite3.IntegrityError:
        dup = True
    t.ok(dup, 'a journal key is stored once')
    con.rollback()
    con.close()


def reload_lines(text):
    return [l for l in text.splitlines()
            if 'configuration generation' in l or 'pools: ' in l or 'database changed' in l]


def test_no_reload_on_health_writes(t, tmp):
    srv = g.Gslbd(v6=False, identity=False, lifetime=60)
    db = os.path.join(srv.tmp, 'gslb.db')
    ctl(db, 'init')
    ctl(db, 'pool', 'add', POOL, '--ttl', '60', '--answers', '2')
    for m, addr in MEMBERS:
        ctl(db, 'member', 'add', POOL, m, '--address', addr)
    rc, out, err = ctl(db, 'check', 'set', POOL, '--type', 'tcp', '--port', '9', '--interval',
                       '1', '--timeout', '0.5')
    t.ok(rc == 0, 'a pool with tcp checks every second', err)
    srv.start()
    try:
        def probes():
            con = sqlite3.connect(db, timeout=5)
            try:
                return con.execute('SELECT count(*) FROM probe_result').fetchone()[0]
            finally:
                con.close()
        time.sleep(2.0)   # start-up reads and the first flush are behind us
        mark = len(srv.stderr())
        n0 = probes()
        time.sleep(4.0)
        n1 = probes()
        window = srv.stderr()[mark:]
        t.ok(n1 - n0 >= 4, 'the health loop committed results meanwhile (%d)' % (n1 - n0))
        lines = reload_lines(window)
        t.ok(not lines, 'health writes alone: no configuration re-read in 4 s', lines)

        mark = len(srv.stderr())
        t0 = time.monotonic()
        # Every member is down by now (refused), so answers carry the degraded TTL.
        rc, out, err = ctl(db, 'pool', 'set', POOL, '--degraded-ttl', '7')
        seen = None
        while time.monotonic() - t0 < 3:
            m = g.exchange(g.make_query(POOL, 'A'), srv.addr4, 'udp').msg
            if m and m.answer and m.answer[0].ttl == 7:
                seen = time.monotonic() - t0
                break
            time.sleep(0.02)
        t.ok(rc == 0 and seen is not None and seen < 1.0,
             'a gslbctl change is answered within 1 s (%s)'
             % ('%.0f ms' % (seen * 1000) if seen is not None else 'never'))
        time.sleep(0.5)
        lines = [l for l in reload_lines(srv.stderr()[mark:]) if 'configuration generation' in l]
        t.ok(len(lines) == 1, 'the change is read once', lines)
    finally:
        srv.check_stop(t)
        if t.failed:
            srv.dump(t)
        srv.cleanup()


def main(t):
    if not os.access(GSLBCTL, os.X_OK):
        t.skip('database storage', 'gslbctl not built: %s' % GSLBCTL)
        return
    tmp = tempfile.mkdtemp(prefix='gslb-store-')
    try:
        test_migrate_gslbctl(t, tmp)
        test_migrate_v2(t, tmp)
        test_migrate_v3(t, tmp)
        test_migrate_v4(t, tmp)
        test_migrate_v5(t, tmp)
        test_pool_revisions(t, tmp)
        test_migrate_fails_whole(t, tmp)
        test_newer(t, tmp)
        test_generation_triggers(t, tmp)
        test_migrate_gslbd(t, tmp)
        test_no_reload_on_health_writes(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
