/* SPDX-License-Identifier: MIT */
/* Test driver: both etcd clients of src/cluster from the command line, for tests/integration/test_etcd_client.py. */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <uv.h>

#include "gslb/etcd.h"

/*
 * Usage: etcd_client [--async] --url U[,U...] [--ca F] [--cert F --key F] [--user U
 *                    --password-file F] [--timeout-ms N] [--connect-timeout-ms N] COMMAND
 * COMMAND:
 *   call PATH JSON            the reply as one line: "ok {...}"
 *   range KEY [PREFIX|-] [REV] "kv KEY MOD_REVISION VALUE" per key, then "rev R more 0|1"
 *   txn KEY REV VALUE [KEY2 VALUE2]
 *                             put KEY (and KEY2) if KEY's mod_revision is REV (0: KEY does not
 *                             exist): "txn succeeded|failed R"
 *   watch PREFIX FROM_REV COUNT [CANCEL_MS]   (--async only) a line per message:
 *                             "msg R created|canceled|progress|events N [compact C]", then
 *                             "event PUT|DELETE KEY MOD_REVISION VALUE" per event; ends after COUNT
 *                             messages with events ("done"), or when the watch ends
 *                             ("end NAME WHY"); CANCEL_MS > 0: etcd_free() after that long.
 * --parallel P (--async): each round is P calls at once (one authentication serves them all).
 * --repeat N:MS: call, range and txn N times with the same client, MS milliseconds apart (a token
 * that expired in between is renewed).
 * Failures print "error NAME WHY" (NAME: ETCD_EUNAVAIL...) and exit 2; the last line of every
 * async run is "endpoint URL" (the one the client moved to) and "closed 0" once the loop has no
 * handle left.
 */

static const char *err_name(int err)
{
	switch (err) {
	case 0:
		return "OK";
	case ETCD_EUNAVAIL:
		return "ETCD_EUNAVAIL";
	case ETCD_ECOMPACTED:
		return "ETCD_ECOMPACTED";
	case ETCD_EAUTH:
		return "ETCD_EAUTH";
	case ETCD_ETOOBIG:
		return "ETCD_ETOOBIG";
	case ETCD_EREQUEST:
		return "ETCD_EREQUEST";
	case -ECANCELED:
		return "ECANCELED";
	case -EPROTO:
		return "EPROTO";
	default:
		return "ERRNO";
	}
}

static int usage(void)
{
	fprintf(stderr,
		"usage: etcd_client [--async] --url U[,U...] [options] call|range|txn|watch ...\n");
	return 64;
}

static char *read_password(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	char buf[1024];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return strdup(buf);
}

/* ---- what a command sends and how its reply is printed ---- */

typedef struct cmd {
	const char *name;
	const char *path;
	json_t *body;
	/* watch */
	int64_t count, seen;
	uint64_t cancel_ms;
	etcd_t *e;
	uv_timer_t cancel;
	int status;
	int repeat;
	unsigned repeat_ms;
	int parallel, inflight;
} cmd_t;

static void print_value(const char *v, size_t n)
{
	fwrite(v, 1, n, stdout);
}

static int print_reply(const cmd_t *c, const json_t *reply)
{
	etcd_header_t h;
	if (strcmp(c->name, "call") == 0) {
		char *s = json_dumps(reply, JSON_COMPACT);
		printf("ok %s\n", s);
		free(s);
		return 0;
	}
	if (strcmp(c->name, "range") == 0) {
		etcd_kv_t *kvs;
		size_t n;
		bool more;
		int ret = etcd_parse_range(reply, &h, &kvs, &n, &more);
		if (ret) {
			printf("error %s reply not understood\n", err_name(ret));
			return 2;
		}
		for (size_t i = 0; i < n; i++) {
			printf("kv %s %lld ", kvs[i].key, (long long)kvs[i].mod_revision);
			print_value(kvs[i].value, kvs[i].value_len);
			printf("\n");
		}
		printf("rev %lld more %d\n", (long long)h.revision, more);
		etcd_kvs_free(kvs, n);
		return 0;
	}
	bool ok;
	int ret = etcd_parse_txn(reply, &h, &ok);
	if (ret) {
		printf("error %s reply not understood\n", err_name(ret));
		return 2;
	}
	printf("txn %s %lld\n", ok ? "succeeded" : "failed", (long long)h.revision);
	return 0;
}

