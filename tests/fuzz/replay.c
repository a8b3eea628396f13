/* SPDX-License-Identifier: MIT */
/* Runs a libFuzzer entry point over saved inputs (corpus directories or files), printing TAP. */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define INPUT_MAX (1 << 20) /* libFuzzer's default -max_len is far below this */

static int tests;

/* Feed one file to the entry point; returns 0, or -1 when it cannot be read. */
static int replay_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return -1;
	uint8_t *buf = malloc(INPUT_MAX);
	size_t n = buf ? fread(buf, 1, INPUT_MAX, f) : 0;
	int ret = buf && !ferror(f) ? 0 : -1;
	fclose(f);
	if (ret == 0) {
		/* An exact-size copy, so reads past the end trip ASan/valgrind. */
		uint8_t *in = malloc(n ? n : 1);
		if (n)
			memcpy(in, buf, n);
		LLVMFuzzerTestOneInput(in, n);
		free(in);
	}
	free(buf);
	return ret;
}

static int name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Every regular file of dir, in name order: one TAP line per 100 files and one at the end. */
static int replay_dir(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d) {
		printf("not ok %d - %s: %s\n", ++tests, dir, strerror(errno));
		return 1;
	}
	char **names = NULL;
	size_t count = 0, cap = 0;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (e->d_name[0] == '.')
			continue;
		if (count == cap) {
			cap = cap ? cap * 2 : 64;
			names = realloc(names, cap * sizeof(*names));
			if (!names)
				abort();
		}
		names[count++] = strdup(e->d_name);
	}
	closedir(d);
	qsort(names, count, sizeof(*names), name_cmp);

	int failed = 0;
	size_t done = 0, batch_start = 0;
	for (size_t i = 0; i < count; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) < 0) {
				printf("not ok %d - %s: cannot read\n", ++tests, path);
				failed = 1;
			}
			done++;
		}
		if (done && done % 100 == 0 && i + 1 < count) {
			printf("ok %d - %s: inputs %zu-%zu\n", ++tests, dir, batch_start + 1, done);
			fflush(stdout);
			batch_start = done;
		}
		free(names[i]);
	}
	free(names);
	printf("%sok %d - %s: %zu inputs replayed without a crash\n", done ? "" : "not ", ++tests,
	       dir, done);
	fflush(stdout);
	return failed || !done;
}

int main(int argc, char **argv)
{
	int failed = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: %s DIR|FILE...\n", argv[0]);
		return 2;
	}
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) == 0 && S_ISDIR(st.st_mode)) {
			failed |= replay_dir(argv[i]);
		} else if (replay_file(argv[i]) == 0) {
			printf("ok %d - %s\n", ++tests, argv[i]);
		} else {
			printf("not ok %d - %s: cannot read\n", ++tests, argv[i]);
			failed = 1;
		}
		fflush(stdout);
	}
	printf("1..%d\n", tests);
	return failed;
}
