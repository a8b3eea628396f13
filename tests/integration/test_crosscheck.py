#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The same zones served by gslbd and by knotd (or nsd) must get the same answers, except where
gslbd deliberately answers otherwise (DIFFERENCES), where it must give exactly the answer its README
documents."""

import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.flags  # noqa: E402
import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402
import refserver  # noqa: E402

ZONES = ('example.test', 'other.test')

# (qname, qtype, qclass, edns)
QUERIES = [
    ('www.example.test', 'A'), ('www.example.test', 'AAAA'), ('www.example.test', 'TXT'),
    ('WwW.ExAmPlE.tEsT', 'A'), ('example.test', 'SOA'), ('example.test', 'NS'),
    ('example.test', 'MX'), ('example.test', 'TXT'), ('www.example.test', 'MX'),
    ('nothere.example.test', 'A'), ('nothere.other.test', 'A'), ('host.other.test', 'AAAA'),
    ('host.other.test', 'A'), ('ent.example.test', 'A'), ('b.ent.example.test', 'TXT'),
    ('a.b.ent.example.test', 'TXT'), ('x.b.ent.example.test', 'A'),
    ('alias.example.test', 'A'), ('alias.example.test', 'CNAME'), ('c1.example.test', 'A'),
    ('c1.example.test', 'MX'), ('c2.example.test', 'AAAA'), ('dangling.example.test', 'A'),
    ('outside.example.test', 'A'), ('foo.wild.example.test', 'A'),
    ('foo.wild.example.test', 'TXT'), ('a.b.wild.example.test', 'A'),
    ('foo.wild.example.test', 'MX'), ('exists.wild.example.test', 'A'),
    ('exists.wild.example.test', 'TXT'), ('x.exists.wild.example.test', 'A'),
    ('y.wild.example.test', 'A'), ('z.y.wild.example.test', 'A'),
    ('foo.wcname.example.test', 'A'), ('sub.example.test', 'A'), ('sub.example.test', 'NS'),
    ('host.sub.example.test', 'A'), ('ns.sub.example.test', 'AAAA'), ('sub.example.test', 'DS'),
    ('tosub.example.test', 'A'), ('deep.sub.example.test', 'NS'),
    ('x.deep.sub.example.test', 'A'), ('ns.deep.sub.example.test', 'A'), ('ns1.example.test', 'A'), ('l1.example.test', 'A'),
    ('bigtxt.example.test', 'TXT'), ('hugetxt.example.test', 'TXT'),
    ('www.example.test', 'ANY'), ('nothere.example.test', 'ANY'),
    ('www.example.org', 'A'), ('example.test', 'AXFR'),
]

def _no_additional(ref):
    """The reference's answer without the addresses it adds for the targets."""
    return dict(ref, additional=set())


def _hinfo(ref):
    return {'rcode': 'NOERROR', 'aa': True, 'tc': False,
            'answer': {('www.example.test.', 3600, 'HINFO', '"RFC8482" ""')},
            'authority': set(), 'additional': set()}


def _notimp(ref):
    return {'rcode': 'NOTIMP', 'aa': False, 'tc': False, 'answer': set(), 'authority': set(),
            'additional': set()}


def _eight_links(ref):
    return {'rcode': 'NOERROR', 'aa': True, 'tc': False,
            'answer': {('l%d.example.test.' % i, 3600, 'CNAME', 'l%d.example.test.' % (i + 1))
                       for i in range(1, 9)},
            'authority': set(), 'additional': set()}


# Where gslbd deliberately answers otherwise than Knot or NSD: (qname lowercased, qtype, server)
# or (qname, qtype, '*') -> (why, what gslbd must answer: a function of the reference's summary).
# These are checked, never skipped: gslbd must give exactly its documented answer.
DIFFERENCES = {
    ('www.example.test', 'ANY', '*'):
        ('README "DNS behaviour": ANY gets one HINFO "RFC8482" "" (RFC 8482 4.2); Knot and NSD '
         'return the real RRsets', _hinfo),
    ('example.test', 'NS', '*'):
        ('README "DNS behaviour": the additional section holds only OPT and referral glue; Knot '
         'and NSD add the addresses of the NS targets', _no_additional),
    ('example.test', 'MX', '*'):
        ('README "DNS behaviour": no addresses of MX targets in the additional section; Knot and '
         'NSD add them', _no_additional),
    ('example.test', 'AXFR', '*'):
        ('README "DNS behaviour": AXFR is NOTIMP; Knot and NSD refuse it or transfer by ACL',
         _notimp),
    ('l1.example.test', 'A', '*'):
        ('README "DNS behaviour": CNAME chains are followed up to 8 links, a longer one is '
         'answered with its first 8 CNAMEs; Knot stops after 5, NSD follows all 9',
         _eight_links),
}


