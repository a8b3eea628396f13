# SPDX-License-Identifier: MIT
"""Integration test harness: runs the real gslbd on loopback and talks TAP to automake."""

import atexit
import ctypes
import os
import random
import select
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback

import dns.edns
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdata
import dns.rdataclass
import dns.rdatatype

SRCDIR = os.environ.get('GSLB_SRCDIR') or os.path.abspath(
    os.path.join(os.path.dirname(__file__), '..', '..'))
BUILDDIR = os.environ.get('GSLB_BUILDDIR') or SRCDIR
GSLBD = os.environ.get('GSLBD') or os.path.join(BUILDDIR, 'gslbd')
GSLBCTL = os.environ.get('GSLBCTL') or os.path.join(BUILDDIR, 'gslbctl')
ZONES = os.path.join(SRCDIR, 'tests', 'zones')

# Identity strings given to the default instance, checked by the CH and NSID tests.
NSID = 'gslb-test-nsid'
SERVER_ID = 'gslb-test-id'
SERVER_VERSION = 'gslb-test-version'


class Tap:
    """A minimal TAP producer: one line per check, the plan printed at the end."""

    def __init__(self):
        self.n = 0
        self.failed = 0
        self.on_fail = []   # callables run once after the first failure (log dumps)
        self._dumped = False

    def diag(self, msg):
        for line in str(msg).splitlines() or ['']:
            print('# ' + line, flush=True)

    def ok(self, cond, desc, diag=None):
        self.n += 1
        desc = desc.replace('#', '\\#')
        if cond:
            print('ok %d - %s' % (self.n, desc), flush=True)
        else:
            self.failed += 1
            print('not ok %d - %s' % (self.n, desc), flush=True)
            if diag:
                self.diag(diag)
        return bool(cond)

    def eq(self, got, want, desc):
        return self.ok(got == want, desc, 'got:  %r\nwant: %r' % (got, want))

    def skip(self, desc, reason):
        self.n += 1
        print('ok %d - %s # SKIP %s' % (self.n, desc.replace('#', '\\#'), reason), flush=True)

    def finish(self):
        if self.failed and not self._dumped:
            self._dumped = True
            for f in self.on_fail:
                try:
                    f()
                except Exception:   # a dump must never hide the results
                    pass
        print('1..%d' % self.n, flush=True)
        if self.failed:
            self.diag('%d of %d checks failed' % (self.failed, self.n))
        return 1 if self.failed else 0


def run(main):
    """Run main(t) and exit with TAP's plan, turning an exception into a failed check."""
    t = Tap()
    try:
        main(t)
    except Exception:
        t.ok(False, 'test script raised an exception', traceback.format_exc())
    finally:
        stop_all()
    sys.exit(t.finish())


def skip_all(reason):
    """Skip the whole script (TAP plan 1..0)."""
    print('1..0 # SKIP %s' % reason, flush=True)
    sys.exit(0)


def enter_netns(script, inner, needs=()):
    """
    Re-exec script in a network namespace of its own (only lo, down): as root unshare --net,
    else unshare --map-root-user --net.  inner names the environment variable that marks the
    second run; needs is a list of (path, reason): a missing executable skips the script.
    """
    if os.environ.get(inner):
        return
    for path, reason in needs:
        if not os.access(path, os.X_OK):
            skip_all(reason)
    unshare = shutil.which('unshare') or '/usr/bin/unshare'
    ways = ([['--net']] if os.geteuid() == 0 else []) + [['--map-root-user', '--net']]
    refused = []
    for flags in ways:
        # Probe first, so that a refusal is a skip and a failure of the test itself is not.
        p = subprocess.run([unshare] + flags + ['--', 'true'], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT)
        if p.returncode == 0:
            os.environ[inner] = '1'
            sys.stdout.flush()
            os.execv(unshare, [unshare] + flags + ['--', sys.executable,
                                                    os.path.abspath(script)])
        refused.append('unshare %s: %s' % (' '.join(flags),
                                           p.stdout.decode('utf-8', 'replace').strip()))
    skip_all('network namespaces refused here (%s)' % '; '.join(refused))


# ---------------------------------------------------------------------------------------------
# Sockets and ports

def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        s.bind(('::1', 0))
        s.close()
        return True
    except OSError:
        return False


def _port_free(port, v6):
    fams = [(socket.AF_INET, '127.0.0.1')] + ([(socket.AF_INET6, '::1')] if v6 else [])
    socks = []
    try:
        for fam, addr in fams:
            for typ in (socket.SOCK_DGRAM, socket.SOCK_STREAM):
                s = socket.socket(fam, typ)
                socks.append(s)
                if fam == socket.AF_INET6:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((addr, port))
        return True
    except OSError:
        return False
    finally:
        for s in socks:
            s.close()


