/* SPDX-License-Identifier: MIT */
/* gslbd's configuration file (gslbd -c, gslbctl -c): one reader, so both see the same syntax. */
#pragma once

#include <stddef.h>

/* Room for any message of cfg_conffile_read(): a path, a line number and the reason. */
#define CFG_CONFFILE_ERR_MAX 1024

/*
 * One "name = value" entry: name and value (quotes and comments removed,
 * never empty), and where, "PATH:LINE: NAME", for the callback's messages.
 * Returns 0 to go on, or a negative code to stop the reading, which
 * cfg_conffile_read() then returns (the callback has reported why).
 */
typedef int (*cfg_conffile_cb)(void *arg, const char *name, const char *value, const char *where);

/**
 * Read the configuration file at path, calling cb(arg, ...) for each entry
 * in file order.  The syntax (gslbd(8), "CONFIGURATION FILE"): one
 * "name = value" a line; blank lines and lines starting with '#' are
 * skipped; a '#' after a blank starts a comment; a value in double quotes
 * is taken as is (for one holding '#' or edge blanks); a line is at most
 * 4094 characters.  Returns 0; -EINVAL with "PATH:LINE: what" in err for
 * a syntax error; a negative errno value with "cannot read PATH: why" in
 * err when the file cannot be read; or cb's code (err empty).
 */
int cfg_conffile_read(const char *path, cfg_conffile_cb cb, void *arg, char *err, size_t errlen);
