/* SPDX-License-Identifier: MIT */
/* The zone directory watch: says when a change is complete, so a reload never reads half a file. */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if defined(__linux__) && !defined(GSLB_NO_INOTIFY)
#define WATCH_INOTIFY 1
#include <sys/inotify.h>
#endif

#include "gslb/core.h"
#include "gslb/zone.h"
#include "internal.h"

/*
 * A file being written is complete when its writer closes it (inotify's
 * IN_CLOSE_WRITE) or renames it into place (IN_MOVED_TO).  `cat > file`
 * or an editor saving in place truncates the file and writes it in pieces:
 * reading it in between would serve the first half, and every name after
 * the cut would get an authoritative NXDOMAIN that resolvers cache.  So the
 * reload waits until no file of the directory is open for writing, then
 * RELOAD_DEBOUNCE_MS more, so that the writes of one save (temporary file,
 * rename, chmod) make one reload.
 *
 * The fallback, for a writer that never closes its file (and on systems
 * without inotify, where every change looks like one): a file whose size
 * and mtime have not changed for SETTLE_MS is taken as complete.
 */
#define RELOAD_DEBOUNCE_MS 200
#define SETTLE_MS 10000
/* How often files still open for writing are looked at again. */
#define SETTLE_POLL_MS 500

/* A file of the directory written to and not closed yet. */
struct watch_file {
	char *name; /* owned */
	off_t size; /* when last looked at */
	struct timespec mtime;
	uint64_t changed_ms; /* when last seen changing */
};

/*
 * Touched by the control loop only.  The handles are embedded; the struct
 * is freed when the last of them has closed (server_watch_close()).
 */
struct server_watch {
	char *dir; /* owned */
	server_watch_cb cb;
	void *arg;
	uv_timer_t timer; /* the debounce, then the look at files still open */
#ifdef WATCH_INOTIFY
	uv_poll_t poll;
	int fd;	   /* the inotify instance, owned */
	bool lost; /* the directory went away: say so once */
#else
	uv_fs_event_t event;
#endif
	struct watch_file *files; /* being written */
	size_t nfiles, cap;
	bool dirty; /* something changed since the last reload */
	bool wrote; /* a write was seen since server_watch_settled() */
	unsigned open_handles;
};

static struct watch_file *file_find(server_watch_t *w, const char *name)
{
	for (size_t i = 0; i < w->nfiles; i++)
		if (strcmp(w->files[i].name, name) == 0)
			return &w->files[i];
	return NULL;
}

static void file_drop(server_watch_t *w, struct watch_file *f)
{
	free(f->name);
	*f = w->files[--w->nfiles];
}

/* name is being written: hold reloads until it is closed or settles. */
static void file_writing(server_watch_t *w, const char *name)
{
	struct watch_file *f = file_find(w, name);
	if (!f) {
		if (w->nfiles == w->cap) {
			w->cap = w->cap ? w->cap * 2 : 8;
			w->files = gslb_realloc(w->files, w->cap * sizeof(*w->files));
		}
		f = &w->files[w->nfiles++];
		memset(f, 0, sizeof(*f));
		f->name = gslb_strdup(name);
		f->size = -1;
		log_debug("zone file %s/%s is being written: reloads wait until it is complete",
			  w->dir, name);
	}
	f->changed_ms = gslb_mono_ms();
	w->wrote = true;
}

static void timer_cb(uv_timer_t *t);

/* Something changed: a reload once things settle. */
static void changed(server_watch_t *w)
{
	w->dirty = true;
	uv_timer_start(&w->timer, timer_cb, RELOAD_DEBOUNCE_MS, 0);
}

/*
 * Files still open for writing: one whose size or mtime moved is still
 * being written; one unchanged for SETTLE_MS is taken as complete.
 * Returns whether any is still being written.
 */
static bool files_settle(server_watch_t *w)
{
	uint64_t now = gslb_mono_ms();
	char path[4096];

	for (size_t i = 0; i < w->nfiles;) {
		struct watch_file *f = &w->files[i];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", w->dir, f->name);
		if (stat(path, &st) < 0) {
			file_drop(w, f); /* gone: its removal is a change of its own */
			continue;
		}
		if (st.st_size != f->size || st.st_mtim.tv_sec != f->mtime.tv_sec ||
		    st.st_mtim.tv_nsec != f->mtime.tv_nsec) {
			f->size = st.st_size;
			f->mtime = st.st_mtim;
			f->changed_ms = now;
		} else if (now - f->changed_ms >= SETTLE_MS) {
#ifdef WATCH_INOTIFY
			log_info("zone file %s: unchanged for %d s though still open for writing; "
				 "loading it",
				 path, SETTLE_MS / 1000);
#endif
			file_drop(w, f);
			w->dirty = true;
			continue;
		}
		i++;
	}
	return w->nfiles > 0;
}

static void timer_cb(uv_timer_t *t)
{
	server_watch_t *w = t->data;
	if (files_settle(w)) {
		uv_timer_start(&w->timer, timer_cb, SETTLE_POLL_MS, 0);
		return;
	}
	if (!w->dirty)
		return;
	w->dirty = false;
	w->cb(w->arg);
}

#ifdef WATCH_INOTIFY

#define WATCH_MASK                                                                          \
	(IN_CREATE | IN_MODIFY | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE | \
	 IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR | IN_EXCL_UNLINK)

/* name is complete (closed, renamed, deleted). */
static void file_done(server_watch_t *w, const char *name)
{
	struct watch_file *f = file_find(w, name);
	if (f)
		file_drop(w, f);
}

