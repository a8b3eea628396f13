/* SPDX-License-Identifier: MIT */
/*
 * The status page of --metrics (README "Status page"): GET / as HTML with a
 * 24-hour timeline of every target, GET /status.json as `gslbctl status
 * --json` writes it, both read from the database off the control loop.
 *
 * Threads, and what each touches:
 *
 *   control thread   Owns server_status_t: its queue of requests, the job
 *                    running, the database connection between jobs.  At the
 *                    start of a job it copies what only it may read (whether
 *                    each pool of ctl->cfg is served by the current
 *                    snapshot's zones) into the job; it answers the request
 *                    in the job's after-work callback.
 *   a libuv thread   Runs one job (uv_queue_work() on the control loop):
 *                    opens or reuses the page's own read-only connection,
 *                    reads the configuration and the stored health in one
 *                    read transaction, and renders the body.  It touches
 *                    nothing else of the server.
 *
 * One job runs at a time, so the connection is used by one thread at a time
 * (the libuv queue orders one job's end before the next one's start) and a
 * slow database holds one libuv thread, never the control loop: DNS
 * answers, reloads and /metrics go on meanwhile.  A request waits in the
 * queue for its turn; http.c answers it 503 if no job has answered it by its
 * deadline, and cancels it when its connection closes.
 *
 * A job's life:
 *
 *        job_start()            job_work()             job_done()
 *   QUEUED ------------> RUNNING ----------> RENDERED ------------> ANSWERED
 *   (request in s->queue)  (s->job)          (body or error)        (r->cb, or
 *                                                                   dropped when
 *                                                                   r cancelled)
 *
 * server_status_close() with a job running marks s closing; job_done()
 * frees s and the connection then.
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/dns.h"
#include "gslb/lb.h"
#include "gslb/status.h"
#include "gslb/zone.h"
#include "internal.h"

/*
 * Bounds on what one page reads and writes, so that a large configuration
 * (10,000 targets, each flapping) cannot make a page of hundreds of
 * megabytes: a target's timeline draws its newest STATUS_TARGET_CHANGES_MAX
 * changes of the window; a page draws at most STATUS_CHANGES_MAX changes
 * and STATUS_ROWS_MAX addresses, and says what it left out (one pool at a
 * time, ?pool=NAME, is never cut but for its changes).
 */
#define STATUS_WINDOW_S 86400
#define STATUS_TARGET_CHANGES_MAX 100
#define STATUS_CHANGES_MAX 50000
#define STATUS_ROWS_MAX 5000
#define TL_WIDTH 480 /* pixels of a timeline: 20 per hour */
#define TL_HEIGHT 16

/* Whether one pool is served, by the snapshot the control loop last published. */
typedef struct served {
	char *name; /* owned */
	int serving;
} served_t;

typedef struct status_job {
	uv_work_t work;
	server_status_t *s;
	server_status_req_t *req; /* NULL once cancelled */
	/* In: copied on the control thread. */
	server_status_req_t q;	/* the request's parameters (not its links) */
	const served_t *served; /* borrowed from s (not rebuilt while a job runs) */
	size_t nserved;
	bool zones_readable;
	int64_t now;
	/* Out. */
	int status;
	char *body;
	size_t len;
} status_job_t;

struct server_status {
	uv_loop_t *loop;
	status_src_t src;
	TAILQ_HEAD(, server_status_req) queue;
	status_job_t *job; /* running, or NULL */
	/*
	 * Whether each pool is served, for the snapshot of generation
	 * served_gen: rebuilt by a job's start when a new snapshot has been
	 * published, never while a job runs (the job reads it).
	 */
	served_t *served; /* sorted by name */
	size_t nserved;
	uint64_t served_gen;
	db_t *db; /* the page's own read-only connection; touched by the job's thread */
	bool closing;
};

/* ---- HTML ---- */

