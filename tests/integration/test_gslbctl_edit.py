#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl's change commands byte for byte (gslbctl(8)): for pool add/set/rm, member
add/set/rm/state, check set/rm and apply, what each prints on success, on no change and on every
failure, its exit status, the journal row it writes or that it writes none; the database
failures they share (missing, newer schema, not a database, locked); and the messages of the
grammars and limits gslbctl shares with gslbd (expect codes, CIDR prefixes, member, address and
network maxima, HTTP path and host lengths)."""

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

P = 'www.edit.test.'
Q = 'nope.edit.test.'


def journal(db):
    con = sqlite3.connect(db)
    try:
        return con.execute('SELECT command, summary FROM journal ORDER BY id').fetchall()
    finally:
        con.close()


def export(db):
    return g.gslbctl(db, 'export')[1]


def step(t, db, argv, rc, out='', err='', summary=None):
    """Run gslbctl ARGV; exit status, stdout and stderr must be exactly these, and the journal
    must have gained one row with this summary (and the command line), or none."""
    before = journal(db)
    state = export(db)
    got = g.gslbctl(db, *argv)
    after = journal(db)
    words = ' '.join(argv)
    if summary is not None and rc == 0 and not out and '--quiet' not in argv:
        out = summary + '\n'  # a change prints what it changed, the journal's lines
    t.eq(got, (rc, out, err), 'gslbctl %s: exit %d, output exact' % (words, rc))
    if summary is None:
        t.ok(after == before and export(db) == state, 'gslbctl %s: nothing written' % words,
             after[len(before):])
    else:
        line = ' '.join(w or "''" for w in ['gslbctl', '--db', db] + argv)
        t.eq(after[len(before):], [(line, summary)],
             'gslbctl %s: one journal row' % words)


def changes(t, db):
    """Each command's success, no-change and failure, in an order that reaches all of them."""
    e = 'gslbctl: %s: %s\n'
    step(t, db, ['pool', 'add', 'WWW.edit.test', '--ttl', '20'], 0, summary='+ pool ' + P)
    step(t, db, ['pool', 'add', P], 1, err=e % ('pool add', 'pool %s already exists' % P))
    step(t, db, ['pool', 'set', P, '--ttl', '20'], 0, out='no changes\n')
    step(t, db, ['--quiet', 'pool', 'set', P, '--ttl', '21'], 0,
         summary='~ pool %s ttl 20 -> 21' % P)
    step(t, db, ['pool', 'set', P, '--ttl', '20', '--quiet'], 0,
         summary='~ pool %s ttl 21 -> 20' % P)
    step(t, db, ['pool', 'set', P], 0, out='no changes\n')
    step(t, db, ['pool', 'set', P, '--ttl', '60', '--answers', '2', '--degraded-ttl', '5',
                 '--policy', 'geo'], 0,
         summary='~ pool %s policy weighted -> geo\n~ pool %s ttl 20 -> 60\n'
         '~ pool %s degraded_ttl default -> 5\n~ pool %s answers 1 -> 2' % (P, P, P, P))
    step(t, db, ['pool', 'set', P, '--degraded-ttl', 'default', '--fallback', 'none'], 0,
         summary='~ pool %s degraded_ttl 5 -> default\n~ pool %s fallback all -> none' % (P, P))
    step(t, db, ['pool', 'set', Q, '--ttl', '1'], 1, err=e % ('pool set', 'no pool ' + Q))
    step(t, db, ['pool', 'set', Q, '--ttl', 'x'], 2,
         err=e % ('pool set', '--ttl: x is not a whole number'))

    step(t, db, ['member', 'add', P, 'a', '--address', '192.0.2.1'], 0,
         summary='+ member %sa' % (P + '/'))
    step(t, db, ['member', 'add', P, 'a', '--address', '192.0.2.1'], 1,
         err=e % ('member add', 'member a already exists in pool ' + P))
    step(t, db, ['member', 'add', Q, 'a', '--address', '192.0.2.1'], 1,
         err=e % ('member add', 'no pool ' + Q))
    step(t, db, ['member', 'set', P, 'a', '--weight', '100'], 0, out='no changes\n')
    step(t, db, ['member', 'set', P, 'a', '--weight', '5', '--address', '192.0.2.2',
                 '--address', '2001:DB8::2', '--network', '10.0.0.0/8', '--country', 'de',
                 '--location', '50,8'], 0,
         summary='~ member {p}a addresses 192.0.2.1 -> 192.0.2.2,2001:db8::2\n'
         '~ member {p}a weight 100 -> 5\n~ member {p}a location none -> 50,8\n'
         '~ member {p}a countries none -> DE\n~ member {p}a networks none -> 10.0.0.0/8'
         .format(p=P + '/'))
    step(t, db, ['member', 'set', P, 'a', '--location', '', '--country', '', '--network', ''], 0,
         summary='~ member {p}a location 50,8 -> none\n~ member {p}a countries DE -> none\n'
         '~ member {p}a networks 10.0.0.0/8 -> none'.format(p=P + '/'))
    step(t, db, ['member', 'set', P, 'ghost', '--weight', '1'], 1,
         err=e % ('member set', 'no member ghost in pool ' + P))
    step(t, db, ['member', 'set', Q, 'a', '--weight', '1'], 1,
         err=e % ('member set', 'no pool ' + Q))
    step(t, db, ['member', 'state', P, 'a', 'auto'], 0, out='no changes\n')
    step(t, db, ['member', 'state', P, 'a', 'drain'], 0,
         summary='~ member %sa admin auto -> drain' % (P + '/'))
    step(t, db, ['member', 'state', Q, 'a', 'up'], 1, err=e % ('member state', 'no pool ' + Q))

    step(t, db, ['check', 'set', P, '--type', 'http'], 0, summary='+ check ' + P)
    step(t, db, ['check', 'set', P, '--type', 'http'], 0, out='no changes\n')
    step(t, db, ['check', 'set', P, '--type', 'https', '--expect', '200', '--interval', '4'], 0,
         summary='~ check {p} type http -> https\n~ check {p} expect default -> 200\n'
         '~ check {p} interval 10 -> 4'.format(p=P))
    # --quorum: a field of the check like the others; "quorum" in export only when not majority.
    https = ['check', 'set', P, '--type', 'https', '--expect', '200', '--interval', '4']
    step(t, db, https + ['--quorum', 'any'], 0, summary='~ check %s quorum majority -> any' % P)
    t.eq(json.loads(export(db))['pools'][0]['check'].get('quorum'), 'any',
         'check set --quorum any: export writes "quorum": "any"')
    shown = g.gslbctl(db, 'pool', 'show', P)[1]
    t.ok(' interval 4 timeout 2 rise 2 fall 3 quorum any\n' in shown, 'pool show: quorum any',
         shown)
    step(t, db, https + ['--quorum', 'any'], 0, out='no changes\n')
    step(t, db, https, 0, summary='~ check %s quorum any -> majority' % P)
    t.ok('quorum' not in json.loads(export(db))['pools'][0]['check']
         and 'quorum' not in g.gslbctl(db, 'pool', 'show', P)[1],
         'quorum majority: no "quorum" in export, none in pool show')
    step(t, db, ['check', 'set', P, '--member', 'a', '--type', 'tcp', '--port', '80'], 0,
         summary='+ check %sa' % (P + '/'))
    step(t, db, ['check', 'set', Q, '--member', 'a', '--type', 'tcp', '--port', '80'], 1,
         err=e % ('check set', 'no pool ' + Q))
    step(t, db, ['check', 'rm', P, '--member', 'a'], 0, summary='- check %sa' % (P + '/'))
    step(t, db, ['check', 'rm', P, '--member', 'a'], 1,
         err=e % ('check rm', 'no check on %sa' % (P + '/')))
    step(t, db, ['check', 'rm', P, '--member', 'ghost'], 1,
         err=e % ('check rm', 'no member ghost in pool ' + P))
    step(t, db, ['check', 'rm', P], 0, summary='- check ' + P)
    step(t, db, ['check', 'rm', P], 1, err=e % ('check rm', 'no check on ' + P))
    step(t, db, ['check', 'rm', Q], 1, err=e % ('check rm', 'no pool ' + Q))

    step(t, db, ['member', 'rm', P, 'a'], 0, summary='- member %sa' % (P + '/'))
    step(t, db, ['member', 'rm', P, 'a'], 1, err=e % ('member rm', 'no member a in pool ' + P))
    step(t, db, ['member', 'rm', Q, 'a'], 1, err=e % ('member rm', 'no pool ' + Q))
    step(t, db, ['pool', 'rm', P], 0, summary='- pool ' + P)
    step(t, db, ['pool', 'rm', P], 1, err=e % ('pool rm', 'no pool ' + P))


