#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DNSSEC online signing (README "DNSSEC") checked by independent validators.

The test re-executes itself in a new network namespace that has only lo (root: unshare --net;
skipped when namespaces are refused), so the validators reach nothing but the servers started
here, and port 53 is free for dnsviz and zonemaster-cli, which know no other port.

A validating unbound has the zone's DS as its only trust anchor (the root is not trusted) and a
stub-zone to the signing server.  First the harness proves it can tell good from bad on a zone
that Knot DNS signs: AD=1 on an answer, an NXDOMAIN and a NODATA, AD=0 without the anchor;
SERVFAIL with a wrong DS, with an answer mutated on its way to unbound, and with the validator's
clock past the signatures' expiration or before their inception (unbound's val-override-date);
dnsviz and zonemaster-cli find no error with the right DS and an error with a wrong one.

Then the same against gslbd, keys from `gslbctl dnssec enable`:
- DO=1 answers carry RRSIGs, the apex has DNSKEY, CDS and CDNSKEY, DO=0 answers none of them;
  `gslbctl dnssec ds` is the DS of the DNSKEY served;
- compact denial (RFC 9824): a name that does not exist is NOERROR with one NSEC owned by the
  query name, next name \\000.QNAME, types NSEC RRSIG NXNAME; NODATA likewise without the type;
- through unbound, AD=1 on static data, on a weighted pool queried 60 times (TTL 0, several
  members: many different signed answers), on NXDOMAIN and NODATA;
- a pool's repeated answers carry the one signature made for them (signatures cached by RRset
  content: ECDSA signatures differ each time they are made);
- SERVFAIL with a wrong DS, with mutated answers, outside the signatures' validity window, and
  from a gslbd whose key row's public key is not the one of its private key;
- gslbd on a clock of its own (libfaketime): 8 days behind, its signatures have expired for a
  validator on time (SERVFAIL); put to now, 4 and 8 days ahead, it signs afresh within seconds
  (refreshed before half through) and a validator on the same clock says AD=1;
- dnsviz probe + grok: no error; zonemaster-cli's DNSSEC module: nothing above NOTICE except
  what a loopback-only test setup causes (listed in ZONEMASTER_EXPECTED);
- a rollover on gslbd's own clock (gslbctl dnssec rollover --max-ttl 6 --parent-ttl 6):
  published, signing, old key gone; a resolver with the old DS only (the parent not updated, or
  its old DS set cached), one with both DS (`gslbctl dnssec ds`) and at the end one with the new
  DS only: AD=1 at every step each can be in, SERVFAIL for the old DS once its key is gone;
- `gslbctl dnssec disable`: no DNSKEY, no RRSIG, NXDOMAIN again; enabled again with ed25519,
  AD=1 again.
"""

import glob
import os
import shutil
import sqlite3
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.dnssec  # noqa: E402
import dns.flags  # noqa: E402
import dns.name  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdata  # noqa: E402
import dns.rdataclass  # noqa: E402
import dns.rdatatype  # noqa: E402

import dnssecval as v  # noqa: E402
import gslbtest as g  # noqa: E402

INNER = 'GSLB_DNSSEC_NETNS'
GSLBCTL = g.GSLBCTL

ZONE = 'signed.test.'
ZONE_TEXT = """\
$TTL 60
$ORIGIN signed.test.
@	IN SOA ns1 hostmaster 2026120701 3600 600 604800 60
	IN NS	ns1
ns1	IN A	127.0.0.1
www	IN A	192.0.2.1
txt	IN TXT	"static text"
"""
WWW = 'www.' + ZONE
TXT = 'txt.' + ZONE
NX = 'nothing-here.' + ZONE
POOL = 'pool.' + ZONE
POOL_ADDRS = ['198.51.100.%d' % i for i in range(1, 7)]
POOL_QUERIES = 60
NXNAME = 128   # RFC 9824
DNSVIZ_NAMES = [ZONE, WWW, TXT, NX, POOL]
WORKERS = 2   # gslbtest.Gslbd starts gslbd with --threads 2
ROLL_T, ROLL_P = 6, 6   # the rollover's largest TTL and parent DS TTL (gslbctl(8))
FAKETIME_LIB = (glob.glob('/usr/lib/*/faketime/libfaketime.so.1') or
                ['/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1'])[0]

# What zonemaster-cli's DNSSEC module reports about this setup that is not about the signing:
# tag -> why it is expected here.
ZONEMASTER_EXPECTED = {
}


def setup_lo(t):
    rc, out = g.run_tool(['ip', 'link', 'set', 'lo', 'up'])
    rc2, addrs = g.run_tool(['ip', '-o', 'link', 'show'])
    ifaces = set(line.split(':')[1].strip() for line in addrs.splitlines() if line.strip())
    return t.ok(rc == 0 and ifaces == {'lo'}, 'namespace: only lo, up', out + addrs)


def date_spec(offset):
    """val-override-date's format for now + offset seconds."""
    return time.strftime('%Y%m%d%H%M%S', time.gmtime(time.time() + offset))


