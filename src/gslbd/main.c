/* SPDX-License-Identifier: MIT */
/* gslbd's main(): options from the command line and the -c file, then the server. */

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gslb/alias.h"
#include "gslb/cluster.h"
#include "gslb/conffile.h"
#include "gslb/core.h"
#include "gslb/db_cluster.h"
#include "gslb/health.h"
#include "gslb/paths.h"
#include "gslb/query.h"
#include "gslb/server.h"

#define DEFAULT_HISTORY_H 24
#define HISTORY_MAX_H 87600 /* ten years */
#define NSID_MAX 255	    /* bytes; RFC 5001 sets no limit, answers must still fit UDP */
#define TXT_MAX 255	    /* one TXT character-string (RFC 1035 3.3) */
#define LISTEN_MAX 64
#define CLUSTER_URLS_MAX 16
#define CLUSTER_LEASE_DEFAULT 10
#define CLUSTER_LEASE_MIN 3 /* etcd's own minimum is about 1.5 election timeouts */
#define CLUSTER_LEASE_MAX 3600
#define PASSWORD_MAX 1024
#define RRL_RATE_MAX 1000000
#define RRL_SLIP_MAX 100
#define RRL_SLIP_DEFAULT 2
#define RRL_EXEMPT_MAX 64

/* Everything the options set.  Strings are owned (freed by options_free()). */
struct options {
	server_listen_t listen[LISTEN_MAX];
	size_t nlisten;
	bool listen_from_argv; /* the first --listen on the command line drops the file's */
	char *zones;
	char *db;
	char *geoip;
	server_listen_t metrics; /* --metrics, when has_metrics */
	bool has_metrics;
	char *user;
	char *ca_file;
	char *server_id;
	char *server_version;
	uint8_t nsid[NSID_MAX];
	size_t nsid_len;
	bool has_nsid;
	unsigned threads;
	unsigned history_h;
	unsigned cert_warn_days;
	int log_level;
	bool check_config;
	/* --cluster and its settings (gslbd(8) "Cluster") */
	char *cluster_urls[CLUSTER_URLS_MAX];
	size_t ncluster_urls;
	bool cluster_from_argv; /* the first --cluster on the command line drops the file's */
	char *node;
	char *cluster_prefix;
	unsigned cluster_lease;
	char *cluster_ca_file;
	char *cluster_cert;
	char *cluster_key;
	char *cluster_user;
	char *cluster_password_file;
	char *cluster_password; /* read from the file, never from argv */
	/* Abuse protection (gslbd(8) "Abuse protection") */
	unsigned rrl_rate;
	unsigned rrl_slip;
	lb_net_t rrl_exempt[RRL_EXEMPT_MAX];
	size_t nrrl_exempt;
	bool rrl_exempt_from_argv;
	char *cookie_secret_file;
	unsigned tcp_clients;
	unsigned tcp_clients_per_ip;
	char *control; /* --control PATH, or "none"; NULL: the default */
	char *dnstap;  /* --dnstap: the query log's unix socket */
	/* --resolver: alias members' resolvers as c-ares reads them, "A:P,[A6]:P" */
	char resolvers[ALIAS_SERVERS_MAX * (INET6_ADDRSTRLEN + 9)];
	size_t nresolvers;
	bool resolver_from_argv; /* the first --resolver on the command line drops the file's */
};

enum {
	OPT_LISTEN = 256,
	OPT_ZONES,
	OPT_DB,
	OPT_GEOIP,
	OPT_THREADS,
	OPT_METRICS,
	OPT_NSID,
	OPT_SERVER_ID,
	OPT_SERVER_VERSION,
	OPT_USER,
	OPT_LOG_LEVEL,
	OPT_CA_FILE,
	OPT_HISTORY,
	OPT_CLUSTER,
	OPT_NODE,
	OPT_CLUSTER_PREFIX,
	OPT_CLUSTER_LEASE,
	OPT_CLUSTER_CA_FILE,
	OPT_CLUSTER_CERT,
	OPT_CLUSTER_KEY,
	OPT_CLUSTER_USER,
	OPT_CLUSTER_PASSWORD_FILE,
	OPT_RRL,
	OPT_RRL_SLIP,
	OPT_RRL_EXEMPT,
	OPT_COOKIE_SECRET_FILE,
	OPT_TCP_CLIENTS,
	OPT_TCP_CLIENTS_PER_IP,
	OPT_CONTROL,
	OPT_CHECK_CONFIG,
	OPT_CERT_WARN,
	OPT_DNSTAP,
	OPT_RESOLVER,
};