# Arguments refused before the database is opened: exit 2.
ARGUMENTS = [
    (['pool', 'add'], 'pool add: missing arguments (usage: pool add NAME [options])'),
    (['pool', 'add', 'a.test', 'b.test'], 'pool add: b.test: unexpected argument'),
    (['pool', 'set'], 'pool set: missing arguments (usage: pool set NAME [options])'),
    (['pool', 'rm'], 'pool rm: missing arguments (usage: pool rm NAME)'),
    (['pool', 'rm', 'bad..x'], 'pool rm: POOL: bad..x has an empty label'),
    (['pool', 'rm', 'a.test', '--ttl', '5'], 'pool rm: --ttl: unknown option'),
    (['member', 'add', P], 'member add: missing arguments (usage: member add POOL MEMBER '
     '(--address IP|--alias HOST)... [options])'),
    (['member', 'set', P], 'member set: missing arguments (usage: member set POOL MEMBER '
     '[options])'),
    (['member', 'rm', P, 'a', 'b'], 'member rm: b: unexpected argument'),
    (['member', 'rm', 'bad..x', 'a'], 'member rm: POOL: bad..x has an empty label'),
    (['member', 'rm', P, '-a'], 'member rm: -a: unknown option'),
    (['member', 'state', P, 'a'], 'member state: missing arguments (usage: member state POOL '
     'MEMBER auto|up|down|drain)'),
    (['member', 'state', P, 'A', 'up'], 'member state: MEMBER: A does not start with a-z or 0-9'),
    (['check', 'set'], 'check set: missing arguments (usage: check set POOL [--member MEMBER] '
     '--type TYPE [options])'),
    (['check', 'set', P], 'check set: --type: required (tcp, http or https)'),
    (['check', 'set', P, '--member', 'B', '--type', 'http'],
     'check set: --member: B does not start with a-z or 0-9'),
    (['check', 'set', P, '--type', 'http', '--path', 'x'], 'check set: --path: x does not start '
     'with /'),
    (['check', 'set', P, '--type', 'http', '--path', '/' + 'p' * 512],
     'check set: --path: longer than 512 bytes'),
    (['check', 'set', P, '--type', 'http', '--host', 'h' * 256],
     'check set: --host: longer than 255 bytes'),
    (['check', 'set', P, '--type', 'http', '--match', 'm' * 1025],
     'check set: --match: longer than 1024 bytes'),
    (['check', 'set', P, '--type', 'http', '--timeout', '0.0001'],
     'check set: --timeout: 0.0001: at most 3 decimals (milliseconds)'),
    (['check', 'set', P, '--type', 'http', '--fall', '0'], 'check set: --fall: 0 is not in 1-100'),
    (['check', 'set', P, '--member', 'a', '--type', 'http', '--target', 'x'],
     'check set: --target: x is not an IPv4 or IPv6 address'),
    (['check', 'set', P, '--type', 'http', '--quorum', 'most'],
     'check set: --quorum: most is not majority, any, all or local'),
    (['check', 'set', P, '--type', 'http', '--quorum', 'Any'],
     'check set: --quorum: Any is not majority, any, all or local'),
    (['check', 'rm'], 'check rm: missing arguments (usage: check rm POOL [--member MEMBER])'),
    (['check', 'rm', P, '--member', 'C'], 'check rm: --member: C does not start with a-z or 0-9'),
    (['check', 'rm', P, '--type', 'tcp'], 'check rm: --type: unknown option'),
]

