/* SPDX-License-Identifier: MIT */
/* TAP test of the zone file loader: directives, record types, error messages, directory reloads. */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/zone.h"
#include "../../src/zone/internal.h"

/* A few TAP helpers of our own; the plan is printed at the end. */
static int tap_n;
static int tap_failed;

static bool __attribute__((format(printf, 2, 3))) ok(bool cond, const char *fmt, ...)
{
	va_list ap;
	tap_n++;
	printf("%sok %d - ", cond ? "" : "not ", tap_n);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
	if (!cond)
		tap_failed++;
	return cond;
}

static void __attribute__((format(printf, 1, 2))) diag(const char *fmt, ...)
{
	va_list ap;
	printf("# ");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static char tmpdir[256];

/* Write text to dir/name (dir relative to tmpdir, may be ""). */
static void put(const char *dir, const char *name, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s%s%s", tmpdir, dir, *dir ? "/" : "", name);
	FILE *f = fopen(path, "w");
	if (!f) {
		printf("Bail out! cannot write %s: %s\n", path, strerror(errno));
		exit(1);
	}
	fputs(text, f);
	fclose(f);
}

static void mkdir_in(const char *dir)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, dir);
	if (mkdir(path, 0755) < 0 && errno != EEXIST) {
		printf("Bail out! mkdir %s: %s\n", path, strerror(errno));
		exit(1);
	}
}

static const char *dirpath(const char *dir)
{
	static char path[1024];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, dir);
	return path;
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static const zone_node_t *node(const zone_t *z, const char *name)
{
	uint8_t wire[DNS_NAME_MAX], lname[DNS_NAME_MAX];
	if (dns_name_from_str(wire, name) < 0)
		return NULL;
	size_t len = dns_name_lower(lname, wire);
	return zone_node_find(z, lname, len);
}

static const zone_rrset_t *rrset(const zone_t *z, const char *name, uint16_t type)
{
	const zone_node_t *n = node(z, name);
	return n ? zone_node_rrset(n, type) : NULL;
}

/* The rdata of the first RR of a set; wire is [owner 2][type 2][class 2][ttl 4][len 2][rdata]. */
static bool first_rdata_is(const zone_rrset_t *s, const void *rdata, size_t len)
{
	if (!s || s->len < 12)
		return false;
	size_t rdlen = dns_get16(s->wire + 10);
	return rdlen == len && s->len >= 12 + len && memcmp(s->wire + 12, rdata, len) == 0;
}

static zone_t *set_get(const zone_set_t *s, const char *name)
{
	uint8_t wire[DNS_NAME_MAX], lname[DNS_NAME_MAX];
	if (dns_name_from_str(wire, name) < 0)
		return NULL;
	size_t len = dns_name_lower(lname, wire);
	return zone_set_get(s, lname, len);
}

/* Load dir/fname, expect failure, and return the message (static storage). */
static const char *load_fails(const char *dir, const char *fname)
{
	static char err[1024];
	zone_t *z = NULL;
	err[0] = 0;
	int ret = zone_load_file(dirpath(dir), fname, &z, err, sizeof(err));
	if (ret == 0) {
		zone_unref(z);
		return NULL;
	}
	if (z)
		return NULL; /* *out must stay NULL on failure */
	diag("%s: %s", fname, err);
	return err;
}

