/* SPDX-License-Identifier: MIT */
/* Test driver: runs the health loop over targets from the command line and prints its events. */

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "gslb/core.h"
#include "gslb/health.h"
#include "gslb/lb.h"
#include "../src/health/internal.h"

/*
 * Usage: health_probe [--db FILE] [--schema FILE] [--ca-file FILE] [--history H]
 *                     [--seconds S] [--count N] [--quiet] [--tls-reverify S]
 *                     [--reload S | --swap S] [--cluster] TARGET... [-- TARGET...]
 * TARGET: TYPE,ADDR:PORT[,path=P][,host=H][,expect=E][,match=M][,interval=S][,timeout=S]
 *         [,rise=N][,fall=N][,insecure][,quorum=Q]   (ADDR of IPv6 in brackets)
 * --count N repeats every target N times with "?n=I" appended to the path
 * (distinct keys), for load runs.  Output lines, one per event:
 *   start KEY up|down          the state published before the first probe
 *   result T_MS KEY ok|fail LATENCY_MS REASON
 *   change T_MS KEY up|down REASON
 *   reload                     --reload S: after S seconds the set is given again without
 *                              its last target and with the indexes reversed
 *   after KEY up|down          the state published at the new index
 *   swap                       --swap S: after S seconds the set is replaced by the targets
 *                              after "--" (the same key with another check is a check change)
 * --tls-reverify S: a full TLS handshake when the last one is S seconds old (default 300).
 *   cpu THREAD_S PROCESS_S WALL_S PROBES
 * --cluster: the loop is a cluster node's (health_loop_set_cluster()); "change" lines are then
 * the effective state's, and commands are read from stdin, one a line, until "quit", its end
 * or --seconds:
 *   vote SLOT KEY up|down|gone   node SLOT's vote on KEY (health_loop_vote())
 *   clear SLOT                   forget SLOT's votes, every slot's when SLOT is -1
 *   swap                         replace the set by the targets after "--"
 * which add the lines
 *   verdict KEY up|down|gone     this node's own verdict (the verdict callback)
 *   applied vote KEY up|down|none   a vote was applied: the state of KEY's target after it
 *   applied clear SLOT           a clear was applied
 */

static int64_t t0_ms;
static _Atomic long tid_health;
static _Atomic long nresults;
static bool quiet;
static bool cluster;
static pthread_mutex_t out_mu = PTHREAD_MUTEX_INITIALIZER;

