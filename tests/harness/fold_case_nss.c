/* A name service that folds case, as SSSD, LDAP or winbind may: every
 * getpwnam/getpwnam_r lookup is answered for the lower-case spelling.
 * Preloaded into pamtester by tests/attacks.rs. */
#define _GNU_SOURCE
#include <ctype.h>
#include <dlfcn.h>
#include <pwd.h>
#include <stddef.h>

static void fold(const char *name, char *out, size_t size)
{
	size_t i = 0;
	for (; name[i] != '\0' && i + 1 < size; i++)
		out[i] = (char)tolower((unsigned char)name[i]);
	out[i] = '\0';
}

int getpwnam_r(const char *name, struct passwd *pwd, char *buf, size_t buflen,
	       struct passwd **result)
{
	int (*real)(const char *, struct passwd *, char *, size_t, struct passwd **) =
		(int (*)(const char *, struct passwd *, char *, size_t, struct passwd **))
			dlsym(RTLD_NEXT, "getpwnam_r");
	char low[256];
	fold(name, low, sizeof low);
	return real(low, pwd, buf, buflen, result);
}

struct passwd *getpwnam(const char *name)
{
	struct passwd *(*real)(const char *) =
		(struct passwd * (*)(const char *)) dlsym(RTLD_NEXT, "getpwnam");
	char low[256];
	fold(name, low, sizeof low);
	return real(low);
}