static bool starts_with(const char *s, const char *prefix)
{
	return s && strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool contains(const char *s, const char *needle)
{
	return s && strstr(s, needle) != NULL;
}

#define SOA_NS                                             \
	"@ IN SOA ns1 hostmaster 1 7200 3600 1209600 60\n" \
	"@ IN NS ns1\n"                                    \
	"ns1 IN A 192.0.2.1\n"

static void test_good_zone(void)
{
	mkdir_in("good");
	mkdir_in("good/inc");
	put("good", "Example.COM.zone",
	    "; a zone that uses every directive\n"
	    "$TTL 300\n"
	    "$ORIGIN example.com.\n"
	    "@\tIN SOA ns1 hostmaster ( 2024010101 ; serial\n"
	    "\t\t7200 3600 1209600\n"
	    "\t\t60 )\n"
	    "\tIN NS ns1\n"
	    "\tIN NS ns2.example.com.\n"
	    "ns1 A 192.0.2.1\n"
	    "ns2 3600 IN A 192.0.2.2\n"
	    "\n"
	    "www A 192.0.2.10\n"
	    "    AAAA 2001:db8::10\n"
	    "@ MX 10 mail\n"
	    "mail A 192.0.2.25\n"
	    "txt TXT \"hello world\" \"second\" ; comment\n"
	    "_sip._tcp SRV 10 20 5060 sip\n"
	    "sip A 192.0.2.5\n"
	    "@ CAA 0 issue \"letsencrypt.org\"\n"
	    "$ORIGIN sub\n"
	    "host A 192.0.2.99\n"
	    "$ORIGIN example.com.\n"
	    "$INCLUDE inc/extra.inc\n"
	    "$INCLUDE \"inc/other.inc\" other ; with an origin relative to example.com.\n"
	    "after A 192.0.2.77\n");
	put("good/inc", "extra.inc", "$TTL 60\nextra A 192.0.2.50\n");
	put("good/inc", "other.inc", "x A 192.0.2.51\n@ TXT \"at the include origin\"\n");

	char err[1024] = "";
	zone_t *z = NULL;
	int ret = zone_load_file(dirpath("good"), "Example.COM.zone", &z, err, sizeof(err));
	if (!ok(ret == 0 && z, "good zone loads")) {
		diag("ret %d: %s", ret, err);
		return;
	}
	char apex[1024];
	dns_name_to_str(apex, sizeof(apex), z->apex);
	ok(strcmp(apex, "example.com.") == 0, "zone name from the file name, lowercased (%s)",
	   apex);
	ok(z->serial == 2024010101, "serial from a multi-line SOA (%u)", z->serial);
	ok(z->file && contains(z->file, "good/Example.COM.zone"), "z->file is the path (%s)",
	   z->file ? z->file : "NULL");
	ok(z->mtime > 0, "z->mtime is set");

	const zone_rrset_t *s = rrset(z, "example.com.", DNS_T_NS);
	ok(s && s->count == 2 && s->ttl == 300, "two NS at the apex with owner inheritance, $TTL");
	static const uint8_t a10[] = { 192, 0, 2, 10 };
	s = rrset(z, "www.example.com.", DNS_T_A);
	ok(s && s->ttl == 300 && first_rdata_is(s, a10, 4), "www A 192.0.2.10, TTL 300");
	static const uint8_t aaaa10[] = "\x20\x01\x0d\xb8\0\0\0\0\0\0\0\0\0\0\0\x10";
	s = rrset(z, "WWW.example.com.", DNS_T_AAAA);
	ok(s && first_rdata_is(s, aaaa10, sizeof(aaaa10) - 1),
	   "www AAAA from a line with an inherited owner");
	s = rrset(z, "ns2.example.com.", DNS_T_A);
	ok(s && s->ttl == 3600, "explicit TTL wins over $TTL");
	ok(rrset(z, "example.com.", DNS_T_MX) != NULL, "MX at the apex");
	s = rrset(z, "txt.example.com.", DNS_T_TXT);
	static const uint8_t txt[] = "\x0bhello world\x06second";
	ok(s && first_rdata_is(s, txt, sizeof(txt) - 1), "TXT with two strings and a comment");
	s = rrset(z, "_sip._tcp.example.com.", DNS_T_SRV);
	ok(s && s->count == 1, "SRV with a relative target");
	ok(rrset(z, "example.com.", 257 /* CAA, RFC 8659 */) != NULL, "CAA at the apex");
	ok(rrset(z, "host.sub.example.com.", DNS_T_A) != NULL,
	   "relative $ORIGIN is relative to the current origin");
	s = rrset(z, "extra.example.com.", DNS_T_A);
	ok(s && s->ttl == 60, "$INCLUDE relative to the zone directory, its own $TTL");
	ok(rrset(z, "x.other.example.com.", DNS_T_A) != NULL, "$INCLUDE with an origin");
	ok(rrset(z, "other.example.com.", DNS_T_TXT) != NULL,
	   "@ in an included file is its origin");
	s = rrset(z, "after.example.com.", DNS_T_A);
	ok(s && s->ttl == 300, "origin and TTL revert after $INCLUDE (RFC 1035 5.1)");
	zone_unref(z);

	/* Without ".zone" the file name is the zone name; without $TTL the default is 3600. */
	put("good", "plain.test", SOA_NS "www A 192.0.2.9\n");
	ret = zone_load_file(dirpath("good"), "plain.test", &z, err, sizeof(err));
	ok(ret == 0 && z && rrset(z, "www.plain.test.", DNS_T_A) &&
		   rrset(z, "www.plain.test.", DNS_T_A)->ttl == 3600,
	   "file without .zone, default TTL 3600");
	zone_unref(z);
}

static void test_errors(void)
{
	mkdir_in("bad");
	const char *e;

	put("bad", "nosoa.test.zone", "@ NS ns1\nns1 A 192.0.2.1\n");
	e = load_fails("bad", "nosoa.test.zone");
	ok(starts_with(e, "nosoa.test.zone: ") && contains(e, "SOA"),
	   "missing SOA rejected, message names the file");

	put("bad", "nons.test.zone", "@ SOA ns1 host 1 2 3 4 5\nns1 A 192.0.2.1\n");
	e = load_fails("bad", "nons.test.zone");
	ok(starts_with(e, "nons.test.zone: ") && contains(e, "NS"),
	   "missing NS rejected, message names the file");

	put("bad", "dupsoa.test.zone", SOA_NS "www A 192.0.2.1\n@ SOA ns2 host 2 2 3 4 5\n");
	e = load_fails("bad", "dupsoa.test.zone");
	ok(starts_with(e, "dupsoa.test.zone:5: a second SOA record (the first is at "
			  "dupsoa.test.zone:1)"),
	   "a second SOA names its line and the first one's");

	put("bad", "subsoa.test.zone", SOA_NS "sub SOA ns1 host 1 2 3 4 5\n");
	e = load_fails("bad", "subsoa.test.zone");
	ok(starts_with(e, "subsoa.test.zone:4: SOA record at sub.subsoa.test., which is not the "
			  "zone apex"),
	   "an SOA below the apex names its line");

	put("bad", "incsoa.test.zone", SOA_NS "$INCLUDE soa.inc\n");
	put("bad", "soa.inc", "; another SOA\n@ SOA ns1 host 1 2 3 4 5\n");
	e = load_fails("bad", "incsoa.test.zone");
	ok(starts_with(e, "soa.inc:2: a second SOA record (the first is at incsoa.test.zone:1)"),
	   "a second SOA in an included file names that file");

	put("bad", "syntax.test.zone", SOA_NS "; comment\n\nwww A 192.0.2.300\n");
	e = load_fails("bad", "syntax.test.zone");
	ok(starts_with(e, "syntax.test.zone:6: syntax error"),
	   "syntax error names the file and line 6");

	put("bad", "multi.test.zone", SOA_NS "x MX ( 10\n mail )\nwww A 192.0.2.1 (\n 1.2.3.4 )\n");
	e = load_fails("bad", "multi.test.zone");
	ok(starts_with(e, "multi.test.zone:6: syntax error"),
	   "error in a multi-line record names the line it starts on");

	put("bad", "noeol.test.zone", SOA_NS "www A 1.2.3");
	e = load_fails("bad", "noeol.test.zone");
	ok(starts_with(e, "noeol.test.zone:4: syntax error"),
	   "error on a last line without newline");

	put("bad", "inc.test.zone", SOA_NS "\n$INCLUDE broken.inc\n");
	put("bad", "broken.inc", "a A 192.0.2.1\n\nb MX mail\n");
	e = load_fails("bad", "inc.test.zone");
	ok(starts_with(e, "broken.inc:3: syntax error"), "error in an included file names it");

	put("bad", "noinc.test.zone", SOA_NS "$INCLUDE missing.inc\n");
	e = load_fails("bad", "noinc.test.zone");
	ok(starts_with(e, "noinc.test.zone:4: ") && contains(e, "missing.inc"),
	   "missing include file: includer's file and line");

	put("bad", "nested.test.zone", SOA_NS "$INCLUDE level1.inc\n");
	put("bad", "level1.inc", "a A 192.0.2.1\n$INCLUDE level2.inc\n");
	e = load_fails("bad", "nested.test.zone");
	ok(starts_with(e, "level1.inc:2: ") && contains(e, "level2.inc"),
	   "missing file in a nested include: the inner includer's file and line");

	put("bad", "loop.test.zone", SOA_NS "$INCLUDE loop.inc\n");
	put("bad", "loop.inc", "$INCLUDE loop.inc\n");
	e = load_fails("bad", "loop.test.zone");
	ok(contains(e, "loop.inc:1: ") && contains(e, "nested"), "include loop stops at depth 8");

	put("bad", "ooz.test.zone", SOA_NS "www A 192.0.2.1\nwww.example.org. A 192.0.2.2\n");
	e = load_fails("bad", "ooz.test.zone");
	ok(starts_with(e, "ooz.test.zone:5: ") && contains(e, "www.example.org.") &&
		   contains(e, "outside"),
	   "out-of-zone owner rejected with file, line and name");

	put("bad", "sibling.test.zone", SOA_NS "$ORIGIN test.\nfoo A 192.0.2.1\n");
	e = load_fails("bad", "sibling.test.zone");
	ok(starts_with(e, "sibling.test.zone:5: ") && contains(e, "outside"),
	   "owner above the apex (after $ORIGIN) rejected");

	put("bad", "chaos.test.zone", SOA_NS "version CH TXT \"1.0\"\n");
	e = load_fails("bad", "chaos.test.zone");
	ok(starts_with(e, "chaos.test.zone:4: ") && contains(e, "CH") && contains(e, "not IN"),
	   "non-IN class rejected with file and line");

	put("bad", "dir.test.zone", SOA_NS "$GENERATE 1-10 h$ A 192.0.2.$\n");
	e = load_fails("bad", "dir.test.zone");
	ok(starts_with(e, "dir.test.zone:4: ") && contains(e, "$GENERATE"),
	   "unsupported directive rejected");

	put("bad", "ttl.test.zone", "$TTL soon\n" SOA_NS);
	e = load_fails("bad", "ttl.test.zone");
	ok(starts_with(e, "ttl.test.zone:1: ") && contains(e, "$TTL"), "bad $TTL value rejected");

	e = load_fails("bad", "absent.test.zone");
	ok(starts_with(e, "absent.test.zone: ") && contains(e, "No such file"),
	   "missing file reported");
}

/* A quoted string cut by the end of a line or of the file is an error, not a shorter string. */
static void test_quotes(void)
{
	mkdir_in("quote");
	const char *e;

	put("quote", "eol.test.zone", SOA_NS "txt TXT \"abc\n");
	e = load_fails("quote", "eol.test.zone");
	ok(starts_with(e, "eol.test.zone:4: ") && contains(e, "quote"),
	   "TXT \"abc at the end of the last line: rejected with file and line");

	put("quote", "eof.test.zone", SOA_NS "txt TXT \"abc");
	e = load_fails("quote", "eof.test.zone");
	ok(starts_with(e, "eof.test.zone:4: ") && contains(e, "quote"),
	   "TXT \"abc at the end of the file without a newline: rejected");

	put("quote", "mid.test.zone", SOA_NS "txt TXT \"abc\nwww A 192.0.2.1\n");
	e = load_fails("quote", "mid.test.zone");
	ok(starts_with(e, "mid.test.zone:4: ") && contains(e, "quote"),
	   "a quote left open before another record: rejected at its line");

	put("quote", "paren.test.zone", SOA_NS "txt TXT ( \"abc\n def\" )\n");
	e = load_fails("quote", "paren.test.zone");
	ok(starts_with(e, "paren.test.zone:4: ") && contains(e, "quote"),
	   "a quoted string does not continue on the next line inside parentheses");

	put("quote", "unbal.test.zone", SOA_NS "txt TXT ( \"abc\"\n");
	e = load_fails("quote", "unbal.test.zone");
	ok(starts_with(e, "unbal.test.zone:4: ") && contains(e, "parenthes"),
	   "an opening parenthesis never closed: rejected at the line it opens");

	put("quote", "good.test.zone",
	    SOA_NS "a TXT \"x;y(z)\\\"w\" ; a comment with a \" quote\n"
		   "b TXT ( \"one\" ; first line\n"
		   "        \"two\" ) ; ( and more\n"
		   "c TXT \"\" \"semi;colon\"\n");
	char err[1024] = "";
	zone_t *z = NULL;
	int ret = zone_load_file(dirpath("quote"), "good.test.zone", &z, err, sizeof(err));
	if (!ok(ret == 0 && z, "quoted ; ( ) and \\\" and comments with quotes load")) {
		diag("ret %d: %s", ret, err);
		return;
	}
	static const uint8_t ta[] = "\x08x;y(z)\"w";
	static const uint8_t tb[] = "\x03one\x03two";
	static const uint8_t tc[] = "\x00\x0asemi;colon";
	ok(first_rdata_is(rrset(z, "a.good.test.", DNS_T_TXT), ta, sizeof(ta) - 1),
	   "TXT with ; ( ) and an escaped quote inside the quotes");
	ok(first_rdata_is(rrset(z, "b.good.test.", DNS_T_TXT), tb, sizeof(tb) - 1),
	   "TXT over two lines in parentheses with comments");
	ok(first_rdata_is(rrset(z, "c.good.test.", DNS_T_TXT), tc, sizeof(tc) - 1),
	   "an empty quoted string and one with a semicolon");
	zone_unref(z);
}

/* Numbers too large for their field are errors (ldns keeps the low bits without a word). */
static void test_integers(void)
{
	static const struct {
		const char *file;
		const char *text;
		const char *needle; /* in the message */
		int line;
	} bad[] = {
		{ "serial.test.zone", "@ SOA ns1 host 4294967296 7200 3600 1209600 60\n@ NS ns1\n",
		  "serial", 1 },
		{ "serial2.test.zone",
		  "@ SOA ns1 host 99999999999 7200 3600 1209600 60\n@ NS ns1\n", "serial", 1 },
		{ "serialneg.test.zone", "@ SOA ns1 host -1 7200 3600 1209600 60\n@ NS ns1\n",
		  "serial", 1 },
		{ "refresh.test.zone", "@ SOA ns1 host 1 4294967296 3600 1209600 60\n@ NS ns1\n",
		  "refresh", 1 },
		{ "retry.test.zone", "@ SOA ns1 host ( 1 7200\n 100000w 1209600 60 )\n@ NS ns1\n",
		  "retry", 1 },
		{ "minimum.test.zone", "@ SOA ns1 host 1 7200 3600 1209600 4294967296\n@ NS ns1\n",
		  "minimum", 1 },
		{ "ttl.test.zone", SOA_NS "www 4294967296 A 192.0.2.1\n", "TTL", 4 },
		{ "ttlunit.test.zone", SOA_NS "www 7102w A 192.0.2.1\n", "TTL", 4 },
		{ "ttlcbt.test.zone", SOA_NS "www IN 4294967296 A 192.0.2.1\n", "TTL", 4 },
		{ "dollarttl.test.zone", "$TTL 4294967296\n" SOA_NS, "$TTL", 1 },
		{ "mx.test.zone", SOA_NS "@ MX 65536 mail\n", "65536", 4 },
		{ "mxneg.test.zone", SOA_NS "@ MX -1 mail\n", "-1", 4 },
		{ "srv.test.zone", SOA_NS "_s._tcp SRV 0 0 65536 ns1\n", "65536", 4 },
		{ "caa.test.zone", SOA_NS "@ CAA 256 issue \"ca.example\"\n", "256", 4 },
	};
	mkdir_in("int");
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char want[128];
		put("int", bad[i].file, bad[i].text);
		const char *e = load_fails("int", bad[i].file);
		snprintf(want, sizeof(want), "%s:%d: ", bad[i].file, bad[i].line);
		ok(starts_with(e, want) && contains(e, bad[i].needle),
		   "%s: out of range, rejected with file, line and \"%s\"", bad[i].file,
		   bad[i].needle);
	}

	put("int", "max.test.zone",
	    "@ SOA ns1 host 4294967295 4294967295 1w 0 2147483647\n@ NS ns1\n"
	    "www 2147483647 A 192.0.2.1\n"
	    "top 2147483648 A 192.0.2.2\n"
	    "@ MX 65535 mail\n"
	    "_s._tcp SRV 65535 65535 65535 ns1\n"
	    "@ CAA 255 issue \"ca.example\"\n");
	char err[1024] = "";
	zone_t *z = NULL;
	int ret = zone_load_file(dirpath("int"), "max.test.zone", &z, err, sizeof(err));
	if (!ok(ret == 0 && z, "the largest value of every field loads")) {
		diag("ret %d: %s", ret, err);
		return;
	}
	ok(z->serial == 4294967295u, "serial 4294967295 (%u)", z->serial);
	const zone_rrset_t *s = rrset(z, "www.max.test.", DNS_T_A);
	ok(s && s->ttl == 2147483647, "TTL 2147483647 kept");
	s = rrset(z, "top.max.test.", DNS_T_A);
	ok(s && s->ttl == 0 && dns_get32(s->wire + 6) == 0,
	   "TTL 2147483648 served as 0 (RFC 2181 8)");
	static const uint8_t mx[] = "\xff\xff\x04mail\x03max\x04test";
	s = rrset(z, "max.test.", DNS_T_MX);
	ok(s && s->len > 14 && memcmp(s->wire + 12, mx, 2) == 0, "MX preference 65535");
	(void)mx;
	zone_unref(z);
}

