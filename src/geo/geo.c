/* SPDX-License-Identifier: MIT */
/*
 * The libmaxminddb wrapper: opening a MaxMind DB, allocation-free lookups, great-circle distance.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <maxminddb.h>

#include "gslb/core.h"
#include "gslb/geo.h"
#include "internal.h"

/*
 * The database as a lookup reads it, prepared by flatten() when the file is
 * opened.  libmaxminddb's own lookup is a walk down the search tree, which is
 * cheap, followed by decoding the record the walk ends on: a few map and
 * array searches costing about 11,000 instructions per address, five times
 * the rest of a geo answer.  Records are shared by many networks (a City
 * database has a few records per city and many networks per record), so each
 * distinct record is decoded once, here, into the geo_info_t a lookup
 * returns, and a lookup only walks the tree and finds the record's entry by
 * its value in the tree, in a hash table.  The walk starts from a table of
 * where the first STRIDE_BITS bits of an address lead, which skips the
 * busiest half of a walk.  Nothing here changes after geo_db_open().
 */
#define STRIDE_BITS 16
#define REC_CORRUPT UINT32_MAX /* a record libmaxminddb cannot decode */

struct geo_stride {
	uint32_t value; /* the record the walk reached ... */
	uint32_t bit;	/* ... after this many bits of the address (the netmask so far) */
};

struct geo_rec_slot {
	uint32_t value; /* a data record as the tree holds it (> node_count); 0: free */
	uint32_t index; /* into recs, or REC_CORRUPT */
};

struct geo_flat {
	const uint8_t *tree; /* the search tree: node_count nodes of record_bytes */
	uint32_t node_count;
	uint64_t data_limit;   /* node_count + data section size: records from here are corrupt */
	unsigned record_bytes; /* per node: 6, 7 or 8 (two records of 24, 28 or 32 bits) */
	unsigned depth;	       /* 32 or 128 */
	/*
	 * Where the walk of an IPv4 (0) and an IPv6 (1) address has got to
	 * after the first STRIDE_BITS bits from stride_bit (96 for IPv4 in an
	 * IPv6 database, which lives in ::/96; else 0).  stride[1] is NULL in
	 * an IPv4 database.
	 */
	struct geo_stride *stride[2];
	unsigned stride_bit[2];
	struct geo_rec_slot *slot; /* open addressing, linear probing */
	uint32_t slot_mask;
	unsigned slot_shift; /* 32 - log2(slots) */
	uint32_t nrecs;
	geo_info_t *recs; /* each distinct record, decoded: found, prefix_len 0 */
	size_t bytes;	  /* what the above allocated */
};

/*
 * Immutable after geo_db_open(): libmaxminddb only reads an MMDB_s once
 * MMDB_open() has found the IPv4 start node, so lookups from many threads
 * need no lock.
 */
struct geo_db {
	MMDB_s mmdb;
	char *path; /* owned */
	struct geo_flat flat;
};

/*
 * Lookup paths as static arrays for MMDB_aget_value().  MMDB_get_value()
 * would be simpler to call, but its varargs front end calloc()s a copy of
 * the path on every call (libmaxminddb 1.7.1, MMDB_vget_value), and the
 * query path must not allocate.
 */
static const char *const path_country[] = { "country", "iso_code", NULL };
static const char *const path_registered[] = { "registered_country", "iso_code", NULL };
static const char *const path_continent[] = { "continent", "code", NULL };
static const char *const path_subdivision[] = { "subdivisions", "0", "iso_code", NULL };
static const char *const path_latitude[] = { "location", "latitude", NULL };
static const char *const path_longitude[] = { "location", "longitude", NULL };