# --expect as given -> the refusal, or None when it is accepted (and stored as given).
EXPECT = [
    ('200', None),
    ('200-299,301', None),
    ('000000000000200', None),
    (','.join(str(200 + i) for i in range(16)), None),
    ('', 'empty list'),
    ('99', '99: 99 is not in 100-599'),
    ('600', '600: 600 is not in 100-599'),
    ('200-', '200-: empty value, expected a number in 100-599'),
    ('-200', '-200: empty value, expected a number in 100-599'),
    ('2a0', '2a0: 2a0 is not a whole number'),
    ('200-300-400', '200-300-400: 300-400 is not a whole number'),
    ('200 ', '200 : 200  is not a whole number'),
    ('+200', '+200: +200 is not a whole number'),
    ('200-2a', '200-2a: 2a is not a whole number'),
    ('99999999999', '99999999999: 99999999999 is not in 100-599'),
    ('200-99999999999', '200-99999999999: 99999999999 is not in 100-599'),
    ('200,,301', '200,,301 is not a list of status codes like 200-299,301'),
    (',200', ',200 is not a list of status codes like 200-299,301'),
    ('0000000000000200', '0000000000000200 is not a list of status codes like 200-299,301'),
    ('200,', '200, ends with a comma'),
    ('300-200', '300-200: range 300-200 is reversed'),
    (','.join(str(200 + i) for i in range(17)),
     ','.join(str(200 + i) for i in range(17)) + ': more than 16 codes or ranges'),
    (','.join(str(200 + i) for i in range(16)) + ',',
     ','.join(str(200 + i) for i in range(16)) + ', ends with a comma'),
    (','.join(str(200 + i) for i in range(16)) + ',99',
     ','.join(str(200 + i) for i in range(16)) + ',99: 99 is not in 100-599'),
    ('1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30',
     '1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,2...: 1 is not '
     'in '
     '100-599'),
]

