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

/*
 * Immutable after geo_db_open(): libmaxminddb only reads an MMDB_s once
 * MMDB_open() has found the IPv4 start node, so lookups from many threads
 * need no lock.
 */
struct geo_db {
	MMDB_s mmdb;
	char *path; /* owned */
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

	*db = g;
	g = NULL;
	ret = 0;
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
		else if (!((c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
			return;
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

int geo_db_lookup(const geo_db_t *db, int family, const uint8_t *addr, geo_info_t *out)
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