static const struct option long_opts[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "listen", required_argument, NULL, OPT_LISTEN },
	{ "zones", required_argument, NULL, OPT_ZONES },
	{ "db", required_argument, NULL, OPT_DB },
	{ "geoip", required_argument, NULL, OPT_GEOIP },
	{ "threads", required_argument, NULL, OPT_THREADS },
	{ "metrics", required_argument, NULL, OPT_METRICS },
	{ "nsid", required_argument, NULL, OPT_NSID },
	{ "server-id", required_argument, NULL, OPT_SERVER_ID },
	{ "server-version", required_argument, NULL, OPT_SERVER_VERSION },
	{ "user", required_argument, NULL, OPT_USER },
	{ "log-level", required_argument, NULL, OPT_LOG_LEVEL },
	{ "ca-file", required_argument, NULL, OPT_CA_FILE },
	{ "history", required_argument, NULL, OPT_HISTORY },
	{ "cluster", required_argument, NULL, OPT_CLUSTER },
	{ "node", required_argument, NULL, OPT_NODE },
	{ "cluster-prefix", required_argument, NULL, OPT_CLUSTER_PREFIX },
	{ "cluster-lease", required_argument, NULL, OPT_CLUSTER_LEASE },
	{ "cluster-ca-file", required_argument, NULL, OPT_CLUSTER_CA_FILE },
	{ "cluster-cert", required_argument, NULL, OPT_CLUSTER_CERT },
	{ "cluster-key", required_argument, NULL, OPT_CLUSTER_KEY },
	{ "cluster-user", required_argument, NULL, OPT_CLUSTER_USER },
	{ "cluster-password-file", required_argument, NULL, OPT_CLUSTER_PASSWORD_FILE },
	{ "rrl", required_argument, NULL, OPT_RRL },
	{ "rrl-slip", required_argument, NULL, OPT_RRL_SLIP },
	{ "rrl-exempt", required_argument, NULL, OPT_RRL_EXEMPT },
	{ "cookie-secret-file", required_argument, NULL, OPT_COOKIE_SECRET_FILE },
	{ "tcp-clients", required_argument, NULL, OPT_TCP_CLIENTS },
	{ "tcp-clients-per-ip", required_argument, NULL, OPT_TCP_CLIENTS_PER_IP },
	{ "control", required_argument, NULL, OPT_CONTROL },
	{ "check-config", no_argument, NULL, OPT_CHECK_CONFIG },
	{ "cert-warn", required_argument, NULL, OPT_CERT_WARN },
	{ "dnstap", required_argument, NULL, OPT_DNSTAP },
	{ "resolver", required_argument, NULL, OPT_RESOLVER },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};
/* The leading ':' tells a missing value from an unknown option (getopt(3)). */
static const char short_opts[] = ":c:hV";

/*
 * A start-up message about the options: "gslbd: ..." on stderr, with the
 * error priority when stderr is the journal (gslbd(8), LOGGING), as the log
 * lines that follow carry theirs.
 */
static void __attribute__((format(printf, 1, 2))) complain(const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	fprintf(stderr, "%sgslbd: %s\n", gslb_log_journal() ? "<3>" : "", line);
}

