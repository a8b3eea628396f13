#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DNSSEC online signing (README "DNSSEC", gslbd(8)): the real gslbd with keys in its database,
every RRSIG validated by dnspython against the zone's DNSKEY RRset."""

import collections
import os
import sqlite3
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.dnssec  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.name  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdata  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402
import dns.rrset  # noqa: E402
import dns.zone  # noqa: E402
from cryptography.hazmat.primitives import serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec, ed25519  # noqa: E402

import gslbtest as g  # noqa: E402

NOERROR = dns.rcode.NOERROR
RRSIG, NSEC, DNSKEY = dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.DNSKEY

ZONE = """\
$TTL 3600
$ORIGIN signed.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
	IN MX	10 Mail
ns1	IN A	192.0.2.1
mail	IN A	192.0.2.25
www	300 IN A	192.0.2.10
	300 IN A	192.0.2.11
	300 IN AAAA	2001:db8::10
alias	300 IN CNAME	www
*.wild	120 IN A	192.0.2.50
deleg	IN NS	ns.deleg
ns.deleg	IN A	192.0.2.53
""" + ''.join('txt\t300 IN TXT\t"%d%s"\n' % (i, 'x' * 68) for i in range(5))

ZONE_ED = """\
$TTL 600
$ORIGIN ed.test.
@	IN SOA ns1 hostmaster 1 3600 600 604800 120
	IN NS	ns1
ns1	IN A	192.0.2.1
www	IN A	192.0.2.77
"""

# A zone whose apex is 191 octets long: a 63-octet label below it makes a name of 255 octets
# (its file name is the apex's, as every zone file's).
LONG_APEX = '%s.%s.%s.long.test.' % ('z' * 63, 'z' * 63, 'z' * 51)
ZONE_LONG = """\
$TTL 600
$ORIGIN %s
@	IN SOA ns1 hostmaster 1 3600 600 604800 120
	IN NS	ns1
ns1	IN A	192.0.2.1
""" % LONG_APEX

ZONE_ROLL = """\
$TTL 600
$ORIGIN roll.test.
@	IN SOA ns1 hostmaster 1 3600 600 604800 120
	IN NS	ns1
ns1	IN A	192.0.2.1
www	IN A	192.0.2.79
"""

ZONE_LATER = """\
$TTL 600
$ORIGIN later.test.
@	IN SOA ns1 hostmaster 1 3600 600 604800 120
	IN NS	ns1
ns1	IN A	192.0.2.1
www	IN A	192.0.2.78
"""


def new_key(alg):
    """(DNSKEY public key field, PKCS#8 DER) of a fresh key of algorithm 13 or 15."""
    if alg == 13:
        k = ec.generate_private_key(ec.SECP256R1())
        pub = k.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)[1:]
    else:
        k = ed25519.Ed25519PrivateKey.generate()
        pub = k.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
    der = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    return pub, der


def add_key(db, zone, alg, publish, active, retire=None, remove=None):
    """A key row of src/db/schema.sql's dnssec_key (what `gslbctl dnssec enable` writes; a
    rollover's old key has retire and remove)."""
    pub, der = new_key(alg)
    rd = dns.rdata.from_wire(dns.rdataclass.IN, DNSKEY, bytes([1, 1, 3, alg]) + pub, 0,
                             4 + len(pub))
    con = sqlite3.connect(db, timeout=5)
    con.execute('INSERT INTO dnssec_key(zone, algorithm, key_tag, flags, public_key, '
                'private_key, created, publish, active, retire, remove) '
                'VALUES (?, ?, ?, 257, ?, ?, ?, ?, ?, ?, ?)',
                (zone, alg, dns.dnssec.key_id(rd), pub, der, int(time.time()), publish, active,
                 retire, remove))
    con.commit()
    con.close()
    return rd