/* MMDB status codes to ours; MMDB_FILE_OPEN_ERROR carries errno from open(). */
static int mmdb_to_err(int status, int saved_errno)
{
	switch (status) {
	case MMDB_SUCCESS:
		return 0;
	case MMDB_FILE_OPEN_ERROR:
		return saved_errno > 0 ? -saved_errno : -EIO;
	case MMDB_IO_ERROR:
		return -EIO;
	case MMDB_OUT_OF_MEMORY_ERROR:
		return -ENOMEM;
	default:
		return GSLB_EGEODB;
	}
}

/*
 * A private copy of the file in memory (a memfd), for MMDB_open() to map
 * instead of the file itself.  libmaxminddb maps the file it opens; a file
 * then rewritten in place (cp truncates and writes the same inode) would
 * change under the lookups, and a read past its new end kills the process
 * with SIGBUS.  The copy costs its size in memory (shmem) while loaded.
 * Returns the memfd, or -errno; a file that changes length while copied
 * is GSLB_EGEODB (the reload that follows its last write gets it whole).
 */
static int private_copy(const char *path)
{
	struct stat st;
	int src = open(path, O_RDONLY | O_CLOEXEC);
	if (src < 0)
		return -errno;
	if (fstat(src, &st) < 0) {
		int ret = -errno;
		close(src);
		return ret;
	}
	int fd = memfd_create("gslbd-geoip", MFD_CLOEXEC);
	int ret = fd < 0 ? -errno : 0;
	off_t off = 0;
	while (ret == 0 && off < st.st_size) {
		ssize_t n = sendfile(fd, src, &off, (size_t)(st.st_size - off));
		if (n < 0 && errno != EINTR)
			ret = -errno;
		else if (n == 0)
			ret = GSLB_EGEODB; /* shorter than it was: being rewritten */
	}
	struct stat now;
	if (ret == 0 && (fstat(src, &now) < 0 || now.st_size != st.st_size))
		ret = GSLB_EGEODB;
	close(src);
	if (ret < 0) {
		if (fd >= 0)
			close(fd);
		return ret;
	}
	return fd;
}

static int flatten(geo_db_t *g);
static void flat_free(struct geo_flat *f);

int geo_db_open(const char *path, geo_db_t **db)
{
	int ret;
	*db = NULL;
	geo_db_t *g = gslb_calloc(1, sizeof(*g));
	g->path = gslb_strdup(path);

	/*
	 * libmaxminddb reports an empty file or a directory as a failed
	 * mmap() ("An attempt to read data ... failed"); say what it is.
	 * Failures are logged at debug level only: the caller reports the
	 * returned code once, as a start-up or a reload error.
	 */
	struct stat st;
	if (stat(path, &st) == 0 && (!S_ISREG(st.st_mode) || st.st_size == 0)) {
		ret = S_ISDIR(st.st_mode) ? -EISDIR : S_ISREG(st.st_mode) ? GSLB_EGEODB : -EINVAL;
		log_debug("geoip %s: %s", path,
			  S_ISREG(st.st_mode) ? "the file is empty" : "not a regular file");
		goto out;
	}

	/* Map a private copy (private_copy()); where that fails, the file itself. */
	char copy[64];
	const char *open_path = path;
	int fd = private_copy(path);
	if (fd == GSLB_EGEODB) {
		log_debug("geoip %s: the file changed while it was read", path);
		ret = fd;
		goto out;
	}
	if (fd >= 0) {
		snprintf(copy, sizeof(copy), "/proc/self/fd/%d", fd);
		open_path = copy;
	}
	errno = 0;
	int status = MMDB_open(open_path, MMDB_MODE_MMAP, &g->mmdb);
	int saved_errno = errno;
	if (fd >= 0) {
		close(fd); /* the mapping keeps the copy */
		if (status == MMDB_FILE_OPEN_ERROR) {
			/* no /proc: map the file itself */
			errno = 0;
			status = MMDB_open(path, MMDB_MODE_MMAP, &g->mmdb);
			saved_errno = errno;
		}
	}
	if (status != MMDB_SUCCESS) {
		ret = mmdb_to_err(status, saved_errno);
		if (status == MMDB_FILE_OPEN_ERROR && saved_errno > 0)
			log_debug("geoip %s: %s: %s", path, MMDB_strerror(status),
				  strerror(saved_errno));
		else
			log_debug("geoip %s: %s", path, MMDB_strerror(status));
		/* MMDB_open() releases what it built when it fails. */
		goto out;
	}

	const MMDB_metadata_s *md = &g->mmdb.metadata;
	if (md->ip_version != 4 && md->ip_version != 6) {
		log_debug("geoip %s: unsupported ip_version %u", path, md->ip_version);
		MMDB_close(&g->mmdb);
		ret = GSLB_EGEODB;
		goto out;
	}
	/*
	 * Other schemas open fine but hold no country or location, so every
	 * client would look unknown: worth a warning, not a refusal, as
	 * third-party City databases use other type names.
	 */
	if (!md->database_type ||
	    (!strstr(md->database_type, "City") && !strstr(md->database_type, "Country")))
		log_warn("geoip %s: database type '%s' is neither a City nor a Country database",
			 path, md->database_type ? md->database_type : "");

	ret = flatten(g);
	if (ret < 0) {
		log_debug("geoip %s: the search tree cannot be read", path);
		flat_free(&g->flat);
		MMDB_close(&g->mmdb);
		goto out;
	}
	*db = g;
	g = NULL;
out:
	if (g) {
		free(g->path);
		free(g);
	}
	return ret;
}

