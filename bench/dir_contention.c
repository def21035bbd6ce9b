/* Does replacing per-user files by rename serialise all users on their one
 * directory? N threads, each with its own "user" file in one directory,
 * each doing ITER state writes, timed per write:
 *
 *   rename  the earlier store: write a standing spare, then
 *           renameat2(RENAME_EXCHANGE) it with the state (two directory
 *           entries change, under the directory's lock);
 *   inplace this store: pwrite one 4 KiB slot at an offset (no entry changes);
 *   sync    pwrite both slots and fdatasync (a recovery code or a HOTP login).
 *
 *   cc -O2 -pthread -o dir_contention bench/dir_contention.c
 *   ./dir_contention DIR THREADS ITER
 *
 * Prints, per mode and thread count (1 and THREADS): writes per second over
 * all threads, and the median and p99 of one write in microseconds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

enum mode { RENAME, INPLACE, SYNC };
static const char *names[] = {"rename", "inplace", "sync"};

struct job {
	int dirfd, id, iter;
	enum mode mode;
	double *lat;
};

static double now_us(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void *run(void *arg)
{
	struct job *j = arg;
	char name[64], spare[64], buf[8192];
	memset(buf, '\n', sizeof buf);
	snprintf(name, sizeof name, "u%03d.state", j->id);
	snprintf(spare, sizeof spare, ".u%03d.state.tmp", j->id);
	int fd = openat(j->dirfd, name, O_RDWR | O_CREAT, 0600);
	if (fd < 0 || pwrite(fd, buf, sizeof buf, 0) != (ssize_t)sizeof buf)
		die("create");
	for (int i = 0; i < j->iter; i++) {
		double t0 = now_us();
		if (j->mode == RENAME) {
			int s = openat(j->dirfd, spare, O_WRONLY | O_CREAT, 0600);
			if (s < 0 || pwrite(s, buf, 300, 0) != 300)
				die("spare");
			close(s);
			if (renameat2(j->dirfd, spare, j->dirfd, name, RENAME_EXCHANGE) != 0)
				die("renameat2");
		} else {
			off_t off = (i & 1) * 4096;
			if (pwrite(fd, buf, 4096, off) != 4096)
				die("pwrite");
			if (j->mode == SYNC) {
				if (pwrite(fd, buf, 4096, 4096 - off) != 4096 || fdatasync(fd) != 0)
					die("fdatasync");
			}
		}
		j->lat[i] = now_us() - t0;
	}
	close(fd);
	return NULL;
}

static int cmp(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	if (argc != 4) {
		fprintf(stderr, "usage: %s DIR THREADS ITER\n", argv[0]);
		return 2;
	}
	int dirfd = open(argv[1], O_RDONLY | O_DIRECTORY);
	int threads = atoi(argv[2]), iter = atoi(argv[3]);
	if (dirfd < 0 || threads < 1 || iter < 1)
		die("arguments");
	double load[3];
	getloadavg(load, 3);
	printf("load %.2f; %d writes per thread\n", load[0], iter);
	printf("%-8s %7s %12s %10s %10s\n", "mode", "threads", "writes/s", "median us", "p99 us");
	for (int m = RENAME; m <= SYNC; m++) {
		int counts[2] = {1, threads};
		for (int c = 0; c < 2; c++) {
			int n = counts[c];
			int it = m == SYNC ? iter / 10 + 1 : iter;
			pthread_t tid[n];
			struct job jobs[n];
			double *all = calloc((size_t)n * it, sizeof *all);
			double t0 = now_us();
			for (int k = 0; k < n; k++) {
				jobs[k] = (struct job){dirfd, k, it, (enum mode)m, all + (size_t)k * it};
				pthread_create(&tid[k], NULL, run, &jobs[k]);
			}
			for (int k = 0; k < n; k++)
				pthread_join(tid[k], NULL);
			double wall = now_us() - t0;
			size_t total = (size_t)n * it;
			qsort(all, total, sizeof *all, cmp);
			printf("%-8s %7d %12.0f %10.1f %10.1f\n", names[m], n, total / wall * 1e6,
			       all[total / 2], all[total * 99 / 100]);
			free(all);
		}
	}
	return 0;
}