static void esc(FILE *f, const char *s)
{
	for (; s && *s; s++) {
		switch (*s) {
		case '&':
			fputs("&amp;", f);
			break;
		case '<':
			fputs("&lt;", f);
			break;
		case '>':
			fputs("&gt;", f);
			break;
		case '"':
			fputs("&quot;", f);
			break;
		case '\'':
			fputs("&#39;", f);
			break;
		default:
			fputc(*s, f);
		}
	}
}

/* A state as a class name: "up", "down", or "other" for anything else stored. */
static const char *state_class(const char *state)
{
	if (state && strcmp(state, "up") == 0)
		return "up";
	if (state && strcmp(state, "down") == 0)
		return "down";
	if (state && strcmp(state, "unknown") == 0)
		return "unknown";
	return "other";
}

static const char page_head[] =
	"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<meta http-equiv=\"refresh\" content=\"30\">\n"
	"<title>gslbd status</title>\n<style>\n"
	"body{font:14px/1.4 system-ui,sans-serif;margin:1em 2em;color:#1f2328;background:#fff}\n"
	"h1{font-size:1.4em;margin:.2em 0}h2{font-size:1.1em;margin:1.4em 0 .3em}\n"
	".meta,.note{color:#57606a}.note{font-style:italic}\n"
	".cert{color:#9a6700;font-weight:600}\n"
	"table{border-collapse:collapse}\n"
	"th,td{text-align:left;padding:3px 8px;border-bottom:1px solid #d0d7de;"
	"white-space:nowrap;vertical-align:middle}\n"
	"th{font-weight:600;background:#f6f8fa}td.reason{white-space:normal;max-width:22em}\n"
	".st{display:inline-block;min-width:3.2em;padding:0 6px;border-radius:3px;"
	"color:#fff;font-weight:600;text-align:center;background:#6e7781}\n"
	".state-up .st{background:#1a7f37}.state-down .st{background:#a40e26}\n"
	".admin-drain .admin,.admin-down .admin,.admin-up .admin{font-weight:600;color:#9a6700}\n"
	".pool h2 .sv{font-size:.85em;font-weight:normal;margin-left:.6em;padding:0 6px;"
	"border-radius:3px;background:#dafbe1}\n"
	".pool.not-served h2 .sv{background:#ffebe9}\n"
	"svg{display:block;overflow:visible}.seg.up{fill:#2ca02c}.seg.down{fill:#d62728}"
	".seg.unknown,.seg.other{fill:#d0d7de}\n"
	".axis line{stroke:#57606a;stroke-width:1}.axis text{font-size:10px;fill:#57606a}\n"
	".legend span{display:inline-block;width:1em;height:.8em;margin:0 .3em 0 1em}\n"
	"</style>\n</head>\n<body>\n";

static int64_t hour_floor(int64_t t)
{
	return t - t % 3600;
}

static double tl_x(int64_t t, int64_t from)
{
	return (double)(t - from) * TL_WIDTH / STATUS_WINDOW_S;
}

/* The time axis: a tick every hour, labelled every third hour (UTC). */
static void axis(FILE *f, int64_t from)
{
	fprintf(f,
		"<svg class=\"axis\" width=\"%d\" height=\"18\" viewBox=\"0 0 %d 18\" "
		"role=\"img\" aria-label=\"time axis, UTC\">",
		TL_WIDTH, TL_WIDTH);
	for (int64_t h = hour_floor(from) + 3600; h < from + STATUS_WINDOW_S; h += 3600) {
		double x = tl_x(h, from);
		int hour = (int)((h / 3600) % 24);
		fprintf(f, "<line x1=\"%.1f\" y1=\"0\" x2=\"%.1f\" y2=\"%d\"/>", x, x,
			hour % 3 ? 3 : 6);
		if (hour % 3 == 0)
			fprintf(f,
				"<text x=\"%.1f\" y=\"16\" text-anchor=\"middle\">%02d:00</text>",
				x, hour);
	}
	fprintf(f, "</svg>");
}

