#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""--match looks at the body only: a real HTTP server's status line ("HTTP/1.1 200 OK") and headers
("Server: gslb-test-backend ...", "Content-Type: text/plain") must not satisfy it (README "Health
checks": a string the body must contain).  The health loop alone (tests/health_probe) probes
tests/backend.py, whose body is "ok\\n"; the parser's edges are in tests/unit/test_probe_judgement.c.
"""

import os
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

PROBE = os.environ.get('HEALTH_PROBE') or os.path.join(g.BUILDDIR, 'tests', 'health_probe')
BACKEND = os.path.join(g.SRCDIR, 'tests', 'backend.py')

# match text -> whether the probe passes (the body is "ok\n")
MATCHES = {
    'OK': False,                  # the reason phrase of the status line only
    '200': False,                 # the status code only
    'HTTP/1.1': False,            # the status line only
    'gslb-test-backend': False,   # the Server header only
    'text/plain': False,          # the Content-Type header only
    'Content-Length': False,      # a header name only
    'ok': True,                   # the body
}


def main(t):
    if not os.access(PROBE, os.X_OK):
        t.skip('probe judgement', 'no %s' % PROBE)
        return
    be = subprocess.Popen(['/usr/bin/python3', BACKEND, '--port', '0', '--body', 'ok\n'],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, preexec_fn=g._pdeathsig)
    try:
        line = be.stdout.readline().decode()
        if not t.ok(line.startswith('ready '), 'backend started', line):
            return
        port = int(line.split()[1])
        targets, keys = [], {}
        for i, text in enumerate(MATCHES):
            path = '/m%d' % i
            targets.append('http,127.0.0.1:%d,path=%s,host=localhost,match=%s,interval=1,'
                           'timeout=0.5,rise=1,fall=1' % (port, path, text))
            # The target key: the request, then the settings that are not the defaults
            # (health_target_key(), README "Health checks").
            keys[text] = ('http 127.0.0.1:%d localhost%s interval 1s timeout 0.5s rise 1 fall 1 '
                          'match "%s"' % (port, path, text))
        p = subprocess.Popen([PROBE, '--seconds', '10'] + targets, stdin=subprocess.DEVNULL,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             preexec_fn=g._pdeathsig)
        results = {text: [] for text in MATCHES}
        done = threading.Event()

        def read():
            for raw in p.stdout:
                parts = raw.decode('utf-8', 'replace').rstrip('\n').split(' ', 2)
                if parts[0] != 'result' or len(parts) < 3:
                    continue
                for text, key in keys.items():
                    if parts[2].startswith(key + ' '):
                        rest = parts[2][len(key) + 1:].split(' ', 2)
                        results[text].append((rest[0] == 'ok', rest[2] if len(rest) > 2 else ''))
                if all(len(r) >= 2 for r in results.values()):
                    done.set()
            done.set()

        th = threading.Thread(target=read, daemon=True)
        th.start()
        # Two results of every target (not a fixed time): at most the 10 s the driver runs.
        done.wait(15)
        g.terminate(p)
        th.join(5)
        for text, passes in MATCHES.items():
            r = results[text]
            if passes:
                t.ok(len(r) >= 2 and all(ok for ok, _ in r),
                     'match %r: found in the body, the probe passes' % text, repr(r))
            else:
                want = 'body did not contain "%s"' % text
                t.ok(len(r) >= 2 and all(not ok and why == want for ok, why in r),
                     'match %r: only in the status line or headers, the probe fails with '
                     '\'%s\'' % (text, want), repr(r))
    finally:
        be.stdin.close()
        g.terminate(be)


if __name__ == '__main__':
    g.run(main)