void geo_db_close(geo_db_t *db)
{
	if (!db)
		return;
	flat_free(&db->flat);
	MMDB_close(&db->mmdb);
	free(db->path);
	free(db);
}

void geo_db_metadata(const geo_db_t *db, geo_db_meta_t *meta)
{
	const MMDB_metadata_s *md = &db->mmdb.metadata;
	meta->path = db->path;
	meta->database_type = md->database_type ? md->database_type : "";
	meta->build_epoch = md->build_epoch;
	meta->ip_version = md->ip_version;
	meta->node_count = md->node_count;
	meta->records = db->flat.nrecs;
	meta->flat_bytes = db->flat.bytes;
}

/*
 * One value at path.  Returns 1 with *data filled, 0 when the record does not
 * have it (a missing key or array index is normal: Country databases have no
 * location, many records no subdivision), or GSLB_EGEODB for corrupt data.
 */
static int get(MMDB_entry_s *entry, const char *const *path, MMDB_entry_data_s *data)
{
	int status = MMDB_aget_value(entry, data, path);
	if (status == MMDB_SUCCESS)
		return data->has_data ? 1 : 0;
	if (status == MMDB_LOOKUP_PATH_DOES_NOT_MATCH_DATA_ERROR ||
	    status == MMDB_INVALID_LOOKUP_PATH_ERROR)
		return 0;
	return GSLB_EGEODB;
}

/*
 * Copy an ASCII code of min..max letters or digits, upper-cased, into dst;
 * anything else leaves dst empty so a malformed code never matches a member.
 */
static void copy_code(char *dst, const MMDB_entry_data_s *data, size_t min, size_t max)
{
	dst[0] = '\0';
	if (data->type != MMDB_DATA_TYPE_UTF8_STRING || data->data_size < min ||
	    data->data_size > max)
		return;
	for (size_t i = 0; i < data->data_size; i++) {
		char c = data->utf8_string[i];
		if (c >= 'a' && c <= 'z')
			c = (char)(c - 'a' + 'A');
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
			dst[0] = '\0'; /* not the letters before it and what followed them */
			return;
		}
		dst[i] = c;
	}
	dst[data->data_size] = '\0';
}

static int get_code(MMDB_entry_s *entry, const char *const *path, char *dst, size_t min, size_t max)
{
	MMDB_entry_data_s data;
	int r = get(entry, path, &data);
	dst[0] = '\0';
	if (r > 0)
		copy_code(dst, &data, min, max);
	return r < 0 ? r : 0;
}

