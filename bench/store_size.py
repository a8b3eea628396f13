#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Bytes per stored probe result at steady state, schema version 1 against the current one.

Writes the rows the health loop writes (one transaction a second, each target once per interval,
in completion order, 99 % "HTTP 200" with 1-100 ms latency) for SIM_HOURS of simulated time into a
file made from tests/db/schema_v1.sql and one made from src/db/schema.sql, then measures each with
SQLite's dbstat: the results' b-trees (table and indexes, free space in their pages included) per
row, and the whole file per row; and the bytes SQLite wrote (WAL and checkpoints, /proc/self/io
wchar) per result stored.  No daemon, no network: the storage layout alone.

Usage: bench/store_size.py [TARGETS] [INTERVAL_S] [SIM_HOURS] [HISTORY_HOURS]
(HISTORY_HOURS < SIM_HOURS runs the pruning as the health loop does, to see its steady state.)
"""

import os
import random
import sqlite3
import sys
import tempfile
import time

SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..')
REASONS = ['timeout after 2000 ms', 'connect refused', 'HTTP 503']


def results(n, interval, seconds, seed=1):
    """(second, [(target index, ok, latency_ms, reason)]) for each simulated second."""
    rnd = random.Random(seed)
    phase = [rnd.randrange(interval) for _ in range(n)]
    by_phase = [[] for _ in range(interval)]
    for i, p in enumerate(phase):
        by_phase[p].append(i)
    for sec in range(seconds):
        due = list(by_phase[sec % interval])
        rnd.shuffle(due)   # completion order, not key order
        out = []
        for i in due:
            if rnd.random() < 0.99:
                out.append((i, 1, rnd.uniform(1, 100), 'HTTP 200'))
            else:
                out.append((i, 0, 2000.0 if rnd.random() < 0.5 else rnd.uniform(0.1, 5),
                            rnd.choice(REASONS)))
        yield sec, out


def key(i):
    return 'http 10.%d.%d.%d:80 www%d.example.com/' % (i >> 16 & 255, i >> 8 & 255, i & 255, i % 97)


def run_v1(path, n, interval, seconds, history_s, t0):
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(open(os.path.join(SRC, 'tests', 'db', 'schema_v1.sql')).read())
    con.execute('PRAGMA journal_mode = WAL')
    keys = [key(i) for i in range(n)]
    for sec, out in results(n, interval, seconds):
        now = t0 + sec
        con.execute('BEGIN IMMEDIATE')
        con.executemany('INSERT INTO probe_result(time, target_key, ok, latency_ms, reason) '
                        'VALUES (?, ?, ?, ?, ?)',
                        [(now, keys[i], ok, lat, r) for i, ok, lat, r in out])
        con.executemany('INSERT INTO target_state(target_key, state, since, reason, last_probe, '
                        'latency_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target_key) DO UPDATE '
                        'SET reason = excluded.reason, last_probe = excluded.last_probe, '
                        'latency_ms = excluded.latency_ms',
                        [(keys[i], 'up', t0, r, now, lat) for i, ok, lat, r in out])
        if sec % 60 == 0:
            con.execute('DELETE FROM probe_result WHERE time < ?', (now - history_s,))
        con.execute('COMMIT')
    return con


def run_v2(path, n, interval, seconds, history_s, t0):
    con = sqlite3.connect(path, isolation_level=None)
    con.executescript(open(os.path.join(SRC, 'src', 'db', 'schema.sql')).read())
    con.execute('PRAGMA journal_mode = WAL')
    tid = {}
    rid = {}
    cursor, batch = 0, n // 600 + 32
    for sec, out in results(n, interval, seconds):
        now_ms = (t0 + sec) * 1000 + random.randrange(1000)
        con.execute('BEGIN IMMEDIATE')
        rows = []
        for i, ok, lat, r in out:
            if i not in tid:
                tid[i] = con.execute('INSERT INTO target(key) VALUES (?)', (key(i),)).lastrowid
            if r not in rid:
                rid[r] = con.execute('INSERT INTO reason(text) VALUES (?)', (r,)).lastrowid
            rows.append((tid[i], now_ms, ok, int(lat * 1000 + 0.5), rid[r]))
        con.executemany('INSERT OR REPLACE INTO probe_result(target_id, time_ms, ok, latency_us, '
                        'reason_id) VALUES (?, ?, ?, ?, ?)', rows)
        con.executemany('INSERT INTO target_state(target_id, state, since, reason, last_probe, '
                        'latency_ms) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(target_id) DO UPDATE '
                        'SET reason = excluded.reason, last_probe = excluded.last_probe, '
                        'latency_ms = excluded.latency_ms',
                        [(tid[i], 'up', t0, r, t0 + sec, lat) for i, ok, lat, r in out])
        ids = [r[0] for r in con.execute('SELECT id FROM target WHERE id > ? ORDER BY id LIMIT ?',
                                         (cursor, batch))]
        con.executemany('DELETE FROM probe_result WHERE target_id = ? AND time_ms < ?',
                        [(i, now_ms - history_s * 1000) for i in ids])
        cursor = ids[-1] if len(ids) == batch else 0
        con.execute('COMMIT')
    return con


def written():
    """Bytes this process has passed to write(2) and friends: WAL appends and checkpoints."""
    with open('/proc/self/io') as f:
        return next(int(l.split()[1]) for l in f if l.startswith('wchar:'))


def measure(con, path, label, wrote, made):
    con.execute('PRAGMA wal_checkpoint(TRUNCATE)')
    rows = con.execute('SELECT count(*) FROM probe_result').fetchone()[0]
    names = ('probe_result', 'probe_result_target_time', 'probe_result_time')
    tree = con.execute('SELECT sum(pgsize), sum(unused) FROM dbstat WHERE name IN (?, ?, ?)',
                       names).fetchone()
    size = os.path.getsize(path)
    print('%s: %d results, result b-trees %.1f MB (%.0f bytes per result, %.0f %% of it free '
          'space), file %.1f MB (%.0f bytes per result); %.0f bytes written per result stored'
          % (label, rows, tree[0] / 1e6, tree[0] / rows, 100.0 * tree[1] / tree[0], size / 1e6,
             size / rows, wrote / made))
    con.close()


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10000
    interval = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    hours = float(sys.argv[3]) if len(sys.argv) > 3 else 1
    history = float(sys.argv[4]) if len(sys.argv) > 4 else 24
    seconds = int(hours * 3600)
    t0 = int(time.time()) - seconds
    print('%d targets every %d s, %.2f h simulated, history %.2f h' % (n, interval, hours, history))
    with tempfile.TemporaryDirectory(prefix='gslb-store-') as tmp:
        for label, fn in (('schema 1', run_v1), ('schema 2', run_v2)):
            path = os.path.join(tmp, label.replace(' ', '') + '.db')
            start, w0 = time.monotonic(), written()
            con = fn(path, n, interval, seconds, int(history * 3600), t0)
            took, wrote = time.monotonic() - start, written() - w0
            made = sum(len(out) for _, out in results(n, interval, seconds))
            measure(con, path, label + ' (%.0f s to write)' % took, wrote, made)


if __name__ == '__main__':
    main()
