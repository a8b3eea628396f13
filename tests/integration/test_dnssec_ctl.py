#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl dnssec (README "DNSSEC", gslbctl(8)): enable, disable, ds, status and rollover on a
real SQLite file, every exit status; the keys checked independently of gslbd's code: the key tag
and DS computed by dnspython from a DNSKEY built of the stored public key, the private key read
by cryptography and seen to sign what the public key verifies; rollover timers from the zone's
largest TTL; the journal; and a running gslbd that keeps answering its pools while keys come and
go (a change that wrote no pool used to empty them)."""

import base64
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.dnssec  # noqa: E402
import dns.name  # noqa: E402
import dns.rdata  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
from cryptography.exceptions import InvalidSignature  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402

import gslbtest as g  # noqa: E402

Z = 'signed.test.'
Z2 = 'ed.test.'
ZONE_FILE = '''$ORIGIN signed.test.
$TTL 300
@ 7200 SOA ns hostmaster 1 3600 600 86400 60
@ NS ns
ns A 192.0.2.53
'''


def one_line(err):
    return err.count('\n') == 1 and err.endswith('\n')


class Ctl:
    def __init__(self, tmp):
        self.tmp = tmp
        self.db = os.path.join(tmp, 'gslb.db')
        self.zones = os.path.join(tmp, 'zones')
        os.mkdir(self.zones)
        with open(os.path.join(self.zones, 'signed.test.zone'), 'w') as f:
            f.write(ZONE_FILE)
        with open(os.path.join(self.zones, 'file.test.zone'), 'w') as f:
            f.write(ZONE_FILE.replace('signed.test.', 'file.test.'))
        self.conf = os.path.join(tmp, 'gslbd.conf')
        with open(self.conf, 'w') as f:
            f.write('zones = %s\ncontrol = none\n' % self.zones)

    def sql(self, query, *params):
        con = sqlite3.connect(self.db, timeout=10)
        try:
            return con.execute(query, params).fetchall()
        finally:
            con.close()

    def keys(self, zone):
        """The zone's rows as dicts, oldest first."""
        cols = ('id', 'zone', 'algorithm', 'key_tag', 'flags', 'public_key', 'private_key',
                'created', 'publish', 'active', 'retire', 'remove')
        rows = self.sql('SELECT %s FROM dnssec_key WHERE zone = ? ORDER BY publish, id'
                        % ', '.join(cols), zone)
        return [dict(zip(cols, r)) for r in rows]


def run_ctl(c, *args):
    """gslbctl -c CONF --db DB ARGS: (exit status, stdout, stderr)."""
    env = dict(os.environ)
    env.pop('GSLB_DB', None)
    p = subprocess.run([g.GSLBCTL, '-c', c.conf, '--db', c.db] + [str(a) for a in args],
                       capture_output=True, text=True, errors='replace', env=env, timeout=30)
    return p.returncode, p.stdout, p.stderr


def dnskey_of(row):
    """The DNSKEY rdata of a stored key, built by dnspython from the stored fields."""
    text = '%d 3 %d %s' % (row['flags'], row['algorithm'],
                           base64.b64encode(row['public_key']).decode())
    return dns.rdata.from_text(dns.rdataclass.IN, dns.rdatatype.DNSKEY, text)


def ds_line(zone, row):
    ds = dns.dnssec.make_ds(dns.name.from_text(zone), dnskey_of(row), 'SHA256')
    return '%s 3600 IN DS %d %d 2 %s' % (zone, ds.key_tag, ds.algorithm, ds.digest.hex().upper())


def key_pair_ok(row):
    """The private key (PKCS#8 DER) signs what the stored public key verifies."""
    try:
        return key_pair_check(row)
    except ValueError:   # a key cryptography cannot read
        return False


