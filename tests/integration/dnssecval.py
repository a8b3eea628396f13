# SPDX-License-Identifier: MIT
"""Validation helpers for the DNSSEC tests: a validating unbound anchored on a zone's DS only,
a UDP proxy that mutates answers on their way to it, Knot DNS signing a zone as a reference,
and dnsviz and zonemaster-cli run against a server on 127.0.0.1:53.

Everything here runs inside the test's own network namespace (only lo), where port 53 is free.
"""

import json
import os
import shutil
import socket
import subprocess
import tempfile
import threading
import time

import dns.dnssec
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.query
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype
import dns.rrset

import gslbtest as g

UNBOUND = os.environ.get('UNBOUND') or shutil.which('unbound') or '/usr/sbin/unbound'
KNOTD = shutil.which('knotd') or '/usr/sbin/knotd'
DNSVIZ = shutil.which('dnsviz') or '/usr/bin/dnsviz'
ZONEMASTER = shutil.which('zonemaster-cli') or '/usr/bin/zonemaster-cli'

# The root is not trusted (no auto-trust-anchor-file), so the zone's DS given as trust-anchor is
# the only one: unbound validates the zone below it and treats everything else as insecure.
# val-sig-skew 0: a signature counts from its inception to its expiration exactly, so that
# val-override-date can put the validator just outside the window.  Caching is kept short so
# that a key change at the server is seen within seconds.
UNBOUND_CONF = """\
server:
	verbosity: 1
	val-log-level: 2
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
	access-control: 127.0.0.0/8 allow
	do-not-query-localhost: no
	qname-minimisation: no
	prefetch: no
	prefetch-key: no
	harden-dnssec-stripped: yes
	module-config: "validator iterator"
	val-sig-skew-min: 0
	val-sig-skew-max: 0
	cache-max-ttl: {max_ttl}
	cache-max-negative-ttl: {max_ttl}
	infra-host-ttl: 5
	serve-expired: no
	# test. is one of unbound's default local zones (RFC 6761): answered NXDOMAIN unless lifted.
	local-zone: "test." nodefault
{extra}
{anchors}
stub-zone:
	name: "{zone}"
	stub-addr: {addr}

remote-control:
	control-enable: no
"""


def ds_of(zone, dnskey_rdata, digest='SHA256'):
    """The DS text (key tag, algorithm, digest type, digest) of one DNSKEY rdata."""
    return dns.dnssec.make_ds(dns.name.from_text(zone), dnskey_rdata, digest).to_text()


def wrong_ds(ds_text):
    """The same DS with its digest's last hex digit changed: a DS of no key."""
    head, digest = ds_text.rsplit(' ', 1)
    last = '0' if digest[-1].lower() != '0' else '1'
    return '%s %s%s' % (head, digest[:-1], last)


def ask(addr, name, rdtype='A', do=True, timeout=2.0, cd=False, port=53):
    """One UDP query (EDNS, DO as given, RD set) to addr; returns the message or raises."""
    q = dns.message.make_query(name, rdtype, want_dnssec=do, use_edns=0, payload=1232)
    if cd:
        q.flags |= dns.flags.CD
    return dns.query.udp(q, addr, port=port, timeout=timeout)


def dnskeys(addr, port, zone):
    """The DNSKEY rdatas the server at addr:port answers for zone (DO=1, over TCP)."""
    q = dns.message.make_query(zone, 'DNSKEY', want_dnssec=True, use_edns=0, payload=1232)
    q.flags &= ~dns.flags.RD
    m = dns.query.tcp(q, addr, port=port, timeout=3)
    for rr in m.answer:
        if rr.rdtype == dns.rdatatype.DNSKEY:
            return list(rr)
    return []


def rcode_ad(m):
    """'NOERROR AD' style summary of a resolver's reply."""
    return '%s%s' % (dns.rcode.to_text(m.rcode()), ' AD' if m.flags & dns.flags.AD else '')


