#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DNS Cookies across a cluster (README "On the open internet"): nodes without a secret file share
the secret etcd holds, put there at random by the first node, so each accepts the server cookies
of the others; a node with --cookie-secret-file keeps its own; a secret put into etcd by hand
replaces the shared one on every node, whose old cookies stay valid.  One real etcd on free
loopback ports, stopped by its PID.
"""

import os
import re
import struct
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import etcdcluster as ec  # noqa: E402
import gslbtest as g  # noqa: E402
from test_abuse import query_wire, reply_cookie, server_cookie  # noqa: E402

PREFIX = '/gslbtest-cookies/'
KEY = PREFIX + 'secrets/cookie'
CLIENT = bytes.fromhex('0123456789abcdef')


def secret_in(etcd):
    """The cookie secret in etcd, or None."""
    kv = etcd.get_prefix(PREFIX + 'secrets/')[0].get(KEY)
    return kv['value'] if kv else None


def valid_count(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/metrics' % port, timeout=5) as r:
        m = re.search(r'^gslbd_cookies_valid_total (\d+)$', r.read().decode(), re.M)
    return int(m.group(1)) if m else None


def cookie_of(node, cookie=CLIENT):
    r = g.exchange(query_wire('www.example.test.', cookie=cookie), node.addr4)
    return reply_cookie(r.wire) if r.wire else None


def main(t):
    reason = ec.have_etcd()
    if reason:
        g.skip_all(reason)
    ec.install_term_handler()
    etcd = ec.EtcdCluster(1)
    nodes = []
    try:
        etcd.start(timeout=20)

        def node(name, *extra):
            mport = g.free_port(False)
            n = g.Gslbd(v6=False, extra_args=['--cluster', etcd.endpoints, '--node', name,
                                              '--cluster-prefix', PREFIX, '--metrics',
                                              '127.0.0.1:%d' % mport] + list(extra)).start()
            n.mport = mport
            nodes.append(n)
            return n

        n1 = node('n1')
        g.wait_for(lambda: secret_in(etcd) is not None, 10)
        secret = secret_in(etcd) or ''
        t.ok(re.fullmatch('[0-9a-f]{32}', secret or ''),
             'the first node puts a random 32-hex-digit secret in etcd (%s)' % KEY)
        n2 = node('n2')
        # Once n1 uses etcd's secret, its cookies are RFC 9018's for it.
        want = None

        def n1_uses_it():
            nonlocal want
            got = cookie_of(n1)
            if not got:
                return False
            ts, = struct.unpack('>I', got[12:16])
            want = server_cookie(bytes.fromhex(secret), CLIENT, ts, '127.0.0.1')
            return got[8:] == want
        t.ok(secret and g.wait_for(n1_uses_it, 10),
             'n1 makes its cookies with the secret in etcd')
        # n2 accepts n1's cookie: valid (counted) and sent back as it is.
        full = CLIENT + want if want else None

        def n2_accepts():
            before = valid_count(n2.mport)
            back = cookie_of(n2, full)
            return back == full and valid_count(n2.mport) == before + 1
        t.ok(full and g.wait_for(n2_accepts, 10),
             'n2 accepts n1\'s server cookie and sends it back unchanged')
        t.eq(secret_in(etcd), secret,
             'the second node did not replace the secret')

        # A node with a secret file of its own keeps it.
        path = os.path.join(n1.tmp, 'own.secret')
        own = bytes(range(0x40, 0x50))
        with open(path, 'w') as f:
            f.write(own.hex() + '\n')
        n3 = node('n3', '--cookie-secret-file', path)
        time.sleep(1.0)
        got = cookie_of(n3)
        ts = struct.unpack('>I', got[12:16])[0] if got else 0
        t.ok(got is not None and got[8:] == server_cookie(own, CLIENT, ts, '127.0.0.1'),
             'a node with --cookie-secret-file uses its own secret, not etcd\'s')

        # A new secret put into etcd: every node switches, the old cookies stay valid.
        new = bytes(range(0x60, 0x70))
        etcd.put(KEY, new.hex())

        def switched(n):
            got = cookie_of(n)
            if not got:
                return False
            ts, = struct.unpack('>I', got[12:16])
            return got[8:] == server_cookie(new, CLIENT, ts, '127.0.0.1')
        t.ok(g.wait_for(lambda: switched(n1) and switched(n2), 10),
             'a secret put into etcd by hand: n1 and n2 make cookies with it')
        before = valid_count(n2.mport)
        back = cookie_of(n2, full)
        t.ok(valid_count(n2.mport) == before + 1 and back is not None and back != full,
             'the old secret\'s cookie: still valid, replaced by one of the new secret')
        t.ok(not switched(n3), 'n3 keeps its own secret')
        etcd.put(KEY, 'not-hex')
        t.ok(g.wait_for(lambda: 'is not 32 hex digits' in n1.stderr(), 10) and switched(n1),
             'a value that is not a secret: logged, the secret in use kept')
        for n in nodes:
            n.check_stop(t, 'gslbd ' + n.args[n.args.index('--node') + 1])
    finally:
        for n in nodes:
            n.cleanup()
        etcd.close()


if __name__ == '__main__':
    g.run(main)
