/* svcnotify: the service manager's notification protocol (sd_notify(3)) for vnet-controller and
 * vnet-node. Under systemd with Type=notify, $NOTIFY_SOCKET names the socket the manager
 * listens on: READY=1 says the service is up, STATUS= is shown by `systemctl status`,
 * STOPPING=1 says a stop began, and WATCHDOG=1 must arrive within WatchdogSec= or the
 * manager kills and (per Restart=) restarts the service. Without $NOTIFY_SOCKET (not under
 * systemd, or Type=simple) every call is a cheap no-op, and so in a build without libsystemd
 * (meson -Dsystemd=disabled).
 *
 * Single-threaded: call from the thread that runs @loop. Not part of libvnet: the library
 * never talks to the service manager, its programs do. */
#ifndef VNET_SVCNOTIFY_H
#define VNET_SVCNOTIFY_H

#include <uv.h>

/* Start the watchdog when the manager asked for one ($WATCHDOG_USEC, for this pid when
 * $WATCHDOG_PID is set): a timer on @loop sends WATCHDOG=1 every half period. The timer does
 * not keep @loop alive. Returns 0, or a negative libuv code when the timer cannot start. */
int svc_notify_start(uv_loop_t *loop);

/* READY=1 with a STATUS= line (printf-style @fmt, may be NULL). Only the first call sends
 * READY=1; later ones send the STATUS= line only. */
void svc_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A STATUS= line (printf-style). */
void svc_notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* STOPPING=1 with STATUS=@why, and the watchdog stops: the loop may end. Idempotent. */
void svc_notify_stopping(const char *why);

/* Close the watchdog timer without telling the manager anything (a start that failed). */
void svc_notify_close(void);

#endif
