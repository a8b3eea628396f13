/* SPDX-License-Identifier: MIT */
/* Signing keys: read with OpenSSL, their DNSKEY, key tag and DS, and raw signatures. */
#include <errno.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "gslb/dnssec.h"
#include "internal.h"

struct dnssec_key {
	EVP_PKEY *pkey;
	uint8_t algorithm;
	uint16_t flags;
	uint16_t tag;
	uint8_t pub[64]; /* the DNSKEY public key field: 64 bytes for both algorithms */
	uint8_t publen;
};

/* The public key field of pkey for algorithm (RFC 6605 4, RFC 8080 3): 64 or 32 bytes. */
static int pub_field(EVP_PKEY *pkey, uint8_t algorithm, uint8_t *out, size_t *len)
{
	if (algorithm == DNSSEC_ALG_ED25519) {
		if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_ED25519)
			return -EINVAL;
		*len = 32;
		return EVP_PKEY_get_raw_public_key(pkey, out, len) == 1 && *len == 32 ? 0 : -EINVAL;
	}
	if (EVP_PKEY_get_base_id(pkey) != EVP_PKEY_EC)
		return -EINVAL;
	char group[32];
	if (EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof(group),
					   NULL) != 1 ||
	    strcmp(group, "prime256v1") != 0)
		return -EINVAL;
	/* The uncompressed point is 0x04 | X | Y; DNSSEC keeps X | Y. */
	uint8_t point[65];
	size_t plen = 0;
	if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY, point,
					    sizeof(point), &plen) != 1 ||
	    plen != 65 || point[0] != 4)
		return -EINVAL;
	memcpy(out, point + 1, 64);
	*len = 64;
	return 0;
}

int dnssec_key_new(dnssec_key_t **out, uint8_t algorithm, uint16_t flags, const uint8_t *pub,
		   size_t publen, const uint8_t *der, size_t derlen)
{
	*out = NULL;
	if (algorithm != DNSSEC_ALG_ECDSAP256SHA256 && algorithm != DNSSEC_ALG_ED25519)
		return -EINVAL;
	const unsigned char *p = der;
	EVP_PKEY *pkey = d2i_AutoPrivateKey(NULL, &p, (long)derlen);
	if (!pkey)
		return -EINVAL;
	uint8_t mine[64];
	size_t mlen = 0;
	/* A row whose public key is not its private key's would publish a key nothing signs with. */
	if (pub_field(pkey, algorithm, mine, &mlen) < 0 || mlen != publen ||
	    memcmp(mine, pub, publen) != 0) {
		EVP_PKEY_free(pkey);
		return -EINVAL;
	}
	dnssec_key_t *k = gslb_calloc(1, sizeof(*k));
	k->pkey = pkey;
	k->algorithm = algorithm;
	k->flags = flags;
	memcpy(k->pub, mine, mlen);
	k->publen = (uint8_t)mlen;
	uint8_t rdata[4 + 64];
	size_t rl = dnssec_key_dnskey(k, rdata, sizeof(rdata));
	k->tag = dnssec_keytag(rdata, rl);
	*out = k;
	return 0;
}

dnssec_key_t *dnssec_key_dup(const dnssec_key_t *k)
{
	dnssec_key_t *c = gslb_malloc(sizeof(*c));
	/* It fails only on a lock OpenSSL cannot take: as out of memory. */
	if (!EVP_PKEY_up_ref(k->pkey))
		abort();
	*c = *k;
	return c;
}

void dnssec_key_free(dnssec_key_t *k)
{
	if (!k)
		return;
	EVP_PKEY_free(k->pkey);
	free(k);
}

uint8_t dnssec_key_algorithm(const dnssec_key_t *k)
{
	return k->algorithm;
}

uint16_t dnssec_key_tag(const dnssec_key_t *k)
{
	return k->tag;
}

size_t dnssec_key_dnskey(const dnssec_key_t *k, uint8_t *out, size_t cap)
{
	if (cap < 4 + (size_t)k->publen)
		return 0;
	out[0] = (uint8_t)(k->flags >> 8);
	out[1] = (uint8_t)k->flags;
	out[2] = 3; /* RFC 4034 2.1.2: the protocol is always 3 */
	out[3] = k->algorithm;
	memcpy(out + 4, k->pub, k->publen);
	return 4 + (size_t)k->publen;
}

uint16_t dnssec_keytag(const uint8_t *rdata, size_t len)
{
	/* RFC 4034 Appendix B: the one's-complement-like sum of the RDATA as 16-bit words. */
	uint32_t ac = 0;
	for (size_t i = 0; i < len; i++)
		ac += (i & 1) ? rdata[i] : (uint32_t)rdata[i] << 8;
	ac += (ac >> 16) & 0xffff;
	return (uint16_t)(ac & 0xffff);
}

int dnssec_key_ds(const dnssec_key_t *k, const uint8_t *owner, size_t owner_len, uint8_t out[36])
{
	/* RFC 4034 5.1.4: digest = hash(owner name | DNSKEY RDATA). */
	uint8_t buf[255 + 4 + 64];
	if (owner_len > 255)
		return -EINVAL;
	memcpy(buf, owner, owner_len);
	size_t rl = dnssec_key_dnskey(k, buf + owner_len, sizeof(buf) - owner_len);
	unsigned int dl = 0;
	if (EVP_Digest(buf, owner_len + rl, out + 4, &dl, EVP_sha256(), NULL) != 1 || dl != 32)
		return -EINVAL;
	out[0] = (uint8_t)(k->tag >> 8);
	out[1] = (uint8_t)k->tag;
	out[2] = k->algorithm;
	out[3] = 2; /* SHA-256, RFC 4509 */
	return 0;
}

/* RFC 6605 4: the signature is r | s, 32 bytes each, not OpenSSL's DER. */
static int ecdsa_raw(const uint8_t *der, size_t len, uint8_t sig[DNSSEC_SIG_LEN])
{
	const unsigned char *p = der;
	ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &p, (long)len);
	if (!es)
		return -EINVAL;
	const BIGNUM *r, *s;
	ECDSA_SIG_get0(es, &r, &s);
	int ok = BN_bn2binpad(r, sig, 32) == 32 && BN_bn2binpad(s, sig + 32, 32) == 32;
	ECDSA_SIG_free(es);
	return ok ? 0 : -EINVAL;
}

int dnssec_key_sign(const dnssec_key_t *k, const uint8_t *data, size_t len,
		    uint8_t sig[DNSSEC_SIG_LEN])
{
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md)
		return -ENOMEM;
	int rc = -EINVAL;
	bool ec = k->algorithm == DNSSEC_ALG_ECDSAP256SHA256;
	uint8_t der[80];
	size_t dl = ec ? sizeof(der) : DNSSEC_SIG_LEN;
	/* Ed25519 hashes the message itself: no digest is given (RFC 8080 4). */
	if (EVP_DigestSignInit(md, NULL, ec ? EVP_sha256() : NULL, NULL, k->pkey) == 1 &&
	    EVP_DigestSign(md, ec ? der : sig, &dl, data, len) == 1)
		rc = ec ? ecdsa_raw(der, dl, sig) : (dl == DNSSEC_SIG_LEN ? 0 : -EINVAL);
	EVP_MD_CTX_free(md);
	return rc;
}