/* RFC 1035 5.1: [<TTL>] [<class>] or [<class>] [<TTL>]; ldns only takes the first order. */
static void test_class_before_ttl(void)
{
	mkdir_in("cbt");
	put("cbt", "cbt.test.zone",
	    "$TTL 300\n"
	    "@ IN 3600 SOA ns1 hostmaster (\n"
	    "\t1 7200 3600 1209600 60 )\n"
	    "  IN 3600 NS ns1\n"
	    "ns1 IN 60 A 192.0.2.1\n"
	    "cbt in 120 A 192.0.2.2\n"
	    "    IN 1h TXT \"inherited owner\"\n"
	    "ttl 60 IN A 192.0.2.3\n"
	    "cls IN A 192.0.2.4\n"
	    "none A 192.0.2.5\n"
	    "$TTL 0\n"
	    "zero A 192.0.2.6\n"
	    "zero2 IN AAAA 2001:db8::6\n");
	char err[1024] = "";
	zone_t *z = NULL;
	int ret = zone_load_file(dirpath("cbt"), "cbt.test.zone", &z, err, sizeof(err));
	if (!ok(ret == 0 && z, "class before TTL (RFC 1035 5.1) loads")) {
		diag("ret %d: %s", ret, err);
		return;
	}
	const zone_rrset_t *s = rrset(z, "cbt.test.", DNS_T_SOA);
	ok(s && s->ttl == 3600 && z->serial == 1, "@ IN 3600 SOA ( ... ) over two lines");
	s = rrset(z, "cbt.test.", DNS_T_NS);
	ok(s && s->ttl == 3600, "owner omitted, IN 3600 NS");
	s = rrset(z, "ns1.cbt.test.", DNS_T_A);
	ok(s && s->ttl == 60, "ns1 IN 60 A: TTL 60");
	s = rrset(z, "cbt.cbt.test.", DNS_T_A);
	ok(s && s->ttl == 120, "lower-case class: in 120 A");
	s = rrset(z, "cbt.cbt.test.", DNS_T_TXT);
	ok(s && s->ttl == 3600, "owner omitted, IN 1h TXT: TTL 3600");
	s = rrset(z, "ttl.cbt.test.", DNS_T_A);
	ok(s && s->ttl == 60, "TTL before class still works");
	s = rrset(z, "cls.cbt.test.", DNS_T_A);
	ok(s && s->ttl == 300, "class without TTL: $TTL");
	s = rrset(z, "none.cbt.test.", DNS_T_A);
	ok(s && s->ttl == 300, "neither: $TTL");
	s = rrset(z, "zero.cbt.test.", DNS_T_A);
	ok(s && s->ttl == 0, "$TTL 0 gives TTL 0 (ldns alone would take 0 as unset: 3600)");
	s = rrset(z, "zero2.cbt.test.", DNS_T_AAAA);
	ok(s && s->ttl == 0, "$TTL 0 with a class and no TTL");
	zone_unref(z);

	const char *e;
	put("cbt", "chcbt.test.zone", SOA_NS "v CH 60 TXT \"1.0\"\n");
	e = load_fails("cbt", "chcbt.test.zone");
	ok(starts_with(e, "chcbt.test.zone:4: ") && contains(e, "CH") && contains(e, "not IN"),
	   "CH 60 TXT: still rejected as a class other than IN");
	put("cbt", "twottl.test.zone", SOA_NS "v 60 IN 60 A 192.0.2.1\n");
	e = load_fails("cbt", "twottl.test.zone");
	ok(starts_with(e, "twottl.test.zone:4: "), "two TTLs: rejected");
}