def expect(t, ub, label, cases):
    """cases: (name, type, rcode text, AD wanted, answer wanted or None); True if all held."""
    good = True
    for name, rdtype, rcode, ad, answer in cases:
        m = ub.query(name, rdtype)
        if isinstance(m, str):
            good &= t.ok(False, '%s: %s %s' % (label, name, rdtype), m)
            continue
        got_ad = bool(m.flags & dns.flags.AD)
        data = sorted(rd.to_text() for rr in m.answer for rd in rr
                      if rr.rdtype == dns.rdatatype.from_text(rdtype))
        cond = dns.rcode.to_text(m.rcode()) == rcode and got_ad == ad
        if answer is not None:
            cond = cond and data == answer
        diag = v.summary(m)
        if not cond and not ub.dumped:
            ub.dumped = True   # unbound's log once per instance: why it said what it said
            diag += '\n' + ub.logs(60)
        good &= t.ok(cond, '%s: %s %s is %s%s%s' % (
            label, name, rdtype, rcode, ' AD=1' if ad else (' AD=0' if rcode != 'SERVFAIL'
                                                             else ''),
            '' if answer is None else ' ' + (','.join(answer) or 'no data')), diag)
    return good


def validator(t, label, zone, addr, anchors, extra='', max_ttl=2):
    ub = v.Unbound(zone, addr, anchors, extra=extra, max_ttl=max_ttl)
    ok = ub.start()
    if not ok:
        t.ok(False, '%s: unbound starts' % label, ub.logs())
        ub.cleanup()
        return None
    return ub


def negative_controls(t, who, zone, port, ds, ok_cases, bad_cases):
    """The validator must fail: wrong DS, mutated answers, signatures outside their window.
    ok_cases must stay AD=1 where only A records were mutated."""
    ub = validator(t, '%s, wrong DS' % who, zone, '127.0.0.1@%d' % port, [v.wrong_ds(ds)])
    if ub:
        expect(t, ub, '%s, anchor a DS of no key' % who,
               [(n, ty, 'SERVFAIL', False, None) for n, ty in bad_cases + ok_cases])
        ub.cleanup()
    proxy = v.MutatingProxy(port)
    ub = validator(t, '%s, mutated' % who, zone, '127.0.0.1@%d' % proxy.port, [ds])
    if ub:
        expect(t, ub, '%s, A records mutated on the way' % who,
               [(n, ty, 'SERVFAIL', False, None) for n, ty in bad_cases])
        expect(t, ub, '%s, nothing mutated' % who,
               [(n, ty, 'NOERROR', True, None) for n, ty in ok_cases])
        t.ok(proxy.mutated > 0, '%s: the proxy mutated %d answers' % (who, proxy.mutated))
        ub.cleanup()
    proxy.stop()
    for label, offset in (('validator 8 days ahead: signatures expired', 8 * 86400),
                          ('validator 2 hours behind: signatures not yet valid', -2 * 3600)):
        ub = validator(t, '%s, %s' % (who, label), zone, '127.0.0.1@%d' % port, [ds],
                       extra='val-override-date: "%s"' % date_spec(offset))
        if ub:
            expect(t, ub, '%s, %s' % (who, label),
                   [(n, ty, 'SERVFAIL', False, None) for n, ty in bad_cases + ok_cases])
            ub.cleanup()


# ---------------------------------------------------------------------------------------------
# The harness against Knot DNS

def knot_harness(t):
    """Knot signs the zone: the validator says AD=1 where it should and SERVFAIL where not."""
    if not os.access(v.KNOTD, os.X_OK):
        t.skip('Knot harness check', 'no knotd (apt-get install knot)')
        return
    knot = v.Knot(ZONE, ZONE_TEXT, port53=True)
    if not t.ok(knot.start(), 'knotd signs %s' % ZONE, knot.logs()):
        knot.stop()
        return
    keys = v.dnskeys('127.0.0.1', knot.port, ZONE)
    ds = v.ds_of(ZONE, keys[0])
    t.diag('Knot: DS %s' % ds)
    ub = validator(t, 'knot', ZONE, '127.0.0.1@%d' % knot.port, [ds])
    if ub:
        expect(t, ub, 'Knot, DS anchor', [
            (WWW, 'A', 'NOERROR', True, ['192.0.2.1']),
            (TXT, 'TXT', 'NOERROR', True, ['"static text"']),
            (NX, 'A', 'NXDOMAIN', True, None),
            (WWW, 'TXT', 'NOERROR', True, []),
        ])
        ub.cleanup()
    # Without an anchor the same answers are insecure: AD is earned, not given.
    ub = validator(t, 'knot, no anchor', ZONE, '127.0.0.1@%d' % knot.port, [])
    if ub:
        expect(t, ub, 'Knot, no anchor', [(WWW, 'A', 'NOERROR', False, ['192.0.2.1'])])
        ub.cleanup()
    negative_controls(t, 'Knot', ZONE, knot.port, ds, [(TXT, 'TXT')], [(WWW, 'A')])
    texts = [k.to_text() for k in keys]
    dnsviz_check(t, 'Knot', [ds], texts)
    dnsviz_check(t, 'Knot, a DS of no key', [v.wrong_ds(ds)], texts, want_ok=False)
    zonemaster_check(t, 'Knot', [ds])
    zonemaster_check(t, 'Knot, a DS of no key', [v.wrong_ds(ds)], want_ok=False)
    knot.stop()


