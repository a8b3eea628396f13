/* SPDX-License-Identifier: MIT */
/*
 * gslbctl on a cluster node (README "Two or more nameservers", gslbctl(8)): changes sent to etcd
 * as one conditional transaction each, cluster import and cluster status.
 *
 * A cluster node's database is a mirror of etcd that gslbd keeps; gslbctl never writes the
 * configuration into it directly.  A change runs the command's edit as on a standalone node, in
 * a local write transaction, only to learn which pools it changes and into what: the
 * transaction is rolled back and the pools' new JSON goes to etcd, each key conditional on the
 * revision the mirror holds.  gslbd mirrors the result back like any other node's change.
 */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "gslb/core.h"
#include "gslb/db_cluster.h"
#include "gslb/db_dnssec.h"
#include "gslb/etcd.h"
#include "gslbctl.h"

#define PREFIX_DEFAULT "/gslbd/"
/* Tries of a change whose keys another writer changed first (gslbctl(8)). */
#define CHANGE_TRIES 5
/* How long a change waits for the local gslbd to mirror it, and how often it looks. */
#define WAIT_MS 5000
#define WAIT_POLL_MS 20
/* Operations in one transaction of cluster import: well below etcd's --max-txn-ops (128). */
#define IMPORT_BATCH 100
/*
 * And of at most this many bytes of keys and values: etcd takes no request over its
 * --max-request-bytes (1.5 MiB by default), and the gateway's base64 makes them a third longer.
 */
#define IMPORT_BATCH_BYTES (768 * 1024)

/*
 * What a cluster command talks to etcd with: the recorded settings, overridden by the global
 * options, and the blocking client.
 */
typedef struct conn {
	db_cluster_settings_t set; /* as recorded; zero when the node is standalone */
	bool recorded;
	const char *urls;   /* comma-separated, borrowed from set or the command line */
	const char *prefix; /* ends with "/", borrowed */
	char *node;	    /* this node's name */
	char *password;	    /* from set.password_file; never printed */
	char **urlv;
	size_t nurls;
	etcd_sync_t *etcd;
} conn_t;

static void conn_close(conn_t *k)
{
	etcd_sync_free(k->etcd);
	for (size_t i = 0; i < k->nurls; i++)
		free(k->urlv[i]);
	free(k->urlv);
	if (k->password) {
		explicit_bzero(k->password, strlen(k->password));
		free(k->password);
	}
	free(k->node);
	db_cluster_settings_clear(&k->set);
	memset(k, 0, sizeof(*k));
}

/* The recorded settings into k; CTL_OK (k->recorded false when there are none) or CTL_FAIL. */
static int settings_load(ctl_t *c, conn_t *k)
{
	int ret = db_cluster_settings_get(c->db, &k->set);
	if (ret == -ENOENT) {
		memset(&k->set, 0, sizeof(k->set));
		return CTL_OK;
	}
	if (ret)
		return ctl_db_fail(c, ret);
	k->recorded = true;
	return CTL_OK;
}

int ctl_cluster_node(ctl_t *c, bool change, bool *cluster)
{
	conn_t k = { 0 };
	int ret = settings_load(c, &k);

	*cluster = k.recorded;
	conn_close(&k);
	if (!ret && !*cluster && change && c->cluster_urls)
		/*
		 * The mirror of a cluster is what gslbd keeps; writing a standalone node's
		 * configuration into etcd is what cluster import does, all of it at once.
		 */
		return ctl_fail(c,
				"--cluster: database %s is not a cluster node's (gslbd --cluster "
				"records its settings there; gslbctl cluster import uploads a "
				"standalone configuration)",
				c->db_path);
	return ret;
}