def free_port(v6=True):
    """A port free on UDP and TCP, on 127.0.0.1 and (when v6) ::1."""
    for _ in range(200):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(('127.0.0.1', 0))
        port = s.getsockname()[1]
        s.close()
        if _port_free(port, v6):
            return port
    raise RuntimeError('no free port found')


def _pdeathsig():
    # Take the daemon down with us if this test process dies without cleaning up.
    try:
        libc = ctypes.CDLL('libc.so.6', use_errno=True)
        libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG
    except Exception:
        pass


# ---------------------------------------------------------------------------------------------
# The daemon

_instances = []


def terminate(proc, timeout=5):
    """SIGTERM, SIGKILL after timeout seconds; returns the exit status (negative: a signal)."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def stop_all():
    for inst in list(_instances):
        inst.stop()


atexit.register(stop_all)


class Gslbd:
    """One gslbd process on free loopback ports, with its own zone directory and database."""

    def __init__(self, zones=('example.test.zone', 'other.test.zone'), identity=True,
                 extra_args=(), v6=None, lifetime=120, wait_zone='example.test.'):
        self.v6 = have_ipv6() if v6 is None else v6
        self.tmp = tempfile.mkdtemp(prefix='gslbtest-')
        self.zones_dir = os.path.join(self.tmp, 'zones')
        os.mkdir(self.zones_dir)
        for z in zones:
            src = z if os.path.isabs(z) else os.path.join(ZONES, z)
            shutil.copy(src, os.path.join(self.zones_dir, os.path.basename(src)))
        self.identity = identity
        self.extra_args = list(extra_args)
        self.lifetime = lifetime
        self.wait_zone = wait_zone
        self.proc = None
        self.port = None
        self.rc = None
        self.log_path = os.path.join(self.tmp, 'gslbd.stderr')
        self._watchdog = None
        self.dumped = False

    @property
    def addr4(self):
        return ('127.0.0.1', self.port)

    @property
    def addr6(self):
        return ('::1', self.port)

    def addr(self, family=4):
        return self.addr4 if family == 4 else self.addr6

    def start(self):
        self.port = free_port(self.v6)
        args = [GSLBD, '--listen', '127.0.0.1:%d' % self.port]
        if self.v6:
            args += ['--listen', '[::1]:%d' % self.port]
        args += ['--zones', self.zones_dir, '--db', os.path.join(self.tmp, 'gslb.db'),
                 '--threads', '2', '--log-level', 'debug']
        if self.identity:
            args += ['--nsid', NSID, '--server-id', SERVER_ID,
                     '--server-version', SERVER_VERSION]
        args += self.extra_args
        self.args = args
        self.log = open(self.log_path, 'wb')
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log, preexec_fn=_pdeathsig)
        _instances.append(self)
        # Hard limit: whatever the test does, the daemon does not outlive it by much.
        self._watchdog = threading.Timer(self.lifetime, self._kill)
        self._watchdog.daemon = True
        self._watchdog.start()
        if self.wait_zone:
            self.wait_ready(self.wait_zone)
        return self

    def _kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()

    def wait_ready(self, zone, timeout=5.0):
        deadline = time.monotonic() + timeout
        q = dns.message.make_query(zone, 'SOA', use_edns=False)
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError('gslbd exited with %d during start-up:\n%s'
                                   % (self.proc.returncode, self.stderr()))
            try:
                r = exchange(q, self.addr4, 'udp', timeout=0.2)
                if r.msg is not None and r.msg.rcode() == dns.rcode.NOERROR and r.msg.answer:
                    return
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError('gslbd did not answer %s SOA within %.0f s:\n%s'
                           % (zone, timeout, self.stderr()))

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, signum):
        if self.alive():
            os.kill(self.proc.pid, signum)

    def stop(self):
        """SIGTERM, SIGKILL after 5 s; returns the exit status (negative: killed by a signal)."""
        if self.proc is None:
            return self.rc
        self.rc = terminate(self.proc)
        self.proc = None
        if self._watchdog:
            self._watchdog.cancel()
        self.log.close()
        if self in _instances:
            _instances.remove(self)
        return self.rc

    def stderr(self):
        try:
            with open(self.log_path, 'rb') as f:
                return f.read().decode('utf-8', 'replace')
        except OSError:
            return ''

    def dump(self, t, label='gslbd stderr'):
        if self.dumped:
            return
        self.dumped = True
        t.diag('---- %s (%s) ----' % (label, ' '.join(self.args)))
        text = self.stderr()
        lines = text.splitlines()
        if len(lines) > 400:
            t.diag('(first 100 and last 300 of %d lines)' % len(lines))
            lines = lines[:100] + ['...'] + lines[-300:]
        t.diag('\n'.join(lines))

    def cleanup(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def check_stop(self, t, label='gslbd'):
        """Stop with SIGTERM and check the exit status is 0."""
        rc = self.stop()
        ok = t.ok(rc == 0, '%s exits 0 after SIGTERM' % label, 'exit status %r' % rc)
        if not ok or t.failed:
            self.dump(t, label + ' stderr')
        self.cleanup()
        return ok


# ---------------------------------------------------------------------------------------------
# Exchanging messages

class Reply:
    def __init__(self, wire, msg, error=None):
        self.wire = wire
        self.msg = msg
        self.error = error


def _family(addr):
    return socket.AF_INET6 if ':' in addr[0] else socket.AF_INET


def udp_raw(wire, addr, timeout=1.0, sock=None):
    """Send one datagram, return the answer's bytes or None after timeout."""
    own = sock is None
    s = sock or socket.socket(_family(addr), socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(wire, addr)
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            s.settimeout(left)
            try:
                data, src = s.recvfrom(65535)
            except socket.timeout:
                return None
            if src[0:2] == addr[0:2] or src[1] == addr[1]:
                return data
    finally:
        if own:
            s.close()


def recv_exact(s, n):
    buf = b''
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            return None
        buf += chunk
    return buf


def tcp_read_msg(s):
    hdr = recv_exact(s, 2)
    if hdr is None:
        return None
    (n,) = struct.unpack('!H', hdr)
    return recv_exact(s, n)


def tcp_raw(wire, addr, timeout=2.0):
    s = socket.create_connection(addr, timeout=timeout)
    try:
        s.sendall(struct.pack('!H', len(wire)) + wire)
        return tcp_read_msg(s)
    except socket.timeout:
        return None
    finally:
        s.close()


def parse(wire):
    try:
        return dns.message.from_wire(wire, ignore_trailing=True), None
    except Exception as e:   # any parse error is reported, not raised
        return None, '%s: %s' % (type(e).__name__, e)


def exchange(q, addr, proto='udp', timeout=1.0):
    """Send a dnspython message or raw bytes; returns a Reply (wire None on no answer)."""
    wire = q if isinstance(q, (bytes, bytearray)) else q.to_wire()
    if proto == 'udp':
        data = udp_raw(wire, addr, timeout)
    else:
        data = tcp_raw(wire, addr, timeout * 2)
    if data is None:
        return Reply(None, None, 'no answer over %s from %s' % (proto, addr[0]))
    msg, err = parse(data)
    return Reply(data, msg, err)


def make_query(qname, qtype='A', qclass='IN', edns=None, payload=1232, options=None,
               do=False, rd=True, opcode=None, qid=None):
    """A query; edns=None means no OPT, else the EDNS version (0)."""
    q = dns.message.make_query(qname, qtype, qclass,
                               use_edns=(False if edns is None else edns),
                               payload=payload, options=options, want_dnssec=do)
    if edns is not None:
        # dnspython 2.3's make_query sets version 0 whatever use_edns says
        q.use_edns(edns, dns.flags.DO if do else 0, payload, options=options)
    if not rd:
        q.flags &= ~dns.flags.RD
    if opcode is not None:
        q.set_opcode(opcode)
    q.id = random.randint(0, 65535) if qid is None else qid
    return q


# ---------------------------------------------------------------------------------------------
# Comparing answers

def rrs(section, keep_case=False, ttl=True):
    """A section as a set of (owner, ttl, type, rdata) tuples; owners lowercased unless asked."""
    out = set()
    for rrset in section:
        name = rrset.name.to_text()
        if not keep_case:
            name = name.lower()
        tname = dns.rdatatype.to_text(rrset.rdtype)
        for rd in rrset:
            out.add((name, rrset.ttl if ttl else None, tname, rd.to_text()))
    return out


def E(*lines, origin='example.test.'):
    """Expected records from 'name ttl type rdata' lines, names relative to origin."""
    o = dns.name.from_text(origin)
    out = set()
    for line in lines:
        name, ttl, typ, rdata = line.split(None, 3)
        n = o if name == '@' else dns.name.from_text(name, o)
        rd = dns.rdata.from_text('IN', typ, rdata, origin=o, relativize=False)
        out.add((n.to_text().lower(), int(ttl), typ.upper(), rd.to_text()))
    return out


def fmt(records):
    return '\n'.join('  %s %s %s %s' % r for r in sorted(records, key=str)) or '  (empty)'


def flags_text(msg):
    return dns.flags.to_text(msg.flags)


def check_reply(t, desc, q, rep, rcode=None, aa=None, tc=None, answer=None, authority=None,
                additional=None, echo_question=True, opt=None, extra=None):
    """One TAP check of a reply against the contract's header rules and the expectations given.

    answer/authority/additional: sets from E() (compared with lowercased owners), or None to
    skip. opt: True/False requires/forbids OPT (default: as in the query).
    extra: callable(msg) returning a list of problem strings.
    """
    problems = []
    m = rep.msg
    if m is None:
        return t.ok(False, desc, rep.error or 'no reply')
    qm = q if not isinstance(q, (bytes, bytearray)) else None
    if not m.flags & dns.flags.QR:
        problems.append('QR is 0')
    if qm is not None:
        if m.id != qm.id:
            problems.append('ID %d, query had %d' % (m.id, qm.id))
        if m.opcode() != qm.opcode():
            problems.append('opcode %s, query had %s' % (dns.opcode.to_text(m.opcode()),
                                                          dns.opcode.to_text(qm.opcode())))
        if bool(m.flags & dns.flags.RD) != bool(qm.flags & dns.flags.RD):
            problems.append('RD not copied')
        if echo_question:
            want = [(r.name.to_text(), r.rdclass, r.rdtype) for r in qm.question]
            got = [(r.name.to_text(), r.rdclass, r.rdtype) for r in m.question]
            if want != got:
                problems.append('question %r, want %r (case included)' % (got, want))
        want_opt = (qm.edns >= 0) if opt is None else opt
    else:
        want_opt = opt
    if m.flags & dns.flags.RA:
        problems.append('RA is 1')
    if rcode is not None and m.rcode() != rcode:
        problems.append('rcode %s, want %s' % (dns.rcode.to_text(m.rcode()),
                                               dns.rcode.to_text(rcode)))
    if aa is not None and bool(m.flags & dns.flags.AA) != aa:
        problems.append('AA=%d, want %d' % (bool(m.flags & dns.flags.AA), aa))
    if tc is not None and bool(m.flags & dns.flags.TC) != tc:
        problems.append('TC=%d, want %d' % (bool(m.flags & dns.flags.TC), tc))
    if want_opt is not None and (m.edns >= 0) != want_opt:
        problems.append('OPT %s, want %s' % ('present' if m.edns >= 0 else 'absent',
                                             'present' if want_opt else 'absent'))
    for name, want, sec in (('answer', answer, m.answer), ('authority', authority, m.authority),
                            ('additional', additional, m.additional)):
        if want is None:
            continue
        got = rrs(sec)
        if got != want:
            problems.append('%s section differs:\n got:\n%s\n want:\n%s'
                            % (name, fmt(got), fmt(want)))
    if extra:
        problems += extra(m)
    if problems:
        problems.append('reply: rcode=%s flags=%s\n%s'
                        % (dns.rcode.to_text(m.rcode()), flags_text(m), m.to_text()))
    return t.ok(not problems, desc, '\n'.join(problems))


def time_until(pred, timeout, step=0.05):
    """Poll pred until it is true: the seconds that took, or None after timeout seconds."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        if pred():
            return time.monotonic() - t0
        time.sleep(step)
    return None


def wait_for(pred, timeout, step=0.1):
    """Poll pred until it returns something true or timeout seconds pass: its last value."""
    end = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > end:
            return v
        time.sleep(step)


def is_closed(s, wait=0.0):
    """True when the peer closed (EOF or reset) within wait seconds; reads nothing else."""
    r, _, _ = select.select([s], [], [], wait)
    if not r:
        return False
    try:
        return s.recv(1, socket.MSG_PEEK) == b''
    except OSError:
        return True


class Listener:
    """A TCP port on 127.0.0.1 that accepts and closes: the target of a passing tcp check."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(('127.0.0.1', 0))
        self.s.listen(64)
        self.port = self.s.getsockname()[1]
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.s.accept()
                c.close()
            except OSError:
                return


def gslbctl(db, *args, timeout=20, stdin=None):
    """gslbctl --db db ARGS (GSLB_DB of the caller ignored): (exit status, stdout, stderr)."""
    env = dict(os.environ)
    env.pop('GSLB_DB', None)
    try:
        p = subprocess.run([GSLBCTL, '--db', db] + [str(a) for a in args], capture_output=True,
                           text=True, errors='replace', env=env, input=stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, '', 'timed out after %d s' % timeout
    return p.returncode, p.stdout, p.stderr


def run_tool(args, timeout=10):
    """Run a client (dig, kdig); returns (rc, stdout+stderr)."""
    try:
        p = subprocess.run(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout)
        return p.returncode, p.stdout.decode('utf-8', 'replace')
    except subprocess.TimeoutExpired as e:
        return -1, 'timed out after %d s: %s' % (timeout, e.output)
    except OSError as e:
        return -1, str(e)
