#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The status page (README "Status page") in a real browser: headless Chromium.

A real gslbd with backends that are up and one that is down, and eight hours of a target's stored
history made down (state_change rows, as gslbd writes them): Chromium's DOM must hold every pool,
member and address with its state classes, and its screenshot (a PNG decoded here with zlib) must
have the size asked for and show the timeline's green and its eight-hour red stretch.  Skipped
only when no Chromium is installed (setup.sh installs chromium-headless-shell).
"""

import os
import shutil
import signal
import sqlite3
import struct
import subprocess
import sys
import tempfile
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402
import test_status_page as sp  # noqa: E402  (module level has no side effects)

WIDTH, HEIGHT = 1600, 1000
GREEN = (0x2c, 0xa0, 0x2c)   # .seg.up in src/server/status_page.c
RED = (0xd6, 0x27, 0x28)     # .seg.down
DOWN_H = 8                   # the stored down stretch, hours
PX_PER_H = 20                # TL_WIDTH 480 / 24


def chromium():
    for name in ('chromium-headless-shell', 'chromium'):
        path = shutil.which(name)
        if path:
            return path
    return None


def browse(exe, tmp, url, *args, timeout=60):
    """Run Chromium headless on url with a profile of its own; (exit status, stdout, stderr)."""
    prof = tempfile.mkdtemp(prefix='chromium-', dir=tmp)
    cmd = [exe]
    if os.path.basename(exe) == 'chromium':
        cmd.append('--headless')
    if os.geteuid() == 0:
        cmd.append('--no-sandbox')   # Chromium refuses to run as root with its sandbox
    cmd += ['--user-data-dir=' + prof, '--disable-gpu', '--no-first-run',
            '--hide-scrollbars',
            '--window-size=%d,%d' % (WIDTH, HEIGHT)] + list(args) + [url]
    env = dict(os.environ, HOME=prof, XDG_CONFIG_HOME=prof, XDG_CACHE_HOME=prof)
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True, preexec_fn=None)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, signal.SIGKILL)
        out, err = p.communicate()
        return -1, out, err + b'\n(timed out after %d s)' % timeout
    finally:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    return p.returncode, out, err


def png_decode(data):
    """8-bit RGB or RGBA PNG -> (width, height, rows of (r, g, b) tuples)."""
    if data[:8] != b'\x89PNG\r\n\x1a\n':
        raise ValueError('not a PNG')
    pos, idat, hdr = 8, b'', None
    while pos < len(data):
        n, kind = struct.unpack('>I4s', data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        pos += 12 + n
        if kind == b'IHDR':
            hdr = struct.unpack('>IIBBBBB', body)
        elif kind == b'IDAT':
            idat += body
        elif kind == b'IEND':
            break
    w, h, depth, ctype, _, _, interlace = hdr
    if depth != 8 or ctype not in (2, 6) or interlace:
        raise ValueError('PNG depth %d colour type %d interlace %d' % (depth, ctype, interlace))
    bpp = 3 if ctype == 2 else 4
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev, off = [], bytearray(stride), 0
    for _ in range(h):
        f = raw[off]
        line = bytearray(raw[off + 1:off + 1 + stride])
        off += 1 + stride
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b = prev[i]
            c = prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                pa, pb, pc = abs(b - c), abs(a - c), abs(a + b - 2 * c)
                pr = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pr) & 255
        rows.append([tuple(line[i:i + 3]) for i in range(0, stride, bpp)])
        prev = line
    return w, h, rows


def longest_run(rows, colour):
    """The longest horizontal run of pixels of exactly colour, in any row."""
    best = 0
    for row in rows:
        run = 0
        for px in row:
            run = run + 1 if px == colour else 0
            best = max(best, run)
    return best


def main(t):
    exe = chromium()
    if not exe:
        g.skip_all('no chromium or chromium-headless-shell (setup.sh installs it)')
    if not os.access(g.GSLBCTL, os.X_OK):
        g.skip_all('gslbctl not built')
    tmp = tempfile.mkdtemp(prefix='gslb-sb-')
    try:
        run(t, exe, tmp)
    finally:
        sp.cleanup_procs()
        shutil.rmtree(tmp, ignore_errors=True)


def run(t, exe, tmp):
    port = g.free_port(False)
    srv, db, be = sp.setup(tmp, None, port)
    srv.start()
    t.on_fail.append(lambda: srv.dump(t))
    web = 'web.' + sp.ZONE_NAME
    t.ok(sp.wait_state(port, web, 'b', be['b'].host, 'up'), 'b is probed up')
    t.ok(sp.wait_state(port, web, 'm', be['m'].host, 'down'), 'm is down')
    # Eight hours of b down, ending four hours ago, as gslbd would have stored them.
    key = sp.addr_of(sp.status_json(port), web, 'b', be['b'].host)['target']
    now = int(time.time())
    con = sqlite3.connect(db, timeout=10)
    with con:
        tid = con.execute('SELECT id FROM target WHERE key = ?', (key,)).fetchone()[0]
        con.executemany('INSERT INTO state_change(time, target_id, from_state, to_state, reason) '
                        'VALUES (?, ?, ?, ?, ?)',
                        [(now - (4 + DOWN_H) * 3600, tid, 'up', 'down', 'HTTP 503'),
                         (now - 4 * 3600, tid, 'down', 'up', 'HTTP 200')])
    con.close()
    url = 'http://127.0.0.1:%d/' % port

    rc, out, err = browse(exe, tmp, url, '--dump-dom')
    dom = out.decode('utf-8', 'replace')
    t.ok(rc == 0 and '</html>' in dom, 'chromium --dump-dom of the page: exit 0, a document',
         (rc, err.decode('utf-8', 'replace')[-2000:]))
    for text in (web, 'plain.' + sp.ZONE_NAME, 'lost.example.', be['a'].host, be['b'].host,
                 be['m'].host, '192.0.2.10', '2001:db8::10'):
        t.ok('>%s<' % text in dom, 'the DOM shows %s' % text)
    for member in ('a', 'b', 'm', 'solo', 'z'):
        t.ok('<td class="member">%s</td>' % member in dom, 'the DOM has member %s' % member)
    t.ok('class="addr state-up admin-drain"' in dom, 'a drained member that is up: its classes')
    t.ok('class="addr state-down admin-auto"' in dom, 'a member that is down: its classes')
    t.ok('class="pool not-served"' in dom and 'class="pool served"' in dom,
         'pools served and not served: their classes')
    t.ok('<script' not in dom, 'no script: the page is whole without JavaScript')
    t.ok(dom.count('class="seg down"') >= 2, 'the timelines have down stretches (b\'s and m\'s)')

    shot = os.path.join(tmp, 'shot.png')
    rc, out, err = browse(exe, tmp, url, '--screenshot=' + shot)
    t.ok(rc == 0 and os.path.exists(shot), 'chromium --screenshot: exit 0, a file',
         (rc, err.decode('utf-8', 'replace')[-2000:]))
    if not os.path.exists(shot):
        return
    with open(shot, 'rb') as f:
        data = f.read()
    try:
        w, h, rows = png_decode(data)
    except (ValueError, zlib.error, struct.error, TypeError) as e:
        t.ok(False, 'the screenshot is a PNG', str(e))
        return
    t.eq((w, h), (WIDTH, HEIGHT), 'the screenshot is %dx%d' % (WIDTH, HEIGHT))
    colours = {}
    for row in rows:
        for px in row:
            colours[px] = colours.get(px, 0) + 1
    t.diag('screenshot: %d bytes, %d colours, the commonest %s' % (
        len(data), len(colours), sorted(colours.items(), key=lambda x: -x[1])[:5]))
    t.ok(len(colours) > 20 and max(colours.values()) < w * h * 0.98,
         'the screenshot is not blank (%d colours)' % len(colours))
    green, red = longest_run(rows, GREEN), longest_run(rows, RED)
    t.ok(green >= 4 * PX_PER_H, 'the timeline is drawn green (a run of %d px)' % green)
    t.ok(abs(red - DOWN_H * PX_PER_H) <= 2,
         'b\'s %d hours down are drawn red, %d px wide (a run of %d px)' % (
             DOWN_H, DOWN_H * PX_PER_H, red))
    srv.check_stop(t)
    srv.cleanup()


if __name__ == '__main__':
    try:
        g.run(main)
    finally:
        sp.cleanup_procs()
