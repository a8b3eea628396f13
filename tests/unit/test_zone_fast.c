/* SPDX-License-Identifier: MIT */
/*
 * TAP test of the zone loader's fast path against ldns: every zone is loaded
 * twice, with the fast path and with ldns reading every entry, and the two
 * results must be the same zone (every node, every RRset's wire bytes) or
 * the same error message.  Zones: the repository's, a handwritten one with
 * every supported type and form, random zones, and bad entries.
 */
#include <errno.h>
#include <ftw.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "tap.h"

#include "gslb/core.h"
#include "gslb/dns.h"
#include "gslb/zone.h"
#include "../../src/zone/internal.h"

static char tmpdir[256];

static void put(const char *name, const char *text)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	FILE *f = fopen(path, "w");
	if (!f)
		bail_out("cannot write %s: %s", path, strerror(errno));
	fputs(text, f);
	fclose(f);
}

static int rm_cb(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static char why[2300];

static bool sets_same(const zone_rrset_t *a, const zone_rrset_t *b)
{
	if (a->type != b->type || a->count != b->count || a->ttl != b->ttl || a->len != b->len ||
	    a->nfix != b->nfix || !!a->ext != !!b->ext)
		return false;
	if (memcmp(a->wire, b->wire, a->len) != 0)
		return false;
	for (uint32_t i = 0; i < a->nfix; i++)
		if (a->fix[i].off != b->fix[i].off || a->fix[i].kind != b->fix[i].kind)
			return false;
	if (!a->ext)
		return true;
	const zone_rrset_ext_t *x = a->ext, *y = b->ext;
	if (x->nglue != y->nglue || !!x->target_off != !!y->target_off ||
	    !!x->cname_target != !!y->cname_target)
		return false;
	if (x->target_off && memcmp(x->target_off, y->target_off, a->count * sizeof(uint32_t)))
		return false;
	if (x->cname_target) {
		int l = dns_name_len(x->cname_target, DNS_NAME_MAX);
		if (l != dns_name_len(y->cname_target, DNS_NAME_MAX) ||
		    memcmp(x->cname_target, y->cname_target, (size_t)l) != 0)
			return false;
	}
	return true;
}

/* Every node of a is in b with the same data, and b has no other nodes. */
static bool zones_same(const zone_t *a, const zone_t *b)
{
	char name[1024];
	size_t na = 0, nb = 0;

	if (a->nrecords != b->nrecords || a->nrrsets != b->nrrsets || a->serial != b->serial) {
		snprintf(why, sizeof(why), "records %u/%u, RRsets %u/%u, serial %u/%u", a->nrecords,
			 b->nrecords, a->nrrsets, b->nrrsets, a->serial, b->serial);
		return false;
	}
	for (uint32_t i = 0; i < b->table_size; i++)
		nb += b->table[i].node != 0;
	for (uint32_t i = 0; i < a->table_size; i++) {
		if (!a->table[i].node)
			continue;
		const zone_node_t *x = &a->nodes[a->table[i].node - 1];
		na++;
		/* A node keeps the labels above the apex only. */
		uint8_t full[DNS_NAME_MAX];
		size_t rel = x->name_len - a->apex_len;
		memcpy(full, x->name, rel);
		memcpy(full + rel, a->apex, a->apex_len);
		dns_name_to_str(name, sizeof(name), full);
		const zone_node_t *y = zone_node_find(b, full, x->name_len);
		if (!y || x->flags != y->flags || x->nrrsets != y->nrrsets ||
		    !!x->cut != !!y->cut || !!x->wild != !!y->wild) {
			snprintf(why, sizeof(why), "node %s differs", name);
			return false;
		}
		for (uint16_t k = 0; k < x->nrrsets; k++) {
			if (!sets_same(&x->rrsets[k], &y->rrsets[k])) {
				snprintf(why, sizeof(why), "%s type %u differs", name,
					 x->rrsets[k].type);
				return false;
			}
		}
	}
	if (na != nb) {
		snprintf(why, sizeof(why), "%zu nodes against %zu", na, nb);
		return false;
	}
	return true;
}

/*
 * Load dir/fname both ways; ok when both give the same zone or the same
 * error.  Returns the entries the fast path read (-1 when they differ).
 */
static long same_both_ways(const char *dir, const char *fname, const char *what)
{
	char e1[1024], e2[1024];
	zone_t *z1 = NULL, *z2 = NULL;
	size_t nfast = 0;

	e1[0] = e2[0] = 0;
	int r1 = zone_load_file_ex(dir, fname, true, &nfast, &z1, e1, sizeof(e1));
	int r2 = zone_load_file_ex(dir, fname, false, NULL, &z2, e2, sizeof(e2));
	bool same;
	why[0] = 0;
	if (r1 != r2 || strcmp(e1, e2) != 0) {
		snprintf(why, sizeof(why), "fast: %d \"%s\"; ldns: %d \"%s\"", r1, e1, r2, e2);
		same = false;
	} else {
		same = r1 < 0 || zones_same(z1, z2);
	}
	if (getenv("VERBOSE") && r1 < 0)
		diag("%s", e1);
	ok(same, "%s: the same %s both ways (%zu entries on the fast path)", what,
	   r1 < 0 ? "error" : "zone", nfast);
	if (!same)
		diag("  %s", why);
	zone_unref(z1);
	zone_unref(z2);
	return same ? (long)nfast : -1;
}

static void test_repository_zones(void)
{
	static const char *const files[][2] = {
		{ "tests/zones", "example.test.zone" },
		{ "tests/zones", "other.test.zone" },
		{ "zones", "demo.test.zone" },
		{ "zones", "example.com.zone" },
	};
	const char *src = getenv("GSLB_SRCDIR");
	for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
		char dir[1024];
		snprintf(dir, sizeof(dir), "%s/%s", src ? src : ".", files[i][0]);
		long n = same_both_ways(dir, files[i][1], files[i][1]);
		ok(n > 0, "%s: the fast path read some of it", files[i][1]);
	}
}