def key_pair_check(row):
    priv = serialization.load_der_private_key(row['private_key'], None)
    data = b'gslbd dnssec test %d' % row['key_tag']
    if row['algorithm'] == 13:
        if not isinstance(priv, ec.EllipticCurvePrivateKey) or priv.curve.name != 'secp256r1':
            return False
        pub = ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(),
                                                           b'\x04' + row['public_key'])
        sig = priv.sign(data, ec.ECDSA(hashes.SHA256()))
        verify = (lambda s, d: pub.verify(s, d, ec.ECDSA(hashes.SHA256())))
    else:
        if not isinstance(priv, ed25519.Ed25519PrivateKey):
            return False
        pub = ed25519.Ed25519PublicKey.from_public_bytes(row['public_key'])
        sig = priv.sign(data)
        verify = pub.verify
    try:
        verify(sig, data)
    except InvalidSignature:
        return False
    try:
        verify(sig, data + b'!')
        return False
    except InvalidSignature:
        return True


def journal(c):
    rc, out, err = run_ctl(c, '--json', 'log', '--limit', '100')
    return json.loads(out)['entries'] if rc == 0 else []


def usage(t, c):
    """Invalid commands and values: exit 2, one line, nothing written."""
    cases = [
        (('dnssec', 'enable'), 'missing ZONE'),
        (('dnssec', 'enable', 'bad..name.'), 'ZONE:'),
        (('dnssec', 'enable', Z, 'extra'), 'unexpected argument'),
        (('dnssec', 'enable', Z, '--algorithm', 'rsasha256'), '--algorithm'),
        (('dnssec', 'enable', Z, '--bogus'), 'unknown option'),
        (('dnssec', 'rollover', Z, '--max-ttl', '0'), '--max-ttl'),
        (('dnssec', 'rollover', Z, '--max-ttl', 'x'), '--max-ttl'),
        (('dnssec', 'rollover', Z, '--parent-ttl', '-1'), '--parent-ttl'),
        (('dnssec', 'ds'), 'missing ZONE'),
        (('dnssec', 'disable', 'a b.'), 'ZONE:'),
        (('dnssec', 'status', Z, Z2), 'unexpected argument'),
        (('dnssec', 'frobnicate'), 'unknown subcommand'),
    ]
    for args, what in cases:
        rc, out, err = run_ctl(c, *args)
        t.ok(rc == 2 and what in err and one_line(err), '%s: exit 2 naming %s'
             % (' '.join(args), what), 'exit %d: %s' % (rc, err))
    rc, out, err = run_ctl(c, '--json', 'dnssec', 'enable', Z, '--algorithm', 'x')
    e = json.loads(err) if err.startswith('{') else {}
    t.ok(rc == 2 and e.get('status') == 2 and '--algorithm' in e.get('error', ''),
         '--json: the error as {"error", "status"} on stderr', err)
    t.eq(c.sql('SELECT count(*) FROM dnssec_key'), [(0,)], '... and no key written')
    rc, out, err = run_ctl(c, 'dnssec', 'status')
    t.ok(rc == 0 and out == 'no zone is signed\n', 'dnssec status with no key: "no zone is '
         'signed", exit 0', out + err)
    rc, out, err = run_ctl(c, '--json', 'dnssec', 'status')
    t.ok(rc == 0 and json.loads(out or 'null') == {'zones': []},
         'dnssec status --json with no key: {"zones": []}', out + err)
    t.eq(journal(c), [], '... nor a journal entry')