static void hms(char *buf, size_t len, int64_t t)
{
	struct tm tm;
	time_t tt = (time_t)t;
	gmtime_r(&tt, &tm);
	strftime(buf, len, "%Y-%m-%d %H:%M:%S", &tm);
}

static void timeline(FILE *f, const cfg_status_timeline_t *t)
{
	char a[32], b[32];

	fprintf(f,
		"<svg class=\"tl\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" "
		"role=\"img\" aria-label=\"state over the last 24 hours\">",
		TL_WIDTH, TL_HEIGHT, TL_WIDTH, TL_HEIGHT);
	for (size_t i = 0; i < t->nsegs; i++) {
		const cfg_status_segment_t *g = &t->segs[i];
		double x0 = tl_x(g->from, t->from), x1 = tl_x(g->to, t->from);
		/* A stretch of a few seconds is still seen: at least half a pixel. */
		double w = x1 - x0 < 0.5 ? 0.5 : x1 - x0;
		hms(a, sizeof(a), g->from);
		hms(b, sizeof(b), g->to);
		fprintf(f,
			"<rect class=\"seg %s\" x=\"%.2f\" y=\"0\" width=\"%.2f\" height=\"%d\">",
			state_class(g->state), x0, w, TL_HEIGHT);
		fprintf(f, "<title>");
		esc(f, g->state);
		fprintf(f, " from %s to %s UTC", a, b + 11);
		if (g->reason) {
			fputs(": ", f);
			esc(f, g->reason);
		}
		fprintf(f, "</title></rect>");
	}
	fprintf(f, "</svg>");
	if (t->cut)
		fprintf(f, "<span class=\"note\">only the last %zu changes drawn</span>",
			t->nchanges);
}

static void td_time(FILE *f, const char *cls, int64_t t)
{
	char buf[32];
	fprintf(f, "<td class=\"%s\">%s</td>", cls, cfg_status_time(t, buf, sizeof(buf)));
}

static void addr_row(FILE *f, const db_member_t *m, const cfg_status_addr_t *a)
{
	fprintf(f, "<tr class=\"addr state-%s admin-%s\"><td class=\"member\">",
		state_class(a->state), db_admin_name(m->admin));
	esc(f, m->name);
	fprintf(f, "</td><td class=\"admin\">%s</td><td class=\"address\">",
		db_admin_name(m->admin));
	esc(f, a->address);
	fprintf(f, "</td><td class=\"state\"><span class=\"st\">");
	esc(f, a->state);
	fprintf(f, "</span></td>");
	td_time(f, "since", a->st.since);
	char cert[64];
	fprintf(f, "<td class=\"reason\">");
	esc(f, a->reason);
	if (cfg_status_cert_flag(a, time(NULL), cert, sizeof(cert)))
		fprintf(f, "<br><span class=\"cert\">certificate %s</span>", cert);
	fprintf(f, "</td>");
	td_time(f, "probe", a->st.last_probe);
	fprintf(f, "<td class=\"latency\">");
	if (a->st.latency_ms >= 0)
		fprintf(f, "%.1f ms", a->st.latency_ms);
	fprintf(f, "</td><td class=\"timeline\">");
	if (a->timeline)
		timeline(f, a->timeline);
	else if (!a->shown)
		fprintf(f, "<span class=\"note\">no health check</span>");
	else
		fprintf(f,
			"<span class=\"note\">not drawn: the page's limit of %d changes was "
			"reached</span>",
			STATUS_CHANGES_MAX);
	fprintf(f, "</td></tr>\n");
}

/*
 * An alias member's host name (README "Alias members"), the addresses it
 * last resolved to and when they expire, from alias_state; health rows of
 * those addresses are the targets', shown as any address's.
 */
