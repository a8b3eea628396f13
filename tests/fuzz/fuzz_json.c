/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the JSON that gslbctl and gslbd read, through the real readers (src/cfg and
 * src/cluster/codec.c, with jansson underneath).
 *
 * Input: byte 0 picks what the rest is, byte 1 seeds the sizes of the pieces of a watch stream.
 *   0  one pool, as gslbctl export writes each element of "pools" and a cluster keeps in etcd
 *   1  a configuration file, as gslbctl apply reads it
 *   2  a unary etcd reply (range, txn or error) as etcd__outcome() receives it with status 200
 *   3  a watch stream, split into lines by etcd_lines_feed() in pieces of 1-64 bytes
 * Every value an etcd reply carries goes through mode 0's checks as well: a pool is what a
 * cluster's keys hold, so one target and one corpus serve the etcd codec and the pool reader.
 *
 * Aborts when:
 * - a pool that is read does not come back as itself: cfg_pool_to_json() of it must read back
 *   (cfg_pool_from_json()) as the same pool, every field but the ids, which writes the same
 *   bytes again; and a configuration made of those texts must read back as the same pools
 *   (what gslbctl export then apply does);
 * - a refusal is not GSLB_EPARSE or GSLB_ECONFIG with a reason, or leaves something in *out;
 * - a configuration's pools are not sorted by name, or a name appears twice;
 * - a key decoded from etcd has a NUL inside, a value lacks the NUL after it, or base64 does
 *   not decode what it encoded;
 * - the watch stream gives other lines, or another outcome, in pieces than all at once.
 */
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/cfg.h"
#include "gslb/core.h"
#include "gslb/etcd.h"
#include "../../src/cluster/internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Longest watch line accepted here: small, so that -EMSGSIZE is reached. */
#define LINE_MAX_HERE 4096
/* Lines remembered per feeding of the watch stream; the rest are counted only. */
#define LINES_MAX 64

static void fail(const char *what, const char *text, size_t len)
{
	fprintf(stderr, "fuzz_json: %s: %.*s\n", what, (int)(len > 300 ? 300 : len), text);
	abort();
}

static bool is_zero(const void *p, size_t n)
{
	const uint8_t *b = p;
	for (size_t i = 0; i < n; i++)
		if (b[i])
			return false;
	return true;
}

/* A refusal: one of the two codes, a reason that fits, nothing left in *out. */
static void check_refusal(int ret, const char *why, const void *out, size_t outlen,
			  const char *text, size_t len)
{
	if (ret != GSLB_EPARSE && ret != GSLB_ECONFIG)
		fail("refused with an unexpected code", text, len);
	if (!why[0] || strnlen(why, CFG_ERR_MAX) == CFG_ERR_MAX)
		fail("refused without a reason", text, len);
	if (out && !is_zero(out, outlen))
		fail("refused but left something in *out", text, len);
}

static bool str_same(const char *a, const char *b)
{
	return a == b || (a && b && strcmp(a, b) == 0);
}

static bool check_same(const db_check_t *a, const db_check_t *b)
{
	if (!a || !b)
		return a == b;
	return a->type == b->type && a->port == b->port && str_same(a->path, b->path) &&
	       str_same(a->host, b->host) && str_same(a->expect, b->expect) &&
	       str_same(a->match, b->match) && a->interval_ms == b->interval_ms &&
	       a->timeout_ms == b->timeout_ms && a->rise == b->rise && a->fall == b->fall &&
	       str_same(a->target, b->target) && a->insecure == b->insecure &&
	       a->quorum == b->quorum;
}

static bool member_same(const db_member_t *a, const db_member_t *b)
{
	if (!str_same(a->name, b->name) || a->weight != b->weight || a->priority != b->priority ||
	    a->admin != b->admin || a->has_location != b->has_location ||
	    (a->has_location && (a->latitude != b->latitude || a->longitude != b->longitude)) ||
	    !str_same(a->countries, b->countries) || !str_same(a->continents, b->continents) ||
	    !str_same(a->alias, b->alias) || a->naddresses != b->naddresses ||
	    a->nnetworks != b->nnetworks || !check_same(a->check, b->check))
		return false;
	for (size_t i = 0; i < a->naddresses; i++)
		if (!str_same(a->addresses[i], b->addresses[i]) || a->families[i] != b->families[i])
			return false;
	for (size_t i = 0; i < a->nnetworks; i++)
		if (!str_same(a->networks[i], b->networks[i]))
			return false;
	return true;
}

/* Every field but the database's ids. */
static bool pool_same(const db_pool_t *a, const db_pool_t *b)
{
	if (!str_same(a->name, b->name) || a->policy != b->policy || a->ttl != b->ttl ||
	    a->degraded_ttl != b->degraded_ttl || a->answers != b->answers ||
	    a->fallback_all != b->fallback_all || a->nmembers != b->nmembers ||
	    !check_same(a->check, b->check))
		return false;
	for (size_t i = 0; i < a->nmembers; i++)
		if (!member_same(&a->members[i], &b->members[i]))
			return false;
	return true;
}