def enable(t, c):
    t0 = int(time.time())
    rc, out, err = run_ctl(c, 'dnssec', 'enable', 'Signed.TEST')
    t1 = int(time.time())
    rows = c.keys(Z)
    t.ok(rc == 0 and err == '' and len(rows) == 1, 'dnssec enable: exit 0, one key',
         'exit %d: %s' % (rc, err))
    k = rows[0] if rows else {}
    t.ok(out.startswith('+ dnssec %s key %d ecdsap256sha256 active ' % (Z, k.get('key_tag', -1)))
         and ('gslbctl dnssec ds %s' % Z) in out, 'it prints the change and how to get the DS',
         out)
    t.ok(k.get('zone') == Z and k.get('algorithm') == 13 and k.get('flags') == 257 and
         len(k.get('public_key', b'')) == 64,
         'the key: zone lowercased with its dot, ECDSAP256SHA256 (13) by default, flags 257 (a '
         'CSK), 64 bytes of public key (RFC 6605 4)', k)
    t.ok(t0 <= k.get('created', 0) <= t1 and k.get('publish') == k.get('active') ==
         k.get('created') and k.get('retire') is None and k.get('remove') is None,
         'published and active now; retire and remove not planned (NULL)', k)
    t.eq(k.get('key_tag'), dns.dnssec.key_id(dnskey_of(k)) if k else None,
         'its key tag is dnspython\'s for the DNSKEY of the stored public key')
    t.ok(k and key_pair_ok(k), 'the stored private key (PKCS#8) signs what the stored public '
         'key verifies')

    before = c.keys(Z)
    rc, out, err = run_ctl(c, 'dnssec', 'enable', Z, '--algorithm', 'ed25519')
    t.ok(rc == 1 and 'signed already' in err and one_line(err) and out == '',
         'dnssec enable on a signed zone: exit 1, one line', err)
    t.eq(c.keys(Z), before, '... and its key unchanged')

    rc, out, err = run_ctl(c, '--quiet', 'dnssec', 'enable', Z2, '--algorithm', 'ED25519')
    rows = c.keys(Z2)
    k2 = rows[0] if rows else {}
    t.ok(rc == 0 and out == '' and one_line(err) and
         ('warning: gslbd serves no zone %s (zones in %s)' % (Z2, c.zones)) in err,
         'dnssec enable --algorithm ed25519 --quiet: exit 0, prints nothing but a warning: '
         'gslbd has no such zone', out + err)
    t.ok(k2.get('algorithm') == 15 and len(k2.get('public_key', b'')) == 32 and
         k2.get('key_tag') == dns.dnssec.key_id(dnskey_of(k2)) and key_pair_ok(k2),
         'an Ed25519 key (15): 32 bytes of public key (RFC 8080 3), its tag, its key pair', k2)


def ds(t, c):
    rc, out, err = run_ctl(c, 'dnssec', 'ds', Z)
    want = ''.join(ds_line(Z, k) + '\n' for k in c.keys(Z))
    t.ok(rc == 0 and out == want and err == '',
         'dnssec ds: the DS record dnspython computes (SHA-256, digest type 2)',
         'got:  %r\nwant: %r' % (out, want))
    rc, out, err = run_ctl(c, 'dnssec', 'ds', Z2)
    t.eq(out, ''.join(ds_line(Z2, k) + '\n' for k in c.keys(Z2)), 'dnssec ds of an Ed25519 key')
    rc, out, err = run_ctl(c, '--json', 'dnssec', 'ds', Z)
    t.ok(rc == 0 and json.loads(out) == {'zone': Z, 'ds': [ds_line(Z, k) for k in c.keys(Z)]},
         'dnssec ds --json: {"zone", "ds": [...]}', out)
    rc, out, err = run_ctl(c, 'dnssec', 'ds', 'unsigned.test')
    t.ok(rc == 1 and 'not signed' in err and one_line(err) and out == '',
         'dnssec ds of an unsigned zone: exit 1', err)


def status(t, c):
    k = c.keys(Z)[0]
    rc, out, err = run_ctl(c, 'dnssec', 'status', Z)
    t.ok(rc == 0 and out.startswith(Z + '\n') and
         ('  key %d ecdsap256sha256 flags 257 created ' % k['key_tag']) in out and
         'active since ' in out and 'nothing planned' in out and ds_line(Z, k) in out,
         'dnssec status ZONE: the key, its algorithm, state, what comes next, its DS', out)
    rc, out, err = run_ctl(c, 'dnssec', 'status')
    t.ok(rc == 0 and out.index(Z2) < out.index(Z), 'dnssec status: every signed zone, by name',
         out)
    rc, out, err = run_ctl(c, '--json', 'dnssec', 'status')
    st = json.loads(out) if rc == 0 else {}
    zones = [z['zone'] for z in st.get('zones', [])]
    t.eq(zones, [Z2, Z], 'dnssec status --json: {"zones": [{"zone", "keys"}]}')
    j = st['zones'][1]['keys'][0] if len(zones) == 2 else {}
    created = time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(k['created']))
    t.ok(j.get('key_tag') == k['key_tag'] and j.get('algorithm') == 'ecdsap256sha256' and
         j.get('algorithm_number') == 13 and j.get('flags') == 257 and
         j.get('created') == created and j.get('publish') == created and
         j.get('active') == created and j.get('retire') is None and j.get('remove') is None and
         j.get('state') == 'active' and j.get('since') == created and j.get('next') is None and
         j.get('published') is True and j.get('ds') == ds_line(Z, k) and
         j.get('usable') is True,
         'a key in JSON: key_tag, algorithm, times (RFC 3339, null when not planned), state, '
         'since, next, published, ds, usable', j)
    rc, out, err = run_ctl(c, 'dnssec', 'status', 'unsigned.test.')
    t.ok(rc == 1 and 'not signed' in err and one_line(err), 'dnssec status of an unsigned '
         'zone: exit 1', err)