# --network as given -> as stored, or the refusal.
NETWORK = [
    ('10.0.0.0/8', '10.0.0.0/8'),
    ('10.0.0.0/08', '10.0.0.0/8'),
    ('::/0', '::/0'),
    ('2001:DB8::/32', '2001:db8::/32'),
    ('2001:db8::1/128', '2001:db8::1/128'),
    ('::ffff:10.0.0.0/104', '::ffff:10.0.0.0/104'),
    ('10.0.0.1/8', '! 10.0.0.1/8 has host bits set'),
    ('2001:db8::1/64', '! 2001:db8::1/64 has host bits set'),
    ('10.0.0.0', '! 10.0.0.0 is not a CIDR prefix (ADDRESS/LENGTH)'),
    ('abc/8', '! abc/8 is not a CIDR prefix (ADDRESS/LENGTH)'),
    ('/8', '! /8 is not a CIDR prefix (ADDRESS/LENGTH)'),
    ('1.2.3.4.5/8', '! 1.2.3.4.5/8 is not a CIDR prefix (ADDRESS/LENGTH)'),
    ('a' * 60 + '/8', '! %s/8 is not a CIDR prefix (ADDRESS/LENGTH)' % ('a' * 60)),
    ('10.0.0.0/', '! 10.0.0.0/: prefix length is not in 0-32'),
    ('10.0.0.0/33', '! 10.0.0.0/33: prefix length is not in 0-32'),
    ('10.0.0.0/+8', '! 10.0.0.0/+8: prefix length is not in 0-32'),
    ('10.0.0.0/ 8', '! 10.0.0.0/ 8: prefix length is not in 0-32'),
    ('10.0.0.0/8/8', '! 10.0.0.0/8/8: prefix length is not in 0-32'),
    ('10.0.0.0/99999999999999', '! 10.0.0.0/99999999999999: prefix length is not in 0-32'),
    ('2001:db8::/129', '! 2001:db8::/129: prefix length is not in 0-128'),
]


