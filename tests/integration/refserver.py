# SPDX-License-Identifier: MIT
"""knotd and nsd as reference servers for the answer comparisons (test_crosscheck.py,
test_dns_edges.py): each in the foreground on a free port of 127.0.0.1 with its own temporary
directory, serving the zones of one directory, stopped by PID."""

import os
import shutil
import subprocess
import tempfile
import time

import gslbtest as g

NAMES = ('knotd', 'nsd')


def knot_conf(tmp, port, zdir, zones, identity):
    listed = ''.join('  - domain: %s\n    file: %s/%s.zone\n' % (z, zdir, z) for z in zones)
    ident = ('    identity: %s\n    version: %s\n    nsid: %s\n'
             % (g.SERVER_ID, g.SERVER_VERSION, g.NSID) if identity else '')
    return ('server:\n    listen: 127.0.0.1@%d\n    rundir: %s\n%s'
            'log:\n  - target: stderr\n    any: info\n'
            'database:\n    storage: %s/db\n'
            'template:\n  - id: default\n    semantic-checks: off\n    zonefile-sync: -1\n'
            '    zonefile-load: whole\n    journal-content: none\n'
            'zone:\n%s' % (port, tmp, ident, tmp, listed))


def nsd_conf(tmp, port, zdir, zones, identity):
    listed = ''.join('zone:\n  name: %s\n  zonefile: %s/%s.zone\n' % (z, zdir, z) for z in zones)
    ident = ('  hide-version: no\n  identity: "%s"\n  version: "%s"\n  nsid: "ascii_%s"\n'
             % (g.SERVER_ID, g.SERVER_VERSION, g.NSID) if identity else '')
    return ('server:\n  ip-address: 127.0.0.1@%d\n  port: %d\n  username: ""\n  chroot: ""\n'
            '  zonesdir: "%s"\n  pidfile: "%s/nsd.pid"\n  database: ""\n'
            '  xfrdfile: "%s/xfrd.state"\n  zonelistfile: "%s/zone.list"\n'
            '  logfile: "%s/nsd.log"\n%s  minimal-responses: yes\n'
            'remote-control:\n  control-enable: no\n%s'
            % (port, port, zdir, tmp, tmp, tmp, tmp, ident, listed))


SERVERS = {
    'knotd': ('/usr/sbin/knotd', knot_conf, lambda c: ['-c', c]),
    'nsd': ('/usr/sbin/nsd', nsd_conf, lambda c: ['-d', '-c', c]),
}


class RefServer:
    """One reference server (name in NAMES) serving zones (names, files zdir/NAME.zone); with
    identity, the same --server-id, --server-version and --nsid as gslbtest's gslbd."""

    def __init__(self, name, zdir, zones, identity=False):
        self.name, self.zdir, self.zones, self.identity = name, zdir, tuple(zones), identity
        path, self.conf, self.args = SERVERS[name]
        self.exe = shutil.which(name) or path
        self.tmp = tempfile.mkdtemp(prefix='gslbref-%s-' % name)
        self.log = os.path.join(self.tmp, 'ref.log')
        self.proc = None
        self.port = None
        self.why = None

    def start(self):
        """True once it answers an SOA for every zone (8 s at most); else why says why."""
        if not os.path.exists(self.exe):
            self.why = '%s not installed' % self.exe
            return False
        self.port = g.free_port(False)
        path = os.path.join(self.tmp, self.name + '.conf')
        with open(path, 'w') as f:
            f.write(self.conf(self.tmp, self.port, self.zdir, self.zones, self.identity))
        with open(self.log, 'ab') as logf:
            self.proc = subprocess.Popen([self.exe] + self.args(path), stdin=subprocess.DEVNULL,
                                         stdout=logf, stderr=logf, preexec_fn=g._pdeathsig)
        deadline = time.monotonic() + 8
        while time.monotonic() < deadline and self.proc.poll() is None:
            if all(self._serves(z) for z in self.zones):
                return True
            time.sleep(0.1)
        self.why = '%s did not serve every zone: %s' % (self.name, self.logtail())
        self.stop()
        return False

    def _serves(self, zone):
        r = self.ask(g.make_query(zone, 'SOA'), timeout=0.2)
        return r.msg is not None and bool(r.msg.answer)

    def ask(self, q, proto='udp', timeout=0.5):
        return g.exchange(q, ('127.0.0.1', self.port), proto, timeout)

    def logtail(self):
        try:
            with open(self.log, 'rb') as f:
                return f.read().decode('utf-8', 'replace')[-1500:]
        except OSError:
            return ''

    def stop(self):
        if self.proc:
            g.terminate(self.proc)
        self.proc = None

    def cleanup(self):
        self.stop()
        shutil.rmtree(self.tmp, ignore_errors=True)