# ---------------------------------------------------------------------------------------------
# gslbd

def ctl(db, *args):
    rc, out, err = g.gslbctl(db, *args)
    return rc, out + err


def signing_missing():
    """Why this build cannot sign (issue 20 not all merged yet), or None."""
    rc, out = g.run_tool([GSLBCTL, '--help'])
    if 'dnssec' not in out:
        return 'gslbctl has no dnssec commands'
    # gslbd's signing counts its signatures in this metric: a gslbd without it cannot sign.
    try:
        with open(g.GSLBD, 'rb') as f:
            if b'gslbd_rrsigs_total' not in f.read():
                return 'gslbd does not sign (no gslbd_rrsigs_total)'
    except OSError as e:
        return str(e)
    return None


def served_ds(srv):
    """The DS (SHA-256) of every DNSKEY gslbd serves, and the DNSKEY texts."""
    keys = v.dnskeys('127.0.0.1', srv.port, ZONE)
    return sorted(v.ds_of(ZONE, k) for k in keys), [k.to_text() for k in keys]


def ctl_ds(db):
    """`gslbctl dnssec ds` as normalised DS texts."""
    rc, out = ctl(db, 'dnssec', 'ds', ZONE)
    found = []
    for line in out.splitlines():
        f = line.split()
        if 'DS' in f:
            rest = f[f.index('DS') + 1:]
            if len(rest) >= 4:
                found.append('%s %s %s %s' % (rest[0], rest[1], rest[2], ''.join(rest[3:])
                                              .lower()))
    return rc, sorted(found), out


def wait_keys(srv, n, timeout=5.0):
    """Until gslbd serves n DNSKEYs; returns how many it served last."""
    got = []

    def check():
        nonlocal got
        try:
            got = v.dnskeys('127.0.0.1', srv.port, ZONE)
        except Exception:   # retried until the deadline
            got = []
        return len(got) == n
    g.wait_for(check, timeout)
    return len(got)


def section_types(section):
    return sorted(dns.rdatatype.to_text(rr.rdtype) for rr in section)


def direct_checks(t, srv):
    """What gslbd itself answers, DO=1 and DO=0."""
    a = srv.addr4[0]
    m = v.ask(a, ZONE, 'DNSKEY', port=srv.port)
    t.eq(section_types(m.answer), ['DNSKEY', 'RRSIG'], 'apex DNSKEY with its RRSIG (DO=1)')
    for ty in ('CDS', 'CDNSKEY'):
        m = v.ask(a, ZONE, ty, port=srv.port)
        t.eq(section_types(m.answer), [ty, 'RRSIG'], 'apex %s with its RRSIG (DO=1)' % ty)
    m = v.ask(a, WWW, 'A', port=srv.port)
    t.eq(section_types(m.answer), ['A', 'RRSIG'], 'static A with its RRSIG (DO=1)')
    rrsig = [rr for rr in m.answer if rr.rdtype == dns.rdatatype.RRSIG]
    if rrsig:
        sig = rrsig[0][0]
        now = time.time()
        t.ok(now - 2 * 3600 <= sig.inception <= now - 3000 and
             now + 6.9 * 86400 <= sig.expiration <= now + 7.1 * 86400,
             'RRSIG valid from one hour ago to 7 days ahead',
             'inception %+.0f s, expiration %+.0f s from now' % (sig.inception - now,
                                                                 sig.expiration - now))
    m = v.ask(a, WWW, 'A', port=srv.port, do=False)
    t.eq(section_types(m.answer) + section_types(m.authority), ['A'],
         'DO=0: the A alone, no RRSIG')
    m = v.ask(a, ZONE, 'DNSKEY', port=srv.port, do=False)
    t.ok(not any(rr.rdtype == dns.rdatatype.RRSIG for rr in m.answer + m.authority),
         'DO=0 DNSKEY query: no RRSIG', v.summary(m))

    m = v.ask(a, NX, 'A', port=srv.port, do=False)
    t.ok(m.rcode() == dns.rcode.NXDOMAIN and
         section_types(m.authority) == ['SOA'],
         'DO=0 nonexistent name: NXDOMAIN with the SOA alone, as unsigned',
         '%s\n%s' % (dns.rcode.to_text(m.rcode()),
                      '\n'.join(rr.to_text() for rr in m.authority)))

    # Signatures cached by RRset content: ECDSA signatures differ each time they are made, so
    # a distinct answer that always comes with the same signature was signed once.  Each of
    # gslbd's worker threads (two here) may keep a cache of its own.
    sigs = {}
    for i in range(40):
        m = v.ask(a, POOL if i % 4 else WWW, 'A', port=srv.port)
        data = ','.join(sorted(rd.to_text() for rr in m.answer if rr.rdtype == dns.rdatatype.A
                               for rd in rr))
        for rr in m.answer:
            if rr.rdtype == dns.rdatatype.RRSIG:
                sigs.setdefault(data, set()).update(rd.signature for rd in rr)
    t.ok(len(sigs) >= 3 and all(len(x) <= WORKERS for x in sigs.values()),
         'each distinct answer (%d) is signed at most once per worker thread (%d), not per '
         'query' % (len(sigs), WORKERS),
         '\n'.join('%s: %d signatures' % (k, len(x)) for k, x in sorted(sigs.items())))

    # Compact denial of existence, RFC 9824.
    for name, rdtype, what in ((NX, 'A', 'nonexistent name'), (WWW, 'TXT', 'NODATA')):
        m = v.ask(a, name, rdtype, port=srv.port)
        nsec = [rr for rr in m.authority if rr.rdtype == dns.rdatatype.NSEC]
        detail = '\n'.join(rr.to_text() for rr in m.answer + m.authority)
        t.ok(m.rcode() == dns.rcode.NOERROR and not m.answer and len(nsec) == 1,
             '%s: NOERROR, no answer, one NSEC' % what,
             '%s\n%s' % (dns.rcode.to_text(m.rcode()), detail))
        if len(nsec) != 1:
            continue
        rr = nsec[0]
        types = set()
        for window, bitmap in rr[0].windows:
            for i, byte in enumerate(bitmap):
                for bit in range(8):
                    if byte & (0x80 >> bit):
                        types.add(window * 256 + i * 8 + bit)
        nxt = rr[0].next
        t.ok(rr.name == dns.name.from_text(name) and
             nxt == dns.name.Name([b'\x00'] + list(dns.name.from_text(name).labels)),
             '%s: NSEC owned by the query name, next \\000.%s' % (what, name), detail)
        want = {dns.rdatatype.NSEC, dns.rdatatype.RRSIG}
        if what == 'NODATA':
            t.ok(want <= types and dns.rdatatype.TXT not in types and NXNAME not in types and
                 dns.rdatatype.A in types,
                 'NODATA: bitmap has A NSEC RRSIG, not TXT nor NXNAME', detail)
        else:
            t.eq(types, want | {NXNAME}, 'nonexistent name: bitmap NSEC RRSIG NXNAME')
        signed = set(rd.type_covered for r in m.authority if r.rdtype == dns.rdatatype.RRSIG
                     for rd in r)
        t.ok({dns.rdatatype.NSEC, dns.rdatatype.SOA} <= signed,
             '%s: NSEC and SOA signed' % what, detail)


