/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of health by quorum (README "Two or more nameservers"): how this node's verdict and
 * the other nodes' votes make the effective state, and the quorum's part of a target key.
 */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/db.h"
#include "gslb/health.h"
#include "gslb/targets.h"
#include "tap.h"

static const char *const quorum_names[] = { "majority", "any", "all", "local" };

/* The votes of n other nodes in the given slots; bit i of down_mask: slots[i] says down. */
static health_votes_t votes_of(const unsigned *slots, unsigned n, unsigned down_mask)
{
	health_votes_t v = { 0, 0 };
	for (unsigned i = 0; i < n; i++) {
		v.voters |= 1ull << slots[i];
		if (down_mask & (1u << i))
			v.downs |= 1ull << slots[i];
	}
	return v;
}

/*
 * What the contract says, counted the plain way: reporters are this node and every voter,
 * downs those of them that say down.  Written out case by case so that it does not share a
 * formula with the code under test.
 */
static bool expected(enum health_quorum q, bool self_up, unsigned nremote, unsigned remote_downs)
{
	unsigned reporters = nremote + 1, downs = remote_downs + (self_up ? 0 : 1);
	switch (q) {
	case HEALTH_QUORUM_MAJORITY:
		/* Down only with a strict majority: a tie (2 of 4, 1 of 2) stays up. */
		return !(downs * 2 > reporters);
	case HEALTH_QUORUM_ANY:
		return downs == 0;
	case HEALTH_QUORUM_ALL:
		return downs < reporters;
	case HEALTH_QUORUM_LOCAL:
		return self_up;
	}
	return true;
}

/* Every policy x 1..5 reporters x every mix of votes (this node up or down, any remote subset). */
static void test_exhaustive(void)
{
	/* Slots spread over the 64 bits, so a slot's bit position does not matter. */
	static const unsigned slots[] = { 0, 63, 17, 32, 5 };

	for (unsigned q = 0; q < 4; q++) {
		for (unsigned reporters = 1; reporters <= 5; reporters++) {
			unsigned nremote = reporters - 1, bad = 0, cases = 0;
			for (int self_up = 0; self_up < 2; self_up++) {
				for (unsigned mask = 0; mask < (1u << nremote); mask++) {
					health_votes_t v = votes_of(slots, nremote, mask);
					unsigned rd = (unsigned)__builtin_popcount(mask);
					bool want = expected(q, self_up, nremote, rd);
					bool got = health_effective_up(q, self_up, &v);
					cases++;
					if (got != want && bad++ < 3)
						diag("  %s, %u reporters, self %s, %u remote down: "
						     "got %s",
						     quorum_names[q], reporters,
						     self_up ? "up" : "down", rd,
						     got ? "up" : "down");
				}
			}
			is_int(bad, 0, "%s with %u reporter(s): all %u mixes of votes",
			       quorum_names[q], reporters, cases);
		}
	}
}

static bool eff(enum health_quorum q, bool self_up, unsigned nremote, unsigned remote_downs)
{
	static const unsigned slots[] = { 3, 9, 40, 41, 62 };
	health_votes_t v = votes_of(slots, nremote, (1u << remote_downs) - 1);
	return health_effective_up(q, self_up, &v);
}