static void alias_row(FILE *f, const db_member_t *m, const db_aliases_t *aliases)
{
	/* Sorted by name (db_alias_state_load()). */
	const db_alias_state_t *s = NULL;
	size_t lo = 0, hi = aliases ? aliases->n : 0;
	while (lo < hi && !s) {
		size_t mid = (lo + hi) / 2;
		int c = strcmp(aliases->v[mid].name, m->alias);
		if (c == 0)
			s = &aliases->v[mid];
		else if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	bool good = s && !s->never_resolved;
	fprintf(f, "<tr class=\"alias admin-%s\"><td class=\"member\">", db_admin_name(m->admin));
	esc(f, m->name);
	fprintf(f, "</td><td class=\"admin\">%s</td><td class=\"address\" colspan=\"7\">alias ",
		db_admin_name(m->admin));
	esc(f, m->alias);
	fprintf(f, ": ");
	for (uint32_t i = 0; good && i < s->naddresses; i++) {
		fprintf(f, "%s", i ? ", " : "");
		esc(f, s->addresses[i]);
	}
	char buf[32];
	if (!good)
		fprintf(f, "<span class=\"note\">never resolved: no address</span>");
	else if (!s->naddresses)
		fprintf(f, "<span class=\"note\">no A or AAAA record</span>");
	if (good)
		fprintf(f, " <span class=\"meta\">(resolved %s, ",
			cfg_status_time(s->resolved, buf, sizeof(buf)));
	if (good)
		fprintf(f, "expires %s)</span>", cfg_status_time(s->expires, buf, sizeof(buf)));
	if (s && s->failures) {
		fprintf(f, "<br><span class=\"reason\">%u failed resolutions: ", s->failures);
		esc(f, s->error ? s->error : "");
		fprintf(f, "</span>");
	}
	fprintf(f, "</td></tr>\n");
}

/*
 * Load the timelines of one pool's addresses while the page's budget of
 * changes lasts; *budget goes down by what was read.
 */
static int pool_timelines(db_t *db, cfg_status_pool_t *sp, int64_t from, int64_t to, size_t *budget)
{
	for (size_t k = 0; k < sp->p->nmembers; k++) {
		cfg_status_member_t *sm = &sp->members[k];
		for (size_t j = 0; j < sm->m->naddresses; j++) {
			cfg_status_addr_t *a = &sm->addrs[j];
			if (!a->shown || *budget == 0)
				continue;
			unsigned max = *budget < STATUS_TARGET_CHANGES_MAX
					       ? (unsigned)*budget
					       : STATUS_TARGET_CHANGES_MAX;
			int ret = cfg_status_timeline_load(db, a, from, to, max);
			if (ret)
				return ret;
			size_t used = a->timeline ? a->timeline->nchanges : 0;
			*budget -= used < *budget ? used : *budget;
		}
	}
	return 0;
}

static size_t pool_rows(const cfg_status_pool_t *sp)
{
	size_t n = 0;
	for (size_t k = 0; k < sp->p->nmembers; k++)
		n += sp->members[k].m->naddresses;
	return n;
}

static int html(db_t *db, status_job_t *j, cfg_status_t *st, const db_aliases_t *aliases, FILE *f)
{
	int64_t to = j->now + 1, from = to - STATUS_WINDOW_S;
	size_t budget = STATUS_CHANGES_MAX, rows = 0, up = 0, down = 0, served = 0;
	char now[32];
	int ret;

	for (size_t i = 0; i < st->npools; i++) {
		const cfg_status_pool_t *sp = &st->pools[i];
		served += sp->serving == LB_SERVING_YES;
		for (size_t k = 0; k < sp->p->nmembers; k++)
			for (size_t a = 0; a < sp->members[k].m->naddresses; a++) {
				const char *s = sp->members[k].addrs[a].state;
				up += strcmp(s, "up") == 0;
				down += strcmp(s, "down") == 0;
			}
	}
	fputs(page_head, f);
	fprintf(f,
		"<h1>gslbd status</h1>\n<p class=\"meta\">%s, gslbd %s. %zu pools (%zu served), "
		"%zu addresses up, %zu down. Zones: ",
		cfg_status_time(j->now, now, sizeof(now)), PACKAGE_VERSION, st->npools, served, up,
		down);
	esc(f, st->zones);
	fprintf(f,
		"%s. Timelines: the last 24 hours, UTC.<span class=\"legend\">"
		"<span class=\"seg-key\" style=\"background:#2ca02c\"></span>up"
		"<span class=\"seg-key\" style=\"background:#d62728\"></span>down"
		"<span class=\"seg-key\" style=\"background:#d0d7de\"></span>unknown</span></p>\n",
		st->zones_readable ? "" : " (not loaded: served is unknown)");
	if (st->npools == 0)
		fprintf(f, "<p class=\"note\">No pools are configured.</p>\n");
	size_t i;
	for (i = 0; i < st->npools; i++) {
		cfg_status_pool_t *sp = &st->pools[i];
		size_t n = pool_rows(sp);
		if (rows && rows + n > STATUS_ROWS_MAX)
			break;
		rows += n;
		ret = pool_timelines(db, sp, from, to, &budget);
		if (ret)
			return ret;
		fprintf(f, "<section class=\"pool %s\" id=\"pool-",
			sp->serving == LB_SERVING_YES ? "served" : "not-served");
		esc(f, sp->p->name);
		fprintf(f, "\">\n<h2>pool <span class=\"name\">");
		esc(f, sp->p->name);
		fprintf(f,
			"</span> <span class=\"policy\">%s</span><span "
			"class=\"sv\">%s%s</span></h2>\n",
			db_policy_name(sp->p->policy),
			sp->serving == LB_SERVING_YES ? "" : "not served: ",
			cfg_status_serving_name(sp->serving));
		if (!sp->p->nmembers) {
			fprintf(f, "<p class=\"note\">No members.</p>\n</section>\n");
			continue;
		}
		fprintf(f, "<table>\n<thead><tr><th>member</th><th>admin</th><th>address</th>"
			   "<th>state</th><th>since</th><th>reason</th><th>last probe</th>"
			   "<th>latency</th><th>");
		axis(f, from);
		fprintf(f, "</th></tr></thead>\n<tbody>\n");
		for (size_t k = 0; k < sp->p->nmembers; k++) {
			const cfg_status_member_t *sm = &sp->members[k];
			for (size_t a = 0; a < sm->m->naddresses; a++)
				addr_row(f, sm->m, &sm->addrs[a]);
			if (sm->m->alias)
				alias_row(f, sm->m, aliases);
		}
		fprintf(f, "</tbody>\n</table>\n</section>\n");
	}
	if (i < st->npools)
		fprintf(f,
			"<p class=\"note\">%zu more pools are not shown: a page shows at most %d "
			"addresses. Ask for one pool with /?pool=NAME, or for all of them without "
			"timelines with /status.json.</p>\n",
			st->npools - i, STATUS_ROWS_MAX);
	fprintf(f, "</body>\n</html>\n");
	return 0;
}

/* ---- the job ---- */

static int served_cmp(const void *a, const void *b)
{
	return strcmp(((const served_t *)a)->name, ((const served_t *)b)->name);
}

static int job_serving(void *arg, const char *pool)
{
	status_job_t *j = arg;
	served_t key = { .name = (char *)pool };
	if (!j->zones_readable)
		return CFG_STATUS_UNKNOWN;
	const served_t *s = bsearch(&key, j->served, j->nserved, sizeof(key), served_cmp);
	/* A pool added since the control loop last read the database: not yet known. */
	return s ? s->serving : CFG_STATUS_UNKNOWN;
}

/* The page's connection, opened once and moved to a file that replaced the one it has open. */
static int conn(server_status_t *s)
{
	if (!s->db)
		return db_open(s->src.conf->db_path, DB_OPEN_READONLY, &s->db);
	if (db_file_check(s->db, NULL) == DB_FILE_REPLACED)
		return db_reopen(&s->db, DB_OPEN_READONLY);
	return 0;
}

static void job_fail(status_job_t *j, int status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void job_fail(status_job_t *j, int status, const char *fmt, ...)
{
	char buf[512];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	j->status = status;
	j->body = gslb_malloc((size_t)n);
	memcpy(j->body, buf, (size_t)n);
	j->len = (size_t)n;
}

static void job_work(uv_work_t *w)
{
	status_job_t *j = w->data;
	server_status_t *s = j->s;
	db_config_t *cfg = NULL;
	db_aliases_t aliases = { 0 };
	cfg_status_t *st = NULL;
	char *buf = NULL;
	size_t len = 0;
	FILE *f = NULL;
	int ret;

	ret = conn(s);
	if (ret) {
		job_fail(j, 503, "status: cannot open database %s: %s", s->src.conf->db_path,
			 gslb_strerror(ret));
		return;
	}
	/* One read transaction: the configuration and the health it is shown with agree. */
	ret = db_begin_read(s->db);
	if (!ret)
		ret = db_config_load(s->db, &cfg);
	if (ret)
		goto dbfail;
	const char *pool = j->q.pool[0] ? j->q.pool : NULL;
	if (pool && !db_config_pool(cfg, pool)) {
		job_fail(j, 404, "no pool %s", pool);
		goto out;
	}
	ret = cfg_status_load(s->db, cfg, pool, job_serving, j, s->src.conf->zones_dir,
			      j->zones_readable, &st);
	if (ret)
		goto dbfail;
	f = open_memstream(&buf, &len);
	if (!f) {
		job_fail(j, 500, "status: out of memory");
		goto out;
	}
	if (j->q.form == SERVER_STATUS_JSON) {
		if (j->q.timeline) {
			size_t budget = STATUS_CHANGES_MAX;
			for (size_t i = 0; i < st->npools && !ret; i++)
				ret = pool_timelines(s->db, &st->pools[i],
						     j->now + 1 - STATUS_WINDOW_S, j->now + 1,
						     &budget);
			if (ret)
				goto dbfail;
		}
		jw_t jw;
		jw_init(&jw, f);
		cfg_status_json(&jw, st);
		jw_end(&jw);
	} else {
		/* What gslbd resolved for alias members, in the same read transaction. */
		ret = db_alias_state_load(s->db, &aliases);
		if (!ret)
			ret = html(s->db, j, st, &aliases, f);
		if (ret)
			goto dbfail;
	}
	if (fclose(f) != 0) {
		f = NULL;
		job_fail(j, 500, "status: out of memory");
		goto out;
	}
	f = NULL;
	j->status = 200;
	j->body = buf;
	j->len = len;
	buf = NULL;
	goto out;
dbfail:
	job_fail(j, 503, "status: cannot read database %s: %s", s->src.conf->db_path,
		 gslb_strerror(ret));
out:
	if (f)
		fclose(f);
	free(buf);
	cfg_status_free(st);
	db_aliases_clear(&aliases);
	db_config_free(cfg);
	db_rollback(s->db);
}

static void served_clear(server_status_t *s)
{
	for (size_t i = 0; i < s->nserved; i++)
		free(s->served[i].name);
	free(s->served);
	s->served = NULL;
	s->nserved = 0;
	s->served_gen = 0;
}

static void status_free(server_status_t *s)
{
	served_clear(s);
	db_close(s->db);
	free(s);
}

static void job_free(status_job_t *j)
{
	free(j->body);
	free(j);
}

static void kick(server_status_t *s);

static void job_done(uv_work_t *w, int status)
{
	status_job_t *j = w->data;
	server_status_t *s = j->s;
	server_status_req_t *r = j->req;

	s->job = NULL;
	if (status == UV_ECANCELED && !j->body)
		job_fail(j, 503, "status: gslbd is stopping");
	if (r) {
		r->job = NULL;
		char *body = j->body;
		j->body = NULL;
		r->cb(r, j->status, body, j->len);
	}
	job_free(j);
	if (s->closing) {
		status_free(s);
		return;
	}
	kick(s);
}

/*
 * Whether each pool of the configuration the control loop last read is
 * served by the zones of the snapshot it last published: what the DNS
 * workers answer from.  Control thread, no job running.  Built again only
 * for a new snapshot (every change of the pools or zones publishes one),
 * so a page costs the loop a look at the generation, not a pass over
 * every pool.
 */
static void served_update(server_status_t *s, status_job_t *j)
{
	const db_config_t *cfg = *s->src.cfg;
	const gslb_snapshot_t *cur = *s->src.cur;
	uint8_t wire[DNS_NAME_MAX + 1], lname[DNS_NAME_MAX + 1];

	j->zones_readable = cur != NULL;
	if (!cfg || !cur) {
		served_clear(s);
		return;
	}
	j->served = s->served;
	j->nserved = s->nserved;
	if (s->served && s->served_gen == cur->data.generation)
		return;
	served_clear(s);
	s->served_gen = cur->data.generation;
	s->served = gslb_calloc(cfg->npools ? cfg->npools : 1, sizeof(*s->served));
	for (size_t i = 0; i < cfg->npools; i++) {
		const char *name = cfg->pools[i].name;
		served_t *e = &s->served[s->nserved++];
		e->name = gslb_strdup(name);
		if (dns_name_from_str(wire, name) < 0) {
			e->serving = CFG_STATUS_NOT_A_NAME;
			continue;
		}
		size_t len = dns_name_lower(lname, wire);
		e->serving = lb_pool_serving(cur->data.zones, lname, len, NULL);
	}
	/* cfg's pools are sorted by name already (db_config_load()); strcmp's order is sure. */
	gslb_sort(s->served, s->nserved, sizeof(*s->served), served_cmp);
	j->served = s->served;
	j->nserved = s->nserved;
}

static void kick(server_status_t *s)
{
	server_status_req_t *r = TAILQ_FIRST(&s->queue);
	if (s->job || !r || s->closing)
		return;
	TAILQ_REMOVE(&s->queue, r, link);
	r->queued = false;
	status_job_t *j = gslb_calloc(1, sizeof(*j));
	j->s = s;
	j->req = r;
	j->q = *r;
	/* The window ends after the current second: a change stored in it is drawn. */
	j->now = (int64_t)time(NULL);
	served_update(s, j);
	j->work.data = j;
	int ret = uv_queue_work(s->loop, &j->work, job_work, job_done);
	if (ret < 0) {
		job_free(j);
		char *msg = gslb_strdup("status: cannot start a job\n");
		r->cb(r, 503, msg, strlen(msg));
		kick(s);
		return;
	}
	r->job = j;
	s->job = j;
}

server_status_t *server_status_new(uv_loop_t *loop, const status_src_t *src)
{
	server_status_t *s = gslb_calloc(1, sizeof(*s));
	s->loop = loop;
	s->src = *src;
	TAILQ_INIT(&s->queue);
	return s;
}

void server_status_request(server_status_t *s, server_status_req_t *r)
{
	r->job = NULL;
	r->queued = true;
	TAILQ_INSERT_TAIL(&s->queue, r, link);
	kick(s);
}

void server_status_cancel(server_status_t *s, server_status_req_t *r)
{
	if (r->queued) {
		TAILQ_REMOVE(&s->queue, r, link);
		r->queued = false;
	}
	if (r->job) {
		/* Running: its result is dropped when it comes. */
		r->job->req = NULL;
		r->job = NULL;
	}
}

void server_status_close(server_status_t *s)
{
	if (!s)
		return;
	while (!TAILQ_EMPTY(&s->queue))
		server_status_cancel(s, TAILQ_FIRST(&s->queue));
	if (s->job) {
		s->closing = true;
		/* Not started yet: job_done() comes at once with UV_ECANCELED. */
		uv_cancel((uv_req_t *)&s->job->work);
		return;
	}
	status_free(s);
}