static unsigned cpus(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);
	if (n < 1)
		return 1;
	return n > SERVER_THREADS_MAX ? SERVER_THREADS_MAX : (unsigned)n;
}

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: gslbd [OPTION]...\n"
		"Authoritative DNS server that balances names over health-checked members.\n"
		"\n"
		"  -c, --config FILE        read options from FILE, one 'name = value' a line\n"
		"                           (names as below without '--'); the command line wins\n"
		"      --listen ADDR:PORT   UDP and TCP listener, repeatable, IPv6 as [ADDR]:PORT\n"
		"                           (default: 0.0.0.0:53 and [::]:53)\n"
		"      --zones DIR          directory of zone files, one zone per file\n"
		"                           (default: %s)\n"
		"      --db FILE            SQLite database of pools and health, created if\n"
		"                           missing (default: %s)\n"
		"      --geoip FILE         MaxMind DB (.mmdb) for geo pools (default: none)\n"
		"      --threads N          DNS worker threads, 1-%d: N for UDP on each address,\n"
		"                           N for TCP (default: number of CPUs, %u)\n"
		"      --metrics ADDR:PORT  Prometheus metrics at http://ADDR:PORT/metrics\n"
		"                           (default: off)\n"
		"      --nsid STRING        NSID (RFC 5001) value; 0x... for hex (default: none)\n"
		"      --server-id STRING   CH TXT answer to id.server and hostname.bind\n"
		"                           (default: none, REFUSED)\n"
		"      --server-version STRING\n"
		"                           CH TXT answer to version.bind and version.server\n"
		"                           (default: none, REFUSED)\n"
		"      --user USER          drop privileges to USER after binding; USER must be\n"
		"                           able to write the database and its directory\n"
		"                           (default: none)\n"
		"      --log-level LEVEL    error, warning, info or debug (default: info)\n"
		"      --ca-file FILE       CA certificates for HTTPS health checks\n"
		"                           (default: the system store)\n"
		"      --history HOURS      hours of probe results kept, 1-%d (default: %d)\n"
		"      --cert-warn DAYS     log a warning, once a day, for an HTTPS check's\n"
		"                           certificate that expires within DAYS, 0-3650\n"
		"                           (default: 14; 0: never)\n"
		"      --cluster URL[,URL...]\n"
		"                           etcd client URLs (http:// or https://), repeatable:\n"
		"                           the node mirrors the cluster's configuration and\n"
		"                           shares its health verdicts (default: standalone)\n"
		"      --node NAME          this node's name in the cluster, [a-z0-9-], 1-63\n"
		"                           (default: the host name up to its first dot)\n"
		"      --cluster-prefix PREFIX\n"
		"                           the cluster's key prefix in etcd (default: /gslbd/)\n"
		"      --cluster-lease S    seconds the node's votes outlive its last contact\n"
		"                           with etcd, %d-%d (default: %d)\n"
		"      --cluster-ca-file FILE, --cluster-cert FILE, --cluster-key FILE\n"
		"                           TLS to etcd: CA, client certificate and key\n"
		"      --cluster-user USER, --cluster-password-file FILE\n"
		"                           etcd authentication; the password is read from FILE\n"
		"      --rrl RATE           response rate limiting over UDP: at most RATE\n"
		"                           responses a second per source network (/24, /56)\n"
		"                           and kind of response, 0-%d (default: 0, off)\n"
		"      --rrl-slip N         every Nth limited response goes out truncated,\n"
		"                           the rest are dropped, 0-%d (default: %d)\n"
		"      --rrl-exempt CIDR    source network never limited, repeatable\n"
		"      --cookie-secret-file FILE\n"
		"                           DNS Cookies secret: 32 hex digits, optionally a\n"
		"                           second secret also accepted (default: the\n"
		"                           cluster's secret in etcd with --cluster, else a\n"
		"                           random secret at each start)\n"
		"      --tcp-clients N      open TCP connections at most, 1-%d; when full the\n"
		"                           least recently active is closed (default: %d)\n"
		"      --tcp-clients-per-ip N\n"
		"                           open TCP connections of one source address at most,\n"
		"                           0-%d, 0 none; more are refused (default: %d)\n"
		"      --control PATH       the control socket for gslbctl daemon, mode 0660,\n"
		"                           group of --user; none: off (default: %s)\n"
		"      --check-config       load and validate the zones, the database, the\n"
		"                           geo file and the CA file (as --user), print\n"
		"                           problems, exit 0 if all is fine, else 1; binds\n"
		"                           nothing\n"
		"      --dnstap PATH        log every query and response as dnstap to the\n"
		"                           Frame Streams reader on the unix socket PATH\n"
		"                           (e.g. fstrm_capture); dropped, and counted, when\n"
		"                           no reader keeps up (default: off)\n"
		"      --resolver ADDR[:PORT]  where alias members' host names are resolved,\n"
		"                           repeatable, IPv6 as [ADDR]:PORT, port 53 by\n"
		"                           default (default: the resolvers of\n"
		"                           /etc/resolv.conf)\n"
		"  -V, --version            print the version and exit\n"
		"  -h, --help               print this help and exit\n"
		"\n"
		"SIGHUP reloads the zones and the geo file, as gslbctl daemon reload does (so\n"
		"do a new geo file and a change in the zone directory, once the file changed\n"
		"is closed or renamed into place); a file that fails to load keeps its\n"
		"previous version.  Changes to the database, and a new database file put at\n"
		"--db, are answered within a second, with no signal.  SIGTERM and SIGINT stop\n"
		"cleanly.  Exit status: 0 after a clean stop, 1 when an option is invalid or\n"
		"start-up fails (a listener, the control socket, the zone directory, the\n"
		"database or the geo file).  See gslbd(8).\n",
		GSLB_DEFAULT_ZONES, GSLB_DEFAULT_DB, SERVER_THREADS_MAX, cpus(), HISTORY_MAX_H,
		DEFAULT_HISTORY_H, CLUSTER_LEASE_MIN, CLUSTER_LEASE_MAX, CLUSTER_LEASE_DEFAULT,
		RRL_RATE_MAX, RRL_SLIP_MAX, RRL_SLIP_DEFAULT, SERVER_TCP_CLIENTS_MAX,
		SERVER_TCP_CLIENTS_DEFAULT, SERVER_TCP_PER_IP_MAX, SERVER_TCP_PER_IP_DEFAULT,
		GSLB_DEFAULT_CONTROL);
}

