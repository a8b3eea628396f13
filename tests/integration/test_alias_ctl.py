#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Alias members from gslbctl's side (README "Alias members", gslbctl(8)): member add and set
with --alias, their exit statuses, messages and journal lines; pool show; export and apply
round trips and the errors of apply; and status and explain reading the addresses gslbd
resolved, from alias_state rows this test writes with sqlite3 as gslbd writes them: each
resolved address with the health of its target and when it expires, a never-resolved alias
said so with its failures, and a member with only such an alias never eligible."""

import json
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

P = 'www.glb.example.com.'
ELB = 'my-lb.eu-west-1.elb.amazonaws.com.'


def journal(db):
    con = sqlite3.connect(db)
    try:
        return con.execute('SELECT summary FROM journal ORDER BY id').fetchall()
    finally:
        con.close()


def export(db):
    return g.gslbctl(db, 'export')[1]


def step(t, db, argv, rc, out='', err='', summary=None):
    """gslbctl ARGV: exit status, stdout and stderr exactly these; one journal row with this
    summary (a change prints it too), or nothing written at all."""
    before, state = journal(db), export(db)
    got = g.gslbctl(db, *argv)
    if summary is not None and not out:
        out = summary + '\n'
    words = ' '.join(a or "''" for a in argv)
    t.eq(got, (rc, out, err), 'gslbctl %s: exit %d, output exact' % (words, rc))
    after = journal(db)
    if summary is None:
        t.ok(after == before and export(db) == state, 'gslbctl %s: nothing written' % words)
    else:
        t.eq(after[len(before):], [(summary,)], 'gslbctl %s: its journal row' % words)


def member(db, pool, name):
    rc, out, _ = g.gslbctl(db, '--json', 'pool', 'show', pool)
    if rc != 0:
        return None
    return next((m for m in json.loads(out)['members'] if m['name'] == name), None)


def commands(t, db):
    e = 'gslbctl: %s: %s\n'
    step(t, db, ['pool', 'add', P], 0, summary='+ pool ' + P)
    # The example of README "Alias members": lowercased, with its trailing dot.
    step(t, db, ['member', 'add', P, 'eu', '--alias', 'My-LB.eu-west-1.elb.amazonaws.com'], 0,
         summary='+ member %seu alias %s' % (P + '/', ELB))
    m = member(db, P, 'eu')
    t.ok(m and m.get('alias') == ELB and m.get('addresses') == [],
         'pool show --json: the alias, no address', m)
    rc, out, _ = g.gslbctl(db, 'pool', 'show', P)
    t.ok(rc == 0 and '  member eu\n    addresses none\n    alias %s\n' % ELB in out,
         'pool show: the alias line', out)

    # Neither --address nor --alias, and aliases that are no host name: exit 2, nothing written.
    step(t, db, ['member', 'add', P, 'x'], 2,
         err=e % ('member add', '--address: at least one address (or an --alias) is required'))
    long63 = 'a' * 63
    name255 = '.'.join([long63] * 3 + ['b' * 61]) + '.'   # 255 bytes in wire form
    name256 = '.'.join([long63] * 3 + ['b' * 62]) + '.'
    bad = [
        ('192.0.2.1', '192.0.2.1 is an IP address, not a host name'),
        ('192.0.2.1.', '192.0.2.1. is an IP address, not a host name'),
        ('2001:db8::1', '2001:db8::1 is an IP address, not a host name'),
        ('', 'empty name'),
        ('.', 'the root is not a host name'),
        ('lb..example.net', 'lb..example.net has an empty label'),
        ('lb!.example.net', "lb!.example.net: '!' is not allowed in a host name"),
        (long63 + 'a.example.net', '%s has a label longer than 63 characters'
         % (long63 + 'a.example.net')),
        (name256, '%s... is longer than 255 bytes' % name256[:76]),
    ]
    for alias, why in bad:
        step(t, db, ['member', 'add', P, 'x', '--alias', alias], 2,
             err=e % ('member add', '--alias: ' + why))
    step(t, db, ['member', 'add', P, 'x', '--address', '192.0.2.5', '--alias', '2001:db8::1'], 2,
         err=e % ('member add', '--alias: 2001:db8::1 is an IP address, not a host name'))
    step(t, db, ['member', 'add', P, 'long', '--alias', name255.upper()], 0,
         summary='+ member %slong alias %s' % (P + '/', name255))
    step(t, db, ['member', 'add', P, 'both', '--address', '192.0.2.1', '--alias',
                 'Both_1.Example.NET.'], 0,
         summary='+ member %sboth alias both_1.example.net.' % (P + '/'))
    step(t, db, ['member', 'add', P, 'plain', '--address', '192.0.2.2'], 0,
         summary='+ member %splain' % (P + '/'))

    # member set: --alias H sets it, --alias '' removes it; --address '' clears the addresses
    # of a member that keeps an alias; nothing may be left with neither.
    w = P + '/eu'
    step(t, db, ['member', 'set', P, 'eu', '--alias', 'other.example.net'], 0,
         summary='~ member %s alias %s -> other.example.net.' % (w, ELB))
    step(t, db, ['member', 'set', P, 'eu', '--alias', 'OTHER.example.net.'], 0,
         out='no changes\n')
    step(t, db, ['member', 'set', P, 'eu', '--alias', ''], 2,
         err=e % ('member set', '--alias: %s would have no address and no alias' % w))
    step(t, db, ['member', 'set', P, 'plain', '--address', ''], 2,
         err=e % ('member set', '--address: %splain would have no address and no alias'
                  % (P + '/')))
    step(t, db, ['member', 'set', P, 'eu', '--alias', '198.51.100.1'], 2,
         err=e % ('member set', '--alias: 198.51.100.1 is an IP address, not a host name'))
    step(t, db, ['member', 'set', P, 'eu', '--address', '192.0.2.9', '--alias', ''], 0,
         summary='~ member %s addresses none -> 192.0.2.9\n'
         '~ member %s alias other.example.net. -> none' % (w, w))
    m = member(db, P, 'eu')
    t.ok(m and 'alias' not in m and m['addresses'] == ['192.0.2.9'],
         'the alias removed: not in pool show --json', m)
    step(t, db, ['member', 'set', P, 'eu', '--alias', 'new.example.net', '--address', ''], 0,
         summary='~ member %s addresses 192.0.2.9 -> none\n'
         '~ member %s alias none -> new.example.net.' % (w, w))
    step(t, db, ['member', 'set', P, 'plain', '--alias', 'p.example.net', '--weight', '7'], 0,
         summary='~ member %splain alias none -> p.example.net.\n'
         '~ member %splain weight 100 -> 7' % (P + '/', P + '/'))
    rc, out, _ = g.gslbctl(db, '--json', 'log', '--limit', '1')
    t.ok(rc == 0 and 'alias none -> p.example.net.' in json.loads(out)['entries'][0]['summary'],
         'log --json: the alias change in the summary', out)


def export_apply(t, tmp, db):
    e = 'gslbctl: apply: %s\n'
    text = export(db)
    doc = json.loads(text)
    members = {m['name']: m for m in doc['pools'][0]['members']}
    t.ok(members['eu'].get('alias') == 'new.example.net.' and members['eu']['addresses'] == []
         and 'alias' not in members.get('x', {}) and members['both']['alias'] ==
         'both_1.example.net.', 'export: "alias" of each alias member', members)
    path = os.path.join(tmp, 'export.json')
    with open(path, 'w') as f:
        f.write(text)
    db2 = os.path.join(tmp, 'copy.db')
    g.gslbctl(db2, 'init')
    rc, out, err = g.gslbctl(db2, 'apply', path)
    t.ok(rc == 0 and '+ member %seu alias new.example.net.\n' % (P + '/') in out,
         'apply the export to an empty database: the alias member added, said so', out + err)
    t.eq(export(db2), text, 'export, apply, export: the same bytes')
    t.eq(g.gslbctl(db2, 'apply', path), (0, 'no changes\n', ''), 'apply again: no changes')

    # A changed alias, a removed one and an added one, as apply shows and writes them.
    for m in doc['pools'][0]['members']:
        if m['name'] == 'eu':
            m['alias'] = 'Changed.example.net'
        elif m['name'] == 'both':
            del m['alias']
        elif m['name'] == 'plain':
            m['addresses'] = []
    doc['pools'][0]['members'].append({'name': 'z', 'alias': 'z.example.net'})
    with open(path, 'w') as f:
        json.dump(doc, f)
    w = P + '/'
    lines = ('~ member {w}both alias both_1.example.net. -> none\n'
             '~ member {w}eu alias new.example.net. -> changed.example.net.\n'
             '~ member {w}plain addresses 192.0.2.2 -> none\n'
             '+ member {w}z alias z.example.net.\n').format(w=w)
    t.eq(g.gslbctl(db2, 'apply', path, '--dry-run'),
         (0, lines + 'dry run: 4 changes not written\n', ''), 'apply --dry-run: alias changes')
    step(t, db2, ['apply', path], 0, out=lines, summary=lines[:-1])
    m = member(db2, P, 'both')
    t.ok(m and 'alias' not in m and m['addresses'] == ['192.0.2.1'], 'apply: alias removed', m)

    # Files apply refuses: exit 2, the value named by its path, nothing written.
    def refused(member_json, why):
        with open(path, 'w') as f:
            json.dump({'version': 1, 'pools': [{'name': P, 'members': [member_json]}]}, f)
        step(t, db2, ['apply', path], 2, err=e % ('pools[0].members[0].' + why))

    refused({'name': 'a', 'alias': '192.0.2.1'},
            'alias: 192.0.2.1 is an IP address, not a host name')
    refused({'name': 'a', 'alias': 'bad name.example'},
            "alias: bad name.example: ' ' is not allowed in a host name")
    refused({'name': 'a'}, 'addresses: missing')
    refused({'name': 'a', 'addresses': []},
            'addresses: at least one address is required (or an alias)')


def sql(db, *statements):
    con = sqlite3.connect(db)
    try:
        for s in statements:
            con.execute(*s) if isinstance(s, tuple) else con.execute(s)
        con.commit()
    finally:
        con.close()


def target_state(db, key, state, since, reason):
    """A target's stored state, as gslbd's health writer stores it."""
    sql(db, ("INSERT OR IGNORE INTO target(key) VALUES(?)", (key,)),
        ("INSERT OR REPLACE INTO target_state(target_id, state, since, reason, last_probe) "
         "SELECT id, ?, ?, ?, ? FROM target WHERE key = ?", (state, since, reason, since, key)))


def status_explain(t, tmp):
    db = os.path.join(tmp, 'status.db')
    A = 'apex.glb.example.com.'
    for argv in (['init'], ['pool', 'add', A], ['check', 'set', A, '--type', 'tcp', '--port', 80],
                 ['member', 'add', A, 'own', '--address', '192.0.2.1'],
                 ['member', 'add', A, 'al', '--alias', 'al.example.net'],
                 ['member', 'add', A, 'nev', '--alias', 'nev.example.net'],
                 ['member', 'add', A, 'gone', '--alias', 'gone.example.net']):
        rc, out, err = g.gslbctl(db, *argv)
        t.ok(rc == 0, 'gslbctl %s' % ' '.join(map(str, argv)), out + err)
    now = int(time.time())
    # As gslbd stores what it resolved (src/db/schema.sql, alias_state): al resolved to two
    # addresses; nev failed three times and never resolved; gone has no row yet.
    sql(db, ("INSERT INTO alias_state(name, addresses, resolved, expires, failures) "
             "VALUES('al.example.net.', '2001:db8::7,198.51.100.7', ?, ?, 0)",
             (now - 10, now + 600)),
        ("INSERT INTO alias_state(name, addresses, failures, error, error_time) "
         "VALUES('nev.example.net.', NULL, 3, 'SERVFAIL', ?)", (now - 5,)))
    target_state(db, 'tcp 198.51.100.7:80', 'down', now - 30, 'connection refused')

    rc, out, err = g.gslbctl(db, '--json', 'status', A)
    st = json.loads(out) if rc == 0 else {}
    ms = {m['name']: m for m in st.get('pools', [{}])[0].get('members', [])}
    al = ms.get('al', {})
    addrs = {a['address']: a for a in al.get('addresses', [])}
    expires = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(now + 600))
    t.ok(sorted(addrs) == ['198.51.100.7', '2001:db8::7'],
         'status --json: the alias member has the addresses it resolved to', al)
    a4, a6 = addrs.get('198.51.100.7', {}), addrs.get('2001:db8::7', {})
    t.ok(a4.get('alias') == 'al.example.net.' and a4.get('expires') == expires and
         a6.get('alias') == 'al.example.net.' and a6.get('expires') == expires,
         'status --json: each with "alias" and "expires" (RFC 3339)', addrs)
    t.ok(a4.get('state') == 'down' and a4.get('reason') == 'connection refused' and
         a4.get('target') == 'tcp 198.51.100.7:80' and a6.get('state') == 'up' and
         a6.get('reason') == 'not probed yet',
         'status --json: each with the state of its health target', addrs)
    own = ms.get('own', {}).get('addresses', [{}])[0]
    t.ok(own.get('address') == '192.0.2.1' and 'alias' not in own and 'expires' not in own and
         'alias' not in ms['own'], 'status --json: an address of the member\'s own: no alias', own)
    t.eq(al.get('alias'), {'name': 'al.example.net.', 'resolved': time.strftime(
        '%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 10)), 'expires': expires, 'addresses': 2,
        'failures': 0, 'error': None, 'error_time': None}, 'status --json: the alias resolved')
    t.eq(ms.get('nev', {}).get('alias'), {
        'name': 'nev.example.net.', 'resolved': None, 'expires': None, 'addresses': 0,
        'failures': 3, 'error': 'SERVFAIL', 'error_time': time.strftime(
            '%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 5))},
        'status --json: never resolved, its failures and last error')
    t.ok(ms.get('nev', {}).get('addresses') == [] and ms.get('gone', {}).get('addresses') == []
         and ms.get('gone', {}).get('alias', {}).get('resolved', 1) is None,
         'status --json: never resolved, or not yet tried: no address', ms)

    rc, out, err = g.gslbctl(db, 'status', A)
    lines = out.splitlines()
    alias_line = next((ln for ln in lines if ln.startswith('    alias al.example.net.: ')), '')
    left = alias_line.rsplit('expires in ', 1)[-1].split(' s')[0]
    t.ok(alias_line.startswith('    alias al.example.net.: 2 addresses, resolved ') and
         left.isdigit() and 590 <= int(left) <= 600,
         'status: the alias, its addresses and when they expire ("expires in N s")', out)
    a_line = next((ln for ln in lines if ln.startswith('    198.51.100.7 ')), '')
    t.ok(a_line.startswith('    198.51.100.7 down since ') and '(connection refused)' in a_line
         and ' alias al.example.net., expires in ' in a_line,
         'status: the resolved address with its health and expiry', out)
    t.ok('    alias nev.example.net.: never resolved (the member has no address); 3 failures '
         'since the last success, the last SERVFAIL at %s' % time.strftime(
             '%Y-%m-%dT%H:%M:%SZ', time.gmtime(now - 5)) in lines,
         'status: a never-resolved alias said so, with its failures and last error', out)
    t.ok('    alias gone.example.net.: never resolved (the member has no address)' in lines,
         'status: an alias with no state yet: never resolved', out)

    # explain: the resolved addresses with their alias; a member whose alias never resolved
    # is not eligible (A: al's only IPv4 address is down, so own alone is).
    def explain(*args):
        rc, out, err = g.gslbctl(db, '--json', 'explain', A, *args)
        return json.loads(out) if rc == 0 else {'error': err}
    x = explain()
    xm = {m['name']: m for m in x.get('members', [])}
    t.ok(xm.get('al', {}).get('alias') == 'al.example.net.' and
         [(a['address'], a['healthy'], a['alias'], a['expires']) for a in
          xm['al']['addresses']] == [('198.51.100.7', False, 'al.example.net.', expires)],
         'explain A: the resolved address, unhealthy, with its alias and expiry', x)
    t.ok(not xm.get('nev', {}).get('eligible', True) and xm['nev']['addresses'] == [] and
         xm['nev']['probability'] == 0 and not xm['gone']['eligible'] and
         xm['own']['probability'] == 1 and x.get('answer') == ['192.0.2.1'],
         'explain A: the never-resolved aliases are not eligible; own alone answers', x)
    x = explain('--type', 'AAAA')
    xm = {m['name']: m for m in x.get('members', [])}
    t.ok(xm.get('al', {}).get('eligible') and xm['al']['probability'] == 1 and
         x.get('answer') == ['2001:db8::7'] and not x.get('nodata', True),
         'explain AAAA: the alias\'s IPv6 address answers (it is probed up)', x)
    target_state(db, 'tcp 198.51.100.7:80', 'up', now, 'connected')
    x = explain()
    xm = {m['name']: m for m in x.get('members', [])}
    t.ok(xm.get('al', {}).get('eligible') and xm['al']['probability'] == 0.5 and
         xm['own']['probability'] == 0.5 and not xm['nev']['eligible'],
         'explain A: the resolved address up, the alias member shares the answers', x)
    rc, out, err = g.gslbctl(db, 'explain', A)
    t.ok(rc == 0 and '198.51.100.7(up: connected)[alias al.example.net.]' in out and
         '      alias nev.example.net.: never resolved, no address from it (not eligible: the '
         'member has none of its own)\n' in out and
         '      alias al.example.net.: 2 addresses, expires in ' in out,
         'explain: the addresses with their alias, a never-resolved alias said so', out + err)

    # history: the state changes of a resolved address, under its member.
    sql(db, ("INSERT INTO state_change(time, target_id, from_state, to_state, reason) "
             "SELECT ?, id, 'up', 'down', 'connection refused' FROM target "
             "WHERE key = 'tcp 198.51.100.7:80'", (now - 30,)))
    rc, out, err = g.gslbctl(db, '--json', 'history', A, 'al')
    ch = json.loads(out).get('changes', []) if rc == 0 else []
    t.ok([(c['member'], c['address'], c['to']) for c in ch] ==
         [('al', '198.51.100.7', 'down')], 'history: a resolved address\'s changes', out + err)

    # Resolved to nothing: still no address, and said so.
    sql(db, ("UPDATE alias_state SET addresses = '' WHERE name = 'al.example.net.'",))
    x = explain('--type', 'AAAA')
    t.ok(x.get('nodata') is True and x.get('answer') == [],
         'explain AAAA: an alias resolved to no address leaves no IPv6 member: NODATA', x)


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslb-alias-ctl-')
    try:
        db = os.path.join(tmp, 'alias.db')
        t.eq(g.gslbctl(db, 'init')[0], 0, 'init')
        commands(t, db)
        export_apply(t, tmp, db)
        status_explain(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
