/*
 * pam_inproc: the in-process cost of PAM authentication, for bench/compare.
 *
 * Usage: pam_inproc CODES ITERATIONS CASE...
 *   CASE is CONFDIR:SERVICE:USER:RESETFILE:TEMPLATE, where TEMPLATE may be
 *   empty (no reset) and may use \n for a newline and {prev} for the current
 *   time step minus one, or be @FILE to copy FILE's contents (read once).
 *   Fields are separated by ':' so no field may hold one.
 *   CODES has one "STEP CODE" line per 30-second time step (the same secret
 *   is enrolled for every case), computed ahead by the caller.
 *
 * Each iteration visits every case once, in a freshly shuffled order (fixed
 * seed), so machine noise hits all cases alike and no case always follows the
 * same neighbour (whose disk writeback it would otherwise inherit). A visit:
 *   1. untimed: rewrites RESETFILE with TEMPLATE, in place (pwrite and then
 *      ftruncate to the new length; the inode is kept, so a module that swaps
 *      files keeps its steady state). This undoes the module's replay
 *      protection so that the same code is valid again, identically for every
 *      module that has a state;
 *   2. timed ("total"): pam_start_confdir, pam_authenticate, pam_end, with a
 *      conversation that answers each hidden prompt with the current code;
 *      within it, pam_authenticate alone is timed too ("auth").
 * Output: one line per visit, "CASE_INDEX RESULT AUTH_NS TOTAL_NS".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_CASES 16
#define MAX_CODES 4096

struct bench_case {
	char *confdir, *service, *user, *reset, *template;
	char *pristine; /* contents of the @FILE template, read once */
	size_t pristine_len;
};

static long long code_step[MAX_CODES];
static char code_text[MAX_CODES][16];
static int ncodes;

static long long now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static const char *code_for(long long step)
{
	int i;
	for (i = 0; i < ncodes; i++)
		if (code_step[i] == step)
			return code_text[i];
	fprintf(stderr, "pam_inproc: no code for step %lld (CODES too short)\n", step);
	exit(1);
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	int i;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			r[i].resp = strdup((const char *)data);
	}
	*resp = r;
	return PAM_SUCCESS;
}

/* Expand \n and {prev} in the template. */
static size_t expand(const char *template, long long prev, char *out, size_t cap)
{
	size_t o = 0;
	const char *p = template;
	while (*p != '\0' && o + 32 < cap) {
		if (p[0] == '\\' && p[1] == 'n') {
			out[o++] = '\n';
			p += 2;
		} else if (strncmp(p, "{prev}", 6) == 0) {
			o += (size_t)snprintf(out + o, cap - o, "%lld", prev);
			p += 6;
		} else {
			out[o++] = *p++;
		}
	}
	return o;
}

static void load_pristine(struct bench_case *c)
{
	FILE *f = fopen(c->template + 1, "r");
	long size;
	if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (size = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 ||
	    (c->pristine = malloc((size_t)size + 1)) == NULL ||
	    fread(c->pristine, 1, (size_t)size, f) != (size_t)size) {
		fprintf(stderr, "pam_inproc: cannot read %s\n", c->template + 1);
		exit(1);
	}
	c->pristine_len = (size_t)size;
	fclose(f);
}

static void reset_file(const struct bench_case *c, long long step)
{
	char small[4096];
	const char *buf = small;
	size_t len;
	int fd;
	if (c->template[0] == '\0')
		return;
	if (c->pristine != NULL) {
		buf = c->pristine;
		len = c->pristine_len;
	} else {
		len = expand(c->template, step - 1, small, sizeof(small));
	}
	fd = open(c->reset, O_WRONLY | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0 || pwrite(fd, buf, len, 0) != (ssize_t)len || ftruncate(fd, (off_t)len) != 0) {
		fprintf(stderr, "pam_inproc: reset %s: %s\n", c->reset, strerror(errno));
		exit(1);
	}
	close(fd);
}

static int split_case(char *spec, struct bench_case *c)
{
	char *field[5];
	int i;
	for (i = 0; i < 5; i++) {
		field[i] = spec;
		spec = strchr(spec, ':');
		if (spec == NULL) {
			if (i != 4)
				return -1;
			break;
		}
		if (i < 4)
			*spec++ = '\0';
	}
	c->confdir = field[0];
	c->service = field[1];
	c->user = field[2];
	c->reset = field[3];
	c->template = field[4];
	c->pristine = NULL;
	if (c->template[0] == '@')
		load_pristine(c);
	return 0;
}

int main(int argc, char **argv)
{
	struct bench_case cases[MAX_CASES];
	long i, n;
	int k, ncases, order[MAX_CASES];
	FILE *f;

	if (argc < 4 || argc - 3 > MAX_CASES) {
		fprintf(stderr, "usage: pam_inproc CODES ITERATIONS CONFDIR:SERVICE:USER:RESETFILE:TEMPLATE...\n");
		return 2;
	}
	f = fopen(argv[1], "r");
	if (f == NULL) {
		perror(argv[1]);
		return 2;
	}
	while (ncodes < MAX_CODES && fscanf(f, "%lld %15s", &code_step[ncodes], code_text[ncodes]) == 2)
		ncodes++;
	fclose(f);
	n = atol(argv[2]);
	ncases = argc - 3;
	for (k = 0; k < ncases; k++) {
		if (split_case(argv[3 + k], &cases[k]) != 0) {
			fprintf(stderr, "pam_inproc: bad case %s\n", argv[3 + k]);
			return 2;
		}
	}

	for (k = 0; k < ncases; k++)
		order[k] = k;
	srand(1);
	for (i = 0; i < n; i++) {
		for (k = ncases - 1; k > 0; k--) {
			int j = rand() % (k + 1), t = order[k];
			order[k] = order[j];
			order[j] = t;
		}
		for (k = 0; k < ncases; k++) {
			const struct bench_case *c = &cases[order[k]];
			long long step = (long long)time(NULL) / 30, t0, t1, t2, t3;
			const char *code = code_for(step);
			struct pam_conv pc = { conv, (void *)code };
			pam_handle_t *pamh = NULL;
			int rc;

			reset_file(c, step);
			t0 = now_ns();
			rc = pam_start_confdir(c->service, c->user, &pc, c->confdir, &pamh);
			if (rc != PAM_SUCCESS) {
				fprintf(stderr, "pam_inproc: pam_start_confdir(%s): %d\n", c->service, rc);
				return 1;
			}
			t1 = now_ns();
			rc = pam_authenticate(pamh, 0);
			t2 = now_ns();
			pam_end(pamh, rc);
			t3 = now_ns();
			printf("%d %d %lld %lld\n", order[k], rc, t2 - t1, t3 - t0);
		}
	}
	return 0;
}