class Reference:
    """The first of knotd and nsd (or the one GSLB_REFERENCE names) that serves a copy of the
    test zones."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix='gslbref-')
        self.zdir = os.path.join(self.tmp, 'zones')
        os.mkdir(self.zdir)
        for z in ZONES:
            shutil.copy(os.path.join(g.ZONES, z + '.zone'), self.zdir)
        self.server = None
        self.why = []

    def start(self):
        only = os.environ.get('GSLB_REFERENCE')   # 'knotd' or 'nsd' to force one
        for name in refserver.NAMES:
            if only and name != only:
                continue
            srv = refserver.RefServer(name, self.zdir, ZONES, identity=True)
            if srv.start():
                self.server = srv
                self.name, self.port = srv.name, srv.port
                return True
            self.why.append(srv.why)
            srv.cleanup()
        return False

    def logtail(self):
        return self.server.logtail() if self.server else ''

    def cleanup(self):
        if self.server:
            self.server.cleanup()
        shutil.rmtree(self.tmp, ignore_errors=True)


def summary(m):
    """What is compared: rcode, AA, TC, and the three sections as sets (OPT excluded)."""
    return {
        'rcode': dns.rcode.to_text(m.rcode()),
        'aa': bool(m.flags & dns.flags.AA),
        'tc': bool(m.flags & dns.flags.TC),
        'answer': g.rrs(m.answer, keep_case=True),
        'authority': g.rrs(m.authority),
        'additional': g.rrs(m.additional),
    }


def diff(a, b, other='reference'):
    out = []
    for k in a:
        if a[k] != b[k]:
            if isinstance(a[k], set):
                out.append('%s: gslbd only:\n%s\n %s only:\n%s'
                           % (k, g.fmt(a[k] - b[k]), other, g.fmt(b[k] - a[k])))
            else:
                out.append('%s: gslbd %r, %s %r' % (k, a[k], other, b[k]))
    return out


def main(t):
    ref = Reference()
    try:
        if not ref.start():
            t.skip('cross-check against knotd/nsd', 'no reference server: ' + '; '.join(ref.why))
            return
        t.diag('reference server: %s on port %d' % (ref.name, ref.port))
        srv = g.Gslbd(zones=[z + '.zone' for z in ZONES]).start()
        t.on_fail.append(lambda: srv.dump(t))
        t.on_fail.append(lambda: t.diag('---- %s log ----\n%s' % (ref.name, ref.logtail())))

        for edns in (None, 0):
            for qname, qtype in QUERIES:
                desc = '%s %s%s' % (qname, qtype, ' +edns' if edns is not None else '')
                key = (qname.lower(), qtype)
                listed = DIFFERENCES.get(key + (ref.name,)) or DIFFERENCES.get(key + ('*',))
                q = g.make_query(qname, qtype, edns=edns, payload=1232)
                proto = 'tcp' if qtype == 'AXFR' else 'udp'
                a = g.exchange(q, srv.addr4, proto)
                b = g.exchange(q, ('127.0.0.1', ref.port), proto)
                if a.msg is None or b.msg is None:
                    t.ok(False, desc, 'gslbd: %s; %s: %s' % (a.error, ref.name, b.error))
                    continue
                sa, sb = summary(a.msg), summary(b.msg)
                problems = diff(sa, sb)
                if listed:
                    reason, documented = listed
                    want = documented(sb)
                    t.ok(sa == want, '%s: gslbd\'s documented answer, not %s\'s (%s)'
                         % (desc, ref.name, reason),
                         '\n'.join(diff(sa, want, 'documented')) + '\n---- gslbd:\n%s'
                         % a.msg.to_text())
                    if problems:
                        t.diag('  differs from %s as documented:\n  %s'
                               % (ref.name, '\n  '.join(problems).replace('\n', '\n  ')))
                    continue
                t.ok(not problems, '%s: same as %s' % (desc, ref.name),
                     '\n'.join(problems) + '\n---- gslbd:\n%s\n---- %s:\n%s'
                     % (a.msg.to_text(), ref.name, b.msg.to_text()))

        # CH identity: both configured with the same strings.
        for name in ('version.bind', 'version.server', 'hostname.bind', 'id.server'):
            q = g.make_query(name, 'TXT', qclass='CH')
            a = g.exchange(q, srv.addr4)
            b = g.exchange(q, ('127.0.0.1', ref.port))
            if a.msg is None or b.msg is None:
                t.ok(False, 'CH TXT %s' % name, 'no reply')
                continue
            ta = sorted(rd.to_text() for r in a.msg.answer for rd in r)
            tb = sorted(rd.to_text() for r in b.msg.answer for rd in r)
            t.ok(ta == tb and a.msg.rcode() == b.msg.rcode(),
                 'CH TXT %s: same text as %s' % (name, ref.name), 'gslbd %r, %s %r'
                 % (ta, ref.name, tb))
        srv.check_stop(t)
    finally:
        ref.cleanup()


if __name__ == '__main__':
    g.run(main)
