/* SPDX-License-Identifier: MIT */
/* gslbctl apply: read a configuration file (export's JSON, src/cfg/read.c), make the database match. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/health.h"
#include "gslbctl.h"

/* ---- making the database match ---- */

/*
 * apply's ctl_edit_cb argument: the file's configuration, and what making
 * the database match it has come to.  A dry run writes nothing at all (not
 * even to roll it back), so that it shows the changes whatever the database
 * would say of them.
 */
typedef struct plan {
	ctl_t *c;
	db_config_t *want; /* owned */
	bool prune;
	bool admin;  /* --admin: members' admin states as the file says, not as they are */
	FILE *out;   /* the change lines, printed and handed to ctl_change_run() */
	char *lines; /* what the last run of the edit wrote to out, printed once it is done */
	int changes;
	int err; /* first database error */
} plan_t;

#define DO(pl, call)                                 \
	do {                                         \
		if (!(pl)->c->dry_run && !(pl)->err) \
			(pl)->err = (call);          \
	} while (0)

static void sync_check(plan_t *pl, const char *pool, const char *member, const db_check_t *cur,
		       const db_check_t *want)
{
	char what[400];
	if (!want && !pl->prune)
		return;
	snprintf(what, sizeof(what), member ? "%s/%s" : "%s", pool, member);
	int n = diff_check(pl->out, what, cur, want);
	if (!n)
		return;
	pl->changes += n;
	if (want)
		DO(pl, db_check_put(pl->c->db, pool, member, want));
	else
		DO(pl, db_check_delete(pl->c->db, pool, member));
}

static void sync_pool(plan_t *pl, const db_pool_t *cur, const db_pool_t *want)
{
	if (!cur) {
		fprintf(pl->out, "+ pool %s\n", want->name);
		pl->changes++;
		DO(pl, db_pool_insert(pl->c->db, want));
	} else {
		int n = diff_pool(pl->out, cur, want);
		pl->changes += n;
		if (n)
			DO(pl, db_pool_update(pl->c->db, want));
	}
	/* Removals first, so a file that swaps names around never meets a unique constraint. */
	for (size_t i = 0; cur && pl->prune && i < cur->nmembers; i++)
		if (!db_pool_member(want, cur->members[i].name)) {
			fprintf(pl->out, "- member %s/%s\n", want->name, cur->members[i].name);
			pl->changes++;
			DO(pl, db_member_delete(pl->c->db, want->name, cur->members[i].name));
		}
	for (size_t i = 0; i < want->nmembers; i++) {
		const db_member_t *wm = &want->members[i];
		const db_member_t *cm = cur ? db_pool_member(cur, wm->name) : NULL;
		if (!cm) {
			diff_member_added(pl->out, want->name, wm);
			pl->changes++;
			DO(pl, db_member_insert(pl->c->db, want->name, wm));
		} else {
			/*
			 * An admin state is an operation (a drain for maintenance), not configuration:
			 * applying the configuration kept in a repository must not undo it.
			 */
			db_member_t m = *wm;
			if (!pl->admin)
				m.admin = cm->admin;
			int n = diff_member(pl->out, want->name, cm, &m);
			pl->changes += n;
			if (n)
				DO(pl, db_member_update(pl->c->db, want->name, &m));
		}
		sync_check(pl, want->name, wm->name, cm ? cm->check : NULL, wm->check);
	}
	sync_check(pl, want->name, NULL, cur ? cur->check : NULL, want->check);
}

/*
 * Delete what the file lacks (with --prune), then add and update what it has; keep the lines.
 * On a cluster node the edit runs again when another writer changed the same pools first, so
 * each run starts anew and cmd_apply() prints the lines of the last one.
 */
static int apply_edit(ctl_t *c, const db_config_t *cur, void *arg, FILE *sum)
{
	plan_t *pl = arg;
	const db_config_t *want = pl->want;
	size_t len;

	pl->changes = 0;
	pl->err = 0;
	free(pl->lines);
	/*
	 * The lines go to a text of their own first: apply prints them as well
	 * as handing them over, and sum is a stream that cannot be read back.
	 */
	pl->out = cfg_mem_open(&pl->lines, &len);
	for (size_t i = 0; pl->prune && i < cur->npools; i++)
		if (!db_config_pool(want, cur->pools[i].name)) {
			fprintf(pl->out, "- pool %s\n", cur->pools[i].name);
			pl->changes++;
			DO(pl, db_pool_delete(c->db, cur->pools[i].name));
		}
	for (size_t i = 0; i < want->npools; i++)
		sync_pool(pl, db_config_pool(cur, want->pools[i].name), &want->pools[i]);
	cfg_mem_close(pl->out);
	pl->out = NULL;
	fputs(pl->lines, sum);
	return pl->err;
}

static const ctl_optdef_t apply_opts[] = {
	{ "--dry-run", false, false },
	{ "--prune", false, false },
	{ "--admin", false, false },
	{ NULL, false, false },
};

static char *read_file(const char *path, size_t *len, int *err)
{
	FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
	char *buf = NULL;
	size_t cap = 0, n = 0;

	if (!f) {
		*err = errno;
		return NULL;
	}
	for (;;) {
		if (n + 65536 > cap) {
			cap = cap ? cap * 2 : 65536;
			buf = gslb_realloc(buf, cap + 1);
		}
		size_t got = fread(buf + n, 1, cap - n, f);
		n += got;
		if (got == 0 || n > JSON_INPUT_MAX)
			break;
	}
	*err = ferror(f) ? EIO : 0;
	if (f != stdin)
		fclose(f);
	if (*err) {
		free(buf);
		return NULL;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

int cmd_apply(ctl_t *c, int argc, char **argv)
{
	ctl_args_t a;
	plan_t pl = { .c = c };
	char *buf, err[CFG_ERR_MAX];
	size_t len = 0;
	int ret, e;

	PARSE_ARGS(c, argc, argv, apply_opts, &a);
	if (a.npos != 1)
		return ctl_invalid(c, a.npos ? "%s: unexpected argument" : "missing FILE",
				   a.npos ? a.pos[1] : "");
	pl.prune = ctl_flag(&a, "--prune");
	pl.admin = ctl_flag(&a, "--admin");
	c->dry_run = ctl_flag(&a, "--dry-run");
	c->own_output = true; /* its lines, printed once the change is done (cmd_apply) */
	if (!(buf = read_file(a.pos[0], &len, &e)))
		return ctl_fail(c, "%s: %s", a.pos[0], strerror(e));
	/* A file that is no JSON is named; a value refused is named by its path in the file. */
	ret = cfg_config_from_json(buf, len, &pl.want, err, sizeof(err));
	if (ret == GSLB_EPARSE)
		ret = ctl_invalid(c, "%s: %s", a.pos[0], err);
	else if (ret)
		ret = ctl_invalid(c, "%s", err);
	else
		ret = ctl_change_run(c, apply_edit, &pl);
	if (ret == CTL_OK && pl.changes && (!c->quiet || c->dry_run)) {
		fputs(pl.lines, stdout);
		if (c->dry_run)
			printf("dry run: %d change%s not written\n", pl.changes,
			       pl.changes == 1 ? "" : "s");
	}
	if (ret == CTL_OK && pl.want->npools) {
		const char **names = gslb_calloc(pl.want->npools, sizeof(*names));
		for (size_t i = 0; i < pl.want->npools; i++)
			names[i] = pl.want->pools[i].name;
		ctl_warn_unserved(c, names, pl.want->npools);
		free(names);
	}
	free(pl.lines);
	db_config_free(pl.want);
	free(buf);
	return ret;
}