static int get_degrees(MMDB_entry_s *entry, const char *const *path, double *v, bool *have)
{
	MMDB_entry_data_s data;
	int r = get(entry, path, &data);
	*have = false;
	if (r <= 0)
		return r;
	if (data.type == MMDB_DATA_TYPE_DOUBLE)
		*v = data.double_value;
	else if (data.type == MMDB_DATA_TYPE_FLOAT)
		*v = data.float_value;
	else
		return 0;
	*have = isfinite(*v);
	return 0;
}

/* Fill out from the record at entry; returns 0 or GSLB_EGEODB. */
static int read_record(MMDB_entry_s *entry, geo_info_t *out)
{
	int ret;
	if ((ret = get_code(entry, path_country, out->country, 2, 2)) < 0)
		return ret;
	/*
	 * registered_country is where the network is registered, which for
	 * most networks is also where it is used; MaxMind leaves country out
	 * when it does not know better (README "Balanced names": geo and ECS).
	 */
	if (!out->country[0] && (ret = get_code(entry, path_registered, out->country, 2, 2)) < 0)
		return ret;
	if ((ret = get_code(entry, path_continent, out->continent, 2, 2)) < 0)
		return ret;

	/* ISO 3166-2 subdivision codes are 1-3 letters or digits after "CC-". */
	char sub[4];
	if ((ret = get_code(entry, path_subdivision, sub, 1, 3)) < 0)
		return ret;
	if (sub[0] && out->country[0]) {
		memcpy(out->subdivision, out->country, 2);
		out->subdivision[2] = '-';
		memcpy(out->subdivision + 3, sub, strlen(sub) + 1);
	}

	bool have_lat, have_lon;
	if ((ret = get_degrees(entry, path_latitude, &out->lat, &have_lat)) < 0)
		return ret;
	if ((ret = get_degrees(entry, path_longitude, &out->lon, &have_lon)) < 0)
		return ret;
	out->has_location = have_lat && have_lon && fabs(out->lat) <= 90.0 &&
			    fabs(out->lon) <= 180.0;
	if (out->has_location)
		geo_unit_vector(out->lat, out->lon, out->uvec);
	else
		out->lat = out->lon = 0.0;
	return 0;
}

static const uint8_t v4mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

int geo_db_lookup_reference(const geo_db_t *db, int family, const uint8_t *addr, geo_info_t *out)
{
	if (!out)
		return -EINVAL;
	memset(out, 0, sizeof(*out));
	if (!db || !addr)
		return -EINVAL;
	if (family == 4)
		family = AF_INET;
	else if (family == 6)
		family = AF_INET6;
	if (family != AF_INET && family != AF_INET6)
		return -EINVAL;

	/*
	 * An IPv4-mapped address (a dual-stack socket's view of an IPv4
	 * client, or an ECS option that spells IPv4 that way) is looked up as
	 * IPv4, so it finds the IPv4 data whether or not the database aliases
	 * ::ffff:0:0/96, and also in IPv4-only databases, which refuse IPv6
	 * lookups.  Its prefix length is then reported in IPv6 terms.
	 */
	unsigned extra = 0;
	if (family == AF_INET6 && !memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix))) {
		family = AF_INET;
		addr += 12;
		extra = 96;
	}

	union {
		struct sockaddr sa;
		struct sockaddr_in in;
		struct sockaddr_in6 in6;
	} su;
	memset(&su, 0, sizeof(su));
	if (family == AF_INET) {
		su.in.sin_family = AF_INET;
		memcpy(&su.in.sin_addr, addr, 4);
	} else {
		if (db->mmdb.metadata.ip_version == 4)
			return 0; /* no IPv6 data: not found, and nothing within ::/0 is */
		su.in6.sin6_family = AF_INET6;
		memcpy(&su.in6.sin6_addr, addr, 16);
	}

	int mmdb_error = MMDB_SUCCESS;
	MMDB_lookup_result_s res = MMDB_lookup_sockaddr(&db->mmdb, &su.sa, &mmdb_error);
	if (mmdb_error != MMDB_SUCCESS)
		return GSLB_EGEODB;

	/*
	 * libmaxminddb counts the netmask of an IPv4 address in an IPv6
	 * database from the root of the IPv6 tree, where IPv4 lives in ::/96:
	 * a /24 comes back as 120.  A record (or hole) above ::/96 covers all
	 * of IPv4, hence 0.
	 */
	unsigned len = res.netmask;
	if (family == AF_INET && db->mmdb.metadata.ip_version == 6)
		len = len > 96 ? len - 96 : 0;
	out->prefix_len = (uint8_t)(len + extra);

	if (!res.found_entry)
		return 0;
	out->found = true;
	int ret = read_record(&res.entry, out);
	if (ret < 0)
		memset(out, 0, sizeof(*out));
	return ret;
}

