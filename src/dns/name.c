/* SPDX-License-Identifier: MIT */
/* Wire-format domain name helpers: validation, case folding, comparison, text conversion. */
#include "gslb/dns.h"

#include <stdio.h>
#include <string.h>

int dns_name_len(const uint8_t *buf, size_t len)
{
	size_t pos = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t l = buf[pos];
		if (l == 0)
			break;
		/* RFC 1035 4.1.4: the top two bits mark a pointer (or are reserved). */
		if (l > DNS_LABEL_MAX)
			return -1;
		pos += 1 + (size_t)l;
		if (pos >= DNS_NAME_MAX)
			return -1;
	}
	return (int)pos + 1;
}

size_t dns_name_lower(uint8_t *dst, const uint8_t *name)
{
	size_t pos = 0;
	for (;;) {
		uint8_t l = name[pos];
		dst[pos++] = l;
		if (l == 0)
			return pos;
		for (uint8_t i = 0; i < l; i++, pos++)
			dst[pos] = dns_lower(name[pos]);
	}
}

int dns_name_labels(const uint8_t *name)
{
	int n = 0;
	while (*name) {
		name += 1 + *name;
		n++;
	}
	return n;
}

bool dns_name_eq(const uint8_t *a, const uint8_t *b)
{
	for (;;) {
		if (*a != *b)
			return false;
		uint8_t l = *a;
		if (l == 0)
			return true;
		a++;
		b++;
		for (uint8_t i = 0; i < l; i++)
			if (dns_lower(a[i]) != dns_lower(b[i]))
				return false;
		a += l;
		b += l;
	}
}

int dns_name_from_str(uint8_t *dst, const char *s)
{
	size_t pos = 0;
	if (strcmp(s, ".") == 0) {
		dst[0] = 0;
		return 1;
	}
	while (*s) {
		size_t lab = pos++;
		uint8_t l = 0;
		while (*s && *s != '.') {
			int c = (unsigned char)*s++;
			if (c == '\\') {
				if (s[0] >= '0' && s[0] <= '9' && s[1] >= '0' && s[1] <= '9' &&
				    s[2] >= '0' && s[2] <= '9') {
					c = (s[0] - '0') * 100 + (s[1] - '0') * 10 + (s[2] - '0');
					if (c > 255)
						return -1;
					s += 3;
				} else if (*s) {
					c = (unsigned char)*s++;
				} else {
					return -1;
				}
			}
			if (l == DNS_LABEL_MAX || pos + 1 >= DNS_NAME_MAX)
				return -1;
			dst[pos++] = (uint8_t)c;
			l++;
		}
		if (l == 0)
			return -1; /* empty label: ".." or a leading dot */
		dst[lab] = l;
		if (*s == '.')
			s++;
	}
	dst[pos++] = 0;
	return (int)pos;
}

void dns_name_to_str(char *dst, size_t cap, const uint8_t *name)
{
	size_t o = 0;
	if (cap == 0)
		return;
	if (*name == 0) {
		snprintf(dst, cap, ".");
		return;
	}
	while (*name) {
		uint8_t l = *name++;
		for (uint8_t i = 0; i < l; i++) {
			uint8_t c = name[i];
			char tmp[5];
			if (c == '.' || c == '\\' || c == '"' || c == '(' || c == ')' || c == ';' ||
			    c == '@' || c == '$')
				snprintf(tmp, sizeof(tmp), "\\%c", c);
			else if (c <= ' ' || c >= 127)
				snprintf(tmp, sizeof(tmp), "\\%03u", c);
			else
				snprintf(tmp, sizeof(tmp), "%c", c);
			size_t tl = strlen(tmp);
			if (o + tl + 2 > cap)
				goto out;
			memcpy(dst + o, tmp, tl);
			o += tl;
		}
		name += l;
		dst[o++] = '.';
	}
out:
	dst[o < cap ? o : cap - 1] = 0;
}

int dns_name_unpack(const uint8_t *m, size_t len, size_t pos, uint8_t *out)
{
	size_t n = 0;
	for (;;) {
		if (pos >= len)
			return -1;
		uint8_t l = m[pos];
		if ((l & 0xc0) == 0xc0) {
			if (len - pos < 2 || (size_t)(dns_get16(m + pos) & 0x3fff) >= pos)
				return -1;
			pos = dns_get16(m + pos) & 0x3fff; /* the offset of a compression pointer */
			continue;
		}
		if (l & 0xc0 || n + 1 + l > DNS_NAME_MAX || len - pos < 1 + (size_t)l)
			return -1;
		memcpy(out + n, m + pos, 1 + (size_t)l);
		n += 1 + (size_t)l;
		pos += 1 + (size_t)l;
		if (l == 0)
			return (int)n;
	}
}