/*
 * p (read from text) written and read back: the same pool, the same bytes each time.  Returns the text
 * (caller frees), for the configuration check.
 */
static char *pool_round_trip(const db_pool_t *p, size_t *tlen, const char *text, size_t len)
{
	char why[CFG_ERR_MAX] = "";
	size_t n1, n2;
	char *t1 = cfg_pool_to_json(p, &n1);
	db_pool_t q;
	if (cfg_pool_from_json(t1, n1, &q, why, sizeof(why)) != 0) {
		fprintf(stderr, "fuzz_json: written as %.*s\nfuzz_json: read back: %s\n", (int)n1,
			t1, why);
		fail("a pool's JSON does not read back", text, len);
	}
	char *t2 = cfg_pool_to_json(&q, &n2);
	if (!pool_same(p, &q))
		fail("a pool written and read back is another pool", text, len);
	if (n1 != n2 || memcmp(t1, t2, n1) != 0) {
		fprintf(stderr, "fuzz_json: first %.*s\nfuzz_json: again %.*s\n", (int)n1, t1,
			(int)n2, t2);
		fail("a pool read back writes other bytes", text, len);
	}
	free(t2);
	cfg_pool_clear(&q);
	*tlen = n1;
	return t1;
}

/* Mode 0, and every value of an etcd reply. */
static void check_pool(const char *text, size_t len)
{
	char why[CFG_ERR_MAX] = "";
	db_pool_t p;
	int ret = cfg_pool_from_json(text, len, &p, why, sizeof(why));
	if (ret) {
		check_refusal(ret, why, &p, sizeof(p), text, len);
		return;
	}
	size_t tlen;
	free(pool_round_trip(&p, &tlen, text, len));
	cfg_pool_clear(&p);
	if (!is_zero(&p, sizeof(p)))
		fail("cfg_pool_clear() left something", text, len);
}

/* Mode 1: each pool comes back as itself, and the whole file as export would write it does. */
static void check_config(const char *text, size_t len)
{
	char why[CFG_ERR_MAX] = "";
	db_config_t *cfg;
	int ret = cfg_config_from_json(text, len, &cfg, why, sizeof(why));
	if (ret) {
		check_refusal(ret, why, NULL, 0, text, len);
		if (cfg)
			fail("refused but returned a configuration", text, len);
		return;
	}
	char *doc;
	size_t doclen;
	FILE *f = cfg_mem_open(&doc, &doclen);
	fputs("{\"version\":1,\"pools\":[", f);
	char **texts = calloc(cfg->npools ? cfg->npools : 1, sizeof(*texts));
	size_t *tlens = calloc(cfg->npools ? cfg->npools : 1, sizeof(*tlens));
	if (!texts || !tlens)
		abort();
	for (size_t i = 0; i < cfg->npools; i++) {
		if (i && strcmp(cfg->pools[i - 1].name, cfg->pools[i].name) >= 0)
			fail("pools not sorted by name, or one twice", text, len);
		texts[i] = pool_round_trip(&cfg->pools[i], &tlens[i], text, len);
		fprintf(f, "%s%s", i ? "," : "", texts[i]);
	}
	fputs("]}", f);
	cfg_mem_close(f);

	db_config_t *again;
	if (cfg_config_from_json(doc, doclen, &again, why, sizeof(why)) != 0) {
		fprintf(stderr, "fuzz_json: %s\n", why);
		fail("the pools as export writes them do not read back", text, len);
	}
	if (again->npools != cfg->npools)
		fail("the pools as export writes them read back as another count", text, len);
	for (size_t i = 0; i < again->npools; i++) {
		size_t n;
		char *t = cfg_pool_to_json(&again->pools[i], &n);
		if (n != tlens[i] || memcmp(t, texts[i], n) != 0 ||
		    !pool_same(&cfg->pools[i], &again->pools[i]))
			fail("the pools as export writes them read back as others", text, len);
		free(t);
		free(texts[i]);
	}
	free(texts);
	free(tlens);
	free(doc);
	db_config_free(again);
	db_config_free(cfg);
}

/* What etcd__base64_decode() gives back: a key without a NUL inside, a value with one after. */
static void check_kv(const etcd_kv_t *kv, const char *text, size_t len)
{
	if (!kv->key || !kv->value || kv->value[kv->value_len] != '\0')
		fail("a kv without its key or its value's NUL", text, len);
	/* Encoding what was decoded and decoding it again gives the same bytes. */
	char *b = etcd__base64_encode(kv->value, kv->value_len);
	char *back = NULL;
	size_t blen = 0;
	if (!b || etcd__base64_decode(b, &back, &blen) != 0 || blen != kv->value_len ||
	    memcmp(back, kv->value, blen) != 0)
		fail("base64 does not decode what it encoded", text, len);
	free(b);
	free(back);
	check_pool(kv->value, kv->value_len);
}