static int make_cmd(cmd_t *c, int argc, char **argv)
{
	c->name = argv[0];
	if (strcmp(c->name, "call") == 0 && argc == 3) {
		json_error_t err;
		c->path = argv[1];
		c->body = json_loads(argv[2], 0, &err);
		return c->body ? 0 : -1;
	}
	if (strcmp(c->name, "range") == 0 && argc >= 2 && argc <= 4) {
		char *end = NULL;
		if (argc >= 3 && strcmp(argv[2], "-") != 0)
			end = strcmp(argv[2], "prefix") == 0 ? etcd_prefix_end(argv[1])
							     : strdup(argv[2]);
		c->path = "/v3/kv/range";
		c->body = etcd_range_body(argv[1], end, argc == 4 ? atoll(argv[3]) : 0, 0, false,
					  false);
		free(end);
		return 0;
	}
	if (strcmp(c->name, "txn") == 0 && (argc == 4 || argc == 6)) {
		int64_t rev = atoll(argv[2]);
		etcd_cmp_t cmp = { argv[1], rev ? ETCD_MOD : ETCD_CREATE, rev };
		etcd_op_t ops[2] = {
			{ .key = argv[1], .value = argv[3], .value_len = strlen(argv[3]) },
			{ .key = argc == 6 ? argv[4] : "", .value = argc == 6 ? argv[5] : "" },
		};
		ops[1].value_len = strlen(ops[1].value);
		c->path = "/v3/kv/txn";
		c->body = etcd_txn_body(&cmp, 1, ops, argc == 6 ? 2 : 1);
		return 0;
	}
	if (strcmp(c->name, "watch") == 0 && (argc == 4 || argc == 5)) {
		char *end = etcd_prefix_end(argv[1]);
		c->body = etcd_watch_body(argv[1], end, atoll(argv[2]), false);
		free(end);
		c->count = atoll(argv[3]);
		c->cancel_ms = argc == 5 ? strtoull(argv[4], NULL, 10) : 0;
		return 0;
	}
	return -1;
}

/* ---- the asynchronous client ---- */

static void on_call(int err, const json_t *result, void *arg);

/* One round: c->parallel calls at once. */
static int round_start(cmd_t *c)
{
	for (int i = 0; i < c->parallel; i++) {
		int ret = etcd_call(c->e, c->path, json_deep_copy(c->body), on_call, c);
		if (ret)
			return ret;
		c->inflight++;
	}
	return 0;
}

static void on_again(uv_timer_t *t)
{
	cmd_t *c = t->data;
	int ret = round_start(c);
	if (ret) {
		printf("error %s cannot start\n", err_name(ret));
		c->status = 2;
		if (c->inflight == 0) {
			uv_close((uv_handle_t *)&c->cancel, NULL);
			etcd_free(c->e);
		}
	}
}

static void on_call(int err, const json_t *result, void *arg)
{
	cmd_t *c = arg;
	if (err) {
		printf("error %s %s\n", err_name(err), etcd_error(c->e));
		c->status = 2;
	} else if (print_reply(c, result)) {
		c->status = 2;
	}
	if (--c->inflight > 0)
		return;
	if (--c->repeat > 0 && c->status == 0) {
		uv_timer_start(&c->cancel, on_again, c->repeat_ms, 0);
		return;
	}
	printf("endpoint %s\n", etcd_endpoint(c->e));
	uv_close((uv_handle_t *)&c->cancel, NULL);
	etcd_free(c->e);
}

static void on_closed(uv_handle_t *h)
{
}

static void on_watch(int err, const etcd_watch_msg_t *m, void *arg)
{
	cmd_t *c = arg;
	if (err) {
		printf("end %s %s\n", err_name(err), etcd_error(c->e));
		c->status = err == -ECANCELED ? 0 : 2;
		printf("endpoint %s\n", etcd_endpoint(c->e));
		if (!uv_is_closing((uv_handle_t *)&c->cancel))
			uv_close((uv_handle_t *)&c->cancel, on_closed);
		etcd_free(c->e);
		return;
	}
	const char *kind = m->created	 ? "created"
			   : m->canceled ? "canceled"
			   : m->nevents	 ? "events"
					 : "progress";
	printf("msg %lld %s %zu", (long long)m->header.revision, kind, m->nevents);
	if (m->compact_revision)
		printf(" compact %lld", (long long)m->compact_revision);
	printf("\n");
	for (size_t i = 0; i < m->nevents; i++) {
		const etcd_kv_t *kv = &m->events[i].kv;
		printf("event %s %s %lld ", m->events[i].is_delete ? "DELETE" : "PUT", kv->key,
		       (long long)kv->mod_revision);
		print_value(kv->value, kv->value_len);
		printf("\n");
	}
	fflush(stdout);
	if (m->nevents && ++c->seen >= c->count) {
		printf("done\n");
		printf("endpoint %s\n", etcd_endpoint(c->e));
		if (!uv_is_closing((uv_handle_t *)&c->cancel))
			uv_close((uv_handle_t *)&c->cancel, on_closed);
		/* Ends the watch from its own callback: its end comes as -ECANCELED, not printed. */
		c->count = -1;
		etcd_free(c->e);
	}
}

static void on_watch_quiet(int err, const etcd_watch_msg_t *m, void *arg)
{
	cmd_t *c = arg;
	if (c->count >= 0 || err != -ECANCELED)
		on_watch(err, m, arg);
}