#define HEAD                                             \
	"$TTL 300\n"                                     \
	"@ IN SOA ns1 hostmaster ( 1 7200 ; a comment\n" \
	"   3600 1209600 60 )\n"                         \
	"@ IN NS ns1\n"                                  \
	"ns1 IN A 192.0.2.1\n"

/* Every type the fast path reads, in every form it takes, beside forms it leaves to ldns. */
static void test_forms(void)
{
	put("forms.test.zone",
	    HEAD "; owners: relative, absolute, @, inherited, upper case, '*', '_', '/'\n"
		 "a A 192.0.2.2\n"
		 "  A 192.0.2.3 ; inherited owner, comment\n"
		 "b.forms.test. 60 A 192.0.2.4\n"
		 "B.Deep.Forms.Test. IN 120 AAAA 2001:DB8::1\n"
		 "@ MX 10 mail\n"
		 "@ TXT apex\n"
		 "* A 192.0.2.5\n"
		 "_sip._tcp SRV 0 5 5060 sip\n"
		 "_sip._tcp SRV 010 05 05061 sip.forms.test.\n"
		 "x/y TXT slash\n"
		 "v4map AAAA ::ffff:192.0.2.1\n"
		 "v6 AAAA 2001:db8:0:0:0:0:0:2\n"
		 "ttl0 0 A 192.0.2.6\n"
		 "ttlu 1h2m A 192.0.2.7\n"
		 "ttlbig 2147483648 A 192.0.2.8\n"
		 "cls in 30 A 192.0.2.9\n"
		 "cls2 30 in a 192.0.2.10\n"
		 "lower cname a\n"
		 "ptr PTR a.example.net.\n"
		 "ptr2 PTR @\n"
		 "ns2 NS @\n"
		 "deleg NS ns.deleg\n"
		 "ns.deleg A 192.0.2.11\n"
		 "deleg2 NS ns.example.net.\n"
		 "mx MX 0 .\n"
		 "mx2 MX 65535 mail.example.net.\n"
		 "txt TXT \"one\" \"two words\" three\n"
		 "txt2 TXT ( \"over\"\n"
		 "           \"two lines\" )\n"
		 "txt3 TXT \"with \\\"escaped\\\" quotes\" \"semi ; colon\" \"(paren)\"\n"
		 "txt4 TXT \"\\065\\066C\" \"\"\n"
		 "txt5 TXT \"tab\there\"\n"
		 "txt6 TXT v=spf1 ip4:192.0.2.0/24 +all,x\n"
		 "caa CAA 0 issue \"ca.example.net\"\n"
		 "caa CAA 128 iodef \"mailto:ops@forms.test\"\n"
		 "caa CAA 0 issuewild \"ca.example.net\"\n"
		 "esc\\.dot A 192.0.2.12\n"
		 "\\065bc A 192.0.2.13\n"
		 "hinfo HINFO \"pc\" \"linux\"\n"
		 "  A 192.0.2.14 ; owner inherited across an ldns entry\n"
		 "sshfp SSHFP 1 1 0123456789abcdef0123456789abcdef01234567\n"
		 "  TXT after-sshfp\n"
		 "$ORIGIN sub.forms.test.\n"
		 "host A 192.0.2.15\n"
		 "@ AAAA 2001:db8::15\n"
		 "cn CNAME host\n"
		 "$ORIGIN deeper\n"
		 "x A 192.0.2.16\n"
		 "  TXT \"below deeper.sub\"\n"
		 "$INCLUDE forms.inc inc.forms.test.\n"
		 "  A 192.0.2.17 ; the owner reverts after $INCLUDE\n"
		 "y TYPE1 \\# 4 c0000212\n"
		 "long.a23456789012345678901234567890123456789012345678901234567890123 A "
		 "192.0.2.18\n"
		 "naptr NAPTR 100 10 \"u\" \"E2U+sip\" \"!^.*$!sip:a@forms.test!\" .\n"
		 "dn DNAME example.net.\n");
	put("forms.inc", "$TTL 77\n"
			 "a A 192.0.2.20\n"
			 "  AAAA 2001:db8::20\n"
			 "@ TXT \"inc apex\"\n");
	long n = same_both_ways(tmpdir, "forms.test.zone", "every form");
	ok(n >= 40, "the fast path read most entries (%ld)", n);
}