def grammars(t, db):
    e = 'gslbctl: %s: %s\n'
    g.gslbctl(db, 'pool', 'add', P)
    g.gslbctl(db, 'member', 'add', P, 'a', '--address', '192.0.2.1')
    for argv, want in ARGUMENTS:
        step(t, db, argv, 2, err='gslbctl: %s\n' % want)
    for given, why in EXPECT:
        if why is None:
            rc, out, err = g.gslbctl(db, 'check', 'set', P, '--type', 'http', '--expect', given)
            stored = json.loads(g.gslbctl(db, 'export')[1])['pools'][0]['check'].get('expect')
            t.ok(rc == 0 and err == '' and stored == given, '--expect %s accepted' % given,
                 'exit %d %r, stored %r' % (rc, err, stored))
        else:
            step(t, db, ['check', 'set', P, '--type', 'http', '--expect', given], 2,
                 err=e % ('check set', '--expect: ' + why))
    for given, want in NETWORK:
        if want.startswith('! '):
            step(t, db, ['member', 'set', P, 'a', '--network', given], 2,
                 err=e % ('member set', '--network: ' + want[2:]))
            continue
        rc, out, err = g.gslbctl(db, 'member', 'set', P, 'a', '--network', given)
        member = json.loads(g.gslbctl(db, 'export')[1])['pools'][0]['members'][0]
        t.ok(rc == 0 and err == '' and member.get('networks') == [want],
             '--network %s stored as %s' % (given, want),
             'exit %d %r, stored %r' % (rc, err, member.get('networks')))
    # explain --ecs reads the same prefixes.
    for given, want in (('10.0.0.1/8', '10.0.0.1/8 has host bits set'),
                        ('10.0.0.0/33', '10.0.0.0/33: prefix length is not in 0-32'),
                        ('10.0.0.0', '10.0.0.0 is not a CIDR prefix (ADDRESS/LENGTH)')):
        t.eq(g.gslbctl(db, 'explain', P, '--ecs', given),
             (2, '', e % ('explain', '--ecs: ' + want)), 'explain --ecs %s refused' % given)
    rc, out, err = g.gslbctl(db, 'explain', P, '--ecs', '10.0.0.0/8')
    t.ok(rc == 0 and err == '', 'explain --ecs 10.0.0.0/8 accepted', out + err)