def gslbd_cases(ds_label):
    return [
        (WWW, 'A', 'NOERROR', True, ['192.0.2.1']),
        (TXT, 'TXT', 'NOERROR', True, ['"static text"']),
        (ZONE, 'SOA', 'NOERROR', True, None),
        (ZONE, 'DNSKEY', 'NOERROR', True, None),
        (NX, 'A', 'NOERROR', True, []),        # compact denial: NXDOMAIN answered as NODATA
        (WWW, 'TXT', 'NOERROR', True, []),
    ]


def pool_round(t, ub, label, n=POOL_QUERIES):
    """n pool queries through unbound: every one AD=1; returns the distinct answers."""
    bad, seen = [], {}
    for i in range(n):
        m = ub.query(POOL, 'A')
        if isinstance(m, str) or m.rcode() != dns.rcode.NOERROR or not m.flags & dns.flags.AD:
            bad.append(v.summary(m))
            if len(bad) >= 5:   # enough to tell, and each one may have cost a timeout
                break
            continue
        a = ','.join(sorted(rd.to_text() for rr in m.answer for rd in rr
                            if rr.rdtype == dns.rdatatype.A))
        seen[a] = seen.get(a, 0) + 1
    t.ok(not bad, '%s: %d pool answers through unbound, every one NOERROR AD=1' % (label, n),
         '%d bad (stopped at 5), first: %s' % (len(bad), bad[:3]))
    return seen


def make_pool(t, db):
    steps = [('pool', 'add', POOL, '--policy', 'weighted', '--ttl', '0', '--answers', '1')]
    steps += [('member', 'add', POOL, 'm%d' % i, '--address', a)
              for i, a in enumerate(POOL_ADDRS)]
    problems = []
    for s in steps:
        rc, out = ctl(db, *s)
        if rc:
            problems.append('gslbctl %s: %s' % (' '.join(s), out))
    return t.ok(not problems, 'gslbctl builds a weighted pool of %d members' % len(POOL_ADDRS),
                '\n'.join(problems))


def new_gslbd(zfile, port53=False):
    extra = ['--listen', '127.0.0.1:53'] if port53 else []
    return g.Gslbd(zones=(zfile,), identity=False, wait_zone=None, lifetime=170, v6=False,
                   extra_args=extra)