/* The cases the contract names, written out. */
static void test_named(void)
{
	const health_votes_t none = { 0, 0 };

	/* Only this node reports (standalone, or nobody else votes on the target). */
	for (unsigned q = 0; q < 4; q++) {
		ok(health_effective_up(q, true, &none) && !health_effective_up(q, false, &none),
		   "%s, only this node: its own verdict", quorum_names[q]);
		ok(health_effective_up(q, true, NULL) && !health_effective_up(q, false, NULL),
		   "%s, no votes at all (NULL): its own verdict", quorum_names[q]);
	}

	ok(!eff(HEALTH_QUORUM_MAJORITY, true, 2, 2), "majority of 3: up here, 2 others down: down");
	ok(eff(HEALTH_QUORUM_MAJORITY, true, 2, 1), "majority of 3: up here, 1 other down: up");
	ok(!eff(HEALTH_QUORUM_MAJORITY, false, 2, 1),
	   "majority of 3: down here, 1 other down: down");
	ok(eff(HEALTH_QUORUM_MAJORITY, false, 2, 0), "majority of 3: only this node down: up");
	ok(eff(HEALTH_QUORUM_MAJORITY, false, 1, 0), "majority of 2: a tie (1 of 2) stays up");
	ok(eff(HEALTH_QUORUM_MAJORITY, true, 1, 1),
	   "majority of 2: the other node down: a tie, up");
	ok(!eff(HEALTH_QUORUM_MAJORITY, false, 1, 1), "majority of 2: both down: down");
	ok(eff(HEALTH_QUORUM_MAJORITY, false, 3, 1), "majority of 4: 2 of 4 is a tie: up");
	ok(!eff(HEALTH_QUORUM_MAJORITY, false, 3, 2), "majority of 4: 3 of 4: down");
	ok(eff(HEALTH_QUORUM_MAJORITY, true, 4, 2), "majority of 5: 2 of 5: up");
	ok(!eff(HEALTH_QUORUM_MAJORITY, true, 4, 3), "majority of 5: 3 of 5: down");

	ok(!eff(HEALTH_QUORUM_ANY, true, 4, 1), "any of 5: one other down: down");
	ok(!eff(HEALTH_QUORUM_ANY, false, 4, 0), "any of 5: only this node down: down");
	ok(eff(HEALTH_QUORUM_ANY, true, 4, 0), "any of 5: nobody down: up");

	ok(eff(HEALTH_QUORUM_ALL, true, 2, 2), "all of 3: up here, the others down: up");
	ok(eff(HEALTH_QUORUM_ALL, false, 2, 1), "all of 3: one still up: up");
	ok(!eff(HEALTH_QUORUM_ALL, false, 2, 2), "all of 3: every one down: down");

	ok(eff(HEALTH_QUORUM_LOCAL, true, 4, 4), "local: up here, 4 others down: up");
	ok(!eff(HEALTH_QUORUM_LOCAL, false, 4, 0), "local: down here, 4 others up: down");

	/* A down bit of a slot that is not a voter is no vote. */
	health_votes_t stray = { .voters = 1ull << 1, .downs = (1ull << 1) | (1ull << 2) };
	ok(!health_effective_up(HEALTH_QUORUM_ALL, false, &stray),
	   "all: down bits outside voters are ignored (1 voter down, this node down: down)");
	health_votes_t stray2 = { .voters = 1ull << 1, .downs = 1ull << 2 };
	ok(health_effective_up(HEALTH_QUORUM_ANY, true, &stray2),
	   "any: a down bit of a slot that does not vote counts for nothing");

	/* All 64 slots vote. */
	health_votes_t full = { .voters = ~0ull, .downs = 0xffffffffull };
	ok(health_effective_up(HEALTH_QUORUM_MAJORITY, true, &full),
	   "majority of 65: 32 down is not more than half");
	ok(!health_effective_up(HEALTH_QUORUM_MAJORITY, false, &full),
	   "majority of 65: 33 down is more than half");
	health_votes_t alldown = { .voters = ~0ull, .downs = ~0ull };
	ok(health_effective_up(HEALTH_QUORUM_ALL, true, &alldown) &&
		   !health_effective_up(HEALTH_QUORUM_ALL, false, &alldown),
	   "all of 65: down only when this node too says down");

	ok(!eff(HEALTH_QUORUM_MAJORITY + 7, true, 2, 2) &&
		   eff(HEALTH_QUORUM_MAJORITY + 7, true, 2, 1),
	   "an unknown quorum value counts as majority");
}

static void set_v4(health_check_conf_t *c, const char *a, unsigned port)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&c->addr;
	memset(&c->addr, 0, sizeof(c->addr));
	s4->sin_family = AF_INET;
	s4->sin_port = htons((uint16_t)port);
	inet_pton(AF_INET, a, &s4->sin_addr);
}

