/* SPDX-License-Identifier: MIT */
/*
 * The four health-loop functions src/health/probe.c calls back, replaced for the programs that
 * drive the probe's HTTP parser alone (tests/unit/test_health_state.c, test_probe_judgement.c and
 * tests/fuzz/fuzz_http.c): the parser under test reports its verdict into these.
 */
#pragma once

#include <stdbool.h>

/* Verdicts reported since the caller last set it to 0. */
extern unsigned probe_stub_reports;
/* The last verdict and its reason ("" when the parser gave none: a bug the callers check for). */
extern bool probe_stub_ok;
extern char probe_stub_reason[512];