/* Random zones: names, types and forms drawn from both paths' share, the owner often inherited. */
static unsigned rnd_state = 1;
static unsigned rnd(unsigned n)
{
	rnd_state = rnd_state * 1103515245u + 12345u;
	return (rnd_state >> 8) % n;
}

static void rnd_label(char *out, size_t cap)
{
	static const char chars[] =
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
	size_t n = 1 + rnd(12);
	size_t k = 0;
	for (size_t i = 0; i < n && k + 5 < cap; i++) {
		if (rnd(40) == 0) {
			k += (size_t)snprintf(out + k, cap - k, "\\%03u", 33 + rnd(90));
			continue;
		}
		out[k++] = chars[rnd(sizeof(chars) - 1)];
	}
	out[k] = 0;
}

static void rnd_name(char *out, size_t cap, bool owner)
{
	char l[64];
	switch (rnd(owner ? 7 : 6)) {
	case 0:
		snprintf(out, cap, "@");
		return;
	case 1:
		rnd_label(l, sizeof(l));
		snprintf(out, cap, "%s.rnd.test.", l);
		return;
	case 2:
		if (!owner) {
			rnd_label(l, sizeof(l));
			snprintf(out, cap, "%s.example.net.", l);
			return;
		}
		/* fall through */
	default: {
		size_t k = 0;
		int labels = 1 + (int)rnd(3);
		for (int i = 0; i < labels; i++) {
			rnd_label(l, sizeof(l));
			k += (size_t)snprintf(out + k, cap - k, "%s%s", i ? "." : "", l);
		}
		return;
	}
	}
}

static void rnd_text(char *out, size_t cap, bool quoted)
{
	static const char chars[] = "abc XYZ 019=:+,./-_;()\\\"\t";
	size_t k = 0;
	if (quoted)
		out[k++] = '"';
	size_t n = rnd(20);
	for (size_t i = 0; i < n && k + 6 < cap; i++) {
		char c = chars[rnd(sizeof(chars) - 1)];
		if (c == '\\' || c == '"') {
			out[k++] = '\\';
			out[k++] = c;
		} else if (!quoted && (c == ' ' || c == ';' || c == '(' || c == ')' || c == '\t')) {
			out[k++] = 'q';
		} else {
			out[k++] = c;
		}
	}
	if (!quoted && k == 0)
		out[k++] = 'w';
	if (quoted)
		out[k++] = '"';
	out[k] = 0;
}

