#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Zone reloads on SIGHUP and on file changes, without dropping queries (gslbd(8))."""

import os
import re
import signal
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.rcode  # noqa: E402

import gslbtest as g  # noqa: E402

NOERROR, NXDOMAIN, REFUSED = dns.rcode.NOERROR, dns.rcode.NXDOMAIN, dns.rcode.REFUSED


def main(t):
    srv = g.Gslbd().start()
    t.on_fail.append(lambda: srv.dump(t))
    zfile = os.path.join(srv.zones_dir, 'example.test.zone')

    def ask(name, qtype='A', proto='udp'):
        return g.exchange(g.make_query(name, qtype), srv.addr4, proto, timeout=0.5).msg

    def answer_of(name, qtype='A'):
        m = ask(name, qtype)
        if m is None:
            return None, None
        return m.rcode(), sorted(rd.to_text() for rrset in m.answer for rd in rrset)

    def append(path, text):
        with open(path, 'a') as f:
            f.write(text)

    def replace_file(path, text):
        # Write then rename, as editors and deploy tools do.
        tmp = os.path.join(os.path.dirname(path), '.tmp-' + os.path.basename(path))
        with open(tmp, 'w') as f:
            f.write(text)
        os.rename(tmp, path)

    t.eq(answer_of('www.example.test'), (NOERROR, ['192.0.2.10', '192.0.2.11']),
         'initial data served')

    # ---- SIGHUP
    append(zfile, 'hup1\tIN A\t192.0.2.101\n')
    srv.signal(signal.SIGHUP)
    took = g.time_until(lambda: answer_of('hup1.example.test') == (NOERROR, ['192.0.2.101']), 3)
    t.ok(took is not None, 'record added + SIGHUP: answered', 'not answered within 3 s')

    # ---- file change without a signal
    append(zfile, 'auto1\tIN A\t192.0.2.102\n')
    took = g.time_until(lambda: answer_of('auto1.example.test') == (NOERROR, ['192.0.2.102']), 4)
    t.ok(took is not None and took <= 2.5, 'record added, no signal: answered within ~2 s',
         'took %r s' % took)
    orig = open(zfile).read()
    replace_file(zfile, orig + 'auto2\tIN A\t192.0.2.103\n')
    took = g.time_until(lambda: answer_of('auto2.example.test') == (NOERROR, ['192.0.2.103']), 4)
    t.ok(took is not None and took <= 2.5,
         'file replaced by rename, no signal: answered within ~2 s', 'took %r s' % took)

    # ---- a broken file keeps the old data, and the log names the file and line
    good = open(zfile).read()
    bad_line = good.count('\n') + 2
    replace_file(zfile, good + 'broken1\tIN A\t192.0.2.104\nbroken2\tIN A\tnot-an-address\n')
    pat = re.compile(r'example\.test\.zone\D{1,3}%d\b' % bad_line)
    took = g.time_until(lambda: pat.search(srv.stderr()) is not None, 4)
    t.ok(took is not None, 'syntax error logged with the file name and line %d' % bad_line,
         'log lines mentioning the zone:\n' + '\n'.join(
             line for line in srv.stderr().splitlines() if 'example.test' in line))
    time.sleep(0.3)
    t.eq(answer_of('auto2.example.test'), (NOERROR, ['192.0.2.103']),
         'broken file: previous version still served')
    t.eq(answer_of('broken1.example.test')[0], NXDOMAIN,
         'broken file: nothing of the broken version is served')
    srv.signal(signal.SIGHUP)
    time.sleep(0.3)
    t.eq(answer_of('www.example.test'), (NOERROR, ['192.0.2.10', '192.0.2.11']),
         'broken file + SIGHUP: still serving the old version')
    t.ok(srv.alive(), 'alive after a broken zone file')
    replace_file(zfile, good + 'fixed\tIN A\t192.0.2.105\n')
    took = g.time_until(lambda: answer_of('fixed.example.test') == (NOERROR, ['192.0.2.105']), 4)
    t.ok(took is not None, 'file fixed: new version served')

    # ---- zones appear and disappear with their files
    third = os.path.join(srv.zones_dir, 'third.test.zone')
    with open(third, 'w') as f:
        f.write('$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 604800 60\n@ IN NS ns\n'
                'ns IN A 192.0.2.150\nwww IN A 192.0.2.151\n')
    took = g.time_until(lambda: answer_of('www.third.test') == (NOERROR, ['192.0.2.151']), 4)
    t.ok(took is not None, 'new zone file: zone served', 'took %r' % took)
    m = ask('third.test', 'SOA')
    t.ok(m is not None and m.rcode() == NOERROR and m.answer, 'new zone: SOA answered')
    os.unlink(third)
    took = g.time_until(lambda: answer_of('www.third.test')[0] == REFUSED, 4)
    t.ok(took is not None, 'zone file removed: REFUSED')
    t.eq(answer_of('host.other.test'), (NOERROR, ['192.0.2.201']),
         'the other zones are untouched')

    # An ignored file (editor backup) does not become a zone.
    with open(os.path.join(srv.zones_dir, 'backup.test.zone~'), 'w') as f:
        f.write('@ IN SOA ns hostmaster 1 3600 600 604800 60\n@ IN NS ns\nns IN A 192.0.2.1\n')
    srv.signal(signal.SIGHUP)
    time.sleep(0.5)
    m = ask('backup.test.zone~', 'SOA')
    m2 = ask('backup.test', 'SOA')
    t.ok((m is None or m.rcode() == REFUSED) and m2 is not None and m2.rcode() == REFUSED,
         'a file ending in ~ is not loaded')

    # ---- a file rewritten in place, slowly: the previous version until it is closed
    # (an editor or "cat > file" still writing when the 200 ms debounce ran out used to get
    # the first half served, and every name after the cut an authoritative NXDOMAIN).
    current = open(zfile).read()
    cut = current.index('; Empty non-terminals')
    later = (('x.y.wild.example.test', (NOERROR, ['192.0.2.82'])),
             ('fixed.example.test', (NOERROR, ['192.0.2.105'])))

    def watch_during(seconds, names):
        """Ask each name every 50 ms for seconds; returns the answers that differed."""
        bad = []
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            for name, want in names:
                got = answer_of(name)
                if got != want:
                    bad.append('%s: %r' % (name, got))
            time.sleep(0.05)
        return bad

    f = open(zfile, 'w')
    f.write(current[:cut])
    f.flush()
    bad = watch_during(1.5, later)
    t.ok(not bad, 'a zone file half written in place: the old version is served until it is '
         'closed, never NXDOMAIN', '%d wrong answers, first: %s' % (len(bad), bad[:3]))
    f.write(current[cut:] + 'slow1\tIN A\t192.0.2.161\n')
    f.close()
    took = g.time_until(lambda: answer_of('slow1.example.test') == (NOERROR, ['192.0.2.161']), 4)
    t.ok(took is not None and took <= 2.5, 'once closed, the new version is served within ~2 s',
         'took %r s' % took)
    t.eq([answer_of(n) for n, _ in later], [w for _, w in later],
         'the names after the cut are there in the new version')

    # A new zone file written slowly: no zone until it is closed (REFUSED, never NXDOMAIN).
    fourth = os.path.join(srv.zones_dir, 'fourth.test.zone')
    text = ('$TTL 60\n@ IN SOA ns hostmaster 1 3600 600 604800 60\n@ IN NS ns\n'
            'ns IN A 192.0.2.170\n')
    f = open(fourth, 'w')
    f.write(text)
    f.flush()
    bad = watch_during(1.5, (('www.fourth.test', (REFUSED, [])),))
    t.ok(not bad, 'a new zone file half written: not served until it is closed',
         '%d wrong answers, first: %s' % (len(bad), bad[:3]))
    f.write('www IN A 192.0.2.171\n')
    f.close()
    took = g.time_until(lambda: answer_of('www.fourth.test') == (NOERROR, ['192.0.2.171']), 4)
    t.ok(took is not None and took <= 2.5, 'the new zone, once closed: served within ~2 s',
         'took %r s' % took)
    os.unlink(fourth)
    g.time_until(lambda: answer_of('www.fourth.test')[0] == REFUSED, 4)

    # A file written slowly under a temporary name, then renamed into place.
    tmp = os.path.join(srv.zones_dir, '.example.test.zone.new')
    f = open(tmp, 'w')
    f.write(current[:cut])
    f.flush()
    bad = watch_during(1.0, later)
    f.write(current[cut:] + 'slow2\tIN A\t192.0.2.162\n')
    f.close()
    bad += watch_during(0.5, later)
    os.rename(tmp, zfile)
    took = g.time_until(lambda: answer_of('slow2.example.test') == (NOERROR, ['192.0.2.162']), 4)
    t.ok(not bad and took is not None and took <= 2.5,
         'a file written slowly elsewhere and renamed into place: the old version until the '
         'rename, the new one within ~2 s after', 'took %r s; wrong answers: %s' % (took, bad[:3]))

    # A file left open after its last write (a writer that never closes it): loaded once it has
    # not changed for 10 s, not before.
    f = open(zfile, 'w')
    f.write(current + 'slow3\tIN A\t192.0.2.163\n')
    f.flush()
    bad = watch_during(3.0, later + (('slow3.example.test', (NXDOMAIN, [])),))
    t.ok(not bad, 'a file written but still open: the old version is served',
         '%d wrong answers, first: %s' % (len(bad), bad[:3]))
    took = g.time_until(lambda: answer_of('slow3.example.test') == (NOERROR, ['192.0.2.163']), 12)
    took = took and took + 3.0
    t.ok(took is not None and 9.5 <= took <= 13,
         'a file left open: loaded once unchanged for 10 s', 'took %r s' % took)
    f.close()
    t.ok(any('unchanged for 10 s' in line for line in srv.stderr().splitlines()),
         'loading a file still open is logged')

    # ---- queries keep succeeding during 20 reloads
    stop = threading.Event()
    stats = {'ok': 0, 'fail': [], 'tcp_ok': 0}

    def querier():
        while not stop.is_set():
            for proto in ('udp', 'udp', 'udp', 'tcp'):
                rep = g.exchange(g.make_query('www.example.test', 'A'), srv.addr4, proto,
                                 timeout=0.5)
                m = rep.msg
                if m is None or m.rcode() != NOERROR or len(m.answer) != 1 \
                        or len(m.answer[0]) != 2:
                    stats['fail'].append('%s: %s' % (proto, rep.error or m.to_text()))
                else:
                    stats['ok'] += 1

    th = threading.Thread(target=querier, daemon=True)
    th.start()
    for i in range(20):
        replace_file(zfile, good + 'loop\tIN TXT\t"%d"\n' % i)
        if i % 2:
            srv.signal(signal.SIGHUP)
        time.sleep(0.15)
    took = g.time_until(lambda: ask('loop.example.test', 'TXT') is not None and
                    [rd.to_text() for rrset in ask('loop.example.test', 'TXT').answer
                     for rd in rrset] == ['"19"'], 4)
    stop.set()
    th.join(5)
    t.diag('%d queries answered during the reloads' % stats['ok'])
    t.ok(stats['ok'] > 20 and not stats['fail'], 'no failed query during 20 reloads',
         '%d failures, first: %s' % (len(stats['fail']), stats['fail'][:3]))
    t.ok(took is not None, 'the last of the 20 versions is served')

    t.ok(srv.alive(), 'gslbd still running')
    srv.check_stop(t)


if __name__ == '__main__':
    g.run(main)