static void on_cancel(uv_timer_t *t)
{
	cmd_t *c = t->data;
	uv_close((uv_handle_t *)&c->cancel, on_closed);
	etcd_free(c->e);
}

static int run_async(const etcd_conf_t *conf, cmd_t *c)
{
	uv_loop_t loop;
	uv_loop_init(&loop);
	int ret = etcd_new(&loop, conf, &c->e);
	if (ret) {
		printf("error %s etcd_new\n", err_name(ret));
		return 2;
	}
	uv_timer_init(&loop, &c->cancel);
	c->cancel.data = c;
	if (strcmp(c->name, "watch") == 0) {
		etcd_watch_t *w;
		ret = etcd_watch(c->e, c->body, on_watch_quiet, c, &w);
		c->body = NULL;
		if (ret == 0 && c->cancel_ms)
			uv_timer_start(&c->cancel, on_cancel, c->cancel_ms, 0);
		else
			uv_close((uv_handle_t *)&c->cancel, on_closed);
	} else {
		ret = round_start(c);
	}
	if (ret && c->inflight == 0) {
		printf("error %s cannot start\n", err_name(ret));
		if (!uv_is_closing((uv_handle_t *)&c->cancel))
			uv_close((uv_handle_t *)&c->cancel, NULL);
		etcd_free(c->e);
		c->status = 2;
	}
	fflush(stdout);
	uv_run(&loop, UV_RUN_DEFAULT);
	/* Every handle of the client closed: the loop closes. */
	printf("closed %d\n", uv_loop_close(&loop));
	return c->status;
}

static int run_sync(const etcd_conf_t *conf, cmd_t *c)
{
	etcd_sync_t *s;
	int ret = etcd_sync_new(conf, &s);
	if (ret) {
		printf("error %s etcd_sync_new\n", err_name(ret));
		return 2;
	}
	for (int i = 0; i < c->repeat; i++) {
		if (i > 0)
			uv_sleep(c->repeat_ms);
		json_t *reply;
		ret = etcd_sync_call(s, c->path, json_deep_copy(c->body), &reply);
		if (ret) {
			printf("error %s %s\n", err_name(ret), etcd_sync_error(s));
			break;
		}
		ret = print_reply(c, reply);
		json_decref(reply);
	}
	etcd_sync_free(s);
	return ret ? 2 : 0;
}

int main(int argc, char **argv)
{
	etcd_conf_t conf = { 0 };
	bool async = false;
	int repeat = 0, repeat_n = 1, parallel = 1;
	unsigned repeat_ms = 0;
	char *urls = NULL, *password = NULL;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		const char *opt = argv[i];
		if (strcmp(opt, "--async") == 0) {
			async = true;
			continue;
		}
		if (i + 1 >= argc)
			return usage();
		const char *v = argv[++i];
		if (strcmp(opt, "--url") == 0)
			urls = strdup(v);
		else if (strcmp(opt, "--ca") == 0)
			conf.ca_file = v;
		else if (strcmp(opt, "--cert") == 0)
			conf.cert_file = v;
		else if (strcmp(opt, "--key") == 0)
			conf.key_file = v;
		else if (strcmp(opt, "--user") == 0)
			conf.user = v;
		else if (strcmp(opt, "--password-file") == 0) {
			password = read_password(v);
			if (!password) {
				fprintf(stderr, "etcd_client: cannot read %s\n", v);
				return 1;
			}
		} else if (strcmp(opt, "--timeout-ms") == 0)
			conf.timeout_ms = (uint32_t)atoi(v);
		else if (strcmp(opt, "--parallel") == 0)
			parallel = atoi(v);
		else if (strcmp(opt, "--repeat") == 0)
			repeat = sscanf(v, "%d:%u", &repeat_n, &repeat_ms) == 2 ? 0 : -1;
		else if (strcmp(opt, "--connect-timeout-ms") == 0)
			conf.connect_timeout_ms = (uint32_t)atoi(v);
		else
			return usage();
	}
	if (!urls || i >= argc || repeat < 0 || repeat_n < 1 || parallel < 1 ||
	    (parallel > 1 && !async))
		return usage();
	conf.password = password;
	char *urlv[16];
	for (char *save, *u = strtok_r(urls, ",", &save); u && conf.nurls < 16;
	     u = strtok_r(NULL, ",", &save))
		urlv[conf.nurls++] = u;
	conf.urls = urlv;

	cmd_t c = { .repeat = repeat_n, .repeat_ms = repeat_ms, .parallel = parallel };
	if (make_cmd(&c, argc - i, argv + i) || !c.body || (strcmp(c.name, "watch") == 0 && !async))
		return usage();
	setvbuf(stdout, NULL, _IOLBF, 0);
	/* As gslbd does, for the asynchronous client (include/gslb/etcd.h). */
	signal(SIGPIPE, SIG_IGN);
	int ret = async ? run_async(&conf, &c) : run_sync(&conf, &c);
	json_decref(c.body);
	free(urls);
	free(password);
	return ret;
}