/* RFC 6672 2.4: one DNAME per name, none beside a CNAME; names below it are occluded. */
static void test_dname(void)
{
	mkdir_in("dname");
	const char *e;
	put("dname", "dncn.test.zone", SOA_NS "x DNAME y.example.\nx CNAME z.example.\n");
	e = load_fails("dname", "dncn.test.zone");
	ok(starts_with(e, "dncn.test.zone: ") && contains(e, "x.dncn.test.") &&
		   contains(e, "DNAME") && contains(e, "CNAME"),
	   "a DNAME and a CNAME at one name: rejected, naming both");
	put("dname", "dn2.test.zone", SOA_NS "x DNAME y.example.\nx DNAME z.example.\n");
	e = load_fails("dname", "dn2.test.zone");
	ok(starts_with(e, "dn2.test.zone: ") && contains(e, "x.dn2.test.") &&
		   contains(e, "more than one DNAME"),
	   "two DNAMEs at one name: rejected");

	put("dname", "occ.test.zone",
	    SOA_NS "dn DNAME target\ndn TXT \"beside\"\nocc.dn A 192.0.2.9\n"
		   "deep.occ.dn TXT \"deep\"\n*.dn A 192.0.2.8\ntarget A 192.0.2.7\n");
	char err[1024] = "";
	zone_t *z = NULL;
	int ret = zone_load_file(dirpath("dname"), "occ.test.zone", &z, err, sizeof(err));
	if (!ok(ret == 0 && z, "data below a DNAME loads (RFC 6672 2.4: occluded)")) {
		diag("ret %d: %s", ret, err);
		return;
	}
	const zone_node_t *n = node(z, "dn.occ.test.");
	ok(n && (n->flags & ZONE_NODE_DNAME) && rrset(z, "dn.occ.test.", DNS_T_TXT),
	   "the DNAME node keeps its other data");
	ok(!node(z, "occ.dn.occ.test.") && !node(z, "deep.occ.dn.occ.test.") &&
		   !node(z, "*.dn.occ.test."),
	   "names below the DNAME are not found");
	ok(n && !n->wild, "a wildcard below the DNAME is not the DNAME owner's wildcard");
	ok(rrset(z, "target.occ.test.", DNS_T_A) != NULL, "names beside it are");
	zone_unref(z);
}