/*
 * Walk from value at bit *bitp down to bit limit at most, as libmaxminddb's
 * lookup does (find_address_in_search_tree()): until a record that is not a
 * node.  The address is w[0] and w[1], its first bits the highest, and its
 * bit 0 is the tree's bit base: 96 for IPv4 in an IPv6 database (::a.b.c.d),
 * else 0.  *bitp is left at the netmask reached, in the tree's terms.
 */
static inline __attribute__((always_inline)) uint32_t walk(const struct geo_flat *f,
							   const uint64_t w[2], unsigned base,
							   uint32_t value, unsigned *bitp,
							   unsigned limit, unsigned record_bytes)
{
	unsigned bit = *bitp;
	while (bit < limit && value < f->node_count) {
		unsigned r = bit - base;
		unsigned b = (w[r >> 6] >> (~r & 63)) & 1;
		value = geo_tree_record(f->tree, value, record_bytes, b);
		bit++;
	}
	*bitp = bit;
	return value;
}

static inline uint32_t rec_hash(const struct geo_flat *f, uint32_t value)
{
	return (value * 2654435761u) >> f->slot_shift;
}

/* The slot of value, or the free slot where it would go. */
static inline struct geo_rec_slot *rec_slot(const struct geo_flat *f, uint32_t value)
{
	uint32_t h = rec_hash(f, value);
	while (f->slot[h].value != value && f->slot[h].value != 0)
		h = (h + 1) & f->slot_mask;
	return &f->slot[h];
}

static void flat_free(struct geo_flat *f)
{
	free(f->stride[0]);
	free(f->stride[1]);
	free(f->slot);
	free(f->recs);
	memset(f, 0, sizeof(*f));
}

static void slots_alloc(struct geo_flat *f, unsigned log2)
{
	f->slot = gslb_calloc((size_t)1 << log2, sizeof(*f->slot));
	f->slot_mask = (1u << log2) - 1;
	f->slot_shift = 32 - log2;
}

/* Double the hash table (kept at most half full). */
static void slots_grow(struct geo_flat *f)
{
	struct geo_rec_slot *old = f->slot;
	uint32_t n = f->slot_mask + 1;
	slots_alloc(f, 33 - f->slot_shift);
	for (uint32_t i = 0; i < n; i++)
		if (old[i].value)
			*rec_slot(f, old[i].value) = old[i];
	free(old);
}