/* A new name: a file created to be written, or something complete (a link, a directory). */
static bool created_for_writing(server_watch_t *w, const char *name)
{
	char path[4096];
	struct stat st;
	snprintf(path, sizeof(path), "%s/%s", w->dir, name);
	return lstat(path, &st) == 0 && S_ISREG(st.st_mode) && st.st_nlink == 1;
}

static void event_handle(server_watch_t *w, const struct inotify_event *ev)
{
	if (ev->mask & IN_Q_OVERFLOW) {
		log_warn("zone directory %s: too many changes at once; reloading everything",
			 w->dir);
		changed(w);
		return;
	}
	if (ev->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED)) {
		if (!w->lost)
			log_warn("zone directory %s was removed or moved: changes in it are no "
				 "longer seen; reload with SIGHUP",
				 w->dir);
		w->lost = true;
		return;
	}
	if (!ev->len || zone_file_ignored(ev->name))
		return;
	if (ev->mask & IN_MODIFY || (ev->mask & IN_CREATE && created_for_writing(w, ev->name))) {
		file_writing(w, ev->name); /* logs the first write of a file: each is an event */
	} else {
		if (ev->mask & (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_DELETE))
			file_done(w, ev->name);
		log_debug("zone directory: %s changed (inotify 0x%x)", ev->name, ev->mask);
	}
	changed(w);
}

/* Read every event queued.  Never blocks: the descriptor is nonblocking. */
static void events_read(server_watch_t *w)
{
	char buf[8192] __attribute__((aligned(__alignof__(struct inotify_event))));
	for (;;) {
		ssize_t n = read(w->fd, buf, sizeof(buf));
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return;
		for (char *p = buf; p < buf + n;) {
			const struct inotify_event *ev = (const struct inotify_event *)p;
			event_handle(w, ev);
			p += sizeof(*ev) + ev->len;
		}
	}
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
	server_watch_t *w = h->data;
	(void)events;
	if (status < 0) {
		log_warn("watching zone directory %s: %s", w->dir, gslb_strerror(status));
		return;
	}
	events_read(w);
}

static int backend_start(server_watch_t *w, uv_loop_t *loop)
{
	w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (w->fd < 0)
		return -errno;
	if (inotify_add_watch(w->fd, w->dir, WATCH_MASK) < 0) {
		int ret = -errno;
		close(w->fd);
		w->fd = -1;
		return ret;
	}
	int ret = uv_poll_init(loop, &w->poll, w->fd);
	if (ret < 0) {
		close(w->fd);
		w->fd = -1;
		return ret;
	}
	w->poll.data = w;
	w->open_handles++;
	return uv_poll_start(&w->poll, UV_READABLE, poll_cb);
}

#else /* no inotify: libuv's watch says only that something changed */

static void event_cb(uv_fs_event_t *h, const char *name, int events, int status)
{
	server_watch_t *w = h->data;
	(void)events;
	if (status < 0) {
		log_warn("watching zone directory %s: %s", w->dir, gslb_strerror(status));
		return;
	}
	if (name && zone_file_ignored(name))
		return;
	if (name)
		file_writing(w, name);
	log_debug("zone directory: %s changed", name ? name : "a file");
	changed(w);
}

static int backend_start(server_watch_t *w, uv_loop_t *loop)
{
	int ret = uv_fs_event_init(loop, &w->event);
	if (ret < 0)
		return ret;
	w->event.data = w;
	w->open_handles++;
	return uv_fs_event_start(&w->event, event_cb, w->dir, 0);
}

#endif

static void handle_closed_cb(uv_handle_t *h)
{
	server_watch_t *w = h->data;
	if (--w->open_handles > 0)
		return;
#ifdef WATCH_INOTIFY
	if (w->fd >= 0)
		close(w->fd);
#endif
	for (size_t i = 0; i < w->nfiles; i++)
		free(w->files[i].name);
	free(w->files);
	free(w->dir);
	free(w);
}

int server_watch_start(uv_loop_t *loop, const char *dir, server_watch_cb cb, void *arg,
		       server_watch_t **out)
{
	server_watch_t *w = gslb_calloc(1, sizeof(*w));
	w->dir = gslb_strdup(dir);
	w->cb = cb;
	w->arg = arg;
#ifdef WATCH_INOTIFY
	w->fd = -1;
#endif
	uv_timer_init(loop, &w->timer);
	w->timer.data = w;
	w->open_handles = 1;
	int ret = backend_start(w, loop);
	if (ret < 0) {
		server_watch_close(w);
		*out = NULL;
		return ret;
	}
	*out = w;
	return 0;
}

bool server_watch_settled(server_watch_t *w)
{
	if (!w)
		return true;
#ifdef WATCH_INOTIFY
	/* The events of what happened while the files were read are queued: read them now. */
	w->wrote = false;
	events_read(w);
	return !w->wrote && w->nfiles == 0;
#else
	/* libuv delivers them later: a write seen then is waited for, and loaded again. */
	return true;
#endif
}

void server_watch_reloaded(server_watch_t *w)
{
	if (!w)
		return;
	w->dirty = false;
	if (w->nfiles == 0)
		uv_timer_stop(&w->timer);
}

void server_watch_close(server_watch_t *w)
{
	if (!w)
		return;
	uv_close((uv_handle_t *)&w->timer, handle_closed_cb);
	/* The backend's handle, if it got as far as being initialised. */
#ifdef WATCH_INOTIFY
	if (w->poll.data == w)
		uv_close((uv_handle_t *)&w->poll, handle_closed_cb);
#else
	if (w->event.data == w)
		uv_close((uv_handle_t *)&w->event, handle_closed_cb);
#endif
}
