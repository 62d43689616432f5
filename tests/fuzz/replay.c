/* replay.c - runs a fuzz target over every file of the directories given, so
 * that `make test` replays the corpus and every crash ever found.  Prints one
 * PASS line per directory; a crash aborts the process (the runner sees it). */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		printf("FAIL replay: cannot open '%s'\n", path);
		return 1;
	}
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *buf = malloc(n > 0 ? (size_t)n : 1);
	if (!buf || (n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n)) {
		printf("FAIL replay: cannot read '%s'\n", path);
		fclose(f);
		free(buf);
		return 1;
	}
	fclose(f);
	LLVMFuzzerTestOneInput(buf, (size_t)n);
	free(buf);
	return 0;
}

int main(int argc, char **argv)
{
	int bad = 0;
	for (int i = 1; i < argc; i++) {
		DIR *d = opendir(argv[i]);
		int count = 0;
		if (!d)
			continue; /* a target may have no crash files yet */
		struct dirent *de;
		while ((de = readdir(d))) {
			char path[4096];
			struct stat st;
			if (de->d_name[0] == '.')
				continue;
			snprintf(path, sizeof path, "%s/%s", argv[i], de->d_name);
			if (stat(path, &st) || !S_ISREG(st.st_mode))
				continue;
			bad |= run_file(path);
			count++;
		}
		closedir(d);
		printf("%s replay %s: %d file%s\n", bad ? "FAIL" : "PASS", argv[i], count,
		       count == 1 ? "" : "s");
	}
	return bad;
}