static void rnd_zone(const char *fname, int entries)
{
	size_t cap = (size_t)entries * 200 + 1024;
	char *z = malloc(cap);
	size_t k = (size_t)snprintf(z, cap, "%s", HEAD);
	char owner[300], name[300], t1[64], t2[64];
	int cn = 0;

	for (int i = 0; i < entries; i++) {
		if (rnd(50) == 0) {
			k += (size_t)snprintf(z + k, cap - k, "; comment %d\n", i);
			continue;
		}
		if (rnd(100) == 0) {
			rnd_label(t1, sizeof(t1));
			k += (size_t)snprintf(z + k, cap - k, "$ORIGIN %s.rnd.test.\n", t1);
			continue;
		}
		if (rnd(100) == 0) {
			k += (size_t)snprintf(z + k, cap - k, "$TTL %u\n", rnd(100000));
			continue;
		}
		if (rnd(3) == 0)
			owner[0] = 0; /* inherited */
		else
			rnd_name(owner, sizeof(owner), true);
		const char *ttl = rnd(3) == 0 ? "" : rnd(2) ? "60 " : "2h ";
		const char *cls = rnd(3) == 0 ? "IN " : rnd(8) == 0 ? "in " : "";
		char pre[400];
		if (rnd(2))
			snprintf(pre, sizeof(pre), "%s %s%s", owner, ttl, cls);
		else
			snprintf(pre, sizeof(pre), "%s %s%s", owner, cls, ttl);
		rnd_name(name, sizeof(name), false);
		switch (rnd(13)) {
		case 0:
			k += (size_t)snprintf(z + k, cap - k, "%sA 192.0.%u.%u\n", pre, rnd(256),
					      rnd(256));
			break;
		case 1:
			k += (size_t)snprintf(z + k, cap - k, "%sAAAA 2001:db8:%x::%x\n", pre,
					      rnd(65536), rnd(65536));
			break;
		case 2:
			k += (size_t)snprintf(z + k, cap - k, "%sNS %s\n", pre, name);
			break;
		case 3:
			/* A CNAME stands alone: its own owner, never inherited. */
			k += (size_t)snprintf(z + k, cap - k,
					      "cname%d %s%sCNAME %s\nafter%d A 192.0.2.1\n", cn,
					      ttl, cls, name, cn);
			cn++;
			break;
		case 4:
			k += (size_t)snprintf(z + k, cap - k, "%sPTR %s\n", pre, name);
			break;
		case 5:
			k += (size_t)snprintf(z + k, cap - k, "%sMX %u %s\n", pre,
					      rnd(70000) % 65536, name);
			break;
		case 6:
			k += (size_t)snprintf(z + k, cap - k, "%sSRV %u %u %u %s\n", pre, rnd(100),
					      rnd(100), rnd(65536), name);
			break;
		case 7:
		case 8: {
			rnd_text(t1, sizeof(t1), rnd(3) != 0);
			rnd_text(t2, sizeof(t2), rnd(3) != 0);
			if (rnd(4) == 0)
				k += (size_t)snprintf(z + k, cap - k, "%sTXT ( %s\n  %s )\n", pre,
						      t1, t2);
			else
				k += (size_t)snprintf(z + k, cap - k, "%sTXT %s %s\n", pre, t1, t2);
			break;
		}
		case 9:
			rnd_text(t1, sizeof(t1), true); /* ldns takes a quoted value only */
			k += (size_t)snprintf(z + k, cap - k, "%sCAA %u %s %s\n", pre, rnd(2) * 128,
					      rnd(2) ? "issue" : "iodef", t1);
			break;
		case 10:
			k += (size_t)snprintf(z + k, cap - k, "%sHINFO \"x\" \"y\"\n", pre);
			break;
		case 11:
			k += (size_t)snprintf(z + k, cap - k, "%sTYPE65280 \\# 2 abcd\n", pre);
			break;
		default:
			k += (size_t)snprintf(z + k, cap - k, "%sa 10.%u.%u.%u\n", pre, rnd(256),
					      rnd(256), rnd(256));
			break;
		}
	}
	put(fname, z);
	free(z);
}

static void test_random(void)
{
	long total = 0;
	bool all = true;
	for (unsigned seed = 1; seed <= 40; seed++) {
		char what[64];
		rnd_state = seed;
		rnd_zone("rnd.test.zone", 400);
		snprintf(what, sizeof(what), "random zone %u", seed);
		long n = same_both_ways(tmpdir, "rnd.test.zone", what);
		all = all && n >= 0;
		total += n > 0 ? n : 0;
	}
	ok(all && total > 4000, "random zones: fast path read %ld entries", total);
}

