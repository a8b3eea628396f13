#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""
Seeds for fuzz_json.c in tests/fuzz/corpus-json: each file is one byte choosing what the rest is
(0: a pool, 1: a configuration file, 2: a unary etcd reply, 3: a watch stream), one byte seeding
the sizes of the watch stream's pieces, then the JSON text.

    /usr/bin/python3 tests/fuzz/make_json_seeds.py [DIR]
"""
import base64
import json
import os
import sys

MEMBER_FULL = {
    'name': 'fra', 'addresses': ['192.0.2.1', '2001:DB8::1'], 'weight': 10,
    'priority': 2, 'admin': 'drain', 'location': '50.11,8.68', 'countries': ['de', 'FR-IDF'],
    'continents': ['eu'], 'networks': ['2001:db8::/32', '198.51.100.0/24'],
    'check': {'type': 'tcp', 'port': 25, 'target': '192.0.2.9', 'interval': 2.5,
              'timeout': 1, 'rise': 3, 'fall': 1, 'quorum': 'majority'},
}
POOLS = {
    'minimal': {'name': 'www.example.com'},
    'weighted': {
        'name': 'WWW.Example.COM.', 'policy': 'weighted', 'ttl': 30, 'degraded_ttl': 5,
        'answers': 2, 'fallback': 'all',
        'check': {'type': 'http', 'interval': 5, 'match': 'ok', 'path': '/health',
                  'host': 'www.example.com', 'expect': '200-299,301'},
        'members': [MEMBER_FULL,
                    {'name': 'sin', 'addresses': ['192.0.2.2'], 'weight': 20}],
    },
    'failover': {
        'name': 'db.example.net.', 'policy': 'failover', 'fallback': 'none',
        'check': {'type': 'https', 'port': 8443, 'insecure': True, 'quorum': 'all'},
        'members': [{'name': 'a', 'addresses': ['10.0.0.1'], 'priority': 1},
                    {'name': 'b', 'addresses': ['2001:db8:0:0::2'], 'priority': 2}],
    },
    'geo': {
        'name': 'geo.example.org.', 'policy': 'geo',
        'members': [{'name': 'us', 'addresses': ['203.0.113.1'], 'location': '-33.5,151',
                     'continents': ['na', 'sa']},
                    {'name': 'eu', 'addresses': ['203.0.113.2'], 'countries': ['gb-lnd']}],
    },
    'alias': {
        'name': 'apex.example.com.', 'policy': 'failover',
        'members': [{'name': 'eu', 'alias': 'My-LB.eu-west-1.elb.amazonaws.com'},
                    {'name': 'us', 'addresses': [], 'alias': 'us.example.net.', 'priority': 2},
                    {'name': 'dc', 'addresses': ['192.0.2.3'], 'alias': 'dc_1.example.org',
                     'priority': 3}],
    },
}
BAD_POOLS = {
    'weight-range': '{"name":"x.example.","members":[{"name":"a","addresses":["192.0.2.1"],'
                    '"weight":70000}]}',
    'duplicate-key': '{"name":"x.example.","name":"y.example."}',
    'unknown-key': '{"name":"x.example.","colour":"red"}',
    'not-object': '[1,2,3]',
    'nul-inside': '{"name":"x\\u0000y.example."}',
    'bom': '\ufeff{"name":"x.example."}',
    'deep': '[' * 3000 + ']' * 3000,
    'number-forms': '{"name":"x.example.","ttl":3e1,"answers":1.0}',
    'tcp-check-no-port': '{"name":"x.example.","check":{"type":"tcp"}}',
    'timeout-over-interval': '{"name":"x.example.","check":{"type":"http","interval":1,'
                             '"timeout":2}}',
    'trailing': '{"name":"x.example."} {}',
    'truncated': '{"name":"x.example.","members":[{"name":"a"',
    'utf8-bad': b'{"name":"\xc3\x28.example."}',
    'address-twice': '{"name":"x.example.","members":[{"name":"a","addresses":["192.0.2.1",'
                     '"192.0.2.1"]}]}',
    'address-mapped': '{"name":"x.example.","members":[{"name":"a","addresses":'
                      '["::ffff:10.0.0.2"]}]}',
    'alias-address': '{"name":"x.example.","members":[{"name":"a","alias":"192.0.2.1"}]}',
    'alias-empty-addresses': '{"name":"x.example.","members":[{"name":"a","addresses":[]}]}',
    'countries-string': '{"name":"x.example.","members":[{"name":"a","addresses":["192.0.2.1"],'
                        '"countries":"de,fr"}]}',
}


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def kv(key, value, rev=5):
    d = {'key': b64(key), 'create_revision': str(rev), 'mod_revision': str(rev),
         'version': '1'}
    if value:
        d['value'] = b64(value)
    return d


HEADER = {'cluster_id': '14841639068965178418', 'member_id': '10276657743932975437',
          'revision': '42', 'raft_term': '2'}
POOL_TEXT = json.dumps(POOLS['weighted'], separators=(',', ':'))
REPLIES = {
    'range': {'header': HEADER, 'kvs': [kv('/gslb/pools/www.example.com.', POOL_TEXT),
                                        kv('/gslb/nodes/ns1', '{"revision":41,"down_votes":0}'),
                                        kv('/gslb/empty', '')],
              'count': '3', 'more': True},
    'range-empty': {'header': HEADER},
    'txn': {'header': HEADER, 'succeeded': True, 'responses': [{'response_put': {}}]},
    'error-unary': {'error': 'etcdserver: no leader', 'code': 14,
                    'message': 'etcdserver: no leader'},
    'error-auth': {'error': 'etcdserver: invalid auth token', 'code': 16},
    'bad-revision': {'header': {'revision': '12x'}},
    'bad-cluster-id': {'header': {'cluster_id': '-1'}},
    'bad-kv-nul-key': {'header': HEADER, 'kvs': [kv('a\0b', 'x')]},
    'bad-kv-base64': {'header': HEADER, 'kvs': [{'key': '!!!', 'value': 'QQ'}]},
}


def watch_line(events, **extra):
    r = {'header': HEADER}
    r.update(extra)
    if events is not None:
        r['events'] = events
    return json.dumps({'result': r})


WATCHES = {
    'created': watch_line(None, created=True) + '\n',
    'events': '\n'.join([
        watch_line(None, created=True),
        watch_line([{'kv': kv('/gslb/pools/www.example.com.', POOL_TEXT, 43)},
                    {'type': 'DELETE', 'kv': {'key': b64('/gslb/pools/old.'),
                                              'mod_revision': '43'}}]),
        '',
        '   \r',
        watch_line([{'kv': kv('/gslb/journal/1', '{"time":"t","command":"c"}', 44)}]),
    ]) + '\n',
    'compacted': watch_line(None, canceled=True, compact_revision='40') + '\r\n',
    'canceled-reason': watch_line(None, created=True, canceled=True,
                                  cancel_reason='permission denied') + '\n',
    'error': json.dumps({'error': {'grpc_code': 14, 'http_code': 503,
                                   'message': 'etcdserver: no leader'}}) + '\n',
    'partial-last': watch_line(None, created=True) + '\n{"result":',
    'garbage': 'not json\n' + watch_line(None) + '\n',
    'long-line': watch_line([{'kv': kv('/k', 'v' * 5000)}]) + '\n',
    'bad-type': watch_line([{'type': 'PATCH', 'kv': kv('/k', 'v')}]) + '\n',
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(
        os.path.abspath(__file__)), 'corpus-json')
    os.makedirs(out, exist_ok=True)

    def put(name, mode, text, seed=0):
        data = text.encode() if isinstance(text, str) else text
        with open(os.path.join(out, 'seed-%s' % name), 'wb') as f:
            f.write(bytes([mode, seed]) + data)

    for name, p in POOLS.items():
        put('pool-' + name, 0, json.dumps(p, indent=2))
    for name, text in BAD_POOLS.items():
        put('pool-bad-' + name, 0, text)
    put('config', 1, json.dumps({'version': 1, 'pools': list(POOLS.values())}))
    put('config-empty', 1, '{"version": 1, "pools": []}')
    put('config-twice', 1, json.dumps({'version': 1, 'pools': [POOLS['minimal']] * 2}))
    put('config-version-2', 1, '{"version": 2, "pools": []}')
    for name, r in REPLIES.items():
        put('reply-' + name, 2, json.dumps(r))
    put('reply-plain-text', 2, 'certificate required\n')
    for i, (name, text) in enumerate(WATCHES.items()):
        put('watch-' + name, 3, text, seed=7 * i + 1)


if __name__ == '__main__':
    main()