/* The quorum in the key: after "fall N", before "match", absent for majority. */
static void test_keys(void)
{
	health_check_conf_t c;
	char k[HEALTH_KEY_MAX];

	memset(&c, 0, sizeof(c));
	c.type = HEALTH_TCP;
	set_v4(&c, "192.0.2.1", 25);
	c.quorum = HEALTH_QUORUM_MAJORITY;
	ok(!strcmp(health_target_key(&c, k, sizeof(k)), "tcp 192.0.2.1:25"),
	   "majority (the default) is not in the key (%s)", k);
	c.quorum = HEALTH_QUORUM_ANY;
	ok(!strcmp(health_target_key(&c, k, sizeof(k)), "tcp 192.0.2.1:25 quorum any"),
	   "tcp, any (%s)", k);
	c.quorum = HEALTH_QUORUM_ALL;
	ok(!strcmp(health_target_key(&c, k, sizeof(k)), "tcp 192.0.2.1:25 quorum all"),
	   "tcp, all (%s)", k);
	c.quorum = HEALTH_QUORUM_LOCAL;
	ok(!strcmp(health_target_key(&c, k, sizeof(k)), "tcp 192.0.2.1:25 quorum local"),
	   "tcp, local (%s)", k);
	c.quorum = 9;
	ok(!strcmp(health_target_key(&c, k, sizeof(k)), "tcp 192.0.2.1:25"),
	   "an unknown quorum value is majority's key (%s)", k);
	char p[HEALTH_KEY_MAX];
	c.quorum = HEALTH_QUORUM_ANY;
	ok(!strcmp(health_probe_key(&c, p, sizeof(p)), "tcp 192.0.2.1:25"),
	   "the probe key does not name the quorum (%s)", p);

	memset(&c, 0, sizeof(c));
	c.type = HEALTH_HTTP;
	set_v4(&c, "192.0.2.1", 80);
	c.host = "www.example.com";
	c.path = "/health";
	c.interval_ms = 5000;
	c.rise = 1;
	c.fall = 5;
	c.match = "ok";
	const char *base = "http 192.0.2.1:80 www.example.com/health interval 5s rise 1 fall 5";
	static const struct {
		uint8_t q;
		const char *tail;
	} want[] = {
		{ HEALTH_QUORUM_MAJORITY, " match \"ok\"" },
		{ HEALTH_QUORUM_ANY, " quorum any match \"ok\"" },
		{ HEALTH_QUORUM_ALL, " quorum all match \"ok\"" },
		{ HEALTH_QUORUM_LOCAL, " quorum local match \"ok\"" },
	};
	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
		char exp[HEALTH_KEY_MAX];
		c.quorum = want[i].q;
		snprintf(exp, sizeof(exp), "%s%s", base, want[i].tail);
		ok(!strcmp(health_target_key(&c, k, sizeof(k)), exp),
		   "http, %s: after fall, before match (%s)", quorum_names[want[i].q], k);
	}
	c.match = NULL;
	c.quorum = HEALTH_QUORUM_ALL;
	ok(!strcmp(health_target_key(&c, k, sizeof(k)),
		   "http 192.0.2.1:80 www.example.com/health interval 5s rise 1 fall 5 quorum all"),
	   "http, all, no match: the quorum ends the key (%s)", k);

	/* Two checks that differ only in their quorum are two targets. */
	char k2[HEALTH_KEY_MAX];
	c.quorum = HEALTH_QUORUM_ANY;
	health_target_key(&c, k, sizeof(k));
	c.quorum = HEALTH_QUORUM_MAJORITY;
	ok(strcmp(health_target_key(&c, k2, sizeof(k2)), k) != 0,
	   "the quorum makes a target of its own");
}

/* A configured check's quorum reaches what gslbd probes, and so its key (src/server/targets.c). */
static void test_configured(void)
{
	db_check_t dc = { .type = DB_CHECK_TCP, .port = 25 };
	db_pool_t p = { .name = "www.example.com." };
	health_check_conf_t hc;
	char host[HEALTH_HOST_MAX + 1], k[HEALTH_KEY_MAX];

	for (unsigned q = DB_QUORUM_MAJORITY; q <= DB_QUORUM_LOCAL; q++) {
		dc.quorum = (uint8_t)q;
		int rc = server_targets_check_conf(&p, &dc, "192.0.2.7", &hc, host, sizeof(host));
		char want[64];
		snprintf(want, sizeof(want), "tcp 192.0.2.7:25%s%s", q ? " quorum " : "",
			 q ? quorum_names[q] : "");
		ok(rc == 0 && hc.quorum == q && !strcmp(health_target_key(&hc, k, sizeof(k)), want),
		   "a check with quorum %s is probed with it (%s)", db_quorum_name((int)q), k);
	}
}

int main(void)
{
	test_configured();
	test_exhaustive();
	test_named();
	test_keys();
	return done_testing();
}