/* Decode the data record value (> node_count) once: its slot, new or found. */
static void flat_add(geo_db_t *g, uint32_t value, size_t *cap)
{
	struct geo_flat *f = &g->flat;
	struct geo_rec_slot *s = rec_slot(f, value);
	if (s->value)
		return;
	if (2 * (f->nrecs + 1) > f->slot_mask + 1) {
		slots_grow(f);
		s = rec_slot(f, value);
	}
	s->value = value;
	s->index = REC_CORRUPT;
	/* libmaxminddb: a record past the data section is a corrupt search tree. */
	if (value >= f->data_limit)
		return;
	geo_info_t info;
	memset(&info, 0, sizeof(info));
	info.found = true;
	MMDB_entry_s entry = { .mmdb = &g->mmdb, .offset = value - f->node_count - 16 };
	if (read_record(&entry, &info) < 0)
		return;
	if (f->nrecs == *cap) {
		*cap = *cap ? 2 * *cap : 1024;
		f->recs = gslb_realloc(f->recs, *cap * sizeof(*f->recs));
	}
	f->recs[f->nrecs] = info;
	s->index = f->nrecs++;
}

/*
 * Build g->flat (struct geo_flat): every data record any node holds, decoded
 * once, and the stride tables.  Costs about one decoding per distinct record
 * plus a pass over the nodes.  Returns 0, or GSLB_EGEODB for a search tree
 * libmaxminddb would not walk.
 */
static int flatten(geo_db_t *g)
{
	struct geo_flat *f = &g->flat;
	const MMDB_s *m = &g->mmdb;
	f->tree = m->file_content;
	f->node_count = m->metadata.node_count;
	f->record_bytes = m->full_record_byte_size;
	f->depth = m->depth;
	if ((f->record_bytes != 6 && f->record_bytes != 7 && f->record_bytes != 8) ||
	    (f->depth != 32 && f->depth != 128))
		return GSLB_EGEODB; /* libmaxminddb opens no such file */
	f->data_limit = (uint64_t)f->node_count + m->data_section_size;

	size_t cap = 0;
	slots_alloc(f, 10);
	for (uint32_t n = 0; n < f->node_count; n++) {
		for (unsigned b = 0; b < 2; b++) {
			uint32_t v = geo_tree_record(f->tree, n, f->record_bytes, b);
			if (v > f->node_count)
				flat_add(g, v, &cap);
		}
	}
	if (f->nrecs < cap)
		f->recs = gslb_realloc(f->recs, (f->nrecs ? f->nrecs : 1) * sizeof(*f->recs));

	for (unsigned fam = 0; fam < 2; fam++) {
		uint32_t start = 0;
		unsigned start_bit = 0;
		f->stride_bit[fam] = 0;
		if (fam == 0 && f->depth == 128) {
			start = m->ipv4_start_node.node_value;
			start_bit = m->ipv4_start_node.netmask;
			f->stride_bit[fam] = 96;
		} else if (fam == 1 && f->depth == 32) {
			break; /* no IPv6 in an IPv4 database */
		}
		struct geo_stride *st = gslb_calloc((size_t)1 << STRIDE_BITS, sizeof(*st));
		f->stride[fam] = st;
		unsigned sb = f->stride_bit[fam];
		for (uint32_t i = 0; i < 1u << STRIDE_BITS; i++) {
			const uint64_t w[2] = { (uint64_t)i << (64 - STRIDE_BITS), 0 };
			unsigned bit = start_bit;
			st[i].value = walk(f, w, sb, start, &bit, sb + STRIDE_BITS,
					   f->record_bytes);
			st[i].bit = bit;
		}
	}
	f->bytes = (f->slot_mask + 1) * sizeof(*f->slot) + f->nrecs * sizeof(*f->recs) +
		   (f->stride[0] ? 1u << STRIDE_BITS : 0) * sizeof(struct geo_stride) +
		   (f->stride[1] ? 1u << STRIDE_BITS : 0) * sizeof(struct geo_stride);
	return 0;
}

