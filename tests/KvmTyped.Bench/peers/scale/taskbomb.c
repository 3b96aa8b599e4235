/* taskbomb TARGET — grows the number of tasks (threads included) on the machine to about TARGET, then exits,
 * leaving behind:
 *   - BIG processes re-executed with large argv and environment (what `ps` with arguments has to read),
 *   - processes of up to PER_PROCESS tasks each: the process and its threads, all asleep in pause().
 * The tasks live on (reparented to init) until the machine goes down. Static: gcc -static -O2 -pthread.
 * taskbomb hold FD ...: what the big processes run: write one byte to FD, then sleep. */
#define _GNU_SOURCE
#include <dirent.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { PER_PROCESS = 250, BIG = 4, BIG_ARGS = 48, BIG_ENVS = 24, BIG_LEN = 2048, STACK = 32768 };

static void die(const char *what) { perror(what); exit(1); }

static int numeric(const char *s) { return *s >= '0' && *s <= '9'; }

/* Every task of every process, from /proc/PID/task. */
static int count_tasks(void)
{
	int n = 0;
	DIR *proc = opendir("/proc");
	if (!proc)
		die("/proc");
	for (struct dirent *p; (p = readdir(proc));) {
		char path[300];
		if (!numeric(p->d_name))
			continue;
		snprintf(path, sizeof path, "/proc/%s/task", p->d_name);
		DIR *task = opendir(path);
		if (!task)
			continue;             /* gone meanwhile */
		for (struct dirent *t; (t = readdir(task));)
			n += numeric(t->d_name);
		closedir(task);
	}
	closedir(proc);
	return n;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A process with `tasks` tasks: itself and tasks-1 threads. Tells the parent through `ready` when all exist. */
static void host(int tasks, int ready)
{
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, STACK);
	for (int i = 1; i < tasks; i++) {
		pthread_t t;
		if (pthread_create(&t, &attr, sleeper, NULL) != 0)
			die("pthread_create");
	}
	if (write(ready, "t", 1) != 1)
		die("write");
	for (;;) pause();
}

/* A string of `len` bytes: `prefix`, then `fill` repeated. */
static char *filled(const char *prefix, int len, char fill)
{
	char *s = malloc(len + 1);
	if (!s)
		die("malloc");
	int n = snprintf(s, len + 1, "%s", prefix);
	memset(s + n, fill, len - n);
	s[len] = 0;
	return s;
}

/* Re-executes this program as `taskbomb hold FD` with BIG_ARGS more arguments and BIG_ENVS variables,
 * each BIG_LEN bytes: ~100 KiB of argv and ~50 KiB of environment. */
static void big(int ready)
{
	char self[256], fd[16], name[32], *argv[BIG_ARGS + 4], *envp[BIG_ENVS + 1];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n < 0)
		die("/proc/self/exe");
	self[n] = 0;
	snprintf(fd, sizeof fd, "%d", ready);
	argv[0] = self;
	argv[1] = "hold";
	argv[2] = fd;
	for (int i = 0; i < BIG_ARGS; i++) {
		snprintf(name, sizeof name, "arg%02d=", i);
		argv[3 + i] = filled(name, BIG_LEN, 'a' + i % 26);
	}
	argv[3 + BIG_ARGS] = NULL;
	for (int i = 0; i < BIG_ENVS; i++) {
		snprintf(name, sizeof name, "TASKBOMB_%02d=", i);
		envp[i] = filled(name, BIG_LEN, 'A' + i % 26);
	}
	envp[BIG_ENVS] = NULL;
	execve(self, argv, envp);
	die("execve");
}

int main(int argc, char **argv)
{
	if (argc >= 3 && strcmp(argv[1], "hold") == 0) {
		if (write(atoi(argv[2]), "b", 1) != 1)
			die("write");
		for (;;) pause();
	}
	if (argc != 2 || atoi(argv[1]) <= 0) {
		fprintf(stderr, "usage: taskbomb TARGET\n");
		return 2;
	}
	int target = atoi(argv[1]);
	int have = count_tasks() - 1;      /* this process leaves when done */
	int ready[2];
	if (pipe(ready) != 0)
		die("pipe");
	int children = 0;
	for (int i = 0; i < BIG && have < target; i++, have++, children++) {
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			big(ready[1]);
	}
	while (have < target) {
		int tasks = target - have < PER_PROCESS ? target - have : PER_PROCESS;
		pid_t pid = fork();
		if (pid < 0)
			die("fork");
		if (pid == 0)
			host(tasks, ready[1]);
		have += tasks;
		children++;
	}
	for (char c; children > 0; children--) {
		if (read(ready[0], &c, 1) != 1)
			die("read");
	}
	printf("taskbomb: %d tasks\n", count_tasks() - 1);
	return 0;
}