static void options_free(struct options *o)
{
	free(o->zones);
	free(o->db);
	free(o->geoip);
	free(o->user);
	free(o->ca_file);
	free(o->server_id);
	free(o->server_version);
	for (size_t i = 0; i < o->ncluster_urls; i++)
		free(o->cluster_urls[i]);
	free(o->node);
	free(o->cluster_prefix);
	free(o->cluster_ca_file);
	free(o->cluster_cert);
	free(o->cluster_key);
	free(o->cluster_user);
	free(o->cluster_password_file);
	free(o->cookie_secret_file);
	free(o->control);
	free(o->dnstap);
	if (o->cluster_password) {
		memset(o->cluster_password, 0, strlen(o->cluster_password));
		free(o->cluster_password);
	}
}

static void str_set(char **dst, const char *value)
{
	free(*dst);
	*dst = gslb_strdup(value);
}

/* A decimal number in min-max, nothing else. */
static int number_parse(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	if (!isdigit((unsigned char)s[0]))
		return -EINVAL;
	errno = 0;
	unsigned long v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -EINVAL;
	*out = (unsigned)v;
	return 0;
}

/* --cluster: a comma-separated list of http:// or https:// URLs, added to those given before. */
static int cluster_urls_add(struct options *o, const char *value, const char *where, bool from_argv)
{
	if (from_argv && !o->cluster_from_argv) {
		for (size_t i = 0; i < o->ncluster_urls; i++)
			free(o->cluster_urls[i]);
		o->ncluster_urls = 0;
		o->cluster_from_argv = true;
	}
	char *list = gslb_strdup(value), *save = NULL;
	int ret = 0;
	for (char *u = strtok_r(list, ",", &save); u; u = strtok_r(NULL, ",", &save)) {
		size_t scheme = strncmp(u, "http://", 7) == 0	 ? 7
				: strncmp(u, "https://", 8) == 0 ? 8
								 : 0;
		if (!scheme || !u[scheme] || strpbrk(u, " \t")) {
			complain("%s: '%s' is not an http:// or https:// URL", where, u);
			ret = -EINVAL;
			break;
		}
		bool dup = false;
		for (size_t i = 0; i < o->ncluster_urls; i++)
			dup |= strcmp(o->cluster_urls[i], u) == 0;
		if (dup)
			continue;
		if (o->ncluster_urls == CLUSTER_URLS_MAX) {
			complain("%s: at most %d etcd URLs", where, CLUSTER_URLS_MAX);
			ret = -EINVAL;
			break;
		}
		o->cluster_urls[o->ncluster_urls++] = gslb_strdup(u);
	}
	if (ret == 0 && o->ncluster_urls == 0) {
		complain("%s: no URL given", where);
		ret = -EINVAL;
	}
	free(list);
	return ret;
}

