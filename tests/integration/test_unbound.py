#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""End to end through a real resolver: unbound with ECS in front of a geo pool (issue 5).

The test re-executes itself in a new network namespace that has only loopback, so unbound can
reach nothing but gslbd, and the client addresses (192.0.2.10, 198.51.100.10 ...) can be put on
lo.  Clients query unbound from those addresses; unbound sends gslbd their /24 as EDNS Client
Subnet (send-client-subnet, subnetcache module) and caches each answer for the scope gslbd
returns.  A packet socket on lo sees every query that reaches gslbd, so the test counts them and
reads the ECS options on the wire in both directions.
"""

import atexit
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.edns  # noqa: E402
import dns.exception  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.rdatatype  # noqa: E402

import gslbtest as g  # noqa: E402

INNER = 'GSLB_UNBOUND_NETNS'
UNBOUND = os.environ.get('UNBOUND') or shutil.which('unbound') or '/usr/sbin/unbound'
GSLBCTL = g.GSLBCTL
GEOIP = os.path.join(g.SRCDIR, 'geoip', 'gslb-test-city.mmdb')

# Client addresses put on lo inside the namespace; the comments give the test geo file's data.
CLIENTS = [
    '192.0.2.10', '192.0.2.20',         # 192.0.2.0/24: DE
    '198.51.100.10', '198.51.100.20',   # 198.51.100.0/24: US-VA
    '10.1.0.10', '10.1.77.10',          # 10.1.0.0/16: US-CA, two different /24s
]

ZONE = """\
$TTL 3600
$ORIGIN geo.test.
@	IN SOA ns1 hostmaster 2024010101 3600 600 604800 300
	IN NS	ns1
ns1	IN A	127.0.0.1
"""

NAME = 'www.geo.test.'
TTL = 30
# member, its address, its rule
MEMBERS = [
    ('fra', '203.0.113.1', ['--country', 'DE']),
    ('iad', '203.0.113.2', ['--country', 'US-VA']),
    ('sjc', '203.0.113.3', ['--country', 'US-CA']),
]
SITE = {m[1]: m[0] for m in MEMBERS}
MARK_ADDR = socket.inet_aton('127.0.0.2')
# A weighted pool: its answers do not depend on the client, scope 0, cached once for everyone.
ANY = 'any.geo.test.'
SITE['203.0.113.9'] = 'any'

UNBOUND_CONF = """\
server:
	verbosity: 2
	log-queries: yes
	use-syslog: no
	logfile: "{tmp}/unbound.log"
	pidfile: "{tmp}/unbound.pid"
	directory: "{tmp}"
	chroot: ""
	username: ""
	interface: 127.0.0.1
	port: {port}
	interface-automatic: no
	so-reuseport: no
	num-threads: 1
	do-ip6: no
	access-control: 0.0.0.0/0 allow
	do-not-query-localhost: no
	qname-minimisation: no
	prefetch: no
	module-config: "subnetcache iterator"
	send-client-subnet: 127.0.0.1
	max-client-subnet-ipv4: 24
	max-client-subnet-ipv6: 56
	# test. is one of unbound's default local zones (RFC 6761): answered NXDOMAIN unless lifted.
	local-zone: "test." nodefault

stub-zone:
	name: "geo.test."
	stub-addr: 127.0.0.1@{gport}

remote-control:
	control-enable: no
