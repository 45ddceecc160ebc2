/*
 * kill -9 of QEMU -> libvirt's lifecycle event, in plain C against a real
 * libvirtd: the floor for any client of libvirt, the binding included.
 *
 *   cc -O2 -o crash-latency crash-latency.c $(pkg-config --cflags --libs libvirt) -lpthread
 *   crash-latency URI DOMAIN-NAME PIDFILE KILLS [SOCKET]
 *
 * DOMAIN-NAME is a defined, stopped domain on URI; PIDFILE is where its host's
 * libvirtd writes QEMU's pid (/run/libvirt/qemu/NAME.pid as that host sees
 * it); SOCKET, a UNIX socket QEMU listens on for a chardev (the rig guest's
 * command socket). Each round starts the domain, waits for its `started`
 * event, reads the pid, opens a pidfd on it, connects to SOCKET, and kills
 * QEMU with SIGKILL. The moments after the kill printed per round:
 *
 *   eof    SOCKET reads end-of-file: the kernel closed QEMU's descriptors,
 *          its monitor socket to libvirtd among them (libvirtd's cue);
 *   exit   the pidfd turns readable: QEMU has exited (a zombie, or gone);
 *   reaped kill(pid, 0) fails with ESRCH: its parent (the host's reaper) has
 *          reaped it; polled every 0.1 ms from this program's own thread;
 *   event  the `stopped` lifecycle event reaches this program's callback.
 *
 * libvirtd learns of the death from EOF on QEMU's monitor socket, which the
 * kernel closes before the process becomes a zombie. Its stop path
 * (processMonitorEOFEvent -> qemuProcessBeginStopJob -> qemuProcessKill ->
 * virProcessKillPainfullyDelay) then sends SIGTERM and, when that finds the
 * pid still there (a zombie not yet reaped is still there), sleeps 200 ms
 * before it looks again; the event is queued only after that. So event -
 * reaped is a few ms when libvirtd looked after the reap, and about 200 ms
 * when it looked before: no client can see the event sooner, and the only
 * lever outside libvirt is how soon the dead QEMU is reaped.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <libvirt/libvirt.h>
#include <libvirt/virterror.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t changed = PTHREAD_COND_INITIALIZER;
static int lastEvent = -1;
static double lastEventAt;

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void *event_loop(void *unused) {
  (void)unused;
  for (;;) {
    if (virEventRunDefaultImpl() < 0) return NULL;
  }
}

static int on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque) {
  (void)conn, (void)dom, (void)detail, (void)opaque;
  double at = now_ms();
  pthread_mutex_lock(&lock);
  lastEvent = event;
  lastEventAt = at;
  pthread_cond_broadcast(&changed);
  pthread_mutex_unlock(&lock);
  return 0;
}

/* Waits for lifecycle event `event` (seen after `since`); its time, or -1 after 10 s. */
static double wait_event(int event) {
  struct timespec deadline;
  clock_gettime(CLOCK_REALTIME, &deadline);
  deadline.tv_sec += 10;
  pthread_mutex_lock(&lock);
  while (lastEvent != event) {
    if (pthread_cond_timedwait(&changed, &lock, &deadline) == ETIMEDOUT) break;
  }
  double at = lastEvent == event ? lastEventAt : -1;
  lastEvent = -1;
  pthread_mutex_unlock(&lock);
  return at;
}

static pid_t read_pid(const char *file) {
  for (int tries = 0; tries < 1000; tries++) {
    FILE *f = fopen(file, "r");
    long pid = 0;
    if (f != NULL) {
      if (fscanf(f, "%ld", &pid) != 1) pid = 0;
      fclose(f);
    }
    if (pid > 0) return (pid_t)pid;
    usleep(1000);
  }
  return -1;
}

/* A connection to QEMU's chardev socket, or -1. */
static int connect_socket(const char *path) {
  if (path == NULL) return -1;
  for (int tries = 0; tries < 1000; tries++) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path);
    if (fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof addr) == 0) return fd;
    if (fd >= 0) close(fd);
    usleep(1000);
  }
  return -1;
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static double pct(double *sorted, int n, double p) {
  int i = (int)(p / 100.0 * n + 0.999999) - 1;
  if (i < 0) i = 0;
  if (i >= n) i = n - 1;
  return sorted[i];
}