def mismatched_key(t, zfile, db_from):
    """gslbd with a key row whose public key is another key's: SERVFAIL, never AD."""
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    from cryptography.hazmat.primitives import serialization
    srv = new_gslbd(zfile)
    t.on_fail.append(lambda: srv.dump(t, 'gslbd (mismatched key) stderr'))
    dst = copy_db(db_from, os.path.join(srv.tmp, 'gslb.db'))
    row = dst.execute('SELECT id, algorithm, flags FROM dnssec_key WHERE zone = ?',
                      (ZONE,)).fetchone()
    if not t.ok(row is not None, 'mismatched key: the copied database has the key row'):
        dst.close()
        return
    kid, alg, flags = row
    if alg == 15:
        pub = ed25519.Ed25519PrivateKey.generate().public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    else:
        nums = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
        pub = nums.x.to_bytes(32, 'big') + nums.y.to_bytes(32, 'big')
    rd = dns.rdata.from_wire(dns.rdataclass.IN, dns.rdatatype.DNSKEY,
                             bytes([flags >> 8, flags & 255, 3, alg]) + pub, 0, 4 + len(pub))
    dst.execute('UPDATE dnssec_key SET public_key = ?, key_tag = ? WHERE id = ?',
                (pub, dns.dnssec.key_id(rd), kid))
    dst.commit()
    dst.close()
    srv.start()
    srv.wait_ready(ZONE)
    # Either gslbd signs with the private key and serves the public key of the row (signatures
    # no key of the DNSKEY RRset verifies), or it sees the pair does not match and serves the
    # zone unsigned; for a resolver with the row's DS as the parent's, both are bogus.
    keys = v.dnskeys('127.0.0.1', srv.port, ZONE)
    served = [k.to_text() for k in keys]
    if not t.ok(served in ([rd.to_text()], []),
                'mismatched key: gslbd serves the row\'s public key or none (%s)'
                % ('unsigned' if not served else 'signed'), '%r' % served):
        srv.check_stop(t, 'gslbd (mismatched key)')
        return
    ub = validator(t, 'mismatched key', ZONE, '127.0.0.1@%d' % srv.port,
                   [v.ds_of(ZONE, rd)])
    if ub:
        expect(t, ub, 'gslbd with a key row whose public key is not its private key\'s',
               [(WWW, 'A', 'SERVFAIL', False, None), (POOL, 'A', 'SERVFAIL', False, None),
                (NX, 'A', 'SERVFAIL', False, None)])
        ub.cleanup()
    srv.check_stop(t, 'gslbd (mismatched key)')


def copy_db(src_path, dst_path):
    src = sqlite3.connect(src_path)
    dst = sqlite3.connect(dst_path)
    src.backup(dst)
    src.close()
    return dst


def rrsig_of(srv, name, rdtype='A'):
    """The RRSIG gslbd gives name's rdtype RRset with DO=1, or None."""
    try:
        m = v.ask('127.0.0.1', name, rdtype, port=srv.port)
    except Exception:   # None: the caller's check fails or waits on
        return None
    for rr in m.answer:
        if rr.rdtype == dns.rdatatype.RRSIG:
            return rr[0]
    return None