"""


def setup_lo(t):
    """lo up with the client addresses; returns False when the namespace cannot be set up."""
    cmds = [['ip', 'link', 'set', 'lo', 'up']]
    cmds += [['ip', 'addr', 'add', a + '/32', 'dev', 'lo'] for a in CLIENTS]
    problems = []
    for c in cmds:
        rc, out = g.run_tool(c)
        if rc:
            problems.append('%s: %s' % (' '.join(c), out))
    rc, out = g.run_tool(['ip', '-o', 'addr', 'show'])
    ifaces = set(line.split()[1] for line in out.splitlines() if line.strip())
    return t.ok(not problems and ifaces == {'lo'},
                'namespace: only lo, up, with the client addresses',
                '\n'.join(problems) + '\n' + out)


class Sniffer:
    """Every UDP/TCP packet to or from gslbd's port on lo, read from an AF_PACKET socket."""

    def __init__(self, port):
        self.port = port
        self.queries = []     # dns.message.Message sent to gslbd over UDP
        self.replies = []     # dns.message.Message sent by gslbd over UDP
        self.tcp = 0          # TCP segments to gslbd's port: unbound should need none
        self.marks = 0        # marker datagrams seen (see snapshot)
        self.marks_sent = 0
        self.mark_port = 9   # discard, on 127.0.0.2 which nothing else here talks to
        self.lock = threading.Lock()
        self.cond = threading.Condition(self.lock)
        self.sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x0003))
        self.sock.bind(('lo', 0))
        self.sock.settimeout(0.1)
        self.running = True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while self.running:
            try:
                data, addr = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            # lo shows each packet twice, once outgoing: keep the incoming copy.
            if addr[2] == socket.PACKET_OUTGOING:
                continue
            self._packet(data)

    def _packet(self, data):
        if len(data) < 14 + 20 or data[12:14] != b'\x08\x00':
            return
        ip = data[14:]
        ihl = (ip[0] & 0x0f) * 4
        proto = ip[9]
        l4 = ip[ihl:]
        if len(l4) < 8:
            return
        sport, dport = struct.unpack('!HH', l4[:4])
        if proto == 6 and self.port in (sport, dport):
            with self.lock:
                self.tcp += 1
            return
        if proto == 17 and ip[16:20] == MARK_ADDR and dport == self.mark_port:
            with self.cond:
                self.marks += 1
                self.cond.notify_all()
            return
        if proto != 17 or self.port not in (sport, dport):
            return
        try:
            msg = dns.message.from_wire(l4[8:], ignore_trailing=True)
        except Exception:   # whatever it was, it is not a message we count
            return
        with self.lock:
            (self.queries if dport == self.port else self.replies).append(msg)

    def snapshot(self, timeout=5.0):
        """Counts once every packet sent so far has been read.

        The packet socket queues in order, so once a marker datagram sent now (to a port where
        nothing listens) has been read, so has everything before it.
        """
        with self.cond:
            self.marks_sent += 1
            want = self.marks_sent
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.sendto(b'mark', (socket.inet_ntoa(MARK_ADDR), self.mark_port))
        s.close()
        with self.cond:
            self.cond.wait_for(lambda: self.marks >= want, timeout)
            return len(self.queries), len(self.replies)

    def since(self, mark):
        with self.lock:
            return self.queries[mark[0]:], self.replies[mark[1]:]

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


def ecs_of(msg):
    for o in msg.options:
        if isinstance(o, dns.edns.ECSOption):
            return o
    return None


def ecs_text(o):
    return None if o is None else '%s/%d scope %d' % (o.address, o.srclen, o.scopelen)


