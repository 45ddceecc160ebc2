/*
 * A host's reaper that reaps in the kernel: a child subreaper
 * (PR_SET_CHILD_SUBREAPER) with SIGCHLD ignored, so that every orphan that
 * dies under it (a daemonized QEMU) is released in its own exit path
 * (exit_notify: a parent that ignores SIGCHLD gets no zombie), before
 * libvirtd's stop path looks for it. A reaper that calls wait() (tini,
 * systemd) leaves a zombie for as long as it takes to be scheduled, and
 * libvirtd, when it finds that zombie, sleeps 200 ms before it looks again
 * (see crash-latency.c).
 *
 *   cc -O2 -o autoreap autoreap.c
 *   autoreap COMMAND [ARGS...]
 *
 * Runs COMMAND as its child, with SIGCHLD back to the default (the command
 * waits for its own children), and exits when it does: with its status when
 * the kernel still had it, else 0 (it was reaped in the kernel too).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s COMMAND [ARGS...]\n", argv[0]);
    return 2;
  }
  if (prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0) {
    perror("autoreap: PR_SET_CHILD_SUBREAPER");
    return 1;
  }
  pid_t child = fork();
  if (child < 0) {
    perror("autoreap: fork");
    return 1;
  }
  if (child == 0) {
    signal(SIGCHLD, SIG_DFL);
    execvp(argv[1], argv + 1);
    perror("autoreap: exec");
    _exit(127);
  }
  /* From here on the kernel reaps every child: the command, and the orphans. */
  struct sigaction ignore = {.sa_handler = SIG_IGN, .sa_flags = SA_NOCLDWAIT};
  sigemptyset(&ignore.sa_mask);
  sigaction(SIGCHLD, &ignore, NULL);
  int status = 0;
  /* With SIGCHLD ignored, waitpid blocks until the child is gone, then fails with ECHILD. */
  for (;;) {
    pid_t got = waitpid(child, &status, 0);
    if (got == child) break;
    if (got < 0 && errno == EINTR) continue;
    status = 0;
    break;
  }
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 0;
}