/* NSID: the bytes of the string, or with a 0x prefix the bytes its hex digits spell. */
static int nsid_parse(struct options *o, const char *s, const char *where)
{
	size_t n = strlen(s);
	if (n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
		s += 2;
		n -= 2;
		if (n % 2 || n / 2 > NSID_MAX) {
			complain("%s: hex needs an even number of digits, at most %d", where,
				 2 * NSID_MAX);
			return -EINVAL;
		}
		for (size_t i = 0; i < n / 2; i++) {
			int hi = gslb_hexval(s[2 * i]), lo = gslb_hexval(s[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				complain("%s: '%c%c' is not a hex byte", where, s[2 * i],
					 s[2 * i + 1]);
				return -EINVAL;
			}
			o->nsid[i] = (uint8_t)(hi << 4 | lo);
		}
		o->nsid_len = n / 2;
	} else {
		if (n == 0 || n > NSID_MAX) {
			complain("%s: must be 1-%d bytes", where, NSID_MAX);
			return -EINVAL;
		}
		memcpy(o->nsid, s, n);
		o->nsid_len = n;
	}
	o->has_nsid = true;
	return 0;
}

/*
 * Apply one option.  where names it for messages ("--threads" or
 * "FILE:LINE: threads"); from_argv says whether it came from the command
 * line.  Prints one message and returns -EINVAL for a bad value.
 */
static int option_apply(struct options *o, int id, const char *value, const char *where,
			bool from_argv)
{
	char err[256];
	server_listen_t l;

	switch (id) {
	case OPT_LISTEN:
		if (server_listen_parse(&l, value, err, sizeof(err)) < 0) {
			complain("%s: %s", where, err);
			return -EINVAL;
		}
		if (from_argv && !o->listen_from_argv) {
			o->nlisten = 0;
			o->listen_from_argv = true;
		}
		for (size_t i = 0; i < o->nlisten; i++)
			if (o->listen[i].addr_len == l.addr_len &&
			    memcmp(&o->listen[i].addr, &l.addr, l.addr_len) == 0)
				return 0; /* the same address twice is once */
		if (o->nlisten == LISTEN_MAX) {
			complain("%s: at most %d listeners", where, LISTEN_MAX);
			return -EINVAL;
		}
		o->listen[o->nlisten++] = l;
		return 0;
	case OPT_ZONES:
		str_set(&o->zones, value);
		return 0;
	case OPT_DB:
		str_set(&o->db, value);
		return 0;
	case OPT_GEOIP:
		str_set(&o->geoip, value);
		return 0;
	case OPT_THREADS:
		if (number_parse(value, 1, SERVER_THREADS_MAX, &o->threads) < 0) {
			complain("%s: '%s' is not a number in 1-%d", where, value,
				 SERVER_THREADS_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_METRICS: {
		/* The port is required: there is no standard one to default to. */
		const char *br = strchr(value, ']');
		bool has_port = value[0] == '[' ? br && br[1] == ':' : strchr(value, ':') != NULL;
		if (!has_port) {
			complain("%s: '%s' is not ADDR:PORT or [ADDR6]:PORT", where, value);
			return -EINVAL;
		}
		if (server_listen_parse(&l, value, err, sizeof(err)) < 0) {
			complain("%s: %s", where, err);
			return -EINVAL;
		}
		o->metrics = l;
		o->has_metrics = true;
		return 0;
	}
	case OPT_NSID:
		return nsid_parse(o, value, where);
	case OPT_SERVER_ID:
	case OPT_SERVER_VERSION:
		if (strlen(value) > TXT_MAX) {
			complain("%s: at most %d bytes (one TXT string)", where, TXT_MAX);
			return -EINVAL;
		}
		str_set(id == OPT_SERVER_ID ? &o->server_id : &o->server_version, value);
		return 0;
	case OPT_USER:
		str_set(&o->user, value);
		return 0;
	case OPT_LOG_LEVEL: {
		int lvl = gslb_log_level_parse(value);
		if (lvl < 0) {
			complain("%s: '%s' is not one of error, warning, info, debug", where,
				 value);
			return -EINVAL;
		}
		o->log_level = lvl;
		return 0;
	}
	case OPT_CA_FILE:
		str_set(&o->ca_file, value);
		return 0;
	case OPT_HISTORY:
		if (number_parse(value, 1, HISTORY_MAX_H, &o->history_h) < 0) {
			complain("%s: '%s' is not a number of hours in 1-%d", where, value,
				 HISTORY_MAX_H);
			return -EINVAL;
		}
		return 0;
	case OPT_CERT_WARN:
		if (number_parse(value, 0, HEALTH_CERT_WARN_DAYS_MAX, &o->cert_warn_days) < 0) {
			complain("%s: '%s' is not a number of days in 0-%d", where, value,
				 HEALTH_CERT_WARN_DAYS_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_CLUSTER:
		return cluster_urls_add(o, value, where, from_argv);
	case OPT_NODE:
		if (!cluster_node_name_ok(value)) {
			complain("%s: '%s' is not a node name (a-z, 0-9 and '-', 1-63 "
				 "characters)",
				 where, value);
			return -EINVAL;
		}
		str_set(&o->node, value);
		return 0;
	case OPT_CLUSTER_PREFIX: {
		size_t n = strlen(value);
		if (n < 1 || value[0] != '/' || value[n - 1] != '/') {
			complain("%s: '%s' must start and end with '/'", where, value);
			return -EINVAL;
		}
		str_set(&o->cluster_prefix, value);
		return 0;
	}
	case OPT_CLUSTER_LEASE:
		if (number_parse(value, CLUSTER_LEASE_MIN, CLUSTER_LEASE_MAX, &o->cluster_lease) <
		    0) {
			complain("%s: '%s' is not a number of seconds in %d-%d", where, value,
				 CLUSTER_LEASE_MIN, CLUSTER_LEASE_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_CLUSTER_CA_FILE:
		str_set(&o->cluster_ca_file, value);
		return 0;
	case OPT_CLUSTER_CERT:
		str_set(&o->cluster_cert, value);
		return 0;
	case OPT_CLUSTER_KEY:
		str_set(&o->cluster_key, value);
		return 0;
	case OPT_CLUSTER_USER:
		str_set(&o->cluster_user, value);
		return 0;
	case OPT_CLUSTER_PASSWORD_FILE:
		str_set(&o->cluster_password_file, value);
		return 0;
	case OPT_RRL:
		if (number_parse(value, 0, RRL_RATE_MAX, &o->rrl_rate) < 0) {
			complain("%s: '%s' is not a number of responses a second in 0-%d", where,
				 value, RRL_RATE_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_RRL_SLIP:
		if (number_parse(value, 0, RRL_SLIP_MAX, &o->rrl_slip) < 0) {
			complain("%s: '%s' is not a number in 0-%d", where, value, RRL_SLIP_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_RRL_EXEMPT: {
		lb_net_t n;
		if (lb_net_parse(value, &n) < 0) {
			complain("%s: '%s' is not a network (ADDR/LEN)", where, value);
			return -EINVAL;
		}
		lb_net_mask(&n);
		if (from_argv && !o->rrl_exempt_from_argv) {
			o->nrrl_exempt = 0;
			o->rrl_exempt_from_argv = true;
		}
		if (o->nrrl_exempt == RRL_EXEMPT_MAX) {
			complain("%s: at most %d networks", where, RRL_EXEMPT_MAX);
			return -EINVAL;
		}
		o->rrl_exempt[o->nrrl_exempt++] = n;
		return 0;
	}
	case OPT_COOKIE_SECRET_FILE:
		str_set(&o->cookie_secret_file, value);
		return 0;
	case OPT_TCP_CLIENTS:
		if (number_parse(value, 1, SERVER_TCP_CLIENTS_MAX, &o->tcp_clients) < 0) {
			complain("%s: '%s' is not a number in 1-%d", where, value,
				 SERVER_TCP_CLIENTS_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_TCP_CLIENTS_PER_IP:
		if (number_parse(value, 0, SERVER_TCP_PER_IP_MAX, &o->tcp_clients_per_ip) < 0) {
			complain("%s: '%s' is not a number in 0-%d", where, value,
				 SERVER_TCP_PER_IP_MAX);
			return -EINVAL;
		}
		return 0;
	case OPT_CONTROL:
		if (strcmp(value, "none") != 0 && value[0] != '/') {
			complain("%s: '%s' is not an absolute path or none", where, value);
			return -EINVAL;
		}
		str_set(&o->control, value);
		return 0;
	case OPT_CHECK_CONFIG:
		o->check_config = true;
		return 0;
	case OPT_DNSTAP:
		str_set(&o->dnstap, value);
		return 0;
	case OPT_RESOLVER: {
		char one[INET6_ADDRSTRLEN + 9];
		if (alias_server_parse(value, one, sizeof(one), err, sizeof(err)) < 0) {
			complain("%s: %s", where, err);
			return -EINVAL;
		}
		if (from_argv && !o->resolver_from_argv) {
			o->nresolvers = 0;
			o->resolvers[0] = '\0';
			o->resolver_from_argv = true;
		}
		if (o->nresolvers == ALIAS_SERVERS_MAX) {
			complain("%s: at most %d resolvers", where, ALIAS_SERVERS_MAX);
			return -EINVAL;
		}
		size_t len = strlen(o->resolvers);
		snprintf(o->resolvers + len, sizeof(o->resolvers) - len, "%s%s", len ? "," : "",
			 one);
		o->nresolvers++;
		return 0;
	}
	default:
		return -EINVAL;
	}
}

/* One entry of the -c file: a long option that takes a value, applied as from the command line. */
static int config_entry_cb(void *arg, const char *name, const char *value, const char *where)
{
	const struct option *opt = NULL;
	for (const struct option *p = long_opts; p->name; p++)
		if (strcmp(p->name, name) == 0)
			opt = p;
	if (!opt || opt->val < OPT_LISTEN || opt->has_arg != required_argument) {
		/* where is "PATH:LINE: NAME": the message names the line, then the option. */
		size_t n = strlen(where) - strlen(name) - 2;
		complain("%.*s: '%s' is not an option of the file", (int)n, where, name);
		return -EINVAL;
	}
	return option_apply(arg, opt->val, value, where, false);
}

/* The -c file (gslbd(8), "CONFIGURATION FILE"): read as gslbctl -c reads it. */
static int config_read(struct options *o, const char *path)
{
	char err[CFG_CONFFILE_ERR_MAX];
	int ret = cfg_conffile_read(path, config_entry_cb, o, err, sizeof(err));
	if (ret < 0 && err[0])
		complain("%s", err);
	return ret;
}

/*
 * Two passes: the first only finds -c, --help and --version, so the file is
 * read before the command line is applied over it.
 */
static int options_parse(struct options *o, int argc, char **argv)
{
	const char *config = NULL;
	int c;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
		if (c == 'c') {
			config = optarg;
		} else if (c == 'h') {
			usage(stdout);
			exit(0);
		} else if (c == 'V') {
			printf("gslbd %s\n", PACKAGE_VERSION);
			exit(0);
		}
	}
	if (config && config_read(o, config) < 0)
		return -EINVAL;

	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, short_opts, long_opts, NULL)) != -1) {
		if (c == 'c')
			continue;
		if (c == '?' || c == ':') {
			/* Said here, not by getopt, so the journal gets the error priority. */
			char shopt[3] = { '-', (char)optopt, '\0' };
			const char *arg = optopt > 0 && optopt < 256 ? shopt : argv[optind - 1];
			complain("%s: %s", arg, c == ':' ? "needs a value" : "unknown option");
			goto usage;
		}
		char where[64];
		const char *name = "?";
		for (const struct option *p = long_opts; p->name; p++)
			if (p->val == c)
				name = p->name;
		snprintf(where, sizeof(where), "--%s", name);
		if (option_apply(o, c, optarg, where, true) < 0)
			return -EINVAL;
	}
	if (optind < argc) {
		complain("unexpected argument '%s'", argv[optind]);
		goto usage;
	}
	return 0;
usage:
	fprintf(stderr, "%sTry 'gslbd --help' for more information.\n",
		gslb_log_journal() ? "<3>" : "");
	return -EINVAL;
}

/*
 * The password of --cluster-password-file: the whole file but one trailing newline (CRLF
 * too), read at start-up, before privileges are dropped, so the file may be root's alone.
 */
static int password_read(struct options *o)
{
	const char *path = o->cluster_password_file;
	char buf[PASSWORD_MAX + 2];
	FILE *f = fopen(path, "r");
	if (!f) {
		complain("--cluster-password-file: cannot read %s: %s", path, strerror(errno));
		return -EINVAL;
	}
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	bool failed = ferror(f);
	fclose(f);
	if (failed || n > PASSWORD_MAX) {
		complain("--cluster-password-file: %s: %s", path,
			 failed ? "cannot read it" : "longer than 1024 bytes");
		memset(buf, 0, sizeof(buf));
		return -EINVAL;
	}
	buf[n] = '\0';
	if (n && buf[n - 1] == '\n')
		buf[--n] = '\0';
	if (n && buf[n - 1] == '\r')
		buf[--n] = '\0';
	if (n == 0 || strlen(buf) != n) {
		complain("--cluster-password-file: %s: %s", path,
			 n ? "holds a NUL byte" : "is empty");
		memset(buf, 0, sizeof(buf));
		return -EINVAL;
	}
	o->cluster_password = gslb_strdup(buf);
	memset(buf, 0, sizeof(buf));
	return 0;
}

/*
 * The cluster options together: each needs --cluster, a certificate its key, a user a
 * password; the node name defaults to the host name (lowercased, up to its first dot).
 */
static int cluster_options_check(struct options *o)
{
	const struct {
		const char *name;
		bool set;
	} deps[] = {
		{ "--node", o->node != NULL },
		{ "--cluster-prefix", o->cluster_prefix != NULL },
		{ "--cluster-lease", o->cluster_lease != 0 },
		{ "--cluster-ca-file", o->cluster_ca_file != NULL },
		{ "--cluster-cert", o->cluster_cert != NULL },
		{ "--cluster-key", o->cluster_key != NULL },
		{ "--cluster-user", o->cluster_user != NULL },
		{ "--cluster-password-file", o->cluster_password_file != NULL },
	};
	if (!o->ncluster_urls) {
		for (size_t i = 0; i < ARRAY_SIZE(deps); i++)
			if (deps[i].set) {
				complain("%s needs --cluster", deps[i].name);
				return -EINVAL;
			}
		return 0;
	}
	if (!o->cluster_cert != !o->cluster_key) {
		complain("--cluster-cert and --cluster-key go together");
		return -EINVAL;
	}
	if (!o->cluster_user != !o->cluster_password_file) {
		complain("--cluster-user and --cluster-password-file go together");
		return -EINVAL;
	}
	if (!o->node) {
		char host[256] = "";
		if (gethostname(host, sizeof(host) - 1) < 0)
			host[0] = '\0';
		host[strcspn(host, ".")] = '\0';
		for (char *p = host; *p; p++)
			*p = (char)tolower((unsigned char)*p);
		if (!cluster_node_name_ok(host)) {
			complain("--node: the host name '%s' is not a node name (a-z, 0-9 "
				 "and "
				 "'-', 1-63 characters): give one with --node",
				 host);
			return -EINVAL;
		}
		o->node = gslb_strdup(host);
	}
	if (!o->cluster_prefix)
		o->cluster_prefix = gslb_strdup("/gslbd/");
	if (!o->cluster_lease)
		o->cluster_lease = CLUSTER_LEASE_DEFAULT;
	if (o->cluster_password_file && password_read(o) < 0)
		return -EINVAL;
	return 0;
}

int main(int argc, char **argv)
{
	struct options o = { .threads = 0,
			     .history_h = DEFAULT_HISTORY_H,
			     .cert_warn_days = HEALTH_CERT_WARN_DAYS_DEFAULT,
			     .rrl_slip = RRL_SLIP_DEFAULT,
			     .tcp_clients = SERVER_TCP_CLIENTS_DEFAULT,
			     .tcp_clients_per_ip = SERVER_TCP_PER_IP_DEFAULT,
			     .log_level = GSLB_LOG_INFO };
	char err[256];
	int status = 1;

	gslb_log_set_ident("gslbd");
	if (options_parse(&o, argc, argv) < 0)
		goto out;
	if (cluster_options_check(&o) < 0)
		goto out;
	gslb_log_set_level(o.log_level);
	if (!o.zones)
		o.zones = gslb_strdup(GSLB_DEFAULT_ZONES);
	if (!o.db)
		o.db = gslb_strdup(GSLB_DEFAULT_DB);
	if (!o.threads)
		o.threads = cpus();
	/* The default socket is best effort (its directory may not exist); one asked for is not. */
	bool control_default = !o.control;
	if (!o.control)
		o.control = gslb_strdup(gslb_default_control(err, sizeof(err)));
	if (o.nlisten == 0) {
		server_listen_parse(&o.listen[0], "0.0.0.0:53", err, sizeof(err));
		server_listen_parse(&o.listen[1], "[::]:53", err, sizeof(err));
		o.nlisten = 2;
	}

	/* A client gone mid-answer must be an error from write(), not a dead daemon. */
	signal(SIGPIPE, SIG_IGN);
	/* Zone loading frees and takes back heap top at every RR otherwise. */
	gslb_malloc_tune();

	query_conf_t qconf = {
		.nsid = o.has_nsid ? o.nsid : NULL,
		.nsid_len = (uint16_t)o.nsid_len,
		.server_id = o.server_id,
		.server_version = o.server_version,
		.rrl = { .rate = o.rrl_rate,
			 .slip = o.rrl_slip,
			 .threads = o.threads,
			 .exempt = o.rrl_exempt,
			 .nexempt = o.nrrl_exempt },
		.tcp_keepalive = SERVER_TCP_IDLE_MS / 100,
	};
	server_conf_t conf = {
		.zones_dir = o.zones,
		.db_path = o.db,
		.ca_file = o.ca_file,
		.geoip = o.geoip,
		.history_h = o.history_h,
		.cert_warn_days = o.cert_warn_days,
		.listen = o.listen,
		.nlisten = o.nlisten,
		.threads = o.threads,
		.user = o.user,
		.metrics = o.has_metrics ? &o.metrics : NULL,
		.qconf = &qconf,
		.cookie_secret_file = o.cookie_secret_file,
		.tcp_clients = o.tcp_clients,
		.tcp_clients_per_ip = o.tcp_clients_per_ip,
		.control = strcmp(o.control, "none") == 0 ? NULL : o.control,
		.control_default = control_default,
		.dnstap = o.dnstap,
		.resolvers = o.nresolvers ? o.resolvers : NULL,
	};
	/* What the cluster thread runs with, and what gslbctl reads back from the database. */
	char *urls = NULL;
	size_t urls_len = 0;
	for (size_t i = 0; i < o.ncluster_urls; i++)
		urls_len += strlen(o.cluster_urls[i]) + 1;
	if (o.ncluster_urls) {
		urls = gslb_calloc(1, urls_len);
		for (size_t i = 0; i < o.ncluster_urls; i++) {
			if (i)
				strcat(urls, ",");
			strcat(urls, o.cluster_urls[i]);
		}
	}
	cluster_conf_t cconf = {
		.etcd = { .urls = o.cluster_urls,
			  .nurls = o.ncluster_urls,
			  .ca_file = o.cluster_ca_file,
			  .cert_file = o.cluster_cert,
			  .key_file = o.cluster_key,
			  .user = o.cluster_user,
			  .password = o.cluster_password },
		.prefix = o.cluster_prefix,
		.node = o.node,
		.lease_s = o.cluster_lease,
	};
	db_cluster_settings_t csettings = {
		.urls = urls,
		.prefix = o.cluster_prefix,
		.node = o.node,
		.lease_s = o.cluster_lease,
		.ca_file = o.cluster_ca_file,
		.cert_file = o.cluster_cert,
		.key_file = o.cluster_key,
		.user = o.cluster_user,
		.password_file = o.cluster_password_file,
	};
	conf.cluster = o.ncluster_urls ? &cconf : NULL;
	conf.cluster_settings = &csettings;
	if (o.check_config) {
		status = server_check_config(&conf);
	} else {
		status = server_run(&conf);
		if (status == 0)
			log_info("stopped");
	}
	free(urls);
out:
	options_free(&o);
	return status;
}