/* Mode 2: a reply taken as etcd__outcome() takes it, then read as each kind of reply. */
static void check_reply(const char *text, size_t len)
{
	char why[400] = "";
	json_t *reply;
	bool next;
	int ret = etcd__outcome("http://127.0.0.1:1", CURLE_OK, 200, text, len, "", &reply, &next,
				why, sizeof(why));
	if (ret) {
		if (reply || !why[0])
			fail("an outcome refused with a reply or without a reason", text, len);
		return;
	}
	if (!json_is_object(reply))
		fail("an outcome accepted that is no object", text, len);

	etcd_header_t h;
	etcd_kv_t *kvs;
	size_t n;
	bool more, ok;
	if (etcd_parse_range(reply, &h, &kvs, &n, &more) == 0) {
		for (size_t i = 0; i < n; i++) {
			if (strlen(kvs[i].key) > len)
				fail("a key longer than the reply", text, len);
			check_kv(&kvs[i], text, len);
		}
		etcd_kvs_free(kvs, n);
	} else if (kvs || n) {
		fail("a range refused with kvs", text, len);
	}
	etcd_parse_txn(reply, &h, &ok);
	etcd_watch_msg_t msg;
	if (etcd_parse_watch(reply, &msg, why, sizeof(why)) == 0)
		etcd_watch_msg_clear(&msg);
	else if (msg.events || msg.nevents)
		fail("a watch message refused with events", text, len);
	json_decref(reply);
}

/* One feeding of the watch stream: the lines it gave, as compact JSON, and how it ended. */
typedef struct feeding {
	char *lines[LINES_MAX];
	size_t nlines;
	const char *text;
	size_t len;
} feeding_t;

static int on_line(const json_t *line, void *arg)
{
	feeding_t *fd = arg;
	if (fd->nlines < LINES_MAX) {
		fd->lines[fd->nlines] = json_dumps(line, JSON_COMPACT | JSON_ENCODE_ANY);
		if (!fd->lines[fd->nlines])
			abort();
	}
	fd->nlines++;
	etcd_watch_msg_t msg;
	char why[400];
	int ret = etcd_parse_watch(line, &msg, why, sizeof(why));
	if (ret)
		return ret;
	for (size_t i = 0; i < msg.nevents; i++)
		check_kv(&msg.events[i].kv, fd->text, fd->len);
	etcd_watch_msg_clear(&msg);
	return 0;
}

/* Feed text in pieces of 1-64 bytes from seed (0: all at once). */
static int feed(feeding_t *fd, uint32_t seed, const char *text, size_t len)
{
	memset(fd, 0, sizeof(*fd));
	fd->text = text;
	fd->len = len;
	etcd_lines_t *l = etcd_lines_new(LINE_MAX_HERE, on_line, fd);
	if (!l)
		abort();
	int ret = 0;
	size_t off = 0;
	while (off < len) {
		size_t n = len - off;
		if (seed) {
			seed = seed * 1103515245u + 12345u;
			n = (seed >> 16) % 64 + 1;
			if (n > len - off)
				n = len - off;
		}
		ret = etcd_lines_feed(l, text + off, n);
		off += n;
		if (ret)
			break;
	}
	/* Once out of step, a stream stays so. */
	if (ret && etcd_lines_feed(l, "\n", 1) != ret)
		fail("the line splitter forgot its error", text, len);
	etcd_lines_free(l);
	return ret;
}

static void feeding_free(feeding_t *fd)
{
	for (size_t i = 0; i < fd->nlines && i < LINES_MAX; i++)
		free(fd->lines[i]);
}

/* Mode 3: the same lines and the same end, whatever the pieces. */
static void check_watch(const char *text, size_t len, uint8_t seed)
{
	static feeding_t whole, pieces;
	int r1 = feed(&whole, 0, text, len);
	int r2 = feed(&pieces, seed ? seed : 1, text, len);
	if (r1 != r2 || whole.nlines != pieces.nlines) {
		fprintf(stderr, "fuzz_json: whole: %d, %zu lines; in pieces: %d, %zu lines\n", r1,
			whole.nlines, r2, pieces.nlines);
		fail("the watch stream splits otherwise in pieces", text, len);
	}
	for (size_t i = 0; i < whole.nlines && i < LINES_MAX; i++)
		if (strcmp(whole.lines[i], pieces.lines[i]) != 0)
			fail("a line differs in pieces", text, len);
	feeding_free(&whole);
	feeding_free(&pieces);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size < 2)
		return 0;
	const char *text = (const char *)data + 2;
	size_t len = size - 2;
	switch (data[0] & 3) {
	case 0:
		check_pool(text, len);
		break;
	case 1:
		check_config(text, len);
		break;
	case 2:
		check_reply(text, len);
		break;
	default:
		check_watch(text, len, data[1]);
		break;
	}
	return 0;
}