def main(t):
    tmp = g.tempfile.mkdtemp(prefix='gslbtest-dnssec-')
    files = []
    for name, text in (('signed.test.zone', ZONE), ('ed.test.zone', ZONE_ED),
                       ('later.test.zone', ZONE_LATER), (LONG_APEX + 'zone', ZONE_LONG),
                       ('roll.test.zone', ZONE_ROLL)):
        files.append(os.path.join(tmp, name))
        with open(files[-1], 'w') as f:
            f.write(text)
    srv = g.Gslbd(zones=files, identity=False, wait_zone=None, lifetime=100)
    plain = g.Gslbd(zones=files, identity=False, wait_zone=None, lifetime=100)
    t.on_fail.append(lambda: srv.dump(t))
    db = os.path.join(srv.tmp, 'gslb.db')
    for d in (db, os.path.join(plain.tmp, 'gslb.db')):
        rc, out, err = g.gslbctl(d, 'init')
        t.eq(rc, 0, 'gslbctl init')
        rc, out, err = g.gslbctl(d, 'pool', 'add', 'pool.signed.test', '--policy', 'weighted',
                                 '--ttl', '30')
        for i in range(4):
            rc2, out, err2 = g.gslbctl(d, 'member', 'add', 'pool.signed.test', 'm%d' % i,
                                       '--address', '198.51.100.%d' % (i + 1))
            rc |= rc2
        t.eq(rc, 0, 'a weighted pool of 4 members, 1 answer')
    now = int(time.time())
    add_key(db, 'signed.test.', 13, now - 3600, now - 3600)
    add_key(db, 'ed.test.', 15, now - 3600, now - 3600)
    add_key(db, LONG_APEX, 13, now - 3600, now - 3600)
    # later.test.: a key published and active a few seconds from now (a key timing to come).
    later_at = now + 4
    add_key(db, 'later.test.', 13, later_at, later_at)
    srv.start()
    srv.wait_ready('signed.test.')
    plain.start()
    plain.wait_ready('signed.test.')

    def ask(name, qtype='A', do=True, proto='tcp', server=srv, payload=1232):
        q = dns.message.make_query(name, qtype, want_dnssec=do, payload=payload)
        if not do:
            q.use_edns(0, 0, payload)
        r = g.exchange(q, server.addr4, proto, timeout=2.0)
        return r

    keys = {}

    def dnskeys(zone):
        m = ask(zone, 'DNSKEY').msg
        rs = m.get_rrset(m.answer, dns.name.from_text(zone), dns.rdataclass.IN, DNSKEY)
        keys[zone] = rs
        return m, rs

    def validate(m, zone, sections=('answer', 'authority'), skip=()):
        """Every RRset of the sections has an RRSIG that validates: (ok, number, why)."""
        knames = {dns.name.from_text(zone): keys[zone]}
        n = 0
        for sec in sections:
            rrsets = getattr(m, sec)
            for rs in rrsets:
                if rs.rdtype == RRSIG or (sec, rs.rdtype) in skip:
                    continue
                sig = [s for s in rrsets if s.rdtype == RRSIG and s.name == rs.name
                       and s.covers == rs.rdtype]
                if not sig:
                    return False, n, '%s %s has no RRSIG' % (rs.name, rs.rdtype)
                try:
                    dns.dnssec.validate(rs, sig[0], knames)
                except dns.dnssec.ValidationFailure as e:
                    return False, n, '%s %s: %s' % (rs.name, rs.rdtype, e)
                n += 1
        return True, n, ''

    def check(desc, m, zone, want_n, **kw):
        good, n, why = validate(m, zone, **kw)
        t.ok(good and n == want_n, '%s (%d RRsets validated)' % (desc, n), why or m.to_text())

    # ---- the keys at the apex
    m, rs = dnskeys('signed.test.')
    t.ok(rs is not None and len(rs) == 1, 'DNSKEY RRset at the apex: the one key')
    check('DNSKEY RRset signed by its key', m, 'signed.test.', 1)
    t.ok(m.flags & dns.flags.AA and m.ednsflags & dns.flags.DO, 'DNSKEY: AA=1, DO echoed')
    m = ask('signed.test.', 'CDS').msg
    check('CDS RRset signed', m, 'signed.test.', 1)
    ds = dns.dnssec.make_ds('signed.test.', rs[0], 'SHA256')
    t.ok(m.answer and any(r.rdtype == dns.rdatatype.CDS and str(r[0]) == str(ds)
                          for r in m.answer), 'CDS is the SHA-256 DS of the key', m.to_text())
    m = ask('signed.test.', 'CDNSKEY').msg
    check('CDNSKEY RRset signed', m, 'signed.test.', 1)

    # ---- static answers
    m = ask('www.signed.test.', 'A').msg
    check('www A (2 RRs) signed', m, 'signed.test.', 1)
    sig = [r for r in m.answer if r.rdtype == RRSIG][0]
    now = time.time()
    t.ok(abs(sig[0].inception - (now - 3600)) < 10 and
         abs(sig[0].expiration - (now + 7 * 86400)) < 10,
         'RRSIG from an hour ago to 7 days ahead', str(sig))
    t.ok(sig.ttl == 300 and sig[0].original_ttl == 300, 'RRSIG TTL = the RRset TTL', str(sig))
    check('MX (a name in its RDATA) signed', ask('signed.test.', 'MX').msg, 'signed.test.', 1)
    check('CNAME and its target signed', ask('alias.signed.test.', 'A').msg, 'signed.test.', 2)
    check('wildcard answer signed', ask('x.wild.signed.test.', 'A').msg, 'signed.test.', 1)
    # The same RRset of the wildcard, another owner: its own signature, not x's from the cache.
    check('... and for another name (y)', ask('y.wild.signed.test.', 'A').msg, 'signed.test.', 1)
    check('over UDP too', ask('www.signed.test.', 'AAAA', proto='udp').msg, 'signed.test.', 1)

    # ---- pool answers over many queries
    seen = collections.Counter()
    bad = []
    for i in range(200):
        m = ask('pool.signed.test.', 'A', proto='udp').msg
        good, n, why = validate(m, 'signed.test.')
        if not good or n != 1:
            bad.append(why or m.to_text())
        seen[tuple(sorted(str(r) for rs in m.answer if rs.rdtype == 1 for r in rs))] += 1
    t.ok(not bad, '200 weighted pool answers, each RRSIG validates', '\n'.join(bad[:3]))
    t.eq(len(seen), 4, 'the 4 members all answered')

    # ---- compact denial (RFC 9824)
    def nsec_of(m):
        for rs in m.authority:
            if rs.rdtype == NSEC:
                return rs
        return None

    m = ask('nothere.signed.test.', 'A').msg
    t.ok(m.rcode() == NOERROR and not m.answer and m.flags & dns.flags.AA,
         'a name that does not exist: NOERROR (NODATA), AA=1', m.to_text())
    check('... SOA and NSEC signed', m, 'signed.test.', 2)
    ns = nsec_of(m)
    t.ok(ns is not None and str(ns.name) == 'nothere.signed.test.' and
         str(ns[0].next) == '\\000.nothere.signed.test.' and
         ns[0].to_text().split()[1:] == ['RRSIG', 'NSEC', 'TYPE128'],
         '... NSEC owner the name, next \\000.name, types NSEC RRSIG NXNAME',
         ns and ns.to_text())
    t.ok(ns is not None and ns.ttl == 300, '... NSEC TTL min(SOA TTL, MINIMUM)',
         ns and ns.to_text())
    # Names too long for "\000." before them: the next name is still the name's immediate
    # successor (RFC 9824 3.1), found after it without a child (RFC 4471 3.1.2, RFC 4034 6.1
    # order): nothing lies between the two, so a resolver that uses the NSEC aggressively
    # (RFC 8198) denies no name of the zone.
    apex = dns.name.from_text('signed.test.')
    long_apex = dns.name.from_text(LONG_APEX)
    zone_names = {o: [n + o for n in dns.zone.from_text(text, origin=o, relativize=True)]
                  for o, text in ((apex, ZONE), (long_apex, ZONE_LONG))}
    zone_names[apex].append(dns.name.from_text('pool.signed.test.'))
    ff = b'\xff' * 63

    def padded(first, labels, size, origin=apex):
        """(first + a padding label + labels + origin, size octets long on the wire; the
        padding label, of p's), no padding label when none is needed."""
        base = dns.name.Name(list(first) + list(labels)) + origin
        pad = size - len(base.to_wire())
        assert pad == 0 or 2 <= pad <= 64, pad
        if not pad:
            return base, None
        pl = b'p' * (pad - 1)
        return dns.name.Name(list(first) + [pl] + list(labels)) + origin, pl

    a63 = b'a' * 63
    cases = []
    qn, pl = padded([b'x' * 20], [a63, a63, a63], 253)
    cases.append((qn, dns.name.Name([b'\x00']) + qn, '253 octets: \\000. before it'))
    qn, pl = padded([b'b' * 48], [a63, a63, a63], 254)
    cases.append((qn, dns.name.Name([b'b' * 48 + b'\x00']) + qn.parent(),
                  '254 octets: \\000 after its first label'))
    qn, pl = padded([b'd' * 63], [a63, a63], 254)
    cases.append((qn, dns.name.Name([b'd' * 62 + b'e']) + qn.parent(),
                  '254 octets, first label of 63: its last octet + 1'))
    qn, pl = padded([b'c' * 63], [a63, a63], 255)
    cases.append((qn, dns.name.Name([b'c' * 62 + b'd']) + qn.parent(),
                  '255 octets, first label of 63: its last octet + 1'))
    qn, pl = padded([b'c' * 40], [a63, a63, a63], 255)
    cases.append((qn, dns.name.Name([b'c' * 39 + b'd']) + qn.parent(),
                  '255 octets, first label of 40: no room for \\000, its last octet + 1'))
    qn, pl = padded([b'e' * 62 + b'\xff'], [a63, a63], 255)
    cases.append((qn, dns.name.Name([b'e' * 61 + b'f']) + qn.parent(),
                  '255 octets, first label ending in 0xff: that octet dropped, the one before + 1'))
    qn, pl = padded([b'@' * 63], [a63, a63], 255)
    cases.append((qn, dns.name.Name([b'@' * 62 + b'[']) + qn.parent(),
                  '255 octets, first label ending in @: [, as A sorts as a'))
    qn, pl = padded([ff], [a63, a63], 255)
    cases.append((qn, dns.name.Name([pl + b'\x00']) + qn.parent().parent(),
                  '255 octets, first label 63 0xff: that label dropped, \\000 after the next'))
    qn, pl = padded([ff, ff], [a63], 254)
    cases.append((qn, dns.name.Name([pl + b'\x00']) + qn.parent().parent().parent(),
                  '254 octets, two labels of 63 0xff: both dropped, \\000 after the next'))
    qn, pl = padded([ff, b'q' * 62 + b'\xff'], [a63], 255)
    cases.append((qn, dns.name.Name([b'q' * 61 + b'r']) + qn.parent().parent(),
                  '255 octets, 63 0xff then a label of 63 ending in 0xff: its octet before + 1'))
    # Below the apex, a label of 63 0xff is the zone's last name: the next is the apex, as the
    # zone's last NSEC has (RFC 4034 4.1.1).
    cases.append((dns.name.Name([ff]) + long_apex, long_apex,
                  '255 octets, 63 0xff below the apex: the zone\'s last name, next the apex'))
    for qn, want, desc in cases:
        zone = long_apex if qn.is_subdomain(long_apex) else apex
        m = ask(qn.to_text(), 'A').msg
        ns = nsec_of(m)
        nxt = ns[0].next if ns is not None else None
        # The names of the zone that the NSEC says do not exist: those after the owner and
        # before the next name, or after the owner when the next name is the apex.
        denied = [n for n in zone_names[zone] if n > qn and (nxt == zone or n < nxt)]
        t.ok(ns is not None and ns.name == qn and nxt == want and (qn < nxt or nxt == zone)
             and nxt.is_subdomain(zone) and not denied and
             ns[0].to_text().split()[1:] == ['RRSIG', 'NSEC', 'TYPE128'],
             'a name of %s (%d octets)' % (desc, len(qn.to_wire())),
             m.to_text()[:900] + '\nwant next %s\ndenied %s' % (want, denied))
        if zone == long_apex and LONG_APEX not in keys:
            dnskeys(LONG_APEX)
        check('... SOA and NSEC signed', m, zone.to_text(), 2)
    m = ask('www.signed.test.', 'MX').msg
    ns = nsec_of(m)
    check('NODATA: SOA and NSEC signed', m, 'signed.test.', 2)
    t.ok(ns is not None and ns[0].to_text().split()[1:] == ['A', 'AAAA', 'RRSIG', 'NSEC'],
         '... NSEC types: those at the name, RRSIG and NSEC', ns and ns.to_text())

    # ---- delegations
    m = ask('www.deleg.signed.test.', 'A').msg
    ns = nsec_of(m)
    t.ok(not (m.flags & dns.flags.AA) and ns is not None and
         str(ns.name) == 'deleg.signed.test.' and
         ns[0].to_text().split()[1:] == ['NS', 'RRSIG', 'NSEC'],
         'referral: an NSEC at the cut with NS RRSIG NSEC (no DS)', m.to_text())
    check('... the NSEC signed, the NS not', m, 'signed.test.', 1,
          sections=('authority',), skip=(('authority', dns.rdatatype.NS),))
    t.ok(not any(rs.rdtype == RRSIG for rs in m.additional), '... glue unsigned')
    m = ask('deleg.signed.test.', 'DS').msg
    check('DS at the cut: the parent side NODATA, signed', m, 'signed.test.', 2)

    # ---- Ed25519
    dnskeys('ed.test.')
    check('ED25519: DNSKEY signed', ask('ed.test.', 'DNSKEY').msg, 'ed.test.', 1)
    check('ED25519: www A signed', ask('www.ed.test.', 'A').msg, 'ed.test.', 1)
    check('ED25519: compact denial signed', ask('no.ed.test.', 'A').msg, 'ed.test.', 2)

    # ---- DO=0: the same bytes as a server without keys
    same = []
    for name, qt in (('www.signed.test.', 'A'), ('nothere.signed.test.', 'A'),
                     ('www.signed.test.', 'MX'), ('alias.signed.test.', 'A'),
                     ('www.deleg.signed.test.', 'A'), ('signed.test.', 'MX'),
                     ('x.wild.signed.test.', 'A'), ('www.ed.test.', 'A')):
        for do_edns in (False, True):
            q = dns.message.make_query(name, qt, use_edns=0 if do_edns else False, id=4242)
            a = g.exchange(q, srv.addr4, 'udp').wire
            b = g.exchange(q, plain.addr4, 'udp').wire
            if a != b:
                same.append('%s %s edns=%s' % (name, qt, do_edns))
    t.ok(not same, 'DO=0: answers byte for byte those of the zone unsigned', ', '.join(same))
    m = ask('www.signed.test.', 'A', do=False).msg
    t.ok(not any(rs.rdtype == RRSIG for rs in m.answer), 'DO=0: no RRSIG')

    # ---- truncation: 5 TXT RRs fit in 512 bytes, not with their RRSIG
    m = ask('txt.signed.test.', 'TXT', do=False, proto='udp', payload=512).msg
    t.ok(m is not None and not (m.flags & dns.flags.TC) and len(m.answer[0]) == 5,
         'TXT RRset within 512 bytes unsigned', m and m.to_text())
    m = ask('txt.signed.test.', 'TXT', proto='udp', payload=512).msg
    t.ok(m is not None and m.flags & dns.flags.TC and not m.answer,
         'signed, it does not fit: the question alone with TC=1', m and m.to_text())
    check('... whole over TCP, signed', ask('txt.signed.test.', 'TXT').msg, 'signed.test.', 1)

    # ---- a key timing: later.test. is signed once its key is published and active
    m = ask('www.later.test.', 'A').msg
    t.ok(not any(rs.rdtype == RRSIG for rs in m.answer),
         'a key not yet published: the zone is not signed yet')
    took = g.time_until(lambda: any(rs.rdtype == RRSIG for rs in
                                    ask('www.later.test.', 'A').msg.answer),
                        later_at - time.time() + 5, step=0.2)
    t.ok(took is not None and time.time() >= later_at,
         'signed from the key\'s publish/active time on (within a poll)')
    dnskeys('later.test.')
    check('... and the signature validates', ask('www.later.test.', 'A').msg, 'later.test.', 1)
    check('pool answers still signed after that snapshot', ask('pool.signed.test.', 'A').msg,
          'signed.test.', 1)

    # ---- keys removed while running: the zone is served unsigned again (no DNSKEY either)
    con = sqlite3.connect(db, timeout=5)
    con.execute("DELETE FROM dnssec_key WHERE zone = 'later.test.'")
    con.commit()
    con.close()
    took = g.time_until(lambda: not any(rs.rdtype == RRSIG for rs in
                                        ask('www.later.test.', 'A').msg.answer), 5, step=0.1)
    t.ok(took is not None, 'keys deleted: unsigned within a poll (%s s)' % took)
    m = ask('later.test.', 'DNSKEY').msg
    t.ok(m.rcode() == NOERROR and not m.answer, '... no DNSKEY RRset any more', m.to_text())
    check('... the other zones still signed', ask('www.signed.test.', 'A').msg, 'signed.test.', 1)
    # A change of dnssec_key alone moves config_generation with no pool written: not an empty
    # configuration.
    check('... pools still answered after a change of keys alone, signed',
          ask('pool.signed.test.', 'A').msg, 'signed.test.', 1)

    # ---- key rows that cannot be used: a resolver holding the DS must still validate
    def log_count(what):
        with open(srv.log_path, 'rb') as f:
            return f.read().decode(errors='replace').count(what)

    # ed.test.'s one key's private key made bad DER: kept signing with the keys it had.
    before = log_count('zone ed.test.')
    con = sqlite3.connect(db, timeout=5)
    con.execute("UPDATE dnssec_key SET private_key = x'3000' WHERE zone = 'ed.test.'")
    con.commit()
    con.close()
    t.ok(g.wait_for(lambda: log_count('zone ed.test.') > before, 5),
         'a key row of bad DER: an error logged')
    check('... the zone still signed with the keys it had', ask('www.ed.test.', 'A').msg,
          'ed.test.', 1)
    m = ask('ed.test.', 'DNSKEY').msg
    t.ok(len(m.answer) == 2 and sum(len(rs) for rs in m.answer if rs.rdtype == DNSKEY) == 1,
         '... its DNSKEY RRset still the one key, signed', m.to_text())
    # A second row for signed.test. whose public key is not its private key's: the good key signs.
    before = log_count('zone signed.test.')
    bad_pub, _ = new_key(13)
    _, bad_der = new_key(13)
    con = sqlite3.connect(db, timeout=5)
    con.execute('INSERT INTO dnssec_key(zone, algorithm, key_tag, flags, public_key, '
                'private_key, created, publish, active) VALUES (?, 13, 1, 257, ?, ?, ?, ?, ?)',
                ('signed.test.', bad_pub, bad_der, now, now - 3600, now - 3600))
    con.commit()
    con.close()
    t.ok(g.wait_for(lambda: log_count('zone signed.test.') > before, 5),
         'a key row whose public key is not its private key\'s: an error logged')
    check('... the zone signed with its good key', ask('www.signed.test.', 'A').msg,
          'signed.test.', 1)
    m = ask('signed.test.', 'DNSKEY').msg
    t.ok(sum(len(rs) for rs in m.answer if rs.rdtype == DNSKEY) == 1,
         '... the DNSKEY RRset the good key alone', m.to_text())

    # A zone with no keys now given a bad row alone: unsigned still, with an error.
    before = log_count('zone later.test.: DNSSEC keys: key 1 (algorithm 13) is not a usable key; '
                       'served unsigned')
    con = sqlite3.connect(db, timeout=5)
    con.execute('INSERT INTO dnssec_key(zone, algorithm, key_tag, flags, public_key, '
                "private_key, created, publish, active) VALUES ('later.test.', 13, 1, 257, ?, "
                "x'3000', ?, ?, ?)", (bad_pub, now, now - 3600, now - 3600))
    con.commit()
    con.close()
    t.ok(g.wait_for(lambda: log_count('zone later.test.: DNSSEC keys: key 1 (algorithm 13) is '
                                      'not a usable key; served unsigned') > before, 5),
         'a zone without keys given a bad row alone: an error, served unsigned')
    m = ask('www.later.test.', 'A').msg
    t.ok(m.answer and not any(rs.rdtype == RRSIG for rs in m.answer),
         '... its answers unsigned', m.to_text())

    # A rollover whose new key's row is bad: once the old key passes its retire and remove
    # times no key is left to sign with, and the old one keeps signing and stays published, past
    # those times, since the parent's DS still names it (unsigned, the zone would fail at every
    # resolver holding that DS; README "DNSSEC").
    start = int(time.time())
    gone = start + 4
    old_rd = add_key(db, 'roll.test.', 13, start - 7200, start - 7200, gone, gone)
    bad_pub, _ = new_key(13)
    con = sqlite3.connect(db, timeout=5)
    con.execute('INSERT INTO dnssec_key(zone, algorithm, key_tag, flags, public_key, '
                "private_key, created, publish, active) VALUES ('roll.test.', 13, 2, 257, ?, "
                "x'3000', ?, ?, ?)", (bad_pub, start, start - 3600, start - 1800))
    con.commit()
    con.close()
    t.ok(g.wait_for(lambda: any(rs.rdtype == RRSIG for rs in
                                ask('www.roll.test.', 'A').msg.answer), 5),
         'a rollover\'s old key and a bad new row: the zone signed with the old key')
    kept = 'zone roll.test.: DNSSEC keys: key 2 (algorithm 13) is not a usable key; no other ' \
        'key is active: key 1 signs on past its retire time'
    t.ok(g.wait_for(lambda: time.time() > gone and log_count(kept) > 0, gone - time.time() + 5),
         'the old key past its remove time: "%s" logged' % kept)
    m, rs = dnskeys('roll.test.')
    t.ok(rs is not None and len(rs) == 1 and rs[0] == old_rd,
         '... the DNSKEY RRset still the old key', m.to_text())
    check('... its RRSIG by the old key', m, 'roll.test.', 1)
    check('... the zone\'s answers still signed by it', ask('www.roll.test.', 'A').msg,
          'roll.test.', 1)
    check('... and its denials', ask('nothere.roll.test.', 'A').msg, 'roll.test.', 2)
    # The same after a restart: the keys that signed last are read from the rows, not kept from
    # the snapshot served before.
    srv.stop()
    srv.start()
    srv.wait_ready('roll.test.')
    m, rs = dnskeys('roll.test.')
    t.ok(rs is not None and len(rs) == 1 and rs[0] == old_rd,
         'restarted in that state: the DNSKEY RRset the old key', m.to_text())
    check('... its answers signed by it', ask('www.roll.test.', 'A').msg, 'roll.test.', 1)
    t.ok(log_count(kept) > 0, '... "%s" logged' % kept)

    srv.check_stop(t)
    plain.check_stop(t, 'gslbd without keys')


if __name__ == '__main__':
    g.run(main)
