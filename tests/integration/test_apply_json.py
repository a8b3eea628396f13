#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""gslbctl apply reading JSON (jansson): duplicate keys named with their path, nesting, UTF-8,
numbers out of range or of the wrong kind, trailing data, NUL bytes, empty files, byte order marks.
Every refused file is exit 2 with one stderr line and writes nothing."""

import json
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import gslbtest as g  # noqa: E402

# Line 6 is the check, line 8 member fra, line 9 member sin.
BASE = '''{
  "version": 1,
  "pools": [
    {
      "name": "www.example.com.",
      "check": {"type": "http", "interval": 5, "match": "ok"},
      "members": [
        {"name": "fra", "addresses": ["192.0.2.1"], "weight": 10},
        {"name": "sin", "addresses": ["192.0.2.2"], "weight": 20}
      ]
    }
  ]
}
'''


def at(text, needle, nth=1):
    """(line, column) of the first character of the nth needle in text; columns count characters."""
    i = -1
    for _ in range(nth):
        i = text.index(needle, i + 1)
    before = text[:i]
    return before.count('\n') + 1, i - (before.rfind('\n') + 1) + 1


def where(text, needle, nth=1):
    return 'line %d column %d' % at(text, needle, nth)


class Db:
    def __init__(self, tmp):
        self.tmp = tmp
        self.db = os.path.join(tmp, 'gslb.db')
        self.n = 0
        rc, out, err = g.gslbctl(self.db, 'init')
        assert rc == 0, err

    def apply(self, content):
        """apply a file of content (str, or bytes as they are): (exit status, stdout, stderr, path)."""
        self.n += 1
        path = os.path.join(self.tmp, 'f%d.json' % self.n)
        with open(path, 'wb') as f:
            f.write(content.encode() if isinstance(content, str) else content)
        rc, out, err = g.gslbctl(self.db, 'apply', path)
        return rc, out, err, path

    def state(self):
        return g.gslbctl(self.db, 'export')[1], g.gslbctl(self.db, 'log', '--limit', '100000')[1]


def main(t):
    tmp = tempfile.mkdtemp(prefix='gslbctl-apply-json-')
    try:
        run_tests(t, Db(tmp))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def refused(t, d, content, want, desc):
    """content is refused: exit 2, stderr exactly "gslbctl: apply: " + want (FILE for the path)."""
    before = d.state()
    rc, out, err, path = d.apply(content)
    line = 'gslbctl: apply: %s\n' % want.replace('FILE', path)
    t.ok(rc == 2 and err == line and d.state() == before, desc,
         'exit %d\ngot:  %r\nwant: %r' % (rc, err, line))


def run_tests(t, d):
    rc, out, err, _ = d.apply(BASE)
    t.ok(rc == 0 and '+ pool www.example.com.' in out, 'the base file applies', err)
    rc, out, err, _ = d.apply(BASE)
    t.ok(rc == 0 and out == 'no changes\n', 'the base file again: no changes', out + err)

    # ---- duplicate keys: refused (not the last one silently kept), naming where and which
    doc = BASE.replace('"version": 1,', '"version": 1,\n  "version": 1,')
    refused(t, d, doc, 'FILE: %s: duplicate key "version"' % where(doc, '"version"', 2),
            'duplicate key at the top: line, column and the key')
    doc = BASE.replace('"weight": 20}', '"weight": 20, "weight": 0}')
    refused(t, d, doc, 'FILE: %s: pools[0].members[1]: duplicate key "weight"'
            % where(doc, '"weight"', 3), 'duplicate key in a member: its JSON path and the key')
    doc = BASE.replace('"interval": 5,', '"interval": 5, "rise": 2, "interval": 60,')
    refused(t, d, doc, 'FILE: %s: pools[0].check: duplicate key "interval"'
            % where(doc, '"interval"', 2), 'duplicate key in a check')
    # A one-line file of many pools (as json.dump writes it): the line alone would not say where.
    pools = [{'name': 'p%d.example.com.' % i, 'check': {'type': 'tcp', 'port': 80},
              'members': [{'name': 'm', 'addresses': ['192.0.2.%d' % (1 + i % 200)]}]}
             for i in range(500)]
    doc = json.dumps({'version': 1, 'pools': pools}, separators=(',', ':'))
    doc = doc.replace('"port":80', '"port":80,"port":81', 338)
    doc = doc.replace('"port":80,"port":81', '"port":80', 337)
    refused(t, d, doc, 'FILE: %s: pools[337].check: duplicate key "port"'
            % where(doc, '"port":81'), 'duplicate key in pool 337 of a one-line file: its path')
    # Keys are compared as decoded: "weig\\u0068t" is "weight".
    doc = BASE.replace('"weight": 20}', '"weight": 20, "weig\\u0068t": 0}')
    refused(t, d, doc, 'FILE: %s: pools[0].members[1]: duplicate key "weig\\u0068t"'
            % where(doc, '"weig\\u0068t"'), 'duplicate key spelt with an escape')

    # ---- nesting
    deep = '[' * 1000 + ']' * 1000
    refused(t, d, '{"version": 1, "pools": [%s]}' % deep, 'pools[0]: is an array, not an object',
            '1000 nested arrays: read, then refused by type with the path')
    doc = '{"version": 1, "pools": %s}' % ('[' * 100000 + ']' * 100000)
    refused(t, d, doc, "FILE: line 1 column %d: maximum parsing depth reached near '['"
            % (len('{"version": 1, "pools": ') + 2048),
            '100000 nested arrays: refused past 2048 levels, no crash')

    # ---- UTF-8: refused where it is not valid, with the byte
    marked = BASE.replace('"match": "ok"', '"match": "ok@"')
    for name, bad in (('a byte 0xff', b'\xff'), ('an overlong "/"', b'\xc0\xaf'),
                      ('a UTF-16 surrogate', b'\xed\xa0\x80'), ('a cut sequence', b'\xe2\x82')):
        refused(t, d, marked.encode().replace(b'@', bad),
                'FILE: %s: pools[0].check.match: invalid UTF-8 (byte 0x%02x)'
                % (where(marked, '@'), bad[0]), 'invalid UTF-8 in a string: %s' % name)
    doc = BASE.encode().replace(b'  "version"', b'\xff "version"')
    refused(t, d, doc, 'FILE: line 2 column 1: invalid UTF-8 (byte 0xff)',
            'invalid UTF-8 outside a string')
    doc = BASE.replace('"match": "ok"', '"match": "\u00fcber \u2713 \U0001f600"')
    rc, out, err, _ = d.apply(doc)
    t.ok(rc == 0 and '\u00fcber \u2713 \U0001f600' in g.gslbctl(d.db, 'export')[1],
         'valid UTF-8 of 2, 3 and 4 bytes is read and exported back', err)
    rc, out, err, _ = d.apply(BASE)
    t.eq(rc, 0, 'back to the base file')
    doc = BASE.replace('"match": "ok"', '"match": "o\\u0000k"')
    refused(t, d, doc, 'FILE: %s: pools[0].check.match: \\u0000 is not allowed in a string'
            % where(doc, '"o\\u0000k"'), '\\u0000 in a string')
    doc = BASE.replace('"match": "ok"', '"match": "\\ud800"')
    refused(t, d, doc, "FILE: %s: pools[0].check.match: invalid Unicode '\\uD800' near '\"\\ud800\"'"
            % where(doc, '"\\ud800"'), 'a lone surrogate escape')

    # ---- numbers: range and kind, named by path
    M = 'pools[0].members[0].weight'
    for given, want in (('65536', '%s: 65536 is not in 0-65535' % M),
                        ('-1', '%s: -1 is not a whole number' % M),
                        ('1.5', '%s: 1.5 is not a whole number' % M),
                        ('10.0', '%s: 10.0 is not a whole number' % M),
                        ('1e1', '%s: 10.0 is not a whole number' % M),
                        ('1e-400', '%s: 0.0 is not a whole number' % M),
                        ('"10"', '%s: is a string, not a number' % M),
                        ('true', '%s: is a boolean, not a number' % M),
                        ('null', '%s: is null, not a number' % M),
                        ('[10]', '%s: is an array, not a number' % M),
                        ('1e400', 'FILE: @: %s: 1e400 is out of range' % M),
                        ('-1e400', 'FILE: @: %s: -1e400 is out of range' % M),
                        ('99999999999999999999', 'FILE: @: %s: 99999999999999999999 is out of range'
                         % M)):
        doc = BASE.replace('"weight": 10}', '"weight": %s}' % given)
        refused(t, d, doc, want.replace('@', where(doc, given + '}')), 'weight %s refused' % given)
    C = 'pools[0].check.interval'
    for given, want in (('0.0005', '%s: 0.0005: at most 3 decimals (milliseconds)' % C),
                        ('0.5', '%s: 0.5 is not in 1-3600 seconds' % C),
                        ('-1', '%s: -1 is not a number of seconds' % C),
                        ('1e300', '%s: 1%s... is not in 1-3600 seconds' % (C, '0' * 75))):
        doc = BASE.replace('"interval": 5', '"interval": %s' % given)
        refused(t, d, doc, want, 'interval %s refused' % given)
    for given, ms in (('2.5', '2.5'), ('1e1', '10'), ('30.000', '30')):
        doc = BASE.replace('"interval": 5', '"interval": %s' % given)
        rc, out, err, _ = d.apply(doc)
        t.ok(rc == 0 and '"interval": %s,' % ms in g.gslbctl(d.db, 'export')[1],
             'interval %s is %s seconds' % (given, ms), err)
    rc, out, err, _ = d.apply(BASE)
    t.eq(rc, 0, 'back to the base file')
    refused(t, d, BASE.replace('"version": 1', '"version": 1.0'),
            'version: 1.0 is not a version this gslbctl reads (1)', 'version 1.0 refused')
    refused(t, d, BASE.replace('"name": "fra"', '"name": 5'),
            'pools[0].members[0].name: is a number, not a string', 'a number where a string goes')
    refused(t, d, '{"version": 1, "pools": {}}', 'pools: is an object, not an array',
            'an object where an array goes')

    # ---- the document: one object, nothing after it
    refused(t, d, BASE + 'x', "FILE: line 14 column 1: end of file expected near 'x'",
            'trailing garbage after the document')
    refused(t, d, BASE + BASE, "FILE: line 14 column 1: end of file expected near '{'",
            'a second document after the first')
    refused(t, d, BASE.encode() + b'\0garbage', 'FILE: line 14 column 1: NUL byte',
            'a NUL byte and garbage after the document')
    marked = BASE.replace('"match": "ok"', '"match": "o@k"')
    refused(t, d, marked.encode().replace(b'@', b'\0'),
            'FILE: %s: pools[0].check.match: NUL byte' % where(marked, '@'),
            'a NUL byte inside a string')
    refused(t, d, '{"version": 1, "pools": [', "FILE: line 1 column 25: pools: ']' expected near end of file",
            'a cut document: where the open array began, and its path')
    refused(t, d, '[]', '(top): is an array, not an object', 'an array at the top')
    refused(t, d, '"pools"', '(top): is a string, not an object', 'a string at the top')
    refused(t, d, '', 'FILE: empty, expected a JSON object', 'an empty file')
    refused(t, d, ' \n\t\r\n', 'FILE: empty, expected a JSON object', 'a file of white space')

    # ---- size: the export of 100,000 pools with checks is 90 MB; the limit was 64 MiB
    rc, out, err, path = d.apply(BASE.replace('"pools": [', '"pools":%s[' % (' ' * (65 << 20))))
    os.unlink(path)
    t.ok(rc == 0 and out == 'no changes\n', 'a file of more than 64 MiB is read', err)

    # ---- byte order marks: UTF-8's is skipped (RFC 8259 8.1), UTF-16 and UTF-32 are not JSON
    rc, out, err, _ = d.apply(b'\xef\xbb\xbf' + BASE.replace('"weight": 10', '"weight": 11').encode())
    t.ok(rc == 0 and 'weight 10 -> 11' in out, 'a UTF-8 byte order mark is skipped', err)
    doc = b'\xef\xbb\xbf' + BASE.replace('"version": 1', '"version": 1,,').encode()
    refused(t, d, doc, "FILE: line 2 column 16: string or '}' expected near ','",
            'after a byte order mark, lines and columns count as without it')
    doc = BASE.replace('"version": 1', '"version": 1, \ufeff"x": 1')
    refused(t, d, doc, 'FILE: %s: a byte order mark (U+FEFF) not at the start of the file'
            % where(doc, '\ufeff'),
            'a byte order mark anywhere else is refused')
    for enc in ('utf-16', 'utf-16-be', 'utf-32'):
        refused(t, d, (('\ufeff' if enc == 'utf-16-be' else '') + BASE).encode(enc),
                'FILE: UTF-16 or UTF-32 text; JSON text is UTF-8 (RFC 8259 8.1)',
                'a file in %s with a byte order mark' % enc.upper())


if __name__ == '__main__':
    g.run(main)
