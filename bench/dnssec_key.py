#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/run.sh: a signing key for ZONE in the database DB (src/db/schema.sql, table dnssec_key),
published and active an hour ago: what `gslbctl dnssec enable ZONE` writes.  Usage: DB ZONE [ALG]"""
import sqlite3
import sys
import time

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


def key_tag(rdata):
    """RFC 4034 Appendix B."""
    ac = sum(b if i & 1 else b << 8 for i, b in enumerate(rdata))
    ac += (ac >> 16) & 0xffff
    return ac & 0xffff


def main():
    db, zone = sys.argv[1], sys.argv[2].rstrip('.').lower() + '.'
    alg = int(sys.argv[3]) if len(sys.argv) > 3 else 13
    if alg == 13:
        k = ec.generate_private_key(ec.SECP256R1())
        pub = k.public_key().public_bytes(serialization.Encoding.X962,
                                          serialization.PublicFormat.UncompressedPoint)[1:]
    else:
        k = ed25519.Ed25519PrivateKey.generate()
        pub = k.public_key().public_bytes(serialization.Encoding.Raw,
                                          serialization.PublicFormat.Raw)
    der = k.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    now = int(time.time())
    con = sqlite3.connect(db, timeout=10)
    con.execute('INSERT INTO dnssec_key(zone, algorithm, key_tag, flags, public_key, private_key, '
                'created, publish, active) VALUES (?, ?, ?, 257, ?, ?, ?, ?, ?)',
                (zone, alg, key_tag(bytes([1, 1, 3, alg]) + pub), pub, der, now, now - 3600,
                 now - 3600))
    con.commit()
    con.close()


if __name__ == '__main__':
    main()