/* Entries that are errors: the fast path must leave them to ldns, whose messages stay. */
static void test_bad(void)
{
	static const char *const bad[] = {
		"www A 192.0.2\n",
		"www A 192.0.2.1 192.0.2.2\n",
		"www A 192.0.2.256\n",
		"www A 01.2.3.4\n",
		"www AAAA 2001:db8::g\n",
		"www AAAA 192.0.2.1\n",
		"www MX mail\n",
		"www MX 65536 mail\n",
		"www MX -1 mail\n",
		"www MX 10\n",
		"www SRV 1 2 mail\n",
		"www SRV 1 2 3 a b\n",
		"www NS a..b\n",
		"www NS a.example.net. extra\n",
		"www CNAME\n",
		"www TXT\n",
		"www TXT \"unterminated\n",
		"www CAA 256 issue \"x\"\n",
		"www CAA 0 iss-ue \"x\"\n",
		"www CAA 0 issue\n",
		"www CAA 0 issue ca.example.net\n",
		"www.example.org. A 192.0.2.1\n",
		"www CH A 192.0.2.1\n",
		"www 60 60 A 192.0.2.1\n",
		"www 4294967296 A 192.0.2.1\n",
		"www 60 IN\n",
		"www A\n",
		"www BOGUS 1\n",
		"www TXT \"a\" )\n",
		"www TXT ( \"a\"\n",
		"a1234567890123456789012345678901234567890123456789012345678901234 A 192.0.2.1\n",
		"www NS a1234567890123456789012345678901234567890123456789012345678901234\n",
		"www SOA ns1 hostmaster 2 1 1 1 1\n",
		"cn CNAME a\ncn A 192.0.2.1\n",
		"cn CNAME a\ncn CNAME b\n",
		"x.y.z.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.i.j.k."
		"l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z."
		"a.b.c.d.e.f.g.h.i.j.k.l.m.n.o.p.q.r.s.t.u.v.w.x.y.z.aaaaaaaaaaaaaaaaaaaaaaaaaaa"
		"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa A 192.0.2.1\n",
	};
	char text[2048];
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char what[128];
		/* Line 7 (after the head's five lines and one fast entry) is the bad one. */
		snprintf(text, sizeof(text), "%sok A 192.0.2.99\n%s", HEAD, bad[i]);
		put("bad.test.zone", text);
		snprintf(what, sizeof(what), "bad entry %zu (%.*s)", i, (int)strcspn(bad[i], "\n"),
			 bad[i]);
		same_both_ways(tmpdir, "bad.test.zone", what);
	}
}

/*
 * zone_finish() builds the nodes in the order their names come; only for
 * an error does it sort them, so the error names the same node as when
 * they were always sorted: the first in name order (shorter names first),
 * not the first in the file.
 */
static void test_error_order(void)
{
	static const struct {
		const char *text, *want;
	} cases[] = {
		{ "zzz CNAME x\nzzz A 192.0.2.1\naaa CNAME y\naaa A 192.0.2.2\n",
		  "order.test.zone: aaa.order.test. has a CNAME and other data" },
		{ "long-name CNAME x\nlong-name A 192.0.2.1\nb CNAME y\nb CNAME z\n",
		  "order.test.zone: b.order.test. has more than one CNAME" },
		{ "d1 DNAME x.example.\nd1 DNAME y.example.\nc CNAME y\nc A 192.0.2.2\n",
		  "order.test.zone: c.order.test. has a CNAME and other data" },
	};
	char text[1024], err[1024];
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		zone_t *z = NULL;
		snprintf(text, sizeof(text), "%s%s", HEAD, cases[i].text);
		put("order.test.zone", text);
		err[0] = 0;
		int r = zone_load_file(tmpdir, "order.test.zone", &z, err, sizeof(err));
		ok(r < 0 && strcmp(err, cases[i].want) == 0,
		   "error %zu names the first in name order", i);
		if (strcmp(err, cases[i].want) != 0)
			diag("  got \"%s\"", err);
		zone_unref(z);
	}
}

/* What a large zone costs a name: a node, an RRset or two, their slot in the table. */
static void test_sizes(void)
{
	ok(sizeof(zone_node_t) <= 32, "a zone node is 32 bytes at most (%zu)", sizeof(zone_node_t));
	ok(sizeof(zone_rrset_t) <= 40, "an RRset is 40 bytes at most (%zu)", sizeof(zone_rrset_t));
	ok(sizeof(zone_slot_t) <= 8, "a table slot is 8 bytes at most (%zu)", sizeof(zone_slot_t));
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_zone_fast.XXXXXX");
	if (!mkdtemp(tmpdir))
		bail_out("mkdtemp: %s", strerror(errno));
	gslb_log_set_level(GSLB_LOG_ERROR);
	test_sizes();
	test_repository_zones();
	test_forms();
	test_random();
	test_bad();
	test_error_order();
	if (!getenv("KEEP"))
		nftw(tmpdir, rm_cb, 8, FTW_DEPTH | FTW_PHYS);
	else
		diag("kept %s", tmpdir);
	return done_testing();
}