class Unbound:
    def __init__(self, gport, lifetime=90):
        self.tmp = tempfile.mkdtemp(prefix='gslbtest-unbound-')
        self.port = g.free_port(v6=False)
        self.conf = os.path.join(self.tmp, 'unbound.conf')
        with open(self.conf, 'w') as f:
            f.write(UNBOUND_CONF.format(tmp=self.tmp, port=self.port, gport=gport))
        self.log_path = os.path.join(self.tmp, 'unbound.log')
        self.out_path = os.path.join(self.tmp, 'unbound.stderr')
        self.proc = None
        self.lifetime = lifetime
        self.dumped = False

    def checkconf(self):
        checker = os.path.join(os.path.dirname(UNBOUND), 'unbound-checkconf')
        if not os.access(checker, os.X_OK):
            return 0, 'no unbound-checkconf'
        return g.run_tool([checker, self.conf])

    def start(self, timeout=10.0):
        self.out = open(self.out_path, 'wb')
        self.proc = subprocess.Popen([UNBOUND, '-d', '-c', self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out, preexec_fn=g._pdeathsig)
        self._watchdog = threading.Timer(self.lifetime, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        # id.server CH TXT is answered by unbound itself: ready without a query to gslbd.
        q = dns.message.make_query('id.server.', 'TXT', 'CH')
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                dns.query.udp(q, '127.0.0.1', port=self.port, timeout=0.2)
                return True
            except (dns.exception.Timeout, OSError):
                time.sleep(0.05)
        return False

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def stop(self):
        if self.proc is None:
            return None
        rc = g.terminate(self.proc)
        self.proc = None
        self._watchdog.cancel()
        self.out.close()
        return rc

    def logs(self):
        text = ''
        for p in (self.out_path, self.log_path):
            try:
                with open(p, 'rb') as f:
                    text += '== %s\n' % p + f.read().decode('utf-8', 'replace')
            except OSError:
                pass
        return text

    def dump(self, t):
        if self.dumped:
            return
        self.dumped = True
        lines = self.logs().splitlines()
        t.diag('---- unbound (%s) ----' % self.conf)
        if len(lines) > 300:
            lines = lines[:50] + ['...'] + lines[-250:]
        t.diag('\n'.join(lines))


def ctl(db, *args):
    return g.run_tool([GSLBCTL, '--db', db] + list(args), timeout=15)


def build_pool(t, srv):
    db = os.path.join(srv.tmp, 'gslb.db')
    problems = []
    steps = [('init',), ('pool', 'add', NAME, '--policy', 'geo', '--ttl', str(TTL))]
    steps += [('member', 'add', NAME, m, '--address', a, *rule) for m, a, rule in MEMBERS]
    steps += [('pool', 'add', ANY, '--policy', 'weighted'),
              ('member', 'add', ANY, 'any', '--address', '203.0.113.9')]
    for s in steps:
        rc, out = ctl(db, *s)
        if rc:
            problems.append('gslbctl %s: %s' % (' '.join(s), out))
    return t.ok(not problems, 'gslbctl builds the pools', '\n'.join(problems))


def main(t):
    if not setup_lo(t):
        return
    zdir = tempfile.mkdtemp(prefix='gslbtest-unbound-zone-')
    zfile = os.path.join(zdir, 'geo.test.zone')
    with open(zfile, 'w') as f:
        f.write(ZONE)
    srv = g.Gslbd(zones=(zfile,), identity=False, wait_zone=None, lifetime=100,
                  extra_args=['--geoip', GEOIP])
    t.on_fail.append(lambda: srv.dump(t))
    if not build_pool(t, srv):
        return
    srv.start()
    srv.wait_ready('geo.test.')
    shutil.rmtree(zdir, ignore_errors=True)

    sniff = Sniffer(srv.port)
    ub = Unbound(srv.port)
    atexit.register(ub.stop)   # whatever happens below; a second stop does nothing
    t.on_fail.append(lambda: ub.dump(t))
    rc, out = ub.checkconf()
    t.eq((rc, out.strip() if rc else ''), (0, ''), 'unbound-checkconf accepts the config')
    if not t.ok(ub.start(), 'unbound starts and answers on 127.0.0.1@%d' % ub.port,
                'exit status %r' % (ub.proc.poll() if ub.proc else None)):
        return

    def ask(client, name):
        """Query unbound from client: (addresses, TTL, rcode text) or (None, None, error)."""
        q = dns.message.make_query(name, 'A')
        try:
            m = dns.query.udp(q, '127.0.0.1', port=ub.port, timeout=3, source=client)
        except Exception as e:   # a timeout or a refused source address: one failed check
            return None, None, '%s: %s' % (type(e).__name__, e)
        got = sorted(rd.to_text() for rr in m.answer for rd in rr
                     if rr.rdtype == dns.rdatatype.A)
        ttl = min((rr.ttl for rr in m.answer), default=None)
        return got, ttl, dns.rcode.to_text(m.rcode())

    def step(client, want_site, want_upstream, want_ecs=None, want_scope=None, name=NAME):
        """One client query through unbound, and what reached gslbd because of it."""
        mark = sniff.snapshot()
        got, ttl, rcode = ask(client, name)
        sniff.snapshot()
        qs, rs = sniff.since(mark)
        ours = [q for q in qs if q.question and q.question[0].name.to_text().lower() == name]
        want_addr = [a for a, s in SITE.items() if s == want_site]
        t.ok(got == want_addr and rcode == 'NOERROR',
             '%s gets the %s site for %s through unbound' % (client, want_site, name),
             'got %r rcode %s, want %r' % (got, rcode, want_addr))
        t.ok(len(ours) == want_upstream and len(qs) == want_upstream,
             '%s: %d quer%s reached gslbd' % (client, want_upstream,
                                              'y' if want_upstream == 1 else 'ies'),
             'queries seen at gslbd:\n' + '\n'.join(q.question[0].to_text() + ' ECS ' +
                                                   str(ecs_text(ecs_of(q))) for q in qs))
        if want_upstream and ours:
            e = ecs_of(ours[0])
            t.eq(ecs_text(e), '%s/24 scope 0' % want_ecs,
                 '%s: unbound sent gslbd ECS %s/24' % (client, want_ecs))
            mine = [r for r in rs if r.id == ours[0].id]
            scope = ecs_of(mine[0]).scopelen if mine and ecs_of(mine[0]) else None
            t.eq(scope, want_scope, '%s: gslbd answered with scope %s' % (client, want_scope))
        return got, ttl

    # 1. DE client: a miss, ECS 192.0.2.0/24 upstream, scope 24 back.
    got, ttl1 = step('192.0.2.10', 'fra', 1, '192.0.2.0', 24)
    t.ok(ttl1 is not None and TTL - 1 <= ttl1 <= TTL, 'first answer has the pool TTL %d' % TTL,
         'TTL %r' % ttl1)
    # 2. US-VA client: another /24, a new upstream query, another site.
    step('198.51.100.10', 'iad', 1, '198.51.100.0', 24)
    # 3. The DE client's neighbour in the same /24, after a second: unbound's cache answers.
    time.sleep(1.2)
    got, ttl3 = step('192.0.2.20', 'fra', 0)
    t.ok(ttl3 is not None and ttl1 is not None and ttl3 < ttl1,
         '192.0.2.20: the cached answer\'s TTL went down', 'TTL %r then %r' % (ttl1, ttl3))
    step('198.51.100.20', 'iad', 0)
    step('192.0.2.10', 'fra', 0)
    # 4. Scope wider than the source: gslbd says the answer holds for 10.1.0.0/16 (the geo
    # file's network), so a client in another /24 of that /16 is answered from the cache.
    step('10.1.0.10', 'sjc', 1, '10.1.0.0', 16)
    step('10.1.77.10', 'sjc', 0)
    # 5. Scope 0 (a weighted pool): the first client's answer serves every other client.
    step('192.0.2.10', 'any', 1, '192.0.2.0', 0, name=ANY)
    step('198.51.100.10', 'any', 0, name=ANY)
    step('10.1.77.10', 'any', 0, name=ANY)
    # 6. A client whose own query carries ECS: unbound uses that address (cut to /24) instead
    # of the source, and 198.51.100.0/24, cached since step 2, answers it without gslbd.
    q = dns.message.make_query(NAME, 'A', use_edns=0,
                               options=[dns.edns.ECSOption('198.51.100.77', 32)])
    mark = sniff.snapshot()
    try:
        m = dns.query.udp(q, '127.0.0.1', port=ub.port, timeout=3)
        got = sorted(rd.to_text() for rr in m.answer for rd in rr)
    except Exception as e:   # reported by the check below
        got = repr(e)
    sniff.snapshot()
    qs, _ = sniff.since(mark)
    t.eq((got, len(qs)), (['203.0.113.2'], 0),
         'a query with ECS 198.51.100.77/32 is answered from the US-VA cache entry')

    t.eq(sniff.tcp, 0, 'no TCP between unbound and gslbd')
    t.eq(sniff.marks, sniff.marks_sent, 'the packet socket on lo saw every marker sent')
    sniff.stop()
    rc = ub.stop()
    t.eq(rc, 0, 'unbound exits 0 after SIGTERM')
    log = ub.logs()
    errors = [line for line in log.splitlines() if 'error' in line.lower()]
    t.ok(not errors, 'no error in unbound\'s log', '\n'.join(errors[:20]))
    if t.failed:
        ub.dump(t)
    shutil.rmtree(ub.tmp, ignore_errors=True)
    srv.check_stop(t)


if __name__ == '__main__':
    g.enter_netns(__file__, INNER, [(UNBOUND, 'no unbound at %s (apt-get install unbound)' % UNBOUND),
                                    (GSLBCTL, 'no gslbctl at %s' % GSLBCTL)])
    g.run(main)