static int64_t mono_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void on_event(const health_event_t *ev, void *arg)
{
	(void)arg;
	atomic_store(&tid_health, (long)syscall(SYS_gettid));
	if (ev->is_vote) {
		pthread_mutex_lock(&out_mu);
		if (ev->key)
			printf("applied vote %s %s\n", ev->key,
			       ev->index == UINT32_MAX ? "none"
			       : ev->up		       ? "up"
						       : "down");
		else
			printf("applied clear\n");
		fflush(stdout);
		pthread_mutex_unlock(&out_mu);
		return;
	}
	if (!ev->is_change)
		atomic_fetch_add(&nresults, 1);
	if (quiet && !ev->is_change)
		return;
	pthread_mutex_lock(&out_mu);
	if (ev->is_change)
		printf("change %lld %s %s %s\n", (long long)(mono_ms() - t0_ms), ev->key,
		       ev->up ? "up" : "down", ev->reason);
	else
		printf("result %lld %s %s %.1f %s\n", (long long)(mono_ms() - t0_ms), ev->key,
		       ev->ok ? "ok" : "fail", ev->latency_ms, ev->reason);
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static void on_verdict(const char *key, enum health_vote vote, void *arg)
{
	(void)arg;
	pthread_mutex_lock(&out_mu);
	printf("verdict %s %s\n", key,
	       vote == HEALTH_VOTE_UP	  ? "up"
	       : vote == HEALTH_VOTE_DOWN ? "down"
					  : "gone");
	fflush(stdout);
	pthread_mutex_unlock(&out_mu);
}

static void sleep_s(double seconds)
{
	struct timespec ts = { .tv_sec = (time_t)seconds,
			       .tv_nsec = (long)((seconds - (double)(time_t)seconds) * 1e9) };
	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

static uint32_t ms_of(const char *s)
{
	return (uint32_t)(strtod(s, NULL) * 1000.0 + 0.5);
}

static int parse_target(char *spec, health_check_conf_t *c)
{
	char *save = NULL, *tok = strtok_r(spec, ",", &save);

	memset(c, 0, sizeof(*c));
	c->interval_ms = 1000;
	c->timeout_ms = 500;
	c->rise = 2;
	c->fall = 3;
	if (!tok)
		return -EINVAL;
	if (!strcmp(tok, "tcp"))
		c->type = HEALTH_TCP;
	else if (!strcmp(tok, "http"))
		c->type = HEALTH_HTTP;
	else if (!strcmp(tok, "https"))
		c->type = HEALTH_HTTPS;
	else
		return -EINVAL;
	tok = strtok_r(NULL, ",", &save);
	if (!tok)
		return -EINVAL;
	char *colon = strrchr(tok, ':');
	if (!colon)
		return -EINVAL;
	*colon = '\0';
	unsigned port = (unsigned)atoi(colon + 1);
	if (tok[0] == '[') {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&c->addr;
		tok[strlen(tok) - 1] = '\0';
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons((uint16_t)port);
		if (inet_pton(AF_INET6, tok + 1, &s6->sin6_addr) != 1)
			return -EINVAL;
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addr;
		s4->sin_family = AF_INET;
		s4->sin_port = htons((uint16_t)port);
		if (inet_pton(AF_INET, tok, &s4->sin_addr) != 1)
			return -EINVAL;
	}
	while ((tok = strtok_r(NULL, ",", &save))) {
		char *v = strchr(tok, '=');
		if (v)
			*v++ = '\0';
		if (!strcmp(tok, "insecure"))
			c->insecure = true;
		else if (!v)
			return -EINVAL;
		else if (!strcmp(tok, "path"))
			c->path = v;
		else if (!strcmp(tok, "host"))
			c->host = v;
		else if (!strcmp(tok, "match"))
			c->match = v;
		else if (!strcmp(tok, "expect")) {
			/* The list uses commas, so the driver takes it with '+' between ranges. */
			for (char *p = v; *p; p++)
				if (*p == '+')
					*p = ',';
			if (health_expect_parse(c, v) < 0)
				return -EINVAL;
		} else if (!strcmp(tok, "interval"))
			c->interval_ms = ms_of(v);
		else if (!strcmp(tok, "timeout"))
			c->timeout_ms = ms_of(v);
		else if (!strcmp(tok, "rise"))
			c->rise = (unsigned)atoi(v);
		else if (!strcmp(tok, "fall"))
			c->fall = (unsigned)atoi(v);
		else if (!strcmp(tok, "quorum")) {
			int q = !strcmp(v, "majority") ? HEALTH_QUORUM_MAJORITY
				: !strcmp(v, "any")    ? HEALTH_QUORUM_ANY
				: !strcmp(v, "all")    ? HEALTH_QUORUM_ALL
				: !strcmp(v, "local")  ? HEALTH_QUORUM_LOCAL
						       : -1;
			if (q < 0)
				return -EINVAL;
			c->quorum = (uint8_t)q;
		} else
			return -EINVAL;
	}
	return 0;
}

/* The tables the health loop writes, for a database made without src/db/schema.sql. */
static const char fallback_schema[] =
	"CREATE TABLE IF NOT EXISTS target(id INTEGER PRIMARY KEY, key TEXT UNIQUE NOT NULL);"
	"CREATE TABLE IF NOT EXISTS reason(id INTEGER PRIMARY KEY, text TEXT UNIQUE NOT NULL);"
	"CREATE TABLE IF NOT EXISTS target_state(target_id INTEGER PRIMARY KEY,"
	" state TEXT NOT NULL, since INTEGER, reason TEXT, last_probe INTEGER, latency_ms REAL);"
	"CREATE TABLE IF NOT EXISTS probe_result(target_id INTEGER NOT NULL,"
	" time_ms INTEGER NOT NULL, ok INTEGER NOT NULL, latency_us INTEGER, reason_id INTEGER,"
	" PRIMARY KEY (target_id, time_ms)) WITHOUT ROWID;"
	"CREATE TABLE IF NOT EXISTS state_change(id INTEGER PRIMARY KEY, time INTEGER NOT NULL,"
	" target_id INTEGER NOT NULL, from_state TEXT, to_state TEXT NOT NULL, reason TEXT);"
	"CREATE INDEX IF NOT EXISTS state_change_time ON state_change(time);";

static int make_schema(const char *db_path, const char *schema_path)
{
	sqlite3 *db = NULL;
	char *sql = NULL, *err = NULL;
	int ret = -EIO;

	if (sqlite3_open(db_path, &db) != SQLITE_OK)
		goto out;
	sqlite3_stmt *st = NULL;
	bool fresh = true;
	if (sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE name = 'target_state'", -1,
			       &st, NULL) == SQLITE_OK)
		fresh = sqlite3_step(st) != SQLITE_ROW;
	sqlite3_finalize(st);
	/* The schema file creates its tables unconditionally: only for a new database. */
	if (schema_path && fresh) {
		FILE *f = fopen(schema_path, "r");
		size_t cap = 0;
		if (!f)
			goto out;
		ssize_t n = getdelim(&sql, &cap, '\0', f);
		fclose(f);
		if (n < 0)
			goto out;
		if (sqlite3_exec(db, sql, NULL, NULL, &err) != SQLITE_OK)
			goto out;
	}
	if (sqlite3_exec(db, fallback_schema, NULL, NULL, &err) != SQLITE_OK)
		goto out;
	ret = 0;
out:
	if (err)
		fprintf(stderr, "health_probe: schema: %s\n", err);
	sqlite3_free(err);
	free(sql);
	sqlite3_close(db);
	return ret;
}

static double cpu_s(const char *path)
{
	char buf[1024];
	FILE *f = fopen(path, "r");
	if (!f)
		return -1;
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* Fields 14 and 15 (utime, stime) follow the ")" that ends the command name. */
	char *p = strrchr(buf, ')');
	unsigned long ut = 0, st = 0;
	if (!p ||
	    sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* --cluster: the commands of stdin, run on their own thread (the control thread's role). */
struct commands {
	health_loop_t *hl;
	health_target_conf_t *swap;
	size_t nswap;
	pthread_mutex_t mu; /* held while a command runs; stopping: no more commands */
	bool stopping;
	_Atomic bool done; /* "quit" or the end of stdin */
};

static void command(struct commands *cm, char *line)
{
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	if (!strncmp(line, "vote ", 5)) {
		char *slot_end, *key, *last = strrchr(line, ' ');
		long slot = strtol(line + 5, &slot_end, 10);
		if (!last || *slot_end != ' ' || last <= slot_end)
			goto bad;
		*last++ = '\0';
		key = slot_end + 1;
		enum health_vote v = !strcmp(last, "up")     ? HEALTH_VOTE_UP
				     : !strcmp(last, "down") ? HEALTH_VOTE_DOWN
							     : HEALTH_VOTE_GONE;
		health_loop_vote(cm->hl, (unsigned)slot, key, v);
	} else if (!strncmp(line, "clear ", 6)) {
		health_loop_votes_clear(cm->hl, atoi(line + 6));
	} else if (!strcmp(line, "swap")) {
		health_loop_set_targets(cm->hl, cm->swap, cm->nswap);
	} else if (!strcmp(line, "quit")) {
		atomic_store(&cm->done, true);
	} else if (*line) {
		goto bad;
	}
	return;
bad:
	fprintf(stderr, "health_probe: bad command %s\n", line);
}

static void *commands_main(void *arg)
{
	struct commands *cm = arg;
	char *line = NULL;
	size_t cap = 0;

	while (!atomic_load(&cm->done)) {
		errno = 0;
		if (getline(&line, &cap, stdin) < 0) {
			/* A signal (valgrind sends some) is not the end of the commands. */
			if (errno == EINTR) {
				clearerr(stdin);
				continue;
			}
			break;
		}
		pthread_mutex_lock(&cm->mu);
		if (!cm->stopping)
			command(cm, line);
		pthread_mutex_unlock(&cm->mu);
	}
	free(line);
	atomic_store(&cm->done, true);
	return NULL;
}

int main(int argc, char **argv)
{
	const char *db = NULL, *schema = NULL, *ca = NULL;
	unsigned history = 24, count = 1;
	double seconds = 5, reload = -1, swap = -1;
	int ntargets = 0, nswap = 0;
	char **specs = calloc((size_t)argc, sizeof(char *));
	char **swaps = calloc((size_t)argc, sizeof(char *));

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--db") && i + 1 < argc)
			db = argv[++i];
		else if (!strcmp(a, "--schema") && i + 1 < argc)
			schema = argv[++i];
		else if (!strcmp(a, "--ca-file") && i + 1 < argc)
			ca = argv[++i];
		else if (!strcmp(a, "--history") && i + 1 < argc)
			history = (unsigned)atoi(argv[++i]);
		else if (!strcmp(a, "--seconds") && i + 1 < argc)
			seconds = strtod(argv[++i], NULL);
		else if (!strcmp(a, "--reload") && i + 1 < argc)
			reload = strtod(argv[++i], NULL);
		else if (!strcmp(a, "--count") && i + 1 < argc)
			count = (unsigned)atoi(argv[++i]);
		else if (!strcmp(a, "--quiet"))
			quiet = true;
		else if (!strcmp(a, "--cluster"))
			cluster = true;
		else if (!strcmp(a, "--swap") && i + 1 < argc)
			swap = strtod(argv[++i], NULL);
		else if (!strcmp(a, "--tls-reverify") && i + 1 < argc)
			health_tls_reverify_ms = ms_of(argv[++i]);
		else if (!strcmp(a, "--")) {
			while (++i < argc)
				swaps[nswap++] = argv[i];
		} else if (a[0] == '-') {
			fprintf(stderr, "health_probe: unknown option %s\n", a);
			return 2;
		} else
			specs[ntargets++] = argv[i];
	}
	if (db && make_schema(db, schema) < 0) {
		fprintf(stderr, "health_probe: cannot prepare %s\n", db);
		return 1;
	}

	size_t n = (size_t)ntargets * count;
	health_target_conf_t *tc = calloc(n ? n : 1, sizeof(*tc));
	char **paths = calloc(n ? n : 1, sizeof(char *));
	for (int i = 0; i < ntargets; i++) {
		health_check_conf_t c;
		if (parse_target(specs[i], &c) < 0) {
			fprintf(stderr, "health_probe: bad target %s\n", specs[i]);
			return 2;
		}
		for (unsigned k = 0; k < count; k++) {
			size_t j = (size_t)i * count + k;
			tc[j].check = c;
			tc[j].index = (uint32_t)j;
			if (count > 1) {
				if (asprintf(&paths[j], "%s?n=%u", c.path ? c.path : "/", k) < 0)
					return 1;
				tc[j].check.path = paths[j];
			}
		}
	}

	lb_health_t *table = lb_health_new((uint32_t)(n ? n : 1));
	health_loop_t *hl = health_loop_new(table, db, ca, history);
	if (!hl)
		return 1;
	health_loop_set_observer(hl, on_event, NULL);
	health_target_conf_t *tc2 = calloc((size_t)nswap + 1, sizeof(*tc2));
	for (int i = 0; i < nswap; i++) {
		if (parse_target(swaps[i], &tc2[i].check) < 0) {
			fprintf(stderr, "health_probe: bad target %s\n", swaps[i]);
			return 2;
		}
		tc2[i].index = (uint32_t)i;
	}
	struct commands cm = { .hl = hl, .swap = tc2, .nswap = (size_t)nswap };
	pthread_mutex_init(&cm.mu, NULL);
	if (cluster)
		health_loop_set_cluster(hl, on_verdict, NULL);
	t0_ms = mono_ms();
	health_loop_set_targets(hl, tc, n);
	for (size_t j = 0; j < n && j < 100; j++) {
		char key[HEALTH_KEY_MAX];
		printf("start %s %s\n", health_target_key(&tc[j].check, key, sizeof(key)),
		       lb_health_up(table, (uint32_t)j) ? "up" : "down");
	}
	fflush(stdout);
	if (health_loop_start(hl) < 0)
		return 1;
	pthread_t cmd_thread;
	if (cluster) {
		/* Detached: it may still wait on stdin when --seconds ends. */
		if (pthread_create(&cmd_thread, NULL, commands_main, &cm) != 0)
			return 1;
		pthread_detach(cmd_thread);
		int64_t end = mono_ms() + (int64_t)(seconds * 1000);
		while (!atomic_load(&cm.done) && mono_ms() < end)
			sleep_s(0.02);
		seconds = 0;
	}

	if (reload >= 0 && reload < seconds && n > 0) {
		sleep_s(reload);
		seconds -= reload;
		for (size_t j = 0; j < n; j++)
			tc[j].index = (uint32_t)(n - 1 - j);
		health_loop_set_targets(hl, tc, n - 1);
		pthread_mutex_lock(&out_mu);
		printf("reload\n");
		for (size_t j = 0; j + 1 < n && j < 100; j++) {
			char key[HEALTH_KEY_MAX];
			printf("after %s %s\n", health_target_key(&tc[j].check, key, sizeof(key)),
			       lb_health_up(table, tc[j].index) ? "up" : "down");
		}
		fflush(stdout);
		pthread_mutex_unlock(&out_mu);
	}
	if (swap >= 0 && swap < seconds && (size_t)nswap <= n) {
		sleep_s(swap);
		seconds -= swap;
		health_loop_set_targets(hl, tc2, (size_t)nswap);
		pthread_mutex_lock(&out_mu);
		printf("swap\n");
		fflush(stdout);
		pthread_mutex_unlock(&out_mu);
	}
	sleep_s(seconds);
	double thr = -1;
	long tid = atomic_load(&tid_health);
	if (tid) {
		char path[64];
		snprintf(path, sizeof(path), "/proc/self/task/%ld/stat", tid);
		thr = cpu_s(path);
	}
	double proc = cpu_s("/proc/self/stat");
	printf("cpu %.2f %.2f %.2f %ld\n", thr, proc, (double)(mono_ms() - t0_ms) / 1000.0,
	       atomic_load(&nresults));
	fflush(stdout);
	pthread_mutex_lock(&cm.mu);
	cm.stopping = true;
	pthread_mutex_unlock(&cm.mu);
	health_loop_stop(hl);
	health_loop_free(hl);
	lb_health_free(table);
	for (size_t j = 0; j < n; j++)
		free(paths[j]);
	free(paths);
	free(tc);
	free(tc2);
	free(specs);
	free(swaps);
	return 0;
}
