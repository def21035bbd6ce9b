/*
 * pam_conv_modes: one pam_authenticate with a conversation that misbehaves on
 * purpose, for the bad-input matrix (tests/bad_inputs.rs). pamtester can only
 * type lines; this can answer exactly, fail, or hand back nothing.
 *
 * Usage: pam_conv_modes SERVICE USER MODE [ANSWER]
 *   (run under pam_wrapper: LD_PRELOAD=libpam_wrapper.so PAM_WRAPPER=1
 *    PAM_WRAPPER_SERVICE_DIR=DIR, like pamtester in the other tests)
 *
 * MODE, for hidden prompts (PAM_PROMPT_ECHO_OFF):
 *   answer      reply with a malloc'd copy of ANSWER (any length)
 *   conv-error  return PAM_CONV_ERR and no responses
 *   null-reply  return PAM_SUCCESS with a response whose string is NULL
 *   null-array  return PAM_SUCCESS and no response array at all (*resp = NULL)
 *   answer-all  reply ANSWER to every prompt, echo on or off, and print
 *               "prompt echo=on|off: TEXT" to stderr for each
 * Informational and error messages are printed to stderr and get a response
 * with a NULL string, as ordinary applications do.
 *
 * Prints "pam_authenticate=<code> (<pam_strerror>)" and exits 0 only on PAM_SUCCESS.
 */
#include <security/pam_appl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mode {
	const char *name;
	const char *answer;
};

static int conv(int n, const struct pam_message **msg, struct pam_response **resp, void *data)
{
	const struct mode *m = data;
	struct pam_response *r;
	int i, hidden = 0;

	int all = strcmp(m->name, "answer-all") == 0;

	for (i = 0; i < n; i++) {
		if (all && (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
			    msg[i]->msg_style == PAM_PROMPT_ECHO_ON))
			fprintf(stderr, "prompt echo=%s: %s\n",
				msg[i]->msg_style == PAM_PROMPT_ECHO_ON ? "on" : "off",
				msg[i]->msg ? msg[i]->msg : "(null)");
		else if (msg[i]->msg_style == PAM_PROMPT_ECHO_OFF)
			hidden = 1;
		else
			fprintf(stderr, "conv message: %s\n", msg[i]->msg ? msg[i]->msg : "(null)");
	}
	if (hidden && strcmp(m->name, "conv-error") == 0)
		return PAM_CONV_ERR;
	if (hidden && strcmp(m->name, "null-array") == 0) {
		*resp = NULL;
		return PAM_SUCCESS;
	}
	if (n <= 0 || n > PAM_MAX_NUM_MSG)
		return PAM_CONV_ERR;
	r = calloc((size_t)n, sizeof(*r));
	if (r == NULL)
		return PAM_BUF_ERR;
	for (i = 0; i < n; i++) {
		int prompt = msg[i]->msg_style == PAM_PROMPT_ECHO_OFF ||
			     (all && msg[i]->msg_style == PAM_PROMPT_ECHO_ON);
		if (prompt && (strcmp(m->name, "answer") == 0 || all)) {
			r[i].resp = strdup(m->answer);
			if (r[i].resp == NULL) {
				free(r);
				return PAM_BUF_ERR;
			}
		}
	}
	*resp = r;
	return PAM_SUCCESS;
}

int main(int argc, char **argv)
{
	pam_handle_t *pamh = NULL;
	struct mode m;
	struct pam_conv c = { conv, &m };
	int rc;

	if (argc < 4 || argc > 5) {
		fprintf(stderr, "usage: pam_conv_modes SERVICE USER MODE [ANSWER]\n");
		return 2;
	}
	m.name = argv[3];
	m.answer = argc == 5 ? argv[4] : "";
	if (strcmp(m.name, "answer") != 0 && strcmp(m.name, "conv-error") != 0 &&
	    strcmp(m.name, "null-reply") != 0 && strcmp(m.name, "null-array") != 0 &&
	    strcmp(m.name, "answer-all") != 0) {
		fprintf(stderr, "unknown mode %s\n", m.name);
		return 2;
	}
	rc = pam_start(argv[1], argv[2], &c, &pamh);
	if (rc != PAM_SUCCESS) {
		fprintf(stderr, "pam_start: %d\n", rc);
		return 2;
	}
	rc = pam_authenticate(pamh, 0);
	printf("pam_authenticate=%d (%s)\n", rc, pam_strerror(pamh, rc));
	pam_end(pamh, rc);
	return rc == PAM_SUCCESS ? 0 : 1;
}
