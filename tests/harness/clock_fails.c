/*
 * clock_fails: an LD_PRELOAD library under which clock_gettime(2) fails for
 * pam_totp's module and works for everyone else.
 *
 * Rust's std reads the clocks with clock_gettime and treats a failure as
 * impossible: SystemTime::now() and Instant::now() unwrap the result and
 * panic. With this library preloaded, the first clock read of a login panics
 * inside std, inside the shipped module, with no test hook in the module. The
 * panic must unwind through the module's own (statically linked) unwinder to
 * the glue's catch_unwind, which denies the login; the calling program lives
 * on. Only calls whose return address lies in a file named *pam_totp* fail,
 * so libpam, pam_wrapper and the caller keep their clocks.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <time.h>

typedef int (*clock_gettime_fn)(clockid_t, struct timespec *);

int clock_gettime(clockid_t clock, struct timespec *ts)
{
	static clock_gettime_fn real;
	Dl_info info;

	if (dladdr(__builtin_return_address(0), &info) != 0 && info.dli_fname != NULL &&
	    strstr(info.dli_fname, "pam_totp") != NULL) {
		errno = EINVAL;
		return -1;
	}
	if (real == NULL)
		real = (clock_gettime_fn)dlsym(RTLD_NEXT, "clock_gettime");
	if (real == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return real(clock, ts);
}