def rollover(t, c):
    old = c.keys(Z)[0]
    # T from the zone file (its SOA's 7200, over $TTL 300) and the pools in the zone: a pool's
    # degraded TTL above it wins, one outside the zone does not count.
    run_ctl(c, 'pool', 'add', 'www.' + Z, '--ttl', '60', '--degraded-ttl', '9000')
    run_ctl(c, 'pool', 'add', 'www.other.test.', '--ttl', '86400')
    t0 = int(time.time())
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', Z)
    t1 = int(time.time())
    rows = c.keys(Z)
    t.ok(rc == 0 and err == '' and len(rows) == 2, 'dnssec rollover: exit 0, two keys',
         'exit %d: %s' % (rc, err))
    if len(rows) != 2:
        return
    o, n = (rows[0], rows[1]) if rows[0]['id'] == old['id'] else (rows[1], rows[0])
    T, P = 9000, 86400
    t.ok(t0 <= n['publish'] <= t1 and n['created'] == n['publish'] and
         n['active'] == n['publish'] + T and n['retire'] is None and n['remove'] is None,
         'the new key: published now, active after T (the largest TTL: a pool\'s degraded '
         'TTL 9000)', n)
    t.ok(o['publish'] == old['publish'] and o['active'] == old['active'] and
         o['retire'] == o['remove'] == n['publish'] + 2 * T + P,
         'the old key: signs beside the new one until it is removed, 2T plus the parent\'s DS '
         'TTL (86400) from now', o)
    t.ok(n['algorithm'] == 13 and n['key_tag'] != o['key_tag'] and key_pair_ok(n) and
         n['key_tag'] == dns.dnssec.key_id(dnskey_of(n)),
         'the new key: the old one\'s algorithm, a tag of its own, a key pair', n)
    t.ok(out == '+ dnssec %s key %d ecdsap256sha256 published %s active %s\n'
         '~ dnssec %s key %d ecdsap256sha256 retire %s remove %s\n'
         % (Z, n['key_tag'], *[time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(x))
                               for x in (n['publish'], n['active'])],
            Z, o['key_tag'], *[time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(x))
                               for x in (o['retire'], o['remove'])]),
         'it prints both keys\' changes', out)
    rc, out, err = run_ctl(c, 'dnssec', 'ds', Z)
    t.eq(out, ''.join(ds_line(Z, k) + '\n' for k in rows),
         'during the rollover dnssec ds prints the DS of both keys')
    st = json.loads(run_ctl(c, '--json', 'dnssec', 'status', Z)[1])['zones'][0]['keys']
    by = {k['key_tag']: k for k in st}
    fmt = (lambda x: time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime(x)))
    t.ok(by[o['key_tag']]['state'] == 'active' and
         by[o['key_tag']]['next'] == {'state': 'removed', 'time': fmt(o['remove'])} and
         by[n['key_tag']]['state'] == 'published' and
         by[n['key_tag']]['next'] == {'state': 'active', 'time': fmt(n['active'])},
         'status: the old key active until it is removed, the new one published until active',
         st)
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', Z)
    t.ok(rc == 1 and 'under way' in err and one_line(err), 'a second rollover while one is '
         'under way: exit 1', err)
    t.eq(c.keys(Z), rows, '... nothing changed')

    # A short rollover (--max-ttl, --parent-ttl 0), watched through to its end.
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', Z2, '--max-ttl', '1', '--parent-ttl', '0')
    rows = c.keys(Z2)
    t.ok(rc == 0 and len(rows) == 2 and rows[1]['active'] - rows[1]['publish'] == 1 and
         rows[0]['retire'] == rows[0]['remove'] == rows[1]['publish'] + 2,
         'rollover --max-ttl 1 --parent-ttl 0: the new key active in 1 s, the old one removed in '
         '2 s', rows)
    time.sleep(max(0, rows[0]['remove'] + 1.1 - time.time()) if len(rows) == 2 else 0)
    st = json.loads(run_ctl(c, '--json', 'dnssec', 'status', Z2)[1])['zones'][0]['keys']
    t.eq([(k['state'], k['published']) for k in st], [('removed', False), ('active', True)],
         'after its times: the old key removed, the new one active')
    rc, out, err = run_ctl(c, 'dnssec', 'ds', Z2)
    t.eq(out, ds_line(Z2, rows[1]) + '\n' if len(rows) == 2 else None,
         'dnssec ds: only the key still published')
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', Z2, '--max-ttl', '1', '--parent-ttl', '0')
    left = c.keys(Z2)
    t.ok(rc == 0 and out.startswith('- dnssec %s key %d ed25519 removed ' %
                                    (Z2, rows[0]['key_tag'])) and
         len(left) == 2 and left[0]['id'] == rows[1]['id'],
         'the next rollover drops the removed key and rolls the one in use', out + err)

    # A zone with no pool: T is its file's largest TTL (the SOA's 7200).
    run_ctl(c, 'dnssec', 'enable', 'file.test.')
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', 'file.test.')
    rows = c.keys('file.test.')
    t.ok(rc == 0 and err == '' and len(rows) == 2 and
         rows[1]['active'] - rows[1]['publish'] == 7200,
         'a zone of no pool: T is the largest TTL of its file (7200)', rows)

    # A zone gslbd has no file of: T 86400, said on stderr.
    run_ctl(c, 'dnssec', 'enable', 'nofile.test.')
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', 'nofile.test.', '--parent-ttl', '0')
    rows = c.keys('nofile.test.')
    t.ok(rc == 0 and 'taking 86400 s' in err and one_line(err) and len(rows) == 2 and
         rows[1]['active'] - rows[1]['publish'] == 86400,
         'a zone whose file gslbctl cannot read: T is 86400, with a warning', err)
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', 'unsigned.test.', '--max-ttl', '5')
    t.ok(rc == 1 and 'not signed' in err and one_line(err), 'rollover of an unsigned zone: '
         'exit 1', err)


