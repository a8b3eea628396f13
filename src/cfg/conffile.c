/* SPDX-License-Identifier: MIT */
/* The reader of gslbd's configuration file, shared by gslbd -c and gslbctl -c. */

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "gslb/conffile.h"

static char *trim(char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	size_t n = strlen(s);
	while (n && isspace((unsigned char)s[n - 1]))
		s[--n] = '\0';
	return s;
}

/*
 * The value of a line: a quoted one taken as is, else cut at a '#' that
 * starts a word (so "a#b" keeps its '#').  NULL for an unbalanced quote.
 */
static char *value_of(char *value)
{
	if (*value == '"') {
		char *end = strrchr(value + 1, '"');
		if (!end || trim(end + 1)[0] != '\0')
			return NULL;
		*end = '\0';
		return value + 1;
	}
	for (char *p = value; *p; p++)
		if (*p == '#' && (p == value || isspace((unsigned char)p[-1]))) {
			*p = '\0';
			break;
		}
	return trim(value);
}

int cfg_conffile_read(const char *path, cfg_conffile_cb cb, void *arg, char *err, size_t errlen)
{
	err[0] = '\0';
	FILE *f = fopen(path, "r");
	if (!f) {
		int ret = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-ret));
		return ret;
	}
	char line[4096];
	int lineno = 0, ret = 0;
	while (fgets(line, sizeof(line), f)) {
		lineno++;
		size_t len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line too long", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		char *s = trim(line);
		if (*s == '\0' || *s == '#')
			continue;
		char *eq = strchr(s, '=');
		if (!eq) {
			snprintf(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		*eq = '\0';
		char *name = trim(s), *value = value_of(trim(eq + 1));
		if (!value) {
			snprintf(err, errlen, "%s:%d: unbalanced '\"'", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		if (*name == '\0') {
			snprintf(err, errlen, "%s:%d: expected 'name = value'", path, lineno);
			ret = -EINVAL;
			goto out;
		}
		char where[512];
		snprintf(where, sizeof(where), "%s:%d: %s", path, lineno, name);
		if (*value == '\0') {
			snprintf(err, errlen, "%s: empty value", where);
			ret = -EINVAL;
			goto out;
		}
		ret = cb(arg, name, value, where);
		if (ret < 0)
			goto out;
	}
	if (ferror(f)) {
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		ret = -EIO;
	}
out:
	fclose(f);
	return ret;
}
