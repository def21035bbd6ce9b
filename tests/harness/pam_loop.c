/*
 * pam_loop: many authentications in one process, for the leak check.
 *
 * Usage: pam_loop CONFDIR SERVICE USER CODE STATEFILE ITERATIONS
 *
 * Each iteration runs pam_start_confdir, pam_authenticate and pam_end with a
 * conversation that answers every hidden prompt with a fresh malloc'd copy of
 * CODE, as real applications do. STATEFILE is removed before each attempt so
 * the same code is accepted every time.
 *
 * This program defines free(), which interposes on the module's calls to it:
 * when the reply string it handed out is freed, it checks that the bytes were
 * wiped first. At the end it prints one line of counts and the RSS growth.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern void __libc_free(void *);

static char *reply;       /* the reply string currently owned by the module */
static size_t reply_len;
static long handed, freed, wiped;

void free(void *p)
{
	if (p != NULL && p == reply) {
		size_t i, nonzero = 0;
		for (i = 0; i < reply_len; i++)
			nonzero |= (unsigned char)reply[i];
		freed++;
		if (nonzero == 0)
			wiped++;
		reply = NULL;
	}
	__libc_free(p);
}

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	int i;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF) {
			r[i].resp = strdup((const char *)data);
			reply = r[i].resp;
			reply_len = strlen(reply);
			handed++;
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

static long rss_kb(void)
{
	long pages = 0, rss = 0;
	FILE *f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%ld %ld", &pages, &rss) != 2)
			rss = 0;
		fclose(f);
	}
	return rss * (sysconf(_SC_PAGESIZE) / 1024);
}

int main(int argc, char **argv)
{
	long i, n, ok = 0, rss_warm = 0;
	const long warmup = 200;
	if (argc != 7) {
		fprintf(stderr, "usage: pam_loop CONFDIR SERVICE USER CODE STATEFILE ITERATIONS\n");
		return 2;
	}
	n = atol(argv[6]);
	for (i = 0; i < n; i++) {
		pam_handle_t *pamh = NULL;
		struct pam_conv c = { conv, argv[4] };
		int rc;
		unlink(argv[5]);
		rc = pam_start_confdir(argv[2], argv[3], &c, argv[1], &pamh);
		if (rc != PAM_SUCCESS) {
			fprintf(stderr, "pam_start_confdir: %d\n", rc);
			return 1;
		}
		if (pam_authenticate(pamh, 0) == PAM_SUCCESS)
			ok++;
		pam_end(pamh, PAM_SUCCESS);
		if (i + 1 == warmup)
			rss_warm = rss_kb();
	}
	printf("iterations=%ld success=%ld handed=%ld freed=%ld wiped=%ld rss_warm_kb=%ld rss_end_kb=%ld\n",
	       n, ok, handed, freed, wiped, rss_warm, rss_kb());
	return 0;
}
