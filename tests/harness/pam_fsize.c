/*
 * pam_fsize: one authentication with every file write failing, as for a
 * caller who runs a setuid PAM client after `ulimit -f 0` with SIGXFSZ
 * ignored (both survive exec).
 *
 * Usage: pam_fsize SERVICE USER [soft]   (the answer on standard input)
 *
 * With "soft", only the soft limit is set to 0 (the hard one stays), as
 * `ulimit -S -f 0` does: a setuid program can always lift that one.
 *
 * pam_start comes first (pam_wrapper copies the service files then); the
 * limit is set just before pam_authenticate. Prompts and messages go to
 * standard output, then one line with the PAM result.
 */
#define _GNU_SOURCE
#include <security/pam_appl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	struct pam_response *r = calloc((size_t)n, sizeof(*r));
	int i;
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		printf("%s\n", msg[i]->msg);
		if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF || msg[i]->msg_style == PAM_PROMPT_ECHO_ON)
			r[i].resp = strdup((const char *)data);
	}
	*resp = r;
	return PAM_SUCCESS;
}

int main(int argc, char **argv)
{
	char answer[512] = "";
	struct pam_conv c = { conv, answer };
	struct rlimit none = { 0, 0 };
	pam_handle_t *h = NULL;
	int rc;
	if (argc == 4 && strcmp(argv[3], "soft") == 0) {
		if (getrlimit(RLIMIT_FSIZE, &none) != 0) {
			perror("getrlimit");
			return 2;
		}
		none.rlim_cur = 0;
	} else if (argc != 3) {
		fprintf(stderr, "usage: pam_fsize SERVICE USER [soft]\n");
		return 2;
	}
	if (fgets(answer, sizeof answer, stdin) != NULL)
		answer[strcspn(answer, "\n")] = '\0';
	rc = pam_start(argv[1], argv[2], &c, &h);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_start: %d\n", rc);
		return 2;
	}
	signal(SIGXFSZ, SIG_IGN);
	if (setrlimit(RLIMIT_FSIZE, &none) != 0) {
		perror("setrlimit");
		return 2;
	}
	rc = pam_authenticate(h, 0);
	printf("pam_authenticate: %s\n", pam_strerror(h, rc));
	fflush(stdout);
	pam_end(h, rc);
	return rc == PAM_SUCCESS ? 0 : 1;
}