int main(int argc, char **argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s URI DOMAIN-NAME PIDFILE KILLS [SOCKET]\n", argv[0]);
    return 2;
  }
  const char *uri = argv[1], *name = argv[2], *pidfile = argv[3];
  int kills = atoi(argv[4]);
  const char *sockpath = argc > 5 ? argv[5] : NULL;
  if (kills < 1 || kills > 10000) kills = 20;

  if (virEventRegisterDefaultImpl() < 0) return 1;
  pthread_t loop;
  pthread_create(&loop, NULL, event_loop, NULL);
  virConnectPtr conn = virConnectOpen(uri);
  if (conn == NULL) {
    fprintf(stderr, "open %s: %s\n", uri, virGetLastErrorMessage());
    return 1;
  }
  virDomainPtr dom = virDomainLookupByName(conn, name);
  if (dom == NULL) {
    fprintf(stderr, "lookup %s: %s\n", name, virGetLastErrorMessage());
    return 1;
  }
  if (virConnectDomainEventRegisterAny(conn, dom, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
                                       VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), NULL, NULL) < 0) {
    fprintf(stderr, "event register: %s\n", virGetLastErrorMessage());
    return 1;
  }

  double *exitMs = calloc(kills, sizeof(double));
  double *reapMs = calloc(kills, sizeof(double));
  double *eventMs = calloc(kills, sizeof(double));
  double *eofMs = calloc(kills, sizeof(double));
  printf("round  eof ms  exit ms  reaped ms  event ms  reaped - eof  event - reaped\n");
  for (int i = 0; i < kills; i++) {
    unlink(pidfile);
    if (virDomainCreate(dom) < 0) {
      fprintf(stderr, "start: %s\n", virGetLastErrorMessage());
      return 1;
    }
    if (wait_event(VIR_DOMAIN_EVENT_STARTED) < 0) {
      fprintf(stderr, "no started event\n");
      return 1;
    }
    pid_t pid = read_pid(pidfile);
    if (pid < 0) {
      fprintf(stderr, "no pid in %s\n", pidfile);
      return 1;
    }
    int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
    if (pidfd < 0) {
      perror("pidfd_open");
      return 1;
    }
    usleep(300 * 1000); /* let QEMU settle into its run loop */
    int sock = connect_socket(sockpath);
    double t0 = now_ms();
    kill(pid, SIGKILL);
    struct pollfd pfd = {.fd = pidfd, .events = POLLIN};
    struct pollfd sfd = {.fd = sock, .events = POLLIN};
    double exitAt = -1, reapAt = -1, eofAt = -1;
    while (reapAt < 0 || (sock >= 0 && eofAt < 0)) {
      if (sock >= 0 && eofAt < 0 && poll(&sfd, 1, 0) == 1) {
        char buf[256];
        ssize_t got = read(sock, buf, sizeof buf);
        if (got <= 0) eofAt = now_ms();  /* else the guest wrote something: keep polling */
      }
      if (exitAt < 0 && poll(&pfd, 1, 0) == 1) exitAt = now_ms();
      if (reapAt < 0 && kill(pid, 0) < 0 && errno == ESRCH) {
        reapAt = now_ms();
        if (exitAt < 0) exitAt = reapAt;
      }
      if (now_ms() - t0 > 10000) break;
      usleep(100);
    }
    close(pidfd);
    if (sock >= 0) close(sock);
    double eventAt = wait_event(VIR_DOMAIN_EVENT_STOPPED);
    exitMs[i] = exitAt - t0;
    reapMs[i] = reapAt - t0;
    eventMs[i] = eventAt < 0 ? 1e9 : eventAt - t0;
    eofMs[i] = eofAt < 0 ? -1 : eofAt - t0;
    printf("%5d  %6.1f  %7.1f  %9.1f  %8.1f  %12.1f  %14.1f\n", i + 1, eofMs[i], exitMs[i],
           reapMs[i], eventMs[i], eofAt < 0 ? -1 : reapMs[i] - eofMs[i], eventMs[i] - reapMs[i]);
    fflush(stdout);
  }
  qsort(exitMs, kills, sizeof(double), cmp);
  qsort(reapMs, kills, sizeof(double), cmp);
  qsort(eventMs, kills, sizeof(double), cmp);
  int slow = 0;
  for (int i = 0; i < kills; i++) slow += eventMs[i] > 100;
  printf("kill -> exit p50 %.1f ms p99 %.1f; -> reaped p50 %.1f p99 %.1f; -> event p50 %.1f p99 %.1f max %.1f; over 100 ms: %d of %d\n",
         pct(exitMs, kills, 50), pct(exitMs, kills, 99), pct(reapMs, kills, 50),
         pct(reapMs, kills, 99), pct(eventMs, kills, 50), pct(eventMs, kills, 99),
         eventMs[kills - 1], slow, kills);
  virDomainFree(dom);
  virConnectClose(conn);
  return 0;
}
