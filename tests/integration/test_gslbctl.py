#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl against a real SQLite file: every command, validation, journal, apply, concurrency (gslbctl(8))."""

import json
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

GSLBCTL = g.GSLBCTL
P = 'www.example.com.'


class Ctl:
    def __init__(self, db):
        self.db = db

    def run(self, *args, db=True, env=None, stdin=None, timeout=30):
        argv = [GSLBCTL] + (['--db', self.db] if db else []) + list(args)
        e = dict(os.environ)
        e.pop('GSLB_DB', None)
        e.update(env or {})
        p = subprocess.run(argv, capture_output=True, text=True, env=e, input=stdin,
                           timeout=timeout)
        return p.returncode, p.stdout, p.stderr

    def ok(self, *args):
        rc, out, err = self.run(*args)
        if rc != 0:
            raise AssertionError('%r: exit %d: %s' % (args, rc, err))
        return out

    def state(self):
        """Everything a change could touch: the export and the whole journal."""
        return self.ok('export'), self.ok('log', '--limit', '1000000')


def output_conventions(t, tmp):
    """Errors under --json were text; the journal named root for every change made with sudo."""
    c = Ctl(os.path.join(tmp, 'conv.db'))
    rc, out, err = c.run('--json', 'pool', 'list')
    try:
        e = json.loads(err)
    except ValueError:
        e = None
    t.ok(rc == 1 and e == {'error': 'pool list: database %s does not exist (create it with '
                                    'gslbctl init)' % c.db, 'status': 1},
         '--json: a failure is one JSON object on stderr with the exit status', err)
    c.ok('init')
    rc, out, err = c.run('--json', 'pool', 'add', P, '--ttl', '-1')
    try:
        e = json.loads(err)
    except ValueError:
        e = None
    t.ok(rc == 2 and isinstance(e, dict) and e.get('status') == 2 and
         e.get('error', '').startswith('pool add: ') and err.count('\n') == 1,
         '--json: an invalid value is {"error", "status": 2}', err)
    rc, out, err = c.run('pool', 'add', P, '--ttl', '-1')
    t.ok(rc == 2 and err.startswith('gslbctl: pool add: '), 'without --json: the text line', err)
    rc, out, err = c.run('pool', 'add', P, env={'SUDO_USER': 'alice'})
    log = json.loads(c.ok('--json', 'log', '--limit', '1'))['entries']
    t.ok(rc == 0 and log and log[0]['actor'].startswith('alice@'),
         'under sudo the journal names $SUDO_USER', repr(log))
    c.run('pool', 'rm', P, env={'SUDO_USER': ''})
    log = json.loads(c.ok('--json', 'log', '--limit', '1'))['entries']
    t.ok(log and not log[0]['actor'].startswith('@') and '@' in log[0]['actor'],
         'an empty $SUDO_USER is ignored', repr(log))


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbctl-test-')
    try:
        output_conventions(t, tmp)
        run_tests(t, tmp)
        location_round_trip(t, tmp)
        hand_edited_addresses(t, tmp)
        country_codes(t, tmp)
        docs_agree(t)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_tests(t, tmp):
    c = Ctl(os.path.join(tmp, 'a.db'))

    # ---- database missing, init
    rc, out, err = c.run('pool', 'list')
    t.eq(rc, 1, 'pool list on a missing database: exit 1')
    t.ok('does not exist' in err and err.count('\n') == 1, 'missing database: one stderr line', err)
    t.ok(not os.path.exists(c.db), 'a command other than init does not create the file')
    rc, out, err = c.run('init')
    t.eq(rc, 0, 'init creates the database')
    t.ok('created' in out, 'init says it created it', out)
    rc, out, err = c.run('init')
    t.ok(rc == 0 and 'up to date' in out, 'init again is a no-op', out + err)
    rc, out, err = c.run('init', db=False, env={'GSLB_DB': os.path.join(tmp, 'env.db')})
    t.ok(rc == 0 and os.path.exists(os.path.join(tmp, 'env.db')), '$GSLB_DB is honoured')

    # ---- help
    for cmd in (['--help'], ['init', '--help'], ['pool', 'add', '--help'], ['member', 'set', '--help'],
                ['check', 'set', '--help'], ['apply', '--help'], ['log', '--help'], ['status', '--help']):
        rc, out, err = c.run(*cmd)
        t.ok(rc == 0 and 'usage' in out, 'gslbctl %s: exit 0 with usage' % ' '.join(cmd), out + err)

    # ---- pools
    t.eq(c.run('pool', 'add', 'WWW.Example.COM', '--ttl', '20', '--answers', '2')[0], 0, 'pool add')
    rc, out, err = c.run('pool', 'add', 'www.example.com.')
    t.ok(rc == 1 and 'already exists' in err, 'pool add twice: exit 1', err)
    t.eq(c.run('pool', 'add', 'other.example.com', '--policy', 'failover', '--fallback', 'none',
               '--degraded-ttl', '5')[0], 0, 'pool add with options')
    t.eq(c.run('pool', 'set', P, '--policy', 'geo', '--ttl', '60')[0], 0, 'pool set')
    rc, out, err = c.run('--json', 'pool', 'list')
    pools = json.loads(out)['pools']
    t.eq([p['name'] for p in pools], ['other.example.com.', P], 'pool list --json: sorted names')
    www = [p for p in pools if p['name'] == P][0]
    t.eq((www['policy'], www['ttl'], www['answers'], www['degraded_ttl']), ('geo', 60, 2, 10),
         'pool set changed policy and ttl, kept answers; degraded_ttl default min(ttl,10)')
    rc, out, err = c.run('pool', 'list')
    t.ok(rc == 0 and P in out, 'pool list text')

    # ---- members
    t.eq(c.run('member', 'add', P, 'fra', '--address', '192.0.2.1', '--address', '2001:DB8:0::1',
               '--location', '50.11,8.68', '--country', 'de,fr-idf', '--continent', 'eu',
               '--network', '10.1.0.0/16', '--weight', '50', '--priority', '2')[0], 0, 'member add')
    t.eq(c.run('member', 'add', P, 'sin', '--address', '198.51.100.7')[0], 0, 'member add (defaults)')
    rc, out, err = c.run('--json', 'pool', 'show', 'www.example.com')
    pool = json.loads(out)
    fra = pool['members'][0]
    t.eq(fra['addresses'], ['192.0.2.1', '2001:db8::1'], 'addresses canonicalised (inet_ntop)')
    t.eq((fra['countries'], fra['continents'], fra['networks'], fra['location']),
         (['DE', 'FR-IDF'], ['EU'], ['10.1.0.0/16'], '50.11,8.68'), 'geo fields stored')
    t.eq((fra['weight'], fra['priority'], fra['admin']), (50, 2, 'auto'), 'weight, priority, admin')
    t.eq((pool['members'][1]['weight'], pool['members'][1]['priority']), (100, 1), 'member defaults')
    t.eq(c.run('member', 'set', P, 'fra', '--address', '192.0.2.9')[0], 0, 'member set --address')
    fra = json.loads(c.ok('--json', 'pool', 'show', P))['members'][0]
    t.eq(fra['addresses'], ['192.0.2.9'], 'member set --address replaces the list')
    t.eq(fra['weight'], 50, 'member set keeps what was not given')
    t.eq(c.run('member', 'set', P, 'fra', '--country', '', '--network', '')[0], 0,
         'member set with empty values clears')
    fra = json.loads(c.ok('--json', 'pool', 'show', P))['members'][0]
    t.ok('countries' not in fra and 'networks' not in fra, 'country and network lists cleared')
    for st in ('drain', 'down', 'up', 'auto'):
        t.eq(c.run('member', 'state', P, 'fra', st)[0], 0, 'member state %s' % st)
    c.ok('member', 'state', P, 'fra', 'drain')
    t.eq(json.loads(c.ok('--json', 'pool', 'show', P))['members'][0]['admin'], 'drain',
         'admin state stored')

    # ---- checks
    t.eq(c.run('check', 'set', P, '--type', 'http', '--path', '/health', '--expect', '200-299,301',
               '--interval', '1.5', '--timeout', '0.5', '--match', 'ok')[0], 0,
         'check set (pool)')
    t.eq(c.run('check', 'set', P, '--member', 'sin', '--type', 'https', '--port', '8443',
               '--target', '203.0.113.5', '--insecure', '--rise', '1', '--fall', '5')[0], 0,
         'check set --member')
    pool = json.loads(c.ok('--json', 'pool', 'show', P))
    t.eq(pool['check'], {'type': 'http', 'path': '/health', 'expect': '200-299,301', 'match': 'ok',
                         'interval': 1.5, 'timeout': 0.5, 'rise': 2, 'fall': 3}, 'pool check stored')
    t.eq(pool['members'][1]['check']['target'], '203.0.113.5', 'member check target stored')
    rc, out, err = c.run('check', 'rm', P, '--member', 'sin')
    t.eq(rc, 0, 'check rm --member')
    rc, out, err = c.run('check', 'rm', P, '--member', 'sin')
    t.eq(rc, 1, 'check rm of a missing check: exit 1')
    c.ok('check', 'set', P, '--member', 'sin', '--type', 'tcp', '--port', '443')

    # ---- status, history, log, explain
    zones = os.path.join(tmp, 'zones')
    os.mkdir(zones)
    with open(os.path.join(zones, 'example.com.zone'), 'w') as f:
        f.write('$ORIGIN example.com.\n$TTL 300\n@ SOA ns hostmaster 1 3600 600 86400 60\n'
                '@ NS ns\nns A 192.0.2.53\n')
    c.ok('pool', 'add', 'lost.example.net')
    rc, out, err = c.run('--json', 'status', '--zones', zones)
    st = json.loads(out)
    served = {p['name']: p['served'] for p in st['pools']}
    t.eq(served, {P: True, 'other.example.com.': True, 'lost.example.net.': False},
         'status --json: served for pools inside and outside the zones')
    addrs = [a for p in st['pools'] if p['name'] == P for m in p['members'] for a in m['addresses']]
    t.ok(addrs and all(set(a) >= {'address', 'state', 'since', 'reason', 'last_probe', 'latency_ms'}
                       for a in addrs), 'status --json: address keys of gslbctl(8)')
    t.eq({p['name']: p['serving'] for p in st['pools']},
         {P: 'served', 'other.example.com.': 'served', 'lost.example.net.': 'in no served zone'},
         'status --json: serving says why')
    # A --zones DIR that cannot be read: exit 1, one line, no JSON "served": false guess.
    nodir = os.path.join(tmp, 'nonexistent')
    notdir = os.path.join(zones, 'example.com.zone')
    for argv, why in ((['status', P, '--zones', nodir], 'No such file or directory'),
                      (['--json', 'status', '--zones', nodir], 'No such file or directory'),
                      (['--json', 'status', '--zones', notdir], 'Not a directory')):
        rc, out, err = c.run(*argv)
        text = 'status: --zones: %s: cannot read the zone directory: %s' % (argv[-1], why)
        want = ('gslbctl: %s\n' % text if argv[0] != '--json' else
                json.dumps({'error': text, 'status': 1}, separators=(',', ':')) + '\n')
        t.ok(rc == 1 and out == '' and err == want,
             '%s with an unreadable --zones: exit 1, one stderr line, no output' % ' '.join(argv[:2]),
             'exit %d, stdout %r, stderr %r' % (rc, out, err))
    # Without --zones, gslbd's default directory: unknown when it cannot be read, never an error.
    rc, out, err = c.run('--json', 'status')
    st = json.loads(out) if rc == 0 else {}
    readable = os.access(st.get('zones', '/nonexistent'), os.R_OK | os.X_OK)
    t.ok(rc == 0 and st['zones_readable'] == readable and all(
        p['serving'] == 'unknown' and p['served'] is False for p in st['pools']
        if not readable), 'status --json without --zones: exit 0; unknown when the default '
         'directory (%s) cannot be read' % st.get('zones'), out + err)
    rc, out, err = c.run('status', P)
    t.ok(rc == 0 and (readable or re.search(r'^pool %s \w+ served unknown$' % re.escape(P), out,
                                             re.M)),
         'status without --zones: exit 0; served unknown when the default cannot be read',
         out + err)
    rc, out, err = c.run('--json', 'history', P)
    h = json.loads(out)
    t.ok(rc == 0 and h == {'changes': [], 'probes': []}, 'history --json: empty lists', out)
    rc, out, err = c.run('history', P, 'fra', '--limit', '5')
    t.eq(rc, 0, 'history POOL MEMBER --limit')
    rc, out, err = c.run('history', 'nope.example.com')
    t.eq(rc, 1, 'history of a missing pool: exit 1')
    rc, out, err = c.run('explain', P)
    t.ok(rc == 0 and 'sample answer' in out, 'explain POOL: exit 0 with a sample answer', err)
    rc, out, err = c.run('--json', 'log', '--limit', '3')
    entries = json.loads(out)['entries']
    t.eq(len(entries), 3, 'log --limit 3')
    t.ok(entries[0]['id'] > entries[1]['id'] > entries[2]['id'], 'log is newest first')
    t.eq(entries[0]['summary'], '+ pool lost.example.net.', 'journal summary of the last change')
    t.ok(entries[0]['command'].endswith('pool add lost.example.net') and '@' in entries[0]['actor'],
         'journal has the command line and user@host', entries[0])
    t.ok(entries[0]['time'].endswith('Z') and 'T' in entries[0]['time'], 'journal time is RFC 3339 UTC')
    n_before = len(json.loads(c.ok('--json', 'log', '--limit', '100000'))['entries'])
    c.ok('member', 'set', P, 'sin', '--weight', '7')
    log = json.loads(c.ok('--json', 'log'))['entries']
    t.eq(log[0]['summary'], '~ member %ssin weight 100 -> 7' % (P + '/'), 'journal shows old -> new')
    t.eq(len(json.loads(c.ok('--json', 'log', '--limit', '100000'))['entries']), n_before + 1,
         'one change, one journal row')
    rc, out, err = c.run('member', 'set', P, 'sin', '--weight', '7')
    t.ok(rc == 0 and 'no changes' in out, 'a no-op change writes no journal row')

    # ---- validation: exit 2, one stderr line naming command and option, nothing written
    bad = [
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--weight', '70000'],
         'gslbctl: member add: --weight: 70000 is not in 0-65535'),
        (['member', 'add', P, 'x', '--address', '192.0.2.300'],
         'gslbctl: member add: --address: 192.0.2.300 is not an IPv4 or IPv6 address'),
        (['member', 'add', P, 'x'], 'gslbctl: member add: --address: at least one address (or an --alias) is required'),
        # An IPv4-mapped IPv6 address would be served as AAAA; the IPv4 address is what was meant.
        (['member', 'add', P, 'x', '--address', '::ffff:192.0.2.5'],
         'gslbctl: member add: --address: ::ffff:192.0.2.5 is an IPv4-mapped IPv6 address '
         '(give 192.0.2.5)'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--address', '::FFFF:C000:205'],
         'gslbctl: member add: --address: ::FFFF:C000:205 is an IPv4-mapped IPv6 address '
         '(give 192.0.2.5)'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--address', '192.0.2.1'],
         'gslbctl: member add: --address: 192.0.2.1 appears twice'),
        (['member', 'add', P, 'x', '--address', '2001:db8::1', '--address', '192.0.2.1',
          '--address', '2001:DB8:0::1'],
         'gslbctl: member add: --address: 2001:DB8:0::1 appears twice (as 2001:db8::1)'),
        (['member', 'set', P, 'fra', '--address', '::ffff:192.0.2.5'],
         'gslbctl: member set: --address: ::ffff:192.0.2.5 is an IPv4-mapped IPv6 address '
         '(give 192.0.2.5)'),
        (['member', 'set', P, 'fra', '--address', '192.0.2.9', '--address', '192.0.2.9'],
         'gslbctl: member set: --address: 192.0.2.9 appears twice'),
        (['member', 'add', P, 'X_bad', '--address', '192.0.2.1'],
         'gslbctl: member add: MEMBER: X_bad does not start with a-z or 0-9'),
        (['member', 'add', P, 'a' * 64, '--address', '192.0.2.1'],
         'gslbctl: member add: MEMBER: %s is longer than 63 characters' % ('a' * 64)),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--priority', '0'],
         'gslbctl: member add: --priority: 0 is not in 1-255'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--location', '91,0'],
         'gslbctl: member add: --location: latitude 91,0 is not in -90-90'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--location', 'abc'],
         'gslbctl: member add: --location: abc is not LAT,LON in decimal degrees'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--country', 'DEU'],
         'gslbctl: member add: --country: DEU is not an ISO 3166-1 alpha-2 code or CC-SUB'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--continent', 'EU,XX'],
         'gslbctl: member add: --continent: XX is not one of AF AN AS EU NA OC SA'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--network', '10.1.0.1/16'],
         'gslbctl: member add: --network: 10.1.0.1/16 has host bits set'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--network', '10.0.0.0/33'],
         'gslbctl: member add: --network: 10.0.0.0/33: prefix length is not in 0-32'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--bogus', '1'],
         'gslbctl: member add: --bogus: unknown option'),
        (['member', 'add', P, 'x', '--address', '192.0.2.1', '--weight'],
         'gslbctl: member add: --weight: needs a value'),
        (['member', 'set', P, 'fra', '--weight', '-1'],
         'gslbctl: member set: --weight: -1 is not a whole number'),
        (['member', 'state', P, 'fra', 'sleeping'],
         'gslbctl: member state: STATE: sleeping is not auto, up, down or drain'),
        (['pool', 'add', 'bad..name'], 'gslbctl: pool add: POOL: bad..name has an empty label'),
        (['pool', 'add', ('a' * 64) + '.com'],
         'gslbctl: pool add: POOL: %s.com has a label longer than 63 characters' % ('a' * 64)),
        (['pool', 'add', 'x.example.com', '--ttl', '86401'],
         'gslbctl: pool add: --ttl: 86401 is not in 0-86400'),
        (['pool', 'add', 'x.example.com', '--degraded-ttl', '0'],
         'gslbctl: pool add: --degraded-ttl: 0 is not in 1-86400'),
        (['pool', 'add', 'x.example.com', '--answers', '65'],
         'gslbctl: pool add: --answers: 65 is not in 1-64'),
        (['pool', 'add', 'x.example.com', '--policy', 'random'],
         'gslbctl: pool add: --policy: random is not weighted, failover or geo'),
        (['pool', 'set', P, '--fallback', 'some'],
         'gslbctl: pool set: --fallback: some is not all or none'),
        (['check', 'set', P, '--type', 'tcp'], 'gslbctl: check set: --port: required for --type tcp'),
        (['check', 'set', P, '--type', 'icmp'], 'gslbctl: check set: --type: icmp is not tcp, http or https'),
        (['check', 'set', P, '--type', 'http', '--port', '0'],
         'gslbctl: check set: --port: 0 is not in 1-65535'),
        (['check', 'set', P, '--type', 'http', '--expect', '200-700'],
         'gslbctl: check set: --expect: 200-700: 700 is not in 100-599'),
        (['check', 'set', P, '--type', 'http', '--interval', '0.5'],
         'gslbctl: check set: --interval: 0.5 is not in 1-3600 seconds'),
        (['check', 'set', P, '--type', 'http', '--interval', '2', '--timeout', '2'],
         'gslbctl: check set: --timeout: 2 is not less than the interval (2 s)'),
        (['check', 'set', P, '--type', 'http', '--rise', '101'],
         'gslbctl: check set: --rise: 101 is not in 1-100'),
        (['check', 'set', P, '--type', 'http', '--target', '192.0.2.1'],
         'gslbctl: check set: --target: only for a member\'s check (--member)'),
        (['check', 'set', P, '--type', 'http', '--insecure'],
         'gslbctl: check set: --insecure: only for https checks'),
        (['check', 'set', P, '--type', 'tcp', '--port', '25', '--path', '/'],
         'gslbctl: check set: --path: only for http and https checks'),
        (['pool', 'frobnicate'], 'gslbctl: pool: frobnicate: unknown subcommand'),
        (['frobnicate'], 'gslbctl: frobnicate: unknown command (gslbctl --help lists them)'),
        (['log', '--limit', 'x'], 'gslbctl: log: --limit: x is not a whole number'),
    ]
    before = c.state()
    for argv, want in bad:
        rc, out, err = c.run(*argv)
        t.ok(rc == 2 and err == want + '\n', 'exit 2 and one line: %s' % want,
             'exit %d, stderr %r' % (rc, err))
    t.ok(c.state() == before, 'no invalid command changed the export or the journal')

    # ---- missing pool or member: exit 1, nothing written
    missing = [
        (['member', 'set', 'nope.example.com', 'fra', '--weight', '1'],
         'gslbctl: member set: no pool nope.example.com.'),
        (['member', 'add', 'nope.example.com', 'fra', '--address', '192.0.2.1'],
         'gslbctl: member add: no pool nope.example.com.'),
        (['member', 'rm', P, 'ghost'], 'gslbctl: member rm: no member ghost in pool %s' % P),
        (['member', 'state', P, 'ghost', 'up'], 'gslbctl: member state: no member ghost in pool %s' % P),
        (['pool', 'rm', 'nope.example.com'], 'gslbctl: pool rm: no pool nope.example.com.'),
        (['pool', 'set', 'nope.example.com', '--ttl', '5'], 'gslbctl: pool set: no pool nope.example.com.'),
        (['pool', 'show', 'nope.example.com'], 'gslbctl: pool show: no pool nope.example.com.'),
        (['check', 'set', 'nope.example.com', '--type', 'http'],
         'gslbctl: check set: no pool nope.example.com.'),
        (['check', 'set', P, '--member', 'ghost', '--type', 'http'],
         'gslbctl: check set: no member ghost in pool %s' % P),
    ]
    for argv, want in missing:
        rc, out, err = c.run(*argv)
        t.ok(rc == 1 and err == want + '\n', 'exit 1: %s' % want, 'exit %d, stderr %r' % (rc, err))
    t.ok(c.state() == before, 'no failed command changed anything')

    # ---- export / apply
    exp = c.ok('export')
    doc = json.loads(exp)
    t.eq(doc['version'], 1, 'export has version 1')
    src = os.path.join(tmp, 'export.json')
    with open(src, 'w') as f:
        f.write(exp)
    d = Ctl(os.path.join(tmp, 'b.db'))
    d.ok('init')
    rc, out, err = d.run('apply', src, '--dry-run')
    t.ok(rc == 0 and '+ pool %s' % P in out, 'apply --dry-run prints the changes', out + err)
    t.eq(d.state()[0], '{\n  "version": 1,\n  "pools": []\n}\n', 'apply --dry-run wrote nothing')
    t.eq(json.loads(d.ok('--json', 'log'))['entries'], [], 'apply --dry-run: no journal row')
    rc, out, err = d.run('apply', src)
    t.ok(rc == 0 and '+ member %s/fra' % P in out, 'apply to a fresh database', out + err)
    t.eq(d.ok('export'), exp, 'export -> apply -> export round trip is equal')
    rc, out, err = d.run('apply', src)
    t.ok(rc == 0 and out == 'no changes\n', 'second apply: no changes', out)
    t.eq(len(json.loads(d.ok('--json', 'log'))['entries']), 1, 'apply twice: one journal row')
    rc, out, err = d.run('apply', '-', stdin=exp)
    t.ok(rc == 0 and out == 'no changes\n', 'apply - reads stdin', out + err)

    # a changed file: one update, printed as ~ lines
    doc2 = json.loads(exp)
    www2 = [p for p in doc2['pools'] if p['name'] == P][0]
    www2['members'][1]['weight'] = 55
    www2['members'] = www2['members'][1:]
    doc2['pools'] = [www2]
    f2 = os.path.join(tmp, 'changed.json')
    with open(f2, 'w') as f:
        json.dump(doc2, f)
    rc, out, err = d.run('apply', f2)
    t.ok(rc == 0 and '~ member %s/sin weight 7 -> 55' % P in out and '- member' not in out,
         'apply updates, without --prune deletes nothing', out + err)
    rc, out, err = d.run('apply', f2, '--prune')
    want_lines = {'- pool lost.example.net.', '- pool other.example.com.', '- member %s/fra' % P}
    t.eq(set(out.splitlines()), want_lines, 'apply --prune deletes what the file lacks')
    t.eq([p['name'] for p in json.loads(d.ok('export'))['pools']], [P], 'only the file\'s pool is left')

    # invalid apply files: exit 2 naming the JSON path, nothing written
    dstate = d.state()
    bad_docs = [
        (lambda x: x['pools'][0]['members'][0].__setitem__('weight', 70000),
         'pools[0].members[0].weight: 70000 is not in 0-65535'),
        (lambda x: x['pools'][0]['members'][0].__setitem__('addresses', ['1.2.3']),
         'pools[0].members[0].addresses[0]: 1.2.3 is not an IPv4 or IPv6 address'),
        (lambda x: x['pools'][0]['members'][0].__setitem__('addresses', ['::ffff:192.0.2.5']),
         'pools[0].members[0].addresses[0]: ::ffff:192.0.2.5 is an IPv4-mapped IPv6 address '
         '(give 192.0.2.5)'),
        (lambda x: x['pools'][0]['members'][0].__setitem__(
            'addresses', ['192.0.2.9', '2001:db8::9', '192.0.2.9']),
         'pools[0].members[0].addresses[2]: 192.0.2.9 appears twice'),
        (lambda x: x['pools'][0]['members'][0].__setitem__(
            'addresses', ['2001:db8::9', '2001:DB8::9']),
         'pools[0].members[0].addresses[1]: 2001:DB8::9 appears twice (as 2001:db8::9)'),
        (lambda x: x['pools'][0].__setitem__('ttl', '30'), 'pools[0].ttl: is a string, not a number'),
        (lambda x: x['pools'][0].__setitem__('wieght', 1), 'pools[0].wieght: unknown key'),
        (lambda x: x['pools'][0]['check'].__setitem__('interval', 0.5),
         'pools[0].check.interval: 0.5 is not in 1-3600 seconds'),
        (lambda x: x['pools'].append(dict(x['pools'][0])), 'pools[1].name: pool %s appears twice' % P),
    ]
    for mutate, want in bad_docs:
        x = json.loads(exp)
        x['pools'] = [p for p in x['pools'] if p['name'] == P]
        mutate(x)
        fb = os.path.join(tmp, 'bad.json')
        with open(fb, 'w') as f:
            json.dump(x, f)
        rc, out, err = d.run('apply', fb, '--prune')
        t.ok(rc == 2 and err == 'gslbctl: apply: %s\n' % want, 'apply exit 2: %s' % want,
             'exit %d, stderr %r' % (rc, err))
    with open(os.path.join(tmp, 'bad.json'), 'w') as f:
        f.write('{"pools": [')
    rc, out, err = d.run('apply', os.path.join(tmp, 'bad.json'))
    t.ok(rc == 2 and 'line 1' in err and err.count('\n') == 1, 'apply of broken JSON: exit 2', err)
    t.ok(d.state() == dstate, 'invalid apply files wrote nothing')

    # ---- rm commands
    t.eq(c.run('member', 'rm', P, 'sin')[0], 0, 'member rm')
    t.eq(c.run('pool', 'rm', P)[0], 0, 'pool rm')
    t.ok(P not in c.ok('export'), 'pool rm removed the pool and its members')
    con = sqlite3.connect(c.db)
    n = con.execute('SELECT (SELECT count(*) FROM member) + (SELECT count(*) FROM member_address) + '
                    '(SELECT count(*) FROM health_check)').fetchone()[0]
    uv = con.execute('PRAGMA user_version').fetchone()[0]
    jm = con.execute('PRAGMA journal_mode').fetchone()[0]
    con.close()
    t.eq(n, 0, 'pool rm cascades to members, addresses and checks')
    t.eq((uv, jm), (6, 'wal'), 'schema version 6, WAL mode')

    # ---- ten concurrent writers
    c.ok('pool', 'add', 'c.example.com')
    procs = [subprocess.Popen([GSLBCTL, '--db', c.db, 'member', 'add', 'c.example.com', 'm%d' % i,
                               '--address', '10.0.0.%d' % (i + 1)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(10)]
    results = [(p.wait(timeout=60), p.stderr.read()) for p in procs]
    for p in procs:
        p.stdout.close()
        p.stderr.close()
    t.ok(all(rc == 0 for rc, _ in results), 'ten concurrent member add all succeed', results)
    members = json.loads(c.ok('--json', 'pool', 'show', 'c.example.com'))['members']
    t.eq(sorted(m['name'] for m in members), sorted('m%d' % i for i in range(10)),
         'ten members exist afterwards')


# --location as given -> as export and pool show print it (the shortest plain decimal).
LOCATIONS = [
    ('50,10', '50,10'),
    ('0,-120', '0,-120'),
    ('-45,-120', '-45,-120'),
    ('0.000001,-0.5', '0.000001,-0.5'),
    ('89.999999,179.999999', '89.999999,179.999999'),
    ('-90,180', '-90,180'),
    ('50.110,008.680', '50.11,8.68'),
    ('-33.87,151.21', '-33.87,151.21'),
    ('+1,-0', '1,0'),
    ('0.00000000000000000001,100', '0.00000000000000000001,100'),
]


def location_round_trip(t, tmp):
    """export -> apply of round-number locations (json_double_fmt once wrote "5e+01,1e+01")."""
    c = Ctl(os.path.join(tmp, 'loc.db'))
    c.ok('init')
    c.ok('pool', 'add', 'l.demo.test', '--policy', 'geo')
    for i, (given, _) in enumerate(LOCATIONS):
        c.ok('member', 'add', 'l.demo.test', 'm%02d' % i, '--address', '10.0.0.%d' % (i + 1),
             '--location', given)
    want = {'m%02d' % i: shown for i, (_, shown) in enumerate(LOCATIONS)}
    exp = c.ok('export')
    got = {m['name']: m['location'] for m in json.loads(exp)['pools'][0]['members']}
    t.eq(got, want, 'export: locations as plain decimals, never an exponent')
    show = c.ok('pool', 'show', 'l.demo.test')
    got = dict(zip(re.findall(r'^  member (\S+)$', show, re.M),
                   re.findall(r'^    location (\S+)$', show, re.M)))
    t.eq(got, want, 'pool show: locations as plain decimals, never an exponent')
    got = {m['name']: m['location']
           for m in json.loads(c.ok('--json', 'pool', 'show', 'l.demo.test'))['members']}
    t.eq(got, want, 'pool show --json: locations as plain decimals')
    src = os.path.join(tmp, 'loc.json')
    with open(src, 'w') as f:
        f.write(exp)
    before = c.state()
    rc, out, err = c.run('apply', src, '--dry-run')
    t.ok(rc == 0 and out == 'no changes\n', 'apply --dry-run of its own export: no changes',
         'exit %d: %s%s' % (rc, out, err))
    rc, out, err = c.run('apply', src)
    t.ok(rc == 0 and out == 'no changes\n' and c.state() == before,
         'apply of its own export: no changes, no journal row', 'exit %d: %s%s' % (rc, out, err))
    d = Ctl(os.path.join(tmp, 'loc2.db'))
    d.ok('init')
    rc, out, err = d.run('apply', src)
    t.ok(rc == 0, 'apply of the export to a fresh database', 'exit %d: %s' % (rc, err))
    t.eq(d.ok('export'), exp, 'locations: export -> apply -> export is equal')


def country_codes(t, tmp):
    """--country takes assigned ISO 3166-1 alpha-2 codes (and XK), not just two letters."""
    c = Ctl(os.path.join(tmp, 'cc.db'))
    c.ok('init')
    c.ok('pool', 'add', 'cc.demo.test', '--policy', 'geo')
    c.ok('member', 'add', 'cc.demo.test', 'm', '--address', '192.0.2.1')
    for given, stored in (('XK', 'XK'), ('de,fr-idf,gb-eng,jp-13,es-m', 'DE,FR-IDF,GB-ENG,JP-13,ES-M'),
                          ('AX,SS,CW,BQ,ZW', 'AX,SS,CW,BQ,ZW')):
        rc, out, err = c.run('member', 'set', 'cc.demo.test', 'm', '--country', given)
        got = json.loads(c.ok('--json', 'pool', 'show', 'cc.demo.test'))['members'][0]
        t.ok(rc == 0 and ','.join(got.get('countries', [])) == stored,
             '--country %s accepted' % given,
             'exit %d %s %r' % (rc, err, got))
    before = c.state()
    for given, bad in (('XX', 'XX'), ('DE,EU', 'EU'), ('AP', 'AP'), ('UK', 'UK'), ('zz', 'ZZ'),
                       ('QQ-CA', 'QQ-CA'), ('A1', 'A1')):
        rc, out, err = c.run('member', 'set', 'cc.demo.test', 'm', '--country', given)
        want = ('gslbctl: member set: --country: %s is not an ISO 3166-1 alpha-2 code or CC-SUB\n'
                % bad)
        t.ok(rc == 2 and err == want, '--country %s refused: exit 2 naming %s' % (given, bad),
             'exit %d, stderr %r' % (rc, err))
    t.ok(c.state() == before, 'refused --country codes wrote nothing')
    # apply checks the same way, naming the JSON path
    doc = json.loads(c.ok('export'))
    doc['pools'][0]['members'][0]['countries'] = ['DE', 'XX']
    src = os.path.join(tmp, 'cc.json')
    with open(src, 'w') as f:
        json.dump(doc, f)
    rc, out, err = c.run('apply', src)
    t.ok(rc == 2 and 'XX is not an ISO 3166-1 alpha-2 code or CC-SUB' in err
         and err.startswith('gslbctl: apply: pools[0].members[0].countries')
         and err.count('\n') == 1, 'apply: an unknown country code exits 2 naming the path', err)
    # A row written by another tool: gslbctl still reads it, explain ignores the bad code.
    con = sqlite3.connect(c.db)
    con.execute("UPDATE member SET countries = 'XX,DE'")
    con.commit()
    con.close()
    rc, out, err = c.run('export')
    t.ok(rc == 0 and '"XX"' in out, 'export of a database with a bad country row works', err)
    rc, out, err = c.run('explain', 'cc.demo.test')
    t.ok(rc == 0 and 'sample answer: 192.0.2.1' in out,
         'explain of a database with a bad country row works', out + err)


JSON_COMMANDS = ['pool list', 'pool show', 'status', 'history', 'explain', 'log']


def aaaa(srv, name):
    """The AAAA records answered, as the wire has them (dnspython would merge duplicates)."""
    r = g.exchange(g.make_query(name, 'AAAA'), srv.addr4, 'udp', timeout=1.0)
    if r.msg is None:
        return None
    got = sorted(rr.to_text() for rrset in r.msg.answer for rr in rrset)
    ancount = int.from_bytes(r.wire[6:8], 'big')
    return got if ancount == len(got) else got + ['(%d records on the wire)' % ancount]


def hand_edited_addresses(t, tmp):
    """Address rows gslbctl refuses, written into the database by hand: gslbd skips them with a
    warning, as other bad rows, and the health checks stay with the addresses they belong to."""
    live = g.Listener()
    srv = g.Gslbd(zones=('example.test.zone',), identity=False, wait_zone=None, lifetime=60)
    db = os.path.join(srv.tmp, 'gslb.db')
    c = Ctl(db)
    c.ok('init')
    c.ok('pool', 'add', 'hand.example.test')
    c.ok('member', 'add', 'hand.example.test', 'm', '--address', '2001:db8::5')
    # Health-checked, fallback none: fd00::1 cannot be reached, so once its probe fails the
    # answer is empty.  ::ffff:127.0.0.1 sorts first; were its probe (which reaches the
    # listener) given to fd00::1, fd00::1 would stay up.
    c.ok('pool', 'add', 'hc.example.test', '--fallback', 'none')
    c.ok('member', 'add', 'hc.example.test', 'm', '--address', 'fd00::1')
    c.ok('check', 'set', 'hc.example.test', '--type', 'tcp', '--port', str(live.port),
         '--interval', '1', '--timeout', '0.5', '--fall', '2')
    con = sqlite3.connect(db)
    for pool, addr in (('hand.example.test.', '::ffff:192.0.2.5'),
                       ('hand.example.test.', '2001:DB8::5'),
                       ('hc.example.test.', '::ffff:127.0.0.1')):
        con.execute('INSERT INTO member_address (member_id, address, family) '
                    'SELECT member.id, ?, 6 FROM member JOIN pool ON pool.id = member.pool_id '
                    'WHERE pool.name = ?',
                    (addr, pool))
    con.commit()
    con.close()
    srv.start()
    srv.wait_ready('example.test.')
    try:
        t.eq(aaaa(srv, 'hand.example.test'), ['2001:db8::5'],
             'gslbd: a hand-written IPv4-mapped row and a duplicate of another address are not '
             'served')
        log = srv.stderr()
        t.ok("'::ffff:192.0.2.5' is an IPv4-mapped IPv6 address, skipped" in log,
             'gslbd warns about the IPv4-mapped row', log[-2000:])
        t.ok(re.search(r"hand.example.test. member m: '2001:(DB8|db8)::5' is the same address as "
                       r"'2001:(db8|DB8)::5', skipped", log),
             'gslbd warns about the duplicate row', log[-2000:])
        got = None
        end = time.monotonic() + 10
        while time.monotonic() < end:
            got = aaaa(srv, 'hc.example.test')
            if got == []:
                break
            time.sleep(0.2)
        t.eq(got, [], 'gslbd: the unreachable fd00::1 goes down; it is not probed through the '
             'skipped IPv4-mapped row')
    finally:
        srv.check_stop(t, 'gslbd on a hand-edited database')
        live.s.close()


def docs_agree(t):
    """gslbctl --help and gslbctl(8) list the same commands and the same --json ones."""
    p = subprocess.run([GSLBCTL, '--help'], capture_output=True, text=True, timeout=30)
    helptext = ' '.join(p.stdout.split())
    t.ok(p.returncode == 0 and '--json: machine-readable output for pool list, pool show, status, '
         'history, explain, log, cluster status, dnssec ds and dnssec status, and errors as one '
         'JSON object on stderr.' in helptext,
         '--help: which commands take --json', p.stdout)
    cmds = [line.split('[')[0].split(' POOL')[0].split(' NAME')[0].split(' FILE')[0].strip()
            for line in p.stdout.split('commands:\n')[-1].split('\n\n')[0].splitlines()
            if line.startswith('  ') and not line.startswith('   ')]
    t.eq(len(cmds), 27, '--help lists the 27 commands with their usage')
    # A member needs an address or an alias, either one: the synopsis requires neither alone.
    alt = 'member add POOL MEMBER (--address IP|--alias HOST)... [--weight W]'
    t.ok(alt in helptext, '--help: member add takes --address or --alias, either one', p.stdout)
    m = subprocess.run([GSLBCTL, 'member', 'add', '--help'], capture_output=True, text=True,
                       timeout=30)
    t.ok(m.returncode == 0 and alt in ' '.join(m.stdout.split()),
         'member add --help: the same synopsis', m.stdout)
    page = os.path.join(g.SRCDIR, 'doc', 'gslbctl.8')
    if not shutil.which('man') or not shutil.which('col'):
        t.skip('gslbctl(8) renders cleanly', 'no man or col')
        return
    r = subprocess.run('MANWIDTH=80 man -l %s | col -b' % page, shell=True, capture_output=True,
                       text=True, timeout=60, env=dict(os.environ, MANWIDTH='80'))
    text = r.stdout
    flat = ' '.join(text.split()).replace('\u2010 ', '').replace('- ', '-')
    t.ok('--json Machine-readable output for pool list, pool show, status, history, explain, log, '
         'cluster status, dnssec ds and dnssec status.' in flat, 'gslbctl(8): --json names explain too', flat[:2000])
    t.ok(re.search(r'^ {7}log \[--limit N\]$', text, re.M) and not re.search(r'^\s+N\]', text, re.M),
         'gslbctl(8): the log tag renders on one line ("N]" not in the body)',
         '\n'.join(l for l in text.splitlines() if 'limit' in l))
    t.ok('member add POOL MEMBER (--address IP|--alias HOST)... [--weight W]' in flat,
         'gslbctl(8): member add takes --address or --alias, either one',
         '\n'.join(l for l in text.splitlines() if 'member add' in l))
    tags = [' '.join(l.split())
            for l in text.split('COMMANDS')[1].split('EXIT STATUS')[0].splitlines()
            if re.match(r'^ {7}\S', l)]
    missing = [c for c in cmds if not any(tag.startswith(c) for tag in tags)]
    t.eq(missing, [], 'gslbctl(8) has a paragraph for every command --help lists')
    if shutil.which('groff'):
        w = subprocess.run(['groff', '-man', '-ww', '-z', page], capture_output=True, text=True,
                           timeout=60)
        t.eq(w.stderr, '', 'gslbctl(8): groff -ww finds nothing to warn about')


if __name__ == '__main__':
    g.run(main)