static unsigned set_count(const zone_set_t *s)
{
	return s ? s->count : 0;
}

static void test_dir(void)
{
	mkdir_in("dir");
	mkdir_in("dir/sub.test.zone"); /* a directory: ignored */
	put("dir", "a.test.zone", SOA_NS "www A 192.0.2.1\n");
	put("dir", "b.test", SOA_NS "www A 192.0.2.2\n");
	put("dir", "broken.test.zone", SOA_NS "www A nope\n");
	/* None of these is read: each would fail if it were. */
	put("dir", ".hidden.test.zone", "garbage\n");
	put("dir", "c.test.zone~", "garbage\n");
	put("dir", "c.test.zone.swp", "garbage\n");
	put("dir", "c.test.zone.tmp", "garbage\n");
	put("dir", "c.test.zone.bak", "garbage\n");
	put("dir", "c.test.zone.dpkg-old", "garbage\n");
	put("dir", "c.test.zone.dpkg-dist", "garbage\n");

	zone_set_t *s1 = NULL;
	unsigned failed = 99;
	int ret = zone_load_dir(dirpath("dir"), NULL, &s1, &failed);
	ok(ret == 0 && s1, "zone_load_dir succeeds");
	ok(failed == 1, "one file failed (%u)", failed);
	ok(set_count(s1) == 2, "two zones loaded (%u)", set_count(s1));
	zone_t *a1 = s1 ? set_get(s1, "a.test.") : NULL;
	ok(a1 != NULL && s1 && set_get(s1, "b.test.") != NULL, "a.test. and b.test. are there");

	/* Break a.test, remove b.test, add c.test: reload with the first set as prev. */
	put("dir", "a.test.zone", SOA_NS "www A 192.0.2.1\nwww CNAME x.test.\n");
	char path[2048];
	snprintf(path, sizeof(path), "%s/b.test", dirpath("dir"));
	unlink(path);
	put("dir", "c.test.zone", SOA_NS);
	zone_set_t *s2 = NULL;
	ret = zone_load_dir(dirpath("dir"), s1, &s2, &failed);
	ok(ret == 0 && s2, "reload succeeds");
	ok(failed == 2, "two files failed on reload (%u)", failed);
	ok(s2 && a1 && set_get(s2, "a.test.") == a1, "broken a.test. keeps its previous version");
	ok(s2 && set_get(s2, "b.test.") == NULL, "removed b.test. is dropped");
	ok(s2 && set_get(s2, "c.test.") != NULL, "new c.test. is loaded");
	ok(set_count(s2) == 2, "two zones after reload (%u)", set_count(s2));

	/* The old set can go first: the kept zone holds its own reference. */
	zone_set_free(s1);
	ok(s2 && set_get(s2, "a.test.") && rrset(set_get(s2, "a.test."), "www.a.test.", DNS_T_A),
	   "kept zone still readable after the old set is freed");
	zone_set_free(s2);

	zone_set_t *s3 = (zone_set_t *)1;
	ret = zone_load_dir(dirpath("nonexistent"), NULL, &s3, NULL);
	ok(ret == -ENOENT && s3 == NULL, "missing directory: -ENOENT");
}

/*
 * Every name of every zone is a node, so its size is the zone's memory: at
 * 1,000,000 names, 8 bytes a node are 8 MB.  Nothing but what the answer
 * path reads belongs in it.
 */
static void test_node_size(void)
{
	if (sizeof(void *) == 8)
		ok(sizeof(zone_node_t) <= 48, "a zone node is 48 bytes at most (%zu)",
		   sizeof(zone_node_t));
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "%s/gslb-zone-load-XXXXXX",
		 getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
	if (!mkdtemp(tmpdir)) {
		printf("Bail out! mkdtemp: %s\n", strerror(errno));
		return 1;
	}
	test_good_zone();
	test_errors();
	test_quotes();
	test_integers();
	test_class_before_ttl();
	test_dname();
	test_dir();
	test_node_size();
	nftw(tmpdir, rm_cb, 16, FTW_DEPTH | FTW_PHYS);
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