def disable(t, c):
    tags = [k['key_tag'] for k in c.keys(Z)]
    rc, out, err = run_ctl(c, 'dnssec', 'disable', Z)
    t.ok(rc == 0 and out == ''.join('- dnssec %s key %d ecdsap256sha256\n' % (Z, x)
                                    for x in tags),
         'dnssec disable: exit 0, each key removed printed', out)
    t.ok(one_line(err) and 'warning' in err and 'DS' in err and 'parent' in err,
         '... and a warning about the parent\'s DS on stderr', err)
    t.eq(c.keys(Z), [], 'the zone has no key left')
    t.ok(len(c.keys(Z2)) == 2, 'the other zone keeps its keys')
    rc, out, err = run_ctl(c, 'dnssec', 'disable', Z)
    t.ok(rc == 1 and 'not signed' in err and one_line(err), 'disable again: exit 1', err)


def journal_entries(t, c):
    js = journal(c)
    cmds = [j['command'].split(' dnssec ', 1)[-1] for j in js if ' dnssec ' in j['command']]
    t.ok(cmds[:3] == ['disable %s' % Z, 'rollover nofile.test. --parent-ttl 0',
                      'enable nofile.test.'],
         'every dnssec change is a journal entry with its command, newest first', cmds)
    e = [j for j in js if j['command'].endswith('dnssec enable Signed.TEST')]
    t.ok(len(e) == 1 and e[0]['summary'].startswith('+ dnssec %s key ' % Z) and
         '@' in e[0]['actor'], 'the enable entry: actor and summary', e)
    t.ok(not any('dnssec ds' in j['command'] or 'dnssec status' in j['command'] for j in js),
         'ds and status change nothing: no entry')