class Unbound:
    """unbound validating one zone, anchored on the DS records given, reached at addr."""

    def __init__(self, zone, addr, anchors, extra='', max_ttl=2, lifetime=170):
        self.zone = zone
        self.addr = addr            # 'IP@PORT' of the zone's server (or of a proxy before it)
        self.anchors = list(anchors)
        self.extra = extra
        self.max_ttl = max_ttl
        self.lifetime = lifetime
        self.tmp = tempfile.mkdtemp(prefix='gslbtest-validator-')
        self.conf = os.path.join(self.tmp, 'unbound.conf')
        self.log_path = os.path.join(self.tmp, 'unbound.log')
        self.out_path = os.path.join(self.tmp, 'unbound.stderr')
        self.port = None
        self.proc = None
        self._watchdog = None
        self.dumped = False

    def write_conf(self):
        anchors = '\n'.join('\ttrust-anchor: "%s DS %s"' % (self.zone, d) for d in self.anchors)
        extra = '\n'.join('\t' + line for line in self.extra.splitlines() if line.strip())
        with open(self.conf, 'w') as f:
            f.write(UNBOUND_CONF.format(tmp=self.tmp, port=self.port, zone=self.zone,
                                        addr=self.addr, anchors='server:\n' + anchors,
                                        extra=extra, max_ttl=self.max_ttl))

    def checkconf(self):
        checker = os.path.join(os.path.dirname(UNBOUND), 'unbound-checkconf')
        if not os.access(checker, os.X_OK):
            return 0, ''
        return g.run_tool([checker, self.conf])

    def start(self, timeout=10.0):
        """Write the configuration, start unbound; True once it answers."""
        if self.port is None:
            self.port = g.free_port(v6=False)
        self.write_conf()
        self.out = open(self.out_path, 'ab')
        self.proc = subprocess.Popen([UNBOUND, '-d', '-c', self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.out, stderr=self.out, preexec_fn=g._pdeathsig)
        self._watchdog = threading.Timer(self.lifetime, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        # id.server CH TXT is answered by unbound itself: ready without a query upstream.
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

    def restart(self, anchors=None, extra=None):
        """A new trust anchor set (as a parent's DS change would give): a fresh unbound."""
        self.stop()
        if anchors is not None:
            self.anchors = list(anchors)
        if extra is not None:
            self.extra = extra
        return self.start()

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

    def query(self, name, rdtype='A', timeout=4.0):
        """A DO=1 query through unbound: the reply, or an exception's text."""
        try:
            return ask('127.0.0.1', name, rdtype, port=self.port, timeout=timeout)
        except Exception as e:   # a timeout counts as a failed check in the caller
            return '%s: %s' % (type(e).__name__, e)

    def logs(self, tail=150):
        text = []
        for p in (self.out_path, self.log_path):
            try:
                with open(p, 'rb') as f:
                    lines = f.read().decode('utf-8', 'replace').splitlines()
                text.append('== %s (last %d lines)' % (p, tail))
                text += lines[-tail:]
            except OSError:
                pass
        return '\n'.join(text)

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)


def summary(m):
    """rcode, AD and the answer's data of a reply (or the error text) for diagnostics."""
    if isinstance(m, str):
        return m
    return '%s; %s' % (rcode_ad(m), ' | '.join(rr.to_text() for rr in m.answer))


class MutatingProxy:
    """A UDP relay between unbound and the server that changes the address of every A record in
    the answer section (the RRSIG left as it was), so the answer no longer matches its
    signature; everything else is relayed as it came."""

    def __init__(self, upstream_port, lifetime=170):
        self.upstream = ('127.0.0.1', upstream_port)
        self.mutated = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.running = True
        self.deadline = time.monotonic() + lifetime
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _mutate(self, wire):
        try:
            m = dns.message.from_wire(wire)
        except Exception:   # not ours to judge: relayed as it came
            return wire
        changed = False
        for i, rr in enumerate(m.answer):
            if rr.rdtype != dns.rdatatype.A:
                continue
            new = dns.rrset.RRset(rr.name, rr.rdclass, rr.rdtype)
            for rd in rr:
                last = int(rd.address.split('.')[-1])
                new.add(dns.rdata.from_text(rr.rdclass, rr.rdtype,
                                            '192.0.2.%d' % ((last + 1) % 250)), rr.ttl)
            m.answer[i] = new
            changed = True
        if not changed:
            return wire
        self.mutated += 1
        return m.to_wire(max_size=65535)

    def _run(self):
        while self.running and time.monotonic() < self.deadline:
            try:
                data, client = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                return
            up = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            up.settimeout(2)
            try:
                up.sendto(data, self.upstream)
                reply, _ = up.recvfrom(65535)
                self.sock.sendto(self._mutate(reply), client)
            except OSError:
                pass
            finally:
                up.close()

    def stop(self):
        self.running = False
        self.thread.join(2)
        self.sock.close()


KNOT_CONF = """\
server:
    rundir: "{tmp}/run"
    listen: [{listen}]
database:
    storage: "{tmp}/db"
template:
  - id: default
    storage: "{tmp}"
    file: "%s.zone"
    zonefile-sync: -1
    journal-content: none
policy:
  - id: csk
    algorithm: ecdsap256sha256
    single-type-signing: on
    nsec3: off
    rrsig-lifetime: 7d
    rrsig-refresh: 3d
zone:
  - domain: {zone}
    dnssec-signing: on
    dnssec-policy: csk
"""


class Knot:
    """knotd signing one zone (automatic signing, a CSK), on 127.0.0.1:port (and :53)."""

    def __init__(self, zone, zone_text, port53=False, lifetime=60):
        self.zone = zone
        self.tmp = tempfile.mkdtemp(prefix='gslbtest-knot-')
        for d in ('run', 'db'):
            os.mkdir(os.path.join(self.tmp, d))
        with open(os.path.join(self.tmp, zone + 'zone'), 'w') as f:
            f.write(zone_text)
        self.port = g.free_port(v6=False)
        self.conf = os.path.join(self.tmp, 'knot.conf')
        with open(self.conf, 'w') as f:
            listen = ['127.0.0.1@%d' % self.port] + (['127.0.0.1@53'] if port53 else [])
            f.write(KNOT_CONF.format(tmp=self.tmp, listen=', '.join(listen), zone=zone))
        self.log_path = os.path.join(self.tmp, 'knotd.log')
        self.lifetime = lifetime
        self.proc = None

    def start(self, timeout=10.0):
        """True once the zone's DNSKEY is served."""
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen([KNOTD, '-c', self.conf], stdin=subprocess.DEVNULL,
                                     stdout=self.log, stderr=self.log, preexec_fn=g._pdeathsig)
        self._watchdog = threading.Timer(self.lifetime, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if dnskeys('127.0.0.1', self.port, self.zone):
                    return True
            except (dns.exception.DNSException, OSError):
                pass
            time.sleep(0.1)
        return False

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def logs(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def stop(self):
        if self.proc is None:
            return None
        rc = g.terminate(self.proc)
        self.proc = None
        self._watchdog.cancel()
        self.log.close()
        shutil.rmtree(self.tmp, ignore_errors=True)
        return rc


# dnsviz grok checks pygraphviz's version through pygraphviz.release when given trusted keys;
# Debian 12's pygraphviz 1.7 has no such module (its version is pygraphviz.__version__), so grok
# exits 2 saying pygraphviz is missing.  The shim gives it the module before running dnsviz.
GROK_SHIM = """\
import runpy, sys, types
import pygraphviz
if not hasattr(pygraphviz, 'release'):
    release = types.ModuleType('pygraphviz.release')
    release.version = pygraphviz.__version__
    sys.modules['pygraphviz.release'] = release
    pygraphviz.release = release
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name='__main__')
"""


# dnsviz grok codes that come from the test's setup, not from the signing: code -> why.
DNSVIZ_EXPECTED = {
    'NS_NAME_PRIVATE_IP': 'the zone\'s only name server is 127.0.0.1 (a loopback-only test)',
    'GLUE_PRIVATE_IP': 'the delegation\'s glue is 127.0.0.1 (a loopback-only test)',
}
# Statuses dnsviz grok gives to what validates (or is not meant to).
DNSVIZ_GOOD = {'SECURE', 'VALID', 'NOERROR', 'NXDOMAIN'}


def dnsviz(zone, ds_texts, dnskey_texts, names, timeout=60):
    """dnsviz probe of zone and names at 127.0.0.1:53 (authoritative, ns1.ZONE at 127.0.0.1 and
    the DS given as the delegation, which dnsviz serves from a named of its own) and dnsviz grok
    with the zone's keys as trusted keys.

    Returns (ran, problems, warnings, expected, detail): problems are errors not in
    DNSVIZ_EXPECTED, and statuses other than DNSVIZ_GOOD (but the DS query's own answer, which
    comes unsigned from dnsviz's named, the parent); every item a 'path: code text' line."""
    tmp = tempfile.mkdtemp(prefix='gslbtest-dnsviz-')
    try:
        probe_out = os.path.join(tmp, 'probe.json')
        tk = os.path.join(tmp, 'trusted-keys')
        with open(tk, 'w') as f:
            for k in dnskey_texts:
                f.write('%s 300 IN DNSKEY %s\n' % (zone, k))
        ds_file = os.path.join(tmp, 'ds')
        with open(ds_file, 'w') as f:
            for d in ds_texts:
                f.write('%s 300 IN DS %s\n' % (zone, d))
        args = [DNSVIZ, 'probe', '-A', '-a', zone, '-N', '%s:ns1.%s=127.0.0.1' % (zone, zone),
                '-D', '%s:%s' % (zone, ds_file), '-o', probe_out] + list(names)
        rc, out = g.run_tool(args, timeout=timeout)
        if rc != 0:
            return False, ['dnsviz probe exited %r' % rc], [], [], ' '.join(args) + '\n' + out
        rc, grok = g.run_tool(['/usr/bin/python3', '-c', GROK_SHIM, DNSVIZ, 'grok', '-l', 'info',
                               '-t', tk, '-r', probe_out], timeout=timeout)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if rc != 0:
        return False, ['dnsviz grok exited %r' % rc], [], [], grok
    try:
        data = json.loads(grok)
    except ValueError as e:
        return False, ['dnsviz grok printed no JSON: %s' % e], [], [], grok
    errors, warnings, statuses = [], [], []
    _walk(data, [], errors, warnings, statuses)
    problems = [e for e in errors if e.split(': ', 1)[1].split(' ', 1)[0] not in DNSVIZ_EXPECTED]
    expected = [e for e in errors if e not in problems]
    for path, status in statuses:
        if status not in DNSVIZ_GOOD and '/IN/DS/' not in path:
            problems.append('%s: status %s' % (path, status))
    for part in ('delegation', 'zone'):
        if (zone + '/' + part, 'SECURE') not in statuses:
            problems.append('%s/%s is not SECURE' % (zone, part))
    return True, problems, warnings, expected, grok


def _walk(node, path, errors, warnings, statuses):
    """Collect every 'errors' and 'warnings' item and every 'status' in grok's output."""
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ('errors', 'warnings') and isinstance(v, list):
                for item in v:
                    if isinstance(item, dict):
                        text = '%s %s' % (item.get('code', ''), item.get('description', ''))
                    else:
                        text = str(item)
                    (errors if k == 'errors' else warnings).append('%s: %s' % ('/'.join(path),
                                                                              text))
            elif k == 'status' and isinstance(v, str):
                statuses.append(('/'.join(path), v))
            else:
                _walk(v, path + [str(k)], errors, warnings, statuses)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            _walk(v, path + [str(i)], errors, warnings, statuses)


def zonemaster(zone, ds_texts, timeout=90):
    """zonemaster-cli's DNSSEC module against 127.0.0.1:53 given as the zone's only name
    server (ns1.ZONE, an undelegated test), with the DS records given; no IPv6.  Returns
    (rc, messages, raw): messages as (level, tag, testcase, arguments) for every message of
    level NOTICE or above, or None when the output was not zonemaster's JSON."""
    args = [ZONEMASTER, '--json', '--no-progress', '--no-ipv6', '--level', 'NOTICE',
            '--test', 'DNSSEC', '--ns', 'ns1.%s/127.0.0.1' % zone]
    for d in ds_texts:
        tag, alg, dt, digest = d.split(' ', 3)
        args += ['--ds', '%s,%s,%s,%s' % (tag, alg, dt, digest.replace(' ', ''))]
    args.append(zone)
    rc, out = g.run_tool(args, timeout=timeout)
    try:
        data = json.loads(out[out.index('['):])
        msgs = [(r.get('level', ''), r.get('tag', ''), r.get('testcase', ''),
                 json.dumps(r.get('args', {}), sort_keys=True)) for r in data]
    except (ValueError, AttributeError):
        return rc, None, ' '.join(args) + '\n' + out
    return rc, msgs, ' '.join(args) + '\n' + out