/* The host name as gslbd's default --node: lowercased, cut at the first dot. */
static char *host_node(void)
{
	char host[256] = "";
	if (gethostname(host, sizeof(host) - 1) != 0 || !*host)
		strcpy(host, "localhost");
	host[sizeof(host) - 1] = '\0';
	host[strcspn(host, ".")] = '\0';
	for (char *p = host; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return gslb_strdup(host);
}

/* The password file's content without its trailing newline (gslbd(8)), or NULL (errno set). */
static char *password_read(const char *path)
{
	char buf[4096];
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	int err = ferror(f) ? EIO : 0;
	fclose(f);
	if (err) {
		errno = err;
		return NULL;
	}
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	char *p = gslb_strdup(buf);
	explicit_bzero(buf, sizeof(buf));
	return p;
}

/* *field (a recorded setting, owned) replaced by the file's value, NULL included. */
static void conf_replace(char **field, const char *value)
{
	free(*field);
	*field = value ? gslb_strdup(value) : NULL;
}

/*
 * Settings and client for a command that needs etcd: the URLs of --cluster, else the recorded
 * ones (none: exit 1).  CTL_OK, or the exit status after printing why.
 */
static int conn_open(ctl_t *c, conn_t *k)
{
	etcd_conf_t conf = { 0 };
	int ret;

	memset(k, 0, sizeof(*k));
	if ((ret = settings_load(c, k)))
		return ret;
	/*
	 * The command line, then gslbd's configuration file (gslbctl -c), then what
	 * gslbd recorded: setting by setting.
	 */
	const ctl_conf_t *f = &c->conf;
	if (f->cluster_urls || f->cluster_ca_file || f->cluster_cert || f->cluster_user) {
		/* The file's TLS and user settings go together, as gslbd takes them from it. */
		conf_replace(&k->set.ca_file, f->cluster_ca_file);
		conf_replace(&k->set.cert_file, f->cluster_cert);
		conf_replace(&k->set.key_file, f->cluster_key);
		conf_replace(&k->set.user, f->cluster_user);
		conf_replace(&k->set.password_file, f->cluster_password_file);
	}
	k->urls = c->cluster_urls   ? c->cluster_urls
		  : f->cluster_urls ? f->cluster_urls
				    : k->set.urls;
	if (!k->urls || !*k->urls)
		return ctl_fail(
			c, "database %s is not a cluster node's and no --cluster URL was given",
			c->db_path);
	k->prefix = c->cluster_prefix		      ? c->cluster_prefix
		    : f->cluster_prefix		      ? f->cluster_prefix
		    : k->set.prefix && *k->set.prefix ? k->set.prefix
						      : PREFIX_DEFAULT;
	k->node = f->node			? gslb_strdup(f->node)
		  : k->set.node && *k->set.node ? gslb_strdup(k->set.node)
						: host_node();
	if (k->set.password_file && !(k->password = password_read(k->set.password_file)))
		return ctl_fail(c, "cluster password file %s: %s", k->set.password_file,
				strerror(errno));
	for (const char *p = k->urls; *p;) {
		size_t n = strcspn(p, ",");
		if (n) {
			k->urlv = gslb_realloc(k->urlv, (k->nurls + 1) * sizeof(char *));
			k->urlv[k->nurls] = gslb_malloc(n + 1);
			memcpy(k->urlv[k->nurls], p, n);
			k->urlv[k->nurls++][n] = '\0';
		}
		p += n;
		if (*p)
			p++;
	}
	conf.urls = k->urlv;
	conf.nurls = k->nurls;
	conf.ca_file = k->set.ca_file;
	conf.cert_file = k->set.cert_file;
	conf.key_file = k->set.key_file;
	conf.user = k->set.user;
	conf.password = k->password;
	if ((ret = etcd_sync_new(&conf, &k->etcd)))
		return ctl_fail(c, "etcd client: %s", gslb_strerror(ret));
	return CTL_OK;
}

/* "etcd URL: why" of the last failure, into buf. */
static const char *etcd_why(const conn_t *k, int err, char *buf, size_t len)
{
	const char *e = k->etcd ? etcd_sync_error(k->etcd) : NULL;
	if (e && *e)
		snprintf(buf, len, "etcd %s", e);
	else
		snprintf(buf, len, "etcd %s: %s", k->urls,
			 err == ETCD_EUNAVAIL ? "unavailable" : gslb_strerror(err));
	return buf;
}

/* Report a failed etcd call of a change that wrote nothing; returns CTL_FAIL. */
static int etcd_fail(ctl_t *c, const conn_t *k, int err)
{
	char why[1024];
	if (err == ETCD_ETOOBIG)
		return ctl_fail(
			c, "the change touches too many pools for one etcd transaction (etcd's "
			   "--max-txn-ops and --max-request-bytes); nothing was changed");
	return ctl_fail(c, "%s; nothing was changed", etcd_why(k, err, why, sizeof(why)));
}

/*
 * Whether a failed write may still have been committed: etcd, or the wait for its answer, timed
 * out after the request went out (etcd's API guarantees leave such an outcome unknown).  A
 * refused connection, or a member without a leader, is a write that was not made.
 */
static bool outcome_unknown(const conn_t *k)
{
	const char *e = k->etcd ? etcd_sync_error(k->etcd) : NULL;
	return e && (strstr(e, "Operation timed out") || strstr(e, "request timed out") ||
		     strstr(e, "deadline exceeded"));
}

/* One etcd call; the body is taken.  0 or an ETCD_* / negative code. */
static int call(conn_t *k, const char *path, json_t *body, json_t **result)
{
	*result = NULL;
	if (!body)
		return -ENOMEM;
	return etcd_sync_call(k->etcd, path, body, result);
}

/* prefix + part + name, malloc'd. */
static char *key_of(const char *prefix, const char *part, const char *name)
{
	size_t n = strlen(prefix) + strlen(part) + strlen(name) + 1;
	char *key = gslb_malloc(n);
	snprintf(key, n, "%s%s%s", prefix, part, name);
	return key;
}

/* An etcd integer: the gateway writes 64-bit ones as strings, others write numbers. */
static int64_t json_int64(const json_t *o, const char *name)
{
	const json_t *v = json_object_get(o, name);
	if (json_is_integer(v))
		return (int64_t)json_integer_value(v);
	if (json_is_string(v))
		return strtoll(json_string_value(v), NULL, 10);
	return 0;
}

/* ---- a pool as etcd holds it ---- */

/*
 * The pool's value in etcd: the object gslbctl export writes for it, compact, always the same
 * bytes for the same pool, so comparing two values compares the pools (malloc'd).
 */
static char *pool_value(const db_pool_t *p)
{
	return cfg_pool_to_json(p, NULL);
}

/* ---- a change ---- */

/* One pool, or one zone's DNSSEC keys, a change touches. */
typedef struct change {
	char *pool;   /* its name: the pool's, or the zone's */
	char *key;    /* P pools/NAME, or P dnssec/ZONE */
	char *value;  /* the JSON after the change, NULL when it is deleted */
	bool existed; /* the pool (the zone's keys) was in the mirror before the change */
	bool dnssec;  /* a zone's DNSSEC keys, not a pool */
	int64_t rev;  /* the key's mod_revision in the mirror, 0 when none */
} change_t;

typedef struct changes {
	change_t *v;
	size_t n;
} changes_t;

static void changes_clear(changes_t *ch)
{
	for (size_t i = 0; i < ch->n; i++) {
		free(ch->v[i].pool);
		free(ch->v[i].key);
		/* A zone's value holds its private keys. */
		if (ch->v[i].dnssec && ch->v[i].value)
			explicit_bzero(ch->v[i].value, strlen(ch->v[i].value));
		free(ch->v[i].value);
	}
	free(ch->v);
	ch->v = NULL;
	ch->n = 0;
}

static change_t *changes_add(changes_t *ch, const conn_t *k, const char *pool, char *value,
			     bool existed)
{
	ch->v = gslb_realloc(ch->v, (ch->n + 1) * sizeof(*ch->v));
	change_t *x = &ch->v[ch->n++];
	x->pool = gslb_strdup(pool);
	x->key = key_of(k->prefix, "pools/", pool);
	x->value = value;
	x->existed = existed;
	x->dnssec = false;
	x->rev = 0;
	return x;
}

/* Every zone's DNSSEC keys: all keys, in order of zone (db_dnssec_keys_load()). */
typedef struct zone_keys {
	db_dnssec_key_t *v;
	size_t n;
} zone_keys_t;

/* The value of the zone whose keys start at v[*i] (etcd_dnssec_value()); *i moves past them. */
static char *zone_value(const zone_keys_t *z, size_t *i, const char **zone)
{
	size_t from = *i;
	*zone = z->v[from].zone;
	while (*i < z->n && strcmp(z->v[*i].zone, *zone) == 0)
		(*i)++;
	return etcd_dnssec_value(*zone, z->v + from, *i - from);
}

/* The value of zone's keys in z, NULL when it has none. */
static char *zone_value_of(const zone_keys_t *z, const char *zone)
{
	const char *name;
	for (size_t i = 0; i < z->n;) {
		if (strcmp(z->v[i].zone, zone) != 0) {
			i++;
			continue;
		}
		return zone_value(z, &i, &name);
	}
	return NULL;
}

static void value_free(char *v)
{
	if (v)
		explicit_bzero(v, strlen(v));
	free(v);
}

/* The zones whose keys differ between before and after, as changes of P dnssec/ZONE. */
static void changes_find_dnssec(const conn_t *k, const zone_keys_t *before,
				const zone_keys_t *after, changes_t *ch)
{
	const char *zone;
	for (size_t i = 0; i < before->n;) {
		char *bv = zone_value(before, &i, &zone), *av = zone_value_of(after, zone);
		if (!av || strcmp(av, bv) != 0) {
			change_t *x = changes_add(ch, k, zone, av, true);
			free(x->key);
			x->key = key_of(k->prefix, "dnssec/", zone);
			x->dnssec = true;
		} else {
			value_free(av);
		}
		value_free(bv);
	}
	for (size_t i = 0; i < after->n;) {
		char *av = zone_value(after, &i, &zone), *bv = zone_value_of(before, zone);
		if (!bv) {
			change_t *x = changes_add(ch, k, zone, av, false);
			free(x->key);
			x->key = key_of(k->prefix, "dnssec/", zone);
			x->dnssec = true;
		} else {
			value_free(av);
		}
		value_free(bv);
	}
}

/*
 * The pools whose JSON differs between before and after, and the zones whose DNSSEC keys do,
 * with their mirrored revisions.
 */
static int changes_find(ctl_t *c, const conn_t *k, const db_config_t *before,
			const db_config_t *after, const zone_keys_t *kbefore,
			const zone_keys_t *kafter, changes_t *ch)
{
	for (size_t i = 0; i < before->npools; i++) {
		const db_pool_t *b = &before->pools[i], *a = db_config_pool(after, b->name);
		char *bv = pool_value(b), *av = a ? pool_value(a) : NULL;
		if (!av || strcmp(av, bv) != 0)
			changes_add(ch, k, b->name, av, true);
		else
			free(av);
		free(bv);
	}
	for (size_t i = 0; i < after->npools; i++)
		if (!db_config_pool(before, after->pools[i].name))
			changes_add(ch, k, after->pools[i].name, pool_value(&after->pools[i]),
				    false);
	changes_find_dnssec(k, kbefore, kafter, ch);
	for (size_t i = 0; i < ch->n; i++) {
		int ret = db_cluster_key_rev(c->db, ch->v[i].key, &ch->v[i].rev);
		if (ret)
			return ret;
	}
	return 0;
}

/* The journal key of a change made now on node: it sorts by time (README). */
static char *journal_key(const char *prefix, int64_t usec, const char *node, uint32_t salt)
{
	char id[128];
	snprintf(id, sizeof(id), "%016llx-%s-%08x", (unsigned long long)usec, node, salt);
	return key_of(prefix, "journal/", id);
}

static uint32_t random_u32(void)
{
	uint32_t r = 0;
	if (getrandom(&r, sizeof(r), 0) != sizeof(r))
		r = (uint32_t)getpid() ^ (uint32_t)gslb_mono_ms();
	return r;
}

static int64_t now_usec(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/*
 * A journal entry's summary in etcd is cut to this many bytes (at a line's end, the lines left
 * out counted): etcd takes no request over --max-request-bytes (1.5 MiB by default), and the
 * summary of an apply or an import of many pools (one line per pool) is larger.
 */
#define JOURNAL_SUMMARY_MAX (64 * 1024)

/* summary, or a copy cut as JOURNAL_SUMMARY_MAX says (malloc'd into *cut, freed by the caller). */
static const char *summary_cut(const char *summary, char **cut)
{
	size_t len = strlen(summary), keep = JOURNAL_SUMMARY_MAX, more = 0;

	*cut = NULL;
	if (len <= JOURNAL_SUMMARY_MAX)
		return summary;
	while (keep > 0 && summary[keep - 1] != '\n')
		keep--;
	for (size_t i = keep; i < len; i++)
		more += summary[i] == '\n';
	more += summary[len - 1] != '\n';
	if (asprintf(cut, "%.*s... (%zu more lines)", (int)keep, summary, more) < 0) {
		fprintf(stderr, "gslbctl: out of memory writing a journal entry\n");
		abort();
	}
	return *cut;
}

/* The journal value: {"time","actor","node","command","summary"} (malloc'd). */
static char *journal_value(const char *time, const char *actor, const char *node,
			   const char *command, const char *summary)
{
	char *cut;
	json_t *o = json_pack("{s:s, s:s, s:s, s:s, s:s}", "time", time, "actor", actor, "node",
			      node, "command", command ? command : "", "summary",
			      summary_cut(summary ? summary : "", &cut));
	free(cut);
	char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (!text) {
		/* As gslb_malloc() does: jansson fails here only when memory runs out. */
		fprintf(stderr, "gslbctl: out of memory writing a journal entry\n");
		abort();
	}
	return text;
}

/* What one try of a change came to. */
enum try_result {
	TRY_DONE = 0, /* committed (rev set) or nothing to do; printed */
	TRY_CONFLICT, /* another writer changed a key first: read them, try again */
	TRY_FAILED,   /* the exit status is in *status, its reason printed */
};

/*
 * Run the edit in a local write transaction, learn what it changes, roll back, and send the
 * change to etcd conditional on the mirror's revisions.
 */
static enum try_result change_try(ctl_t *c, conn_t *k, ctl_edit_cb edit, void *arg, changes_t *ch,
				  int64_t *rev, int *status)
{
	db_config_t *before = NULL, *after = NULL;
	zone_keys_t kbefore = { 0 }, kafter = { 0 };
	etcd_cmp_t *cmp = NULL;
	etcd_op_t *ops = NULL;
	json_t *res = NULL;
	char *sum = NULL, *jkey = NULL, *jval = NULL, *who = NULL;
	char now[32];
	size_t len = 0, nops = 0;
	enum try_result tr = TRY_FAILED;
	etcd_header_t h;
	bool ok;
	FILE *f;
	int ret;

	*rev = 0;
	changes_clear(ch);
	if ((ret = db_begin_write(c->db)) || (ret = db_config_load(c->db, &before)) ||
	    (ret = db_dnssec_keys_load(c->db, NULL, &kbefore.v, &kbefore.n))) {
		*status = ctl_db_fail(c, ret);
		goto out;
	}
	f = cfg_mem_open(&sum, &len);
	ret = edit(c, before, arg, f);
	cfg_mem_close(f);
	if (ret < 0)
		ret = ctl_db_fail(c, ret);
	if (ret) {
		*status = ret;
		goto out;
	}
	if (!len) {
		printf("no changes\n");
		*status = CTL_OK;
		tr = TRY_DONE;
		goto out;
	}
	sum[--len] = '\0';
	/* The configuration as the edit left it, read inside its own transaction. */
	if ((ret = db_config_load(c->db, &after)) ||
	    (ret = db_dnssec_keys_load(c->db, NULL, &kafter.v, &kafter.n)) ||
	    (ret = changes_find(c, k, before, after, &kbefore, &kafter, ch))) {
		*status = ctl_db_fail(c, ret);
		goto out;
	}
	/* Nothing of it stays here: gslbd mirrors it from etcd once etcd has it. */
	db_rollback(c->db);

	cmp = gslb_calloc(ch->n + 1, sizeof(*cmp));
	ops = gslb_calloc(ch->n + 1, sizeof(*ops));
	for (size_t i = 0; i < ch->n; i++) {
		const change_t *x = &ch->v[i];
		cmp[i].key = x->key;
		/*
		 * A pool the mirror holds must not have changed since; one it does not hold
		 * (added, or never mirrored) must not exist, whatever a deleted key's
		 * tombstone remembers (a missing key's mod_revision is 0).
		 */
		if (x->existed && x->rev > 0) {
			cmp[i].target = ETCD_MOD;
			cmp[i].value = x->rev;
		} else {
			cmp[i].target = ETCD_CREATE;
			cmp[i].value = 0;
		}
		ops[nops].key = x->key;
		ops[nops].is_delete = !x->value;
		ops[nops].value = x->value;
		ops[nops++].value_len = x->value ? strlen(x->value) : 0;
	}
	time_t t = time(NULL);
	struct tm tm;
	gmtime_r(&t, &tm);
	strftime(now, sizeof(now), "%Y-%m-%dT%H:%M:%SZ", &tm);
	who = ctl_actor();
	jkey = journal_key(k->prefix, now_usec(), k->node, random_u32());
	jval = journal_value(now, who, k->node, c->cmdline, sum);
	ops[nops].key = jkey;
	ops[nops].value = jval;
	ops[nops++].value_len = strlen(jval);

	ret = call(k, "/v3/kv/txn", etcd_txn_body(cmp, ch->n, ops, nops), &res);
	if (!ret)
		ret = etcd_parse_txn(res, &h, &ok);
	if (ret && ret != ETCD_ETOOBIG && outcome_unknown(k)) {
		char why[1024];
		*status = ctl_fail(
			c,
			"%s; the change may or may not have been made (gslbctl log shows "
			"it once this node has mirrored it)",
			etcd_why(k, ret, why, sizeof(why)));
		goto out;
	}
	if (ret) {
		*status = etcd_fail(c, k, ret);
		goto out;
	}
	if (!ok) {
		tr = TRY_CONFLICT;
		goto out;
	}
	*rev = h.revision;
	*status = CTL_OK;
	tr = TRY_DONE;
	ctl_change_print(c, sum);
out:
	db_rollback(c->db);
	json_decref(res);
	db_config_free(before);
	db_config_free(after);
	db_dnssec_keys_free(kbefore.v, kbefore.n);
	db_dnssec_keys_free(kafter.v, kafter.n);
	free(cmp);
	free(ops);
	free(sum);
	free(jkey);
	free(jval);
	free(who);
	return tr;
}

/*
 * A zone's keys read back from etcd (kv, or NULL when it holds none) into the mirror, as
 * refresh() does a pool: GSLB_ECONFIG with why set for a value that is not the zone's keys.
 */
static int refresh_dnssec(ctl_t *c, const change_t *x, const etcd_kv_t *kv, int64_t at, char *why,
			  size_t len)
{
	db_dnssec_key_t *v = NULL;
	size_t n = 0;
	int ret;

	if (!kv)
		return db_cluster_dnssec_delete(c->db, x->key, x->pool, at);
	if (etcd_dnssec_parse(kv->value, kv->value_len, x->pool, &v, &n, why, len))
		return GSLB_ECONFIG;
	ret = db_cluster_dnssec_put(c->db, x->key, kv->mod_revision, x->pool, v, n);
	db_dnssec_keys_free(v, n);
	if (ret == GSLB_ECONFIG)
		snprintf(why, len, "the database refuses these keys");
	return ret;
}

/*
 * After a conflict: read the changed keys from etcd (at one revision) and put them into the
 * mirror as gslbd would, so that the next try edits what etcd holds.  Idempotent: the mirror
 * keeps the newer of what gslbd and this put there.
 */
static int refresh(ctl_t *c, conn_t *k, const changes_t *ch)
{
	etcd_kv_t **kvs = gslb_calloc(ch->n ? ch->n : 1, sizeof(*kvs));
	size_t *nkvs = gslb_calloc(ch->n ? ch->n : 1, sizeof(*nkvs));
	int64_t at = 0;
	char why[CFG_ERR_MAX];
	int ret = 0, status = CTL_OK;

	for (size_t i = 0; i < ch->n; i++) {
		json_t *res = NULL;
		etcd_header_t h;
		bool more;
		ret = call(k, "/v3/kv/range",
			   etcd_range_body(ch->v[i].key, NULL, at, 0, false, false), &res);
		if (!ret)
			ret = etcd_parse_range(res, &h, &kvs[i], &nkvs[i], &more);
		json_decref(res);
		if (ret) {
			status = etcd_fail(c, k, ret);
			goto out;
		}
		if (!at)
			at = h.revision;
	}
	if ((ret = db_begin_write(c->db)))
		goto fail;
	for (size_t i = 0; i < ch->n; i++) {
		const change_t *x = &ch->v[i];
		db_pool_t p;
		if (x->dnssec) {
			ret = refresh_dnssec(c, x, nkvs[i] ? &kvs[i][0] : NULL, at, why,
					     sizeof(why));
			if (ret == GSLB_ECONFIG) {
				db_rollback(c->db);
				status = ctl_fail(c, "etcd key %s: %s; nothing was changed", x->key,
						  why);
				goto out;
			}
		} else if (!nkvs[i]) {
			ret = db_cluster_pool_delete(c->db, x->key, x->pool, at);
		} else if (cfg_pool_from_json(kvs[i][0].value, kvs[i][0].value_len, &p, why,
					      sizeof(why)) == 0) {
			ret = db_cluster_pool_put(c->db, x->key, kvs[i][0].mod_revision, &p);
			cfg_pool_clear(&p);
		} else {
			db_rollback(c->db);
			status = ctl_fail(c, "etcd key %s: %s; nothing was changed", x->key, why);
			goto out;
		}
		if (ret < 0)
			goto fail;
	}
	if ((ret = db_commit(c->db)))
		goto fail;
	goto out;
fail:
	status = ctl_db_fail(c, ret);
out:
	for (size_t i = 0; i < ch->n; i++)
		etcd_kvs_free(kvs[i], nkvs[i]);
	free(kvs);
	free(nkvs);
	return status;
}

/*
 * Wait until the local gslbd mirrored revision rev.  A change is committed once etcd has it:
 * not seeing it mirrored is said, not an error.
 */
static void wait_mirror(ctl_t *c, int64_t rev)
{
	uint64_t end = gslb_mono_ms() + WAIT_MS;
	db_cluster_state_t st;

	if (c->no_wait)
		return;
	for (;;) {
		if (db_cluster_state_get(c->db, &st) == 0 && st.applied_rev >= rev)
			return;
		if (gslb_mono_ms() >= end)
			break;
		usleep(WAIT_POLL_MS * 1000);
	}
	fprintf(stderr,
		"gslbctl: %s: committed at revision %lld; the local node had not mirrored it yet "
		"(waited %d s; is gslbd running?)\n",
		c->cmd, (long long)rev, WAIT_MS / 1000);
}

int ctl_cluster_change(ctl_t *c, ctl_edit_cb edit, void *arg)
{
	changes_t ch = { 0 };
	conn_t k;
	int64_t rev = 0;
	int status = CTL_FAIL;
	enum try_result tr = TRY_FAILED;

	if ((status = conn_open(c, &k)))
		goto out;
	for (int i = 0; i < CHANGE_TRIES; i++) {
		tr = change_try(c, &k, edit, arg, &ch, &rev, &status);
		if (tr != TRY_CONFLICT)
			break;
		if ((status = refresh(c, &k, &ch))) {
			tr = TRY_FAILED;
			break;
		}
	}
	if (tr == TRY_CONFLICT) {
		char *names;
		size_t len;
		FILE *f = cfg_mem_open(&names, &len);
		for (size_t i = 0; i < ch.n; i++)
			fprintf(f, "%s%s", i ? ", " : "", ch.v[i].pool);
		cfg_mem_close(f);
		status = ctl_fail(c,
				  "another writer kept changing %s at the same time (%d tries); "
				  "nothing was changed",
				  names, CHANGE_TRIES);
		free(names);
	} else if (tr == TRY_DONE && rev) {
		wait_mirror(c, rev);
	}
out:
	changes_clear(&ch);
	conn_close(&k);
	return status;
}

/* ---- cluster import ---- */

/* Whether anything is stored under key (a prefix when end is set): 1, 0, or an etcd code. */
static int etcd_has(conn_t *k, const char *key, const char *end)
{
	json_t *res = NULL;
	etcd_kv_t *kvs = NULL;
	etcd_header_t h;
	size_t n = 0;
	bool more;
	int ret = call(k, "/v3/kv/range", etcd_range_body(key, end, 0, 1, true, false), &res);
	if (!ret)
		ret = etcd_parse_range(res, &h, &kvs, &n, &more);
	json_decref(res);
	etcd_kvs_free(kvs, n);
	return ret ? ret : n > 0;
}

/* Unix microseconds of a journal time ("2026-12-07T07:00:00Z"), 0 when unreadable. */
static int64_t journal_usec(const char *time)
{
	struct tm tm = { 0 };
	const char *end = time ? strptime(time, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
	if (!end)
		return 0;
	return (int64_t)timegm(&tm) * 1000000;
}

static const ctl_optdef_t import_opts[] = {
	{ "--replace", false, false },
	{ NULL, false, false },
};

/*
 * Send ops[0..n) in transactions of at most IMPORT_BATCH operations and IMPORT_BATCH_BYTES (an
 * operation larger than that alone); *sent counts those committed.
 */
static int send_batches(conn_t *k, const etcd_op_t *ops, size_t n, size_t *sent)
{
	*sent = 0;
	while (*sent < n) {
		size_t m = 0, bytes = 0;
		while (*sent + m < n && m < IMPORT_BATCH) {
			const etcd_op_t *op = &ops[*sent + m];
			size_t b = strlen(op->key) + op->value_len;
			if (m && bytes + b > IMPORT_BATCH_BYTES)
				break;
			bytes += b;
			m++;
		}
		json_t *res = NULL;
		etcd_header_t h;
		bool ok;
		int ret = call(k, "/v3/kv/txn", etcd_txn_body(NULL, 0, ops + *sent, m), &res);
		if (!ret)
			ret = etcd_parse_txn(res, &h, &ok);
		json_decref(res);
		if (ret)
			return ret;
		*sent += m;
	}
	return 0;
}

int cmd_cluster_import(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	conn_t k = { 0 };
	db_config_t *cfg = NULL;
	db_journal_entry_t *je = NULL;
	etcd_op_t *ops = NULL;
	char **keys = NULL, **vals = NULL, *pools_key = NULL, *pools_end = NULL, *meta_key = NULL;
	char *dnssec_key = NULL, *dnssec_end = NULL;
	etcd_kv_t *old = NULL, *old_zones = NULL;
	zone_keys_t zk = { 0 };
	size_t nje = 0, nops = 0, nstr = 0, sent = 0, msent = 0, nold = 0, nold_zones = 0,
	       nzones = 0;
	char why[1024];
	int ret, has;

	PARSE_ARGS(c, argc, argv, import_opts, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	bool replace = ctl_flag(&a, "--replace");
	if ((ret = ctl_open(c)) || (ret = conn_open(c, &k)))
		goto out;
	if ((ret = db_begin_read(c->db)) || (ret = db_config_load(c->db, &cfg)) ||
	    (ret = db_journal_list(c->db, 0, &je, &nje)) ||
	    (ret = db_dnssec_keys_load(c->db, NULL, &zk.v, &zk.n))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	db_rollback(c->db);

	pools_key = key_of(k.prefix, "pools/", "");
	pools_end = etcd_prefix_end(pools_key);
	meta_key = key_of(k.prefix, "meta", "");
	dnssec_key = key_of(k.prefix, "dnssec/", "");
	dnssec_end = etcd_prefix_end(dnssec_key);
	if ((has = etcd_has(&k, pools_key, pools_end)) == 0)
		has = etcd_has(&k, meta_key, NULL);
	if (has < 0) {
		ret = etcd_fail(c, &k, has);
		goto out;
	}
	if (has && !replace) {
		ret = ctl_fail(c,
			       "etcd prefix %s already holds a configuration (--replace replaces "
			       "it); nothing was changed",
			       k.prefix);
		goto out;
	}

	/*
	 * --replace deletes the pools this configuration lacks and puts the others over what is
	 * there: the same result as emptying the prefix first, without a moment in which the
	 * nodes mirror no pool at all.  (etcd also refuses a transaction that deletes a range
	 * and puts a key inside it.)
	 */
	if (replace) {
		json_t *res = NULL;
		etcd_header_t h;
		bool more;
		ret = call(&k, "/v3/kv/range",
			   etcd_range_body(pools_key, pools_end, 0, 0, true, false), &res);
		if (!ret)
			ret = etcd_parse_range(res, &h, &old, &nold, &more);
		json_decref(res);
		res = NULL;
		if (!ret)
			ret = call(&k, "/v3/kv/range",
				   etcd_range_body(dnssec_key, dnssec_end, 0, 0, true, false),
				   &res);
		if (!ret)
			ret = etcd_parse_range(res, &h, &old_zones, &nold_zones, &more);
		json_decref(res);
		if (ret) {
			ret = etcd_fail(c, &k, ret);
			goto out;
		}
	}
	for (size_t i = 0; i < zk.n; i++)
		nzones += !i || strcmp(zk.v[i].zone, zk.v[i - 1].zone) != 0;
	/* The operations and the texts they point to, owned here. */
	size_t cap = nold + 1 + cfg->npools + nje + nold_zones + nzones;
	ops = gslb_calloc(cap, sizeof(*ops));
	keys = gslb_calloc(cap, sizeof(*keys));
	vals = gslb_calloc(cap, sizeof(*vals));
	for (size_t i = 0; i < nold; i++)
		if (!db_config_pool(cfg, old[i].key + strlen(pools_key))) {
			ops[nops].is_delete = true;
			ops[nops++].key = old[i].key;
		}
	for (size_t i = 0; i < nold_zones; i++) {
		char *v = zone_value_of(&zk, old_zones[i].key + strlen(dnssec_key));
		if (!v) {
			ops[nops].is_delete = true;
			ops[nops++].key = old_zones[i].key;
		}
		value_free(v);
	}
	if (replace) {
		ops[nops].is_delete = true;
		ops[nops++].key = meta_key;
	}
	for (size_t i = 0; i < cfg->npools; i++, nstr++) {
		keys[nstr] = key_of(k.prefix, "pools/", cfg->pools[i].name);
		vals[nstr] = pool_value(&cfg->pools[i]);
		ops[nops].key = keys[nstr];
		ops[nops].value = vals[nstr];
		ops[nops++].value_len = strlen(vals[nstr]);
	}
	/* Every signed zone's keys, so that the cluster's nodes sign with this node's keys. */
	for (size_t i = 0; i < zk.n; nstr++) {
		const char *zone;
		vals[nstr] = zone_value(&zk, &i, &zone);
		keys[nstr] = key_of(k.prefix, "dnssec/", zone);
		ops[nops].key = keys[nstr];
		ops[nops].value = vals[nstr];
		ops[nops++].value_len = strlen(vals[nstr]);
	}
	/*
	 * The journal, oldest first, each entry under a key of its own time and row: a second
	 * import puts the same entries again rather than adding copies.
	 */
	for (size_t i = nje; i-- > 0; nstr++) {
		const db_journal_entry_t *e = &je[i];
		const char *node = e->node ? e->node : k.node;
		keys[nstr] = journal_key(k.prefix, journal_usec(e->time), node, (uint32_t)e->id);
		vals[nstr] = journal_value(e->time ? e->time : "", e->actor ? e->actor : "", node,
					   e->command, e->summary);
		ops[nops].key = keys[nstr];
		ops[nops].value = vals[nstr];
		ops[nops++].value_len = strlen(vals[nstr]);
	}
	/* Last and alone: a prefix with meta holds a whole configuration (README). */
	static const char meta[] = "{\"schema\":1}";
	etcd_op_t meta_op = { .key = meta_key, .value = meta, .value_len = sizeof(meta) - 1 };

	if ((ret = send_batches(&k, ops, nops, &sent)) == 0) {
		ret = send_batches(&k, &meta_op, 1, &msent);
		sent += msent;
	}
	if (ret) {
		if (ret == ETCD_ETOOBIG)
			/* Batches are cut by size: only one pool or entry can be too large. */
			snprintf(why, sizeof(why),
				 "etcd refused a pool or journal entry as larger than it takes "
				 "(its --max-request-bytes)");
		else
			etcd_why(&k, ret, why, sizeof(why));
		if (!sent) {
			ret = ctl_fail(c, "%s; nothing was changed", why);
		} else {
			ret = ctl_fail(c,
				       "%s; %zu of %zu operations were written, the prefix is "
				       "incomplete (run gslbctl cluster import --replace again)",
				       why, sent, nops + 1);
		}
		goto out;
	}
	printf("%zu pool%s and %zu journal entr%s uploaded to %s\n", cfg->npools,
	       cfg->npools == 1 ? "" : "s", nje, nje == 1 ? "y" : "ies", k.prefix);
	if (nzones)
		printf("the DNSSEC keys of %zu zone%s uploaded\n", nzones, nzones == 1 ? "" : "s");
	ret = CTL_OK;
out:
	for (size_t i = 0; i < nstr; i++) {
		free(keys[i]);
		value_free(vals[i]);
	}
	free(keys);
	free(vals);
	free(ops);
	free(pools_key);
	free(pools_end);
	free(meta_key);
	free(dnssec_key);
	free(dnssec_end);
	etcd_kvs_free(old, nold);
	etcd_kvs_free(old_zones, nold_zones);
	db_dnssec_keys_free(zk.v, zk.n);
	db_journal_free(je, nje);
	db_config_free(cfg);
	conn_close(&k);
	return ret;
}

/* ---- cluster status ---- */

/* RFC 3339 UTC text of Unix seconds. */
static const char *fmt_time(int64_t t, char *buf, size_t len)
{
	struct tm tm;
	time_t tt = (time_t)t;
	if (t <= 0) {
		snprintf(buf, len, "never");
		return buf;
	}
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

static int node_cmp(const void *a, const void *b)
{
	return strcmp(((const db_cluster_node_t *)a)->name, ((const db_cluster_node_t *)b)->name);
}

/*
 * When a live node last renewed its lease: now less the time its lease has run down
 * (granted TTL less the TTL left); now when etcd does not say.
 */
static int64_t lease_seen(conn_t *k, int64_t lease, int64_t now)
{
	json_t *res = NULL, *body = json_pack("{s:I}", "ID", (json_int_t)lease);
	int64_t seen = now;
	if (call(k, "/v3/lease/timetolive", body, &res) == 0) {
		int64_t granted = json_int64(res, "grantedTTL"), ttl = json_int64(res, "TTL");
		if (granted > 0 && ttl >= 0 && ttl <= granted)
			seen = now - (granted - ttl);
	}
	json_decref(res);
	return seen;
}

/* The live nodes, from P nodes/: appended to *v; 0 or an etcd code (*rev: etcd's revision). */
static int live_nodes(conn_t *k, db_cluster_node_t **v, size_t *n, int64_t *rev)
{
	char *key = key_of(k->prefix, "nodes/", ""), *end = etcd_prefix_end(key);
	json_t *res = NULL;
	etcd_kv_t *kvs = NULL;
	etcd_header_t h;
	size_t nkvs = 0;
	bool more;
	int64_t now = time(NULL);
	int ret = call(k, "/v3/kv/range", etcd_range_body(key, end, 0, 0, false, false), &res);
	if (!ret)
		ret = etcd_parse_range(res, &h, &kvs, &nkvs, &more);
	json_decref(res);
	if (ret)
		goto out;
	*rev = h.revision;
	for (size_t i = 0; i < nkvs; i++) {
		const char *name = kvs[i].key + strlen(key);
		json_t *o = json_loadb(kvs[i].value, kvs[i].value_len, 0, NULL);
		if (!*name || strchr(name, '/')) {
			json_decref(o);
			continue;
		}
		*v = gslb_realloc(*v, (*n + 1) * sizeof(**v));
		db_cluster_node_t *x = &(*v)[(*n)++];
		x->name = gslb_strdup(name);
		x->live = true;
		x->last_seen = kvs[i].lease ? lease_seen(k, kvs[i].lease, now) : now;
		x->revision = json_int64(o, "revision");
		x->down_votes = json_int64(o, "down_votes");
		json_decref(o);
	}
out:
	etcd_kvs_free(kvs, nkvs);
	free(key);
	free(end);
	return ret;
}

int cmd_cluster_status(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	conn_t k = { 0 };
	db_cluster_node_t *mirror = NULL, *nodes = NULL;
	size_t nmirror = 0, nnodes = 0;
	db_cluster_state_t st = { 0 };
	int64_t rev = 0;
	bool connected = false;
	char why[1024] = "", t[32];
	int ret;

	PARSE_ARGS(c, argc, argv, NULL, &a);
	if (a.npos)
		return ctl_invalid(c, "%s: unexpected argument", a.pos[0]);
	if ((ret = ctl_open(c)) || (ret = conn_open(c, &k)))
		goto out;
	if ((ret = db_cluster_nodes_list(c->db, &mirror, &nmirror)) ||
	    (ret = db_cluster_state_get(c->db, &st))) {
		ret = ctl_db_fail(c, ret);
		goto out;
	}
	ret = live_nodes(&k, &nodes, &nnodes, &rev);
	if (ret) {
		/* etcd out of reach: what this node mirrored last is all there is to show. */
		etcd_why(&k, ret, why, sizeof(why));
		rev = st.applied_rev;
		for (size_t i = 0; i < nnodes; i++)
			free(nodes[i].name);
		free(nodes);
		nodes = mirror;
		nnodes = nmirror;
		mirror = NULL;
		nmirror = 0;
	} else {
		for (size_t i = 0; i < nnodes; i++)
			connected |= strcmp(nodes[i].name, k.node) == 0;
		size_t live = nnodes;
		for (size_t i = 0; i < nmirror; i++) {
			bool seen = false;
			for (size_t j = 0; j < live && !seen; j++)
				seen = strcmp(nodes[j].name, mirror[i].name) == 0;
			if (seen)
				continue;
			nodes = gslb_realloc(nodes, (nnodes + 1) * sizeof(*nodes));
			nodes[nnodes] = mirror[i];
			nodes[nnodes].name = gslb_strdup(mirror[i].name);
			nodes[nnodes++].live = false;
		}
	}
	gslb_sort(nodes, nnodes, sizeof(*nodes), node_cmp);

	if (c->json) {
		jw_t w;
		jw_init(&w, stdout);
		jw_obj_begin(&w);
		jw_key(&w, "revision");
		jw_int(&w, rev);
		jw_key(&w, "connected");
		jw_bool(&w, connected);
		jw_key(&w, "node");
		jw_str(&w, k.node);
		jw_key(&w, "prefix");
		jw_str(&w, k.prefix);
		if (*why) {
			jw_key(&w, "error");
			jw_str(&w, why);
		}
		jw_key(&w, "nodes");
		jw_arr_begin(&w);
		for (size_t i = 0; i < nnodes; i++) {
			jw_obj_begin(&w);
			jw_key(&w, "name");
			jw_str(&w, nodes[i].name);
			jw_key(&w, "live");
			jw_bool(&w, nodes[i].live);
			jw_key(&w, "last_seen");
			jw_int(&w, nodes[i].last_seen);
			jw_key(&w, "revision");
			jw_int(&w, nodes[i].revision);
			jw_key(&w, "down_votes");
			jw_int(&w, nodes[i].down_votes);
			jw_obj_end(&w);
		}
		jw_arr_end(&w);
		jw_obj_end(&w);
		jw_end(&w);
	} else {
		if (*why)
			printf("node %s not connected: %s\nmirrored revision %lld\n", k.node, why,
			       (long long)rev);
		else
			printf("node %s %s\netcd revision %lld\n", k.node,
			       connected ? "connected" : "not live in etcd", (long long)rev);
		for (size_t i = 0; i < nnodes; i++)
			printf("  %s %s last seen %s revision %lld down votes %lld\n",
			       nodes[i].name, nodes[i].live ? "live" : "gone",
			       fmt_time(nodes[i].last_seen, t, sizeof(t)),
			       (long long)nodes[i].revision, (long long)nodes[i].down_votes);
	}
	ret = CTL_OK;
out:
	db_cluster_nodes_free(nodes, nnodes);
	db_cluster_nodes_free(mirror, nmirror);
	conn_close(&k);
	return ret;
}