def clock_checks(t, zfile, db_from, ds):
    """gslbd on a clock of its own (libfaketime, read from a file it re-reads every second):
    8 days behind, its signatures have expired for everyone else and the validator says
    SERVFAIL; put forward to now, 4 and 8 days ahead, it signs afresh (a signature is refreshed
    before it is half through) and a validator on the same clock says AD=1."""
    if not os.path.exists(FAKETIME_LIB):
        t.skip('gslbd on a fake clock', 'no %s (apt-get install faketime)' % FAKETIME_LIB)
        return
    srv = new_gslbd(zfile)
    t.on_fail.append(lambda: srv.dump(t, 'gslbd (fake clock) stderr'))
    copy_db(db_from, os.path.join(srv.tmp, 'gslb.db')).close()

    # The keys were made now: 8 days ago they did not exist.  Their times go back a month.
    con = sqlite3.connect(os.path.join(srv.tmp, 'gslb.db'))
    month = int(time.time()) - 30 * 86400
    con.execute('UPDATE dnssec_key SET created = ?, publish = ?, active = ? WHERE zone = ?',
                (month, month, month, ZONE))
    con.commit()
    con.close()
    clock = os.path.join(srv.tmp, 'faketime')

    def set_clock(spec):
        with open(clock + '.new', 'w') as f:
            f.write(spec + '\n')
        os.rename(clock + '.new', clock)
    set_clock('-8d')
    saved = dict(os.environ)
    os.environ.update({
        'LD_PRELOAD': FAKETIME_LIB, 'FAKETIME_TIMESTAMP_FILE': clock,
        'FAKETIME_CACHE_DURATION': '1', 'FAKETIME_DONT_FAKE_MONOTONIC': '1',
        # A build with AddressSanitizer wants its runtime first; libfaketime only wraps time.
        'ASAN_OPTIONS': (os.environ.get('ASAN_OPTIONS', '') +
                         ':verify_asan_link_order=0').lstrip(':')})
    try:
        srv.start()
        srv.wait_ready(ZONE)
        started = None
    except RuntimeError as e:
        started = str(e)
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if started is not None:
        t.skip('gslbd on a fake clock', 'gslbd does not start under libfaketime')
        t.diag(started)
        srv.stop()
        return
    day = 86400
    sig = rrsig_of(srv, WWW)
    now = time.time()
    t.ok(sig is not None and sig.expiration < now - 0.5 * day,
         'gslbd 8 days behind: its signatures expired a day ago',
         'expiration %+.0f s from now' % ((sig.expiration - now) if sig else 0))
    ub = validator(t, 'fake clock -8d', ZONE, '127.0.0.1@%d' % srv.port, ds)
    if ub:
        expect(t, ub, 'gslbd 8 days behind, validator on time',
               [(WWW, 'A', 'SERVFAIL', False, None), (POOL, 'A', 'SERVFAIL', False, None),
                (NX, 'A', 'SERVFAIL', False, None)])
        ub.cleanup()
    for label, offset in (('now', 0), ('4 days ahead', 4 * day), ('8 days ahead', 8 * day)):
        set_clock('+%dd' % (offset // day))
        # Refreshed before half through: at most 3.5 of the 7 days gone, whatever was cached.
        floor = time.time() + offset + 3.5 * day
        took = g.time_until(lambda: getattr(rrsig_of(srv, WWW), 'expiration', 0) >= floor, 8.0)
        t.ok(took is not None, 'gslbd\'s clock %s: fresh signatures within seconds%s'
             % (label, ' (%.1f s)' % took if took is not None else ''),
             'RRSIG now: %s' % rrsig_of(srv, WWW))
        extra = 'val-override-date: "%s"' % date_spec(offset) if offset else ''
        ub = validator(t, 'fake clock %s' % label, ZONE, '127.0.0.1@%d' % srv.port, ds,
                       extra=extra)
        if ub:
            expect(t, ub, 'gslbd and validator %s' % label,
                   [(WWW, 'A', 'NOERROR', True, None), (POOL, 'A', 'NOERROR', True, None),
                    (NX, 'A', 'NOERROR', True, []), (ZONE, 'DNSKEY', 'NOERROR', True, None)])
            ub.cleanup()
    srv.check_stop(t, 'gslbd (fake clock)')


def dnsviz_check(t, label, ds, keys, want_ok=True):
    """dnsviz against the server on 127.0.0.1:53: no error (want_ok), or some (a control)."""
    if not os.access(v.DNSVIZ, os.X_OK):
        t.skip('%s: dnsviz' % label, 'no dnsviz (apt-get install dnsviz)')
        return
    t0 = time.monotonic()
    ran, problems, warnings, expected, detail = v.dnsviz(ZONE, ds, keys, DNSVIZ_NAMES)
    took = time.monotonic() - t0
    for w in warnings:
        t.diag('%s: dnsviz warning: %s' % (label, w))
    for e in expected:
        t.diag('%s: dnsviz error expected here (%s): %s'
               % (label, v.DNSVIZ_EXPECTED[e.split(': ', 1)[1].split(' ', 1)[0]], e))
    if want_ok:
        t.ok(ran and not problems, '%s: dnsviz probe + grok: no error, all SECURE (%.1f s)'
             % (label, took), '\n'.join(problems) + '\n' + detail[-3000:])
    else:
        t.ok(ran and problems, '%s: dnsviz probe + grok report errors (%.1f s)' % (label, took),
             detail[-3000:])
        t.diag('%s: dnsviz: %s' % (label, '\n'.join(problems[:5])))


def zonemaster_check(t, label, ds, want_ok=True):
    """zonemaster-cli's DNSSEC module against 127.0.0.1:53: nothing above NOTICE but what
    ZONEMASTER_EXPECTED lists (want_ok), or an ERROR (a control)."""
    if not os.access(v.ZONEMASTER, os.X_OK):
        t.skip('%s: zonemaster-cli' % label, 'no zonemaster-cli (apt-get install zonemaster-cli)')
        return
    t0 = time.monotonic()
    rc, msgs, raw = v.zonemaster(ZONE, ds)
    took = time.monotonic() - t0
    if not t.ok(msgs is not None, '%s: zonemaster-cli --test DNSSEC ran (%.1f s, exit %r)'
                % (label, took, rc), raw[-3000:]):
        return
    for m in msgs:
        t.diag('%s: zonemaster: %-8s %s %s %s' % ((label,) + m))
    serious = [m for m in msgs if m[0] in ('WARNING', 'ERROR', 'CRITICAL')]
    for m in serious:
        if m[1] in ZONEMASTER_EXPECTED:
            t.diag('%s: zonemaster %s expected here: %s' % (label, m[1], ZONEMASTER_EXPECTED[m[1]]))
    unexpected = [m for m in serious if m[1] not in ZONEMASTER_EXPECTED]
    if want_ok:
        t.ok(not unexpected, '%s: zonemaster-cli DNSSEC: no warning or error (but the listed '
             'loopback ones)' % label, '\n'.join('%s %s %s %s' % m for m in unexpected))
    else:
        t.ok(any(m[0] in ('ERROR', 'CRITICAL') for m in unexpected),
             '%s: zonemaster-cli DNSSEC reports an error' % label, raw[-3000:])


def signers(srv, name, rdtype):
    """The key tags of the RRSIGs over name's rdtype RRset (DO=1), sorted."""
    try:
        m = v.ask('127.0.0.1', name, rdtype, port=srv.port)
    except Exception:   # a failed query: no signer, the caller's check says so
        return []
    return sorted(rd.key_tag for rr in m.answer if rr.rdtype == dns.rdatatype.RRSIG for rd in rr)


def rollover(t, srv, db, ub_old, old_ds):
    """A rollover on gslbd's own clock (T = ROLL_T, the parent's DS TTL ROLL_P): the new key
    is published now, signs from T, the old one is gone at 2T + P.  Three resolvers: one that
    still has the old DS only (the parent not updated yet, or its old DS set still cached: up
    to P after the parent changed), one with both DS (the parent updated as `gslbctl dnssec
    ds` says), and, at the end, one with the new DS only.  Each must have AD=1 at every step
    it can be in, and the old-DS-only one SERVFAIL once the old key is gone."""
    t0 = time.monotonic()
    rc, out = ctl(db, 'dnssec', 'rollover', ZONE, '--max-ttl', str(ROLL_T),
                  '--parent-ttl', str(ROLL_P))
    if not t.ok(rc == 0, 'gslbctl dnssec rollover %s --max-ttl %d --parent-ttl %d'
                % (ZONE, ROLL_T, ROLL_P), out):
        return
    t.diag(out.strip())
    t.eq(wait_keys(srv, 2), 2, 'rollover: gslbd serves both DNSKEYs')
    both, keys2 = served_ds(srv)
    rc, cds, out = ctl_ds(db)
    t.ok(rc == 0 and cds == both and len(both) == 2 and set(old_ds) <= set(both),
         'rollover: gslbctl dnssec ds gives both DS, the old one and the new',
         'gslbctl:\n%s\nserved: %r' % (out, both))
    new_tag = [int(d.split()[0]) for d in both if d not in old_ds]
    ub_both = validator(t, 'rollover, both DS', ZONE, '127.0.0.1@%d' % srv.port, both)

    def step(label):
        took = time.monotonic() - t0
        expect(t, ub_old, '%s (%.0f s), old DS only' % (label, took), gslbd_cases(old_ds))
        if ub_both:
            expect(t, ub_both, '%s (%.0f s), both DS' % (label, took), gslbd_cases(both))
            pool_round(t, ub_both, '%s, both DS' % label, 10)
        pool_round(t, ub_old, '%s, old DS only' % label, 10)

    # 1. Published, not yet signing (before T).
    step('rollover, new key published')
    # 2. The new key signs, the old one still published (T to 2T + P).
    took = g.time_until(lambda: set(new_tag) <= set(signers(srv, WWW, 'A')), ROLL_T + 5)
    t.ok(took is not None, 'rollover: the new key signs after T',
         'signers of %s A: %r, new key %r' % (WWW, signers(srv, WWW, 'A'), new_tag))
    t.diag('rollover: DNSKEY RRset signed by %r, %s A by %r; %.1f s in'
           % (signers(srv, ZONE, 'DNSKEY'), WWW, signers(srv, WWW, 'A'),
              time.monotonic() - t0))
    step('rollover, new key signing, old one published')
    dnsviz_check(t, 'rollover', both, keys2)
    # 3. The old key gone (after 2T + P).
    left = 2 * ROLL_T + ROLL_P - (time.monotonic() - t0)
    t.eq(wait_keys(srv, 1, timeout=max(left, 0) + 5), 1,
         'after the rollover: gslbd serves one DNSKEY')
    new_ds, keys3 = served_ds(srv)
    rc, cds, out = ctl_ds(db)
    t.ok(rc == 0 and cds == new_ds and new_ds and not set(new_ds) & set(old_ds) and
         set(new_ds) <= set(both),
         'after the rollover: gslbctl dnssec ds gives the new DS only',
         'gslbctl:\n%s\nserved: %r, old %r' % (out, new_ds, old_ds))
    time.sleep(2.5)   # unbound's cache (cache-max-ttl 2) forgets the two-key DNSKEY RRset
    if ub_both:
        expect(t, ub_both, 'after the rollover, both DS still at the parent', gslbd_cases(both))
        ub_both.cleanup()
    expect(t, ub_old, 'after the rollover, old DS only: no key left for it',
           [(WWW, 'A', 'SERVFAIL', False, None)])
    ub_old.restart(anchors=new_ds)
    expect(t, ub_old, 'after the rollover, new DS only', gslbd_cases(new_ds))
    pool_round(t, ub_old, 'after the rollover, new DS only', 20)


def gslbd_tests(t):
    missing = signing_missing()
    if missing:
        t.skip('gslbd signing', '%s yet (issue 20)' % missing)
        return
    zdir = tempfile.mkdtemp(prefix='gslbtest-dnssec-zone-')
    zfile = os.path.join(zdir, 'signed.test.zone')
    with open(zfile, 'w') as f:
        f.write(ZONE_TEXT)
    srv = new_gslbd(zfile, port53=True)
    t.on_fail.append(lambda: srv.dump(t))
    db = os.path.join(srv.tmp, 'gslb.db')
    rc, out = ctl(db, 'init')
    if not t.ok(rc == 0, 'gslbctl init', out) or not make_pool(t, db):
        return
    rc, out = ctl(db, 'dnssec', 'enable', ZONE)
    if not t.ok(rc == 0, 'gslbctl dnssec enable %s' % ZONE, out):
        return
    srv.start()
    srv.wait_ready(ZONE)
    n = wait_keys(srv, 1)
    if not t.eq(n, 1, 'gslbd serves one DNSKEY for %s' % ZONE):
        return
    ds, keys = served_ds(srv)
    rc, cds, out = ctl_ds(db)
    t.ok(rc == 0 and cds == ds, 'gslbctl dnssec ds is the DS of the DNSKEY served',
         'gslbctl:\n%s\nserved: %r' % (out, ds))
    try:
        direct_checks(t, srv)
    except Exception as e:   # a query that timed out: one failed check, the rest still run
        t.ok(False, 'gslbd answers every direct query', '%s: %s' % (type(e).__name__, e))

    ub = validator(t, 'gslbd', ZONE, '127.0.0.1@%d' % srv.port, ds)
    if not ub:
        return
    expect(t, ub, 'gslbd, DS anchor', gslbd_cases(ds))
    seen = pool_round(t, ub, 'gslbd')
    t.ok(len(seen) >= 3 and all(a in POOL_ADDRS for a in seen),
         'gslbd: the pool gave %d different answers (%d members)' % (len(seen), len(POOL_ADDRS)),
         '%r' % seen)

    negative_controls(t, 'gslbd', ZONE, srv.port, ds[0], [(TXT, 'TXT')],
                      [(WWW, 'A'), (POOL, 'A')])
    ub3 = validator(t, 'gslbd, 3 days ahead', ZONE, '127.0.0.1@%d' % srv.port, ds,
                    extra='val-override-date: "%s"' % date_spec(3 * 86400))
    if ub3:
        expect(t, ub3, 'gslbd, validator 3 days ahead: still inside the validity',
               [(WWW, 'A', 'NOERROR', True, None), (POOL, 'A', 'NOERROR', True, None)])
        ub3.cleanup()
    mismatched_key(t, zfile, db)
    clock_checks(t, zfile, db, ds)

    dnsviz_check(t, 'gslbd', ds, keys)
    zonemaster_check(t, 'gslbd', ds)

    rollover(t, srv, db, ub, ds)
    ub.cleanup()

    # Disable.
    rc, out = ctl(db, 'dnssec', 'disable', ZONE)
    t.ok(rc == 0, 'gslbctl dnssec disable %s' % ZONE, out)
    n = wait_keys(srv, 0)
    t.eq(n, 0, 'disabled: no DNSKEY served')
    for name, rdtype in ((WWW, 'A'), (POOL, 'A'), (ZONE, 'DNSKEY'), (NX, 'A')):
        m = v.ask('127.0.0.1', name, rdtype, port=srv.port)
        t.ok(not any(rr.rdtype in (dns.rdatatype.RRSIG, dns.rdatatype.NSEC, dns.rdatatype.DNSKEY)
                     for rr in m.answer + m.authority),
             'disabled: %s %s (DO=1) has no DNSKEY, RRSIG or NSEC' % (name, rdtype),
             v.summary(m) + '\n' + '\n'.join(rr.to_text() for rr in m.authority))
    m = v.ask('127.0.0.1', NX, 'A', port=srv.port)
    t.eq(dns.rcode.to_text(m.rcode()), 'NXDOMAIN', 'disabled: a nonexistent name is NXDOMAIN')

    # Signed again, with the other algorithm.
    rc, out = ctl(db, 'dnssec', 'enable', ZONE, '--algorithm', 'ed25519')
    t.ok(rc == 0, 'gslbctl dnssec enable %s --algorithm ed25519' % ZONE, out)
    t.eq(wait_keys(srv, 1), 1, 'ed25519: gslbd serves one DNSKEY')
    ds, keys = served_ds(srv)
    t.ok(all(d.split()[1] == '15' for d in ds), 'ed25519: the DNSKEY is algorithm 15', ds)
    ub = validator(t, 'ed25519', ZONE, '127.0.0.1@%d' % srv.port, ds)
    if ub:
        expect(t, ub, 'ed25519, DS anchor', gslbd_cases(ds))
        pool_round(t, ub, 'ed25519', 20)
        ub.cleanup()
    srv.check_stop(t)
    shutil.rmtree(zdir, ignore_errors=True)


def main(t):
    t0 = time.monotonic()
    if not setup_lo(t):
        return
    knot_harness(t)
    t.diag('Knot harness: %.1f s' % (time.monotonic() - t0))
    gslbd_tests(t)
    t.diag('total: %.1f s' % (time.monotonic() - t0))


if __name__ == '__main__':
    if os.geteuid() != 0:
        g.skip_all('needs root: unbound, knotd, dnsviz and zonemaster-cli run in a network '
                   'namespace of the test\'s own with port 53')
    g.enter_netns(__file__, INNER, [
        (v.UNBOUND, 'no unbound at %s (apt-get install unbound)' % v.UNBOUND),
        (GSLBCTL, 'no gslbctl at %s' % GSLBCTL)])
    g.run(main)