def unusable(t, c):
    """A key row gslbd cannot use (gslbd(8) DNSSEC): status says so, and no rollover starts from
    it or drops the keys gslbd may be signing with instead."""
    B = 'bad.test.'
    rc, out, err = run_ctl(c, 'dnssec', 'enable', B, '--algorithm', 'ed25519')
    rc2, out, err2 = run_ctl(c, 'dnssec', 'rollover', B, '--max-ttl', '1', '--parent-ttl', '0')
    t.ok(rc == 0 and rc2 == 0, 'a zone enabled and rolled over (--max-ttl 1)', err + err2)
    time.sleep(2.2)
    rows = c.keys(B)
    con = sqlite3.connect(c.db, timeout=10)
    con.execute("UPDATE dnssec_key SET private_key = x'3000' WHERE id = ?", (rows[1]['id'],))
    con.commit()
    con.close()
    rows = c.keys(B)
    rc, out, err = run_ctl(c, 'dnssec', 'status', B)
    bad_at = out.find('  key %d ' % rows[1]['key_tag'])
    t.ok(rc == 0 and bad_at > 0 and out.count('NOT USABLE') == 1 and
         out.index('NOT USABLE') > bad_at,
         'dnssec status: the key whose private key does not read is NOT USABLE', out)
    rc, out, err = run_ctl(c, '--json', 'dnssec', 'status', B)
    st = json.loads(out) if rc == 0 else {}
    t.eq([(k['key_tag'], k['usable']) for k in st['zones'][0]['keys']] if st else None,
         [(rows[0]['key_tag'], True), (rows[1]['key_tag'], False)],
         'dnssec status --json: "usable" false for it, true for the other')
    rc, out, err = run_ctl(c, 'dnssec', 'rollover', B, '--max-ttl', '1', '--parent-ttl', '0')
    t.ok(rc == 1 and out == '' and 'key %d is not a usable key' % rows[1]['key_tag'] in err and
         'disable' in err and one_line(err),
         'rollover from a zone with an unusable key: exit 1, what to do', err)
    t.eq(c.keys(B), rows, '... no row changed: the removed key, which gslbd signs with as the '
         'one that signed last, is not dropped')


def pools_survive(t, tmp):
    """A running gslbd keeps answering its pools when keys come and go: a change that wrote
    no pool (only a DNSSEC key) used to leave gslbd with no pool at all."""
    n = g.Gslbd()
    n.start()
    try:
        db = os.path.join(n.tmp, 'gslb.db')
        name = 'www.example.test.'
        g.gslbctl(db, 'pool', 'add', name)
        g.gslbctl(db, 'member', 'add', name, 'a', '--address', '192.0.2.77')

        def answer():
            r = g.exchange(g.make_query(name, 'A'), n.addr4, 'udp', timeout=1)
            return sorted(rr.address for rrs in r.msg.answer for rr in rrs) if r.msg else None
        t.ok(g.wait_for(lambda: answer() == ['192.0.2.77'], 5), 'gslbd answers the pool')
        for args in (('dnssec', 'enable', 'example.test.'), ('dnssec', 'disable',
                                                              'example.test.')):
            rc, out, err = g.gslbctl(db, *args)
            # Past gslbd's next look at the database (it polls every 100 ms or so).
            time.sleep(1.5)
            got = answer()
            t.ok(rc == 0 and got == ['192.0.2.77'], 'after %s gslbd still answers the pool'
                 % ' '.join(args), 'exit %d %s; answer %r' % (rc, err, got))
    finally:
        n.stop()
        n.cleanup()


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslb-dnssec-ctl-')
    try:
        c = Ctl(tmp)
        g.gslbctl(c.db, 'init')
        for step in (usage, enable, ds, status, rollover, disable, journal_entries, unusable):
            step(t, c)
        pools_survive(t, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == '__main__':
    g.run(main)