int geo_db_lookup(const geo_db_t *db, int family, const uint8_t *addr, geo_info_t *out)
{
	if (!out)
		return -EINVAL;
	if (!db || !addr) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}
	if (family == 4)
		family = AF_INET;
	else if (family == 6)
		family = AF_INET6;
	if (family != AF_INET && family != AF_INET6) {
		memset(out, 0, sizeof(*out));
		return -EINVAL;
	}

	/*
	 * As geo_db_lookup_reference() does: IPv4-mapped addresses as IPv4.
	 * The address as two numbers (walk()), the first 64 bits in w[0]:
	 * then its first STRIDE_BITS bits are those of w[0] in any family.
	 */
	const struct geo_flat *f = &db->flat;
	const int asked_family = family;
	const uint8_t *const asked = addr;
	unsigned extra = 0;
	if (family == AF_INET6 && !memcmp(addr, v4mapped_prefix, sizeof(v4mapped_prefix))) {
		family = AF_INET;
		addr += 12;
		extra = 96;
	}
	uint64_t w[2];
	if (family == AF_INET) {
		uint32_t a;
		memcpy(&a, addr, sizeof(a));
		w[0] = (uint64_t)__builtin_bswap32(a) << 32;
		w[1] = 0;
	} else if (f->depth == 32) {
		memset(out, 0, sizeof(*out));
		return 0; /* no IPv6 data: not found, and nothing within ::/0 is */
	} else {
		memcpy(w, addr, sizeof(w));
		w[0] = __builtin_bswap64(w[0]);
		w[1] = __builtin_bswap64(w[1]);
	}

	unsigned fam = family == AF_INET6;
	unsigned base = f->stride_bit[fam];
	const struct geo_stride *st = &f->stride[fam][w[0] >> (64 - STRIDE_BITS)];
	unsigned bit = st->bit;
	uint32_t v = st->value;
	switch (f->record_bytes) {
	case 6:
		v = walk(f, w, base, v, &bit, f->depth, 6);
		break;
	case 7:
		v = walk(f, w, base, v, &bit, f->depth, 7);
		break;
	default:
		v = walk(f, w, base, v, &bit, f->depth, 8);
		break;
	}
	/* In IPv4 terms for IPv4 in an IPv6 database, as geo_db_lookup_reference() counts. */
	if (family == AF_INET && f->depth == 128)
		bit = bit > 96 ? bit - 96 : 0;
	if (v == f->node_count) {
		memset(out, 0, sizeof(*out));
		out->prefix_len = (uint8_t)(bit + extra);
		return 0;
	}
	const struct geo_rec_slot *s = v > f->node_count ? rec_slot(f, v) : NULL;
	if (!s || !s->value) {
		/*
		 * A tree deeper than its address (the walk ended on a node):
		 * libmaxminddb's answer, whatever it is, is the reference.
		 */
		return geo_db_lookup_reference(db, asked_family, asked, out);
	}
	if (s->index == REC_CORRUPT) {
		memset(out, 0, sizeof(*out));
		return GSLB_EGEODB;
	}
	*out = f->recs[s->index];
	out->prefix_len = (uint8_t)(bit + extra);
	return 0;
}

void geo_unit_vector(double lat, double lon, double v[3])
{
	const double rad = M_PI / 180.0;
	double cl = cos(lat * rad);
	v[0] = cl * cos(lon * rad);
	v[1] = cl * sin(lon * rad);
	v[2] = sin(lat * rad);
}

double geo_distance_km(double lat1, double lon1, double lat2, double lon2)
{
	const double r_km = 6371.0088; /* IUGG mean Earth radius */
	const double rad = M_PI / 180.0;
	double dlat = (lat2 - lat1) * rad;
	double dlon = (lon2 - lon1) * rad;
	double s1 = sin(dlat / 2.0), s2 = sin(dlon / 2.0);
	double a = s1 * s1 + cos(lat1 * rad) * cos(lat2 * rad) * s2 * s2;
	/* Rounding can push a just outside [0, 1] for (nearly) antipodal points. */
	if (a > 1.0)
		a = 1.0;
	else if (a < 0.0)
		a = 0.0;
	return 2.0 * r_km * atan2(sqrt(a), sqrt(1.0 - a));
}
