/* SPDX-License-Identifier: MIT */
/* Country and subdivision codes a member may list: the codes a geo file can return for a client. */
#include <stdlib.h>
#include <string.h>

#include "gslb/core.h"
#include "gslb/geo.h"
#include "internal.h"

/*
 * The officially assigned ISO 3166-1 alpha-2 codes (249, as of the ISO 3166
 * Maintenance Agency's list that Debian's iso-codes and tzdata's iso3166.tab
 * carry), plus XK: Kosovo has no ISO code, and MaxMind's GeoIP2 and GeoLite2
 * databases return the user-assigned XK for it.  Not here, on purpose: EU and
 * AP (legacy GeoIP1 "Europe" and "Asia/Pacific"; GeoIP2 gives a continent or
 * registered_country instead, and EU is a --continent), A1/A2/O1 (GeoIP1
 * proxies, satellite, other), and exceptionally reserved codes such as UK
 * (the United Kingdom is GB): a member listing them would never match.
 * Sorted for bsearch(); tests/unit/test_geo.c checks the order.
 */
static const char countries[][3] = {
	"AD", "AE", "AF", "AG", "AI", "AL", "AM", "AO", "AQ", "AR", "AS", "AT", "AU", "AW", "AX",
	"AZ", "BA", "BB", "BD", "BE", "BF", "BG", "BH", "BI", "BJ", "BL", "BM", "BN", "BO", "BQ",
	"BR", "BS", "BT", "BV", "BW", "BY", "BZ", "CA", "CC", "CD", "CF", "CG", "CH", "CI", "CK",
	"CL", "CM", "CN", "CO", "CR", "CU", "CV", "CW", "CX", "CY", "CZ", "DE", "DJ", "DK", "DM",
	"DO", "DZ", "EC", "EE", "EG", "EH", "ER", "ES", "ET", "FI", "FJ", "FK", "FM", "FO", "FR",
	"GA", "GB", "GD", "GE", "GF", "GG", "GH", "GI", "GL", "GM", "GN", "GP", "GQ", "GR", "GS",
	"GT", "GU", "GW", "GY", "HK", "HM", "HN", "HR", "HT", "HU", "ID", "IE", "IL", "IM", "IN",
	"IO", "IQ", "IR", "IS", "IT", "JE", "JM", "JO", "JP", "KE", "KG", "KH", "KI", "KM", "KN",
	"KP", "KR", "KW", "KY", "KZ", "LA", "LB", "LC", "LI", "LK", "LR", "LS", "LT", "LU", "LV",
	"LY", "MA", "MC", "MD", "ME", "MF", "MG", "MH", "MK", "ML", "MM", "MN", "MO", "MP", "MQ",
	"MR", "MS", "MT", "MU", "MV", "MW", "MX", "MY", "MZ", "NA", "NC", "NE", "NF", "NG", "NI",
	"NL", "NO", "NP", "NR", "NU", "NZ", "OM", "PA", "PE", "PF", "PG", "PH", "PK", "PL", "PM",
	"PN", "PR", "PS", "PT", "PW", "PY", "QA", "RE", "RO", "RS", "RU", "RW", "SA", "SB", "SC",
	"SD", "SE", "SG", "SH", "SI", "SJ", "SK", "SL", "SM", "SN", "SO", "SR", "SS", "ST", "SV",
	"SX", "SY", "SZ", "TC", "TD", "TF", "TG", "TH", "TJ", "TK", "TL", "TM", "TN", "TO", "TR",
	"TT", "TV", "TW", "TZ", "UA", "UG", "UM", "US", "UY", "UZ", "VA", "VC", "VE", "VG", "VI",
	"VN", "VU", "WF", "WS", "XK", "YE", "YT", "ZA", "ZM", "ZW",
};

static int code_cmp(const void *a, const void *b)
{
	return strcmp(a, b);
}

bool geo_country_known(const char *cc)
{
	if (!cc || strlen(cc) != 2)
		return false;
	return bsearch(cc, countries, ARRAY_SIZE(countries), sizeof(countries[0]), code_cmp) !=
	       NULL;
}

bool geo_place_code_valid(const char *code)
{
	char cc[3];
	size_t n;

	if (!code || strlen(code) < 2)
		return false;
	memcpy(cc, code, 2);
	cc[2] = '\0';
	if (!geo_country_known(cc))
		return false;
	if (code[2] == '\0')
		return true;
	/* ISO 3166-2: the country, "-", and 1-3 letters or digits ("GB-ENG", "JP-13", "ES-M"). */
	if (code[2] != '-')
		return false;
	n = strlen(code + 3);
	if (n < 1 || n > 3)
		return false;
	for (const char *p = code + 3; *p; p++)
		if (!((*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
			return false;
	return true;
}

size_t geo_country_count(void)
{
	return ARRAY_SIZE(countries);
}

const char *geo_country_at(size_t i)
{
	return i < ARRAY_SIZE(countries) ? countries[i] : NULL;
}