def limits(t, tmp, db):
    """Members per pool, addresses and networks per member: the answer path's maxima."""
    e = 'gslbctl: %s: %s\n'
    g.gslbctl(db, 'pool', 'add', 'full.edit.test')
    con = sqlite3.connect(db)
    pid = con.execute("SELECT id FROM pool WHERE name = 'full.edit.test.'").fetchone()[0]
    for i in range(256):
        mid = con.execute('INSERT INTO member(pool_id, name) VALUES (?, ?)',
                          (pid, 'm%03d' % i)).lastrowid
        con.execute('INSERT INTO member_address(member_id, address, family) VALUES (?, ?, 4)',
                    (mid, '10.0.%d.%d' % (i // 256, i % 256)))
    con.commit()
    con.close()
    step(t, db, ['member', 'add', 'full.edit.test', 'one-more', '--address', '192.0.2.1'], 1,
         err=e % ('member add', 'pool full.edit.test. already has 256 members'))
    # 64 addresses on the command line fill its 64 options; more are refused by apply below.
    many = [w for i in range(64) for w in ('--address', '10.1.0.%d' % i)]
    step(t, db, ['member', 'add', P, 'b'] + many, 0, summary='+ member %sb' % (P + '/'))
    step(t, db, ['member', 'add', P, 'c', '--address', '10.2.0.1'] + many, 2,
         err=e % ('member add', 'too many options'))

    doc = {'version': 1, 'pools': [{'name': 'lim.edit.test.', 'members': [
        {'name': 'a', 'addresses': ['10.3.%d.%d' % (i // 256, i % 256) for i in range(64)],
         'networks': ['10.%d.%d.0/24' % (i // 256, i % 256) for i in range(1024)]}]}]}
    src = os.path.join(tmp, 'limits.json')

    def apply(mutate, rc, err):
        x = json.loads(json.dumps(doc))
        mutate(x)
        with open(src, 'w') as f:
            json.dump(x, f)
        got = g.gslbctl(db, 'apply', src, '--dry-run')
        t.eq((got[0], got[2]), (rc, err), 'apply: %s' % (err.strip() or 'accepted'))

    apply(lambda x: None, 0, '')
    apply(lambda x: x['pools'][0]['members'][0]['addresses'].append('10.4.0.1'), 2,
          e % ('apply', 'pools[0].members[0].addresses: more than 64 addresses'))
    apply(lambda x: x['pools'][0]['members'][0]['networks'].append('10.200.0.0/24'), 2,
          e % ('apply', 'pools[0].members[0].networks: more than 1024 networks'))
    apply(lambda x: x['pools'][0].__setitem__(
        'members', [{'name': 'm%03d' % i, 'addresses': ['10.5.0.1']} for i in range(257)]), 2,
          e % ('apply', 'pools[0].members: more than 256 members'))


def apply_cmd(t, tmp):
    """apply: its arguments, what it prints with and without --dry-run and --prune, and a
    database error in the middle of its writes."""
    e = 'gslbctl: apply: %s\n'
    db = os.path.join(tmp, 'apply.db')
    g.gslbctl(db, 'init')
    A = 'app.edit.test.'

    def file(name, pools):
        path = os.path.join(tmp, name)
        with open(path, 'w') as f:
            json.dump({'version': 1, 'pools': pools}, f)
        return path

    f1 = file('apply1.json', [{'name': A, 'check': {'type': 'tcp', 'port': 80},
                               'members': [{'name': 'a', 'addresses': ['192.0.2.1']}]}])
    f2 = file('apply2.json', [{'name': A, 'ttl': 60, 'check': {'type': 'tcp', 'port': 80},
                               'members': [{'name': 'a', 'addresses': ['192.0.2.1']}]}])
    f3 = file('apply3.json', [])
    nofile = os.path.join(tmp, 'no-such.json')

    step(t, db, ['apply'], 2, err=e % 'missing FILE')
    step(t, db, ['apply', f1, 'x'], 2, err=e % 'x: unexpected argument')
    step(t, db, ['apply', f1, '--force'], 2, err=e % '--force: unknown option')
    step(t, db, ['apply', nofile], 1, err=e % (nofile + ': No such file or directory'))
    added = '+ pool {a}\n+ member {a}/a\n+ check {a}\n'.format(a=A)
    step(t, db, ['apply', f1, '--dry-run'], 0,
         out=added + 'dry run: 3 changes not written\n')
    step(t, db, ['apply', f1], 0, out=added, summary=added[:-1])
    step(t, db, ['apply', f1], 0, out='no changes\n')
    step(t, db, ['apply', f1, '--dry-run'], 0, out='no changes\n')
    changed = '~ pool %s ttl 30 -> 60\n' % A
    step(t, db, ['apply', f2, '--dry-run'], 0, out=changed + 'dry run: 1 change not written\n')

    # A write the database refuses: exit 1 with its reason, nothing printed or written; a dry
    # run does not write, so it does not meet the refusal.
    con = sqlite3.connect(db)
    con.execute("CREATE TRIGGER refuse BEFORE UPDATE ON pool BEGIN "
                "SELECT RAISE(ABORT, 'refused by the test'); END")
    con.commit()
    step(t, db, ['apply', f2], 1,
         err=e % ('database %s: update pool: refused by the test' % db))
    step(t, db, ['apply', f2, '--dry-run'], 0, out=changed + 'dry run: 1 change not written\n')
    con.execute('DROP TRIGGER refuse')
    con.commit()
    con.close()
    step(t, db, ['apply', f2], 0, out=changed, summary=changed[:-1])

    # A drain is an operation: applying the configuration (f2 says admin auto by default) keeps
    # it; --admin applies the file's state; a changed weight is applied with the drain kept.
    step(t, db, ['member', 'state', A, 'a', 'drain'], 0,
         summary='~ member %s/a admin auto -> drain' % A)
    step(t, db, ['apply', f2], 0, out='no changes\n')
    f2w = file('apply2w.json', [{'name': A, 'ttl': 60, 'check': {'type': 'tcp', 'port': 80},
                                 'members': [{'name': 'a', 'addresses': ['192.0.2.1'],
                                              'weight': 50}]}])
    step(t, db, ['apply', f2w], 0, out='~ member %s/a weight 100 -> 50\n' % A,
         summary='~ member %s/a weight 100 -> 50' % A)
    step(t, db, ['apply', f2, '--admin'], 0,
         out='~ member %s/a weight 50 -> 100\n~ member %s/a admin drain -> auto\n' % (A, A),
         summary='~ member %s/a weight 50 -> 100\n~ member %s/a admin drain -> auto' % (A, A))

    # A check's quorum: its diff line, written, read back the same, back to majority; refused.
    tcp = {'type': 'tcp', 'port': 80}
    f4 = file('apply4.json', [{'name': A, 'ttl': 60, 'check': dict(tcp, quorum='all'),
                               'members': [{'name': 'a', 'addresses': ['192.0.2.1']}]}])
    f5 = file('apply5.json', [{'name': A, 'ttl': 60, 'check': dict(tcp, quorum='most'),
                               'members': [{'name': 'a', 'addresses': ['192.0.2.1']}]}])
    quorum = '~ check %s quorum majority -> all\n' % A
    step(t, db, ['apply', f4, '--dry-run'], 0, out=quorum + 'dry run: 1 change not written\n')
    step(t, db, ['apply', f4], 0, out=quorum, summary=quorum[:-1])
    step(t, db, ['apply', f4], 0, out='no changes\n')
    exported = os.path.join(tmp, 'exported.json')
    with open(exported, 'w') as f:
        f.write(export(db))
    t.eq(json.load(open(exported))['pools'][0]['check'], dict(
        tcp, interval=10, timeout=2, rise=2, fall=3, quorum='all'), 'export: "quorum": "all"')
    step(t, db, ['apply', exported], 0, out='no changes\n')
    step(t, db, ['apply', f5], 2,
         err=e % 'pools[0].check.quorum: most is not majority, any, all or local')
    back = '~ check %s quorum all -> majority\n' % A
    step(t, db, ['apply', f2], 0, out=back, summary=back[:-1])

    step(t, db, ['apply', f3], 0, out='no changes\n')
    step(t, db, ['apply', f3, '--prune', '--dry-run'], 0,
         out='- pool %s\ndry run: 1 change not written\n' % A)
    step(t, db, ['apply', f3, '--prune'], 0, out='- pool %s\n' % A, summary='- pool ' + A)


# One valid invocation of each change command, as the database failures are tested with.
COMMANDS = [
    ['pool', 'add', 'new.edit.test'],
    ['pool', 'set', P, '--ttl', '7'],
    ['pool', 'rm', P],
    ['member', 'add', P, 'z', '--address', '192.0.2.9'],
    ['member', 'set', P, 'a', '--weight', '9'],
    ['member', 'rm', P, 'a'],
    ['member', 'state', P, 'a', 'down'],
    ['check', 'set', P, '--type', 'tcp', '--port', '9'],
    ['check', 'rm', P],
]


def cmd_name(argv):
    """The command as messages name it: "pool add", "apply"."""
    return argv[0] if argv[0] == 'apply' else ' '.join(argv[:2])


def label(argv):
    """The command as descriptions name it, to tell apply from apply --dry-run."""
    return cmd_name(argv) + (' --dry-run' if '--dry-run' in argv else '')


def databases(t, tmp):
    """The failures every change command shares: exit 1, one line, nothing written."""
    src = os.path.join(tmp, 'databases.json')
    with open(src, 'w') as f:
        json.dump({'version': 1, 'pools': [{'name': 'applied.edit.test.'}]}, f)
    commands = COMMANDS + [['apply', src], ['apply', src, '--dry-run']]
    missing = os.path.join(tmp, 'missing.db')
    for argv in commands:
        cmd, desc = cmd_name(argv), label(argv)
        t.eq(g.gslbctl(missing, *argv),
             (1, '', 'gslbctl: %s: database %s does not exist (create it with gslbctl init)\n'
              % (cmd, missing)), '%s: missing database' % desc)
        t.ok(not os.path.exists(missing), '%s: the missing database is not created' % desc)

    empty = os.path.join(tmp, 'empty.db')
    con = sqlite3.connect(empty)
    con.execute('CREATE TABLE t(x)')
    con.close()
    newer = os.path.join(tmp, 'newer.db')
    g.gslbctl(newer, 'init')
    con = sqlite3.connect(newer)
    con.execute('PRAGMA user_version = 99')
    con.close()
    junk = os.path.join(tmp, 'junk.db')
    with open(junk, 'w') as f:
        f.write('not a database, but long enough to look like a file header\n' * 4)
    for argv in commands:
        cmd, desc = cmd_name(argv), label(argv)
        t.eq(g.gslbctl(empty, *argv),
             (1, '', 'gslbctl: %s: database %s has schema version 0, not 6 (run gslbctl init)\n'
              % (cmd, empty)), '%s: a database without a schema' % desc)
        t.eq(g.gslbctl(newer, *argv),
             (1, '', 'gslbctl: %s: database %s has schema version 99, newer than this gslbctl '
              '(6)\n' % (cmd, newer)), '%s: a newer schema' % desc)
        t.eq(g.gslbctl(junk, *argv),
             (1, '', 'gslbctl: %s: database %s: file is not a database\n' % (cmd, junk)),
             '%s: a file that is not a database' % desc)

    # Locked past the busy timeout: every command waits it out (all at once: one wait).
    db = os.path.join(tmp, 'locked.db')
    g.gslbctl(db, 'init')
    g.gslbctl(db, 'pool', 'add', P)
    g.gslbctl(db, 'member', 'add', P, 'a', '--address', '192.0.2.1')
    g.gslbctl(db, 'check', 'set', P, '--type', 'http')
    before = journal(db), export(db)
    con = sqlite3.connect(db, isolation_level=None)
    con.execute('BEGIN IMMEDIATE')
    results = [None] * len(commands)

    def run(i):
        results[i] = g.gslbctl(db, *commands[i], timeout=30)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(commands))]
    for th in threads:
        th.start()
    for th in threads:
        th.join(60)
    con.execute('ROLLBACK')
    con.close()
    for argv, got in zip(commands, results):
        t.eq(got, (1, '', 'gslbctl: %s: database %s is locked (waited 5000 ms)\n'
                   % (cmd_name(argv), db)), '%s: a database locked past the busy timeout'
             % label(argv))
    t.ok((journal(db), export(db)) == before, 'the locked database: nothing written')


def help_texts(t, db):
    """--help of each change command: exit 0, the usage line, and no database needed."""
    for argv in COMMANDS + [['apply', 'FILE']]:
        cmd = cmd_name(argv)
        rc, out, err = g.gslbctl(db + '.none', *(cmd.split() + ['--help']))
        t.ok(rc == 0 and err == '' and out.startswith('usage: gslbctl [--db FILE] [--json] %s'
                                                      % cmd) and out.endswith('\n'),
             '%s --help' % cmd, out + err)


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbctl-edit-')
    try:
        db = os.path.join(tmp, 'edit.db')
        t.eq(g.gslbctl(db, 'init'), (0, 'database %s created (schema version 6)\n' % db, ''),
             'init')
        changes(t, db)
        grammars(t, db)
        limits(t, tmp, db)
        apply_cmd(t, tmp)
        help_texts(t, db)
        databases(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
