/* svcnotify: sd_notify(3) for the programs. See svcnotify.h. */
#include "svcnotify.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <vnet/log.h>

#if VNET_HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#else
static int sd_notify(int unset_environment, const char *state)
{
    (void)unset_environment;
    (void)state;
    return 0;
}
static int sd_watchdog_enabled(int unset_environment, uint64_t *usec)
{
    (void)unset_environment;
    (void)usec;
    return 0;
}
#endif

#define MOD "service"

static struct {
    uv_timer_t wd;
    bool wd_on; /* wd initialised and not closed */
    bool ready, stopping;
} svc;

static void on_watchdog(uv_timer_t *t)
{
    (void)t;
    sd_notify(0, "WATCHDOG=1");
}

int svc_notify_start(uv_loop_t *loop)
{
    uint64_t usec = 0;
    if (svc.wd_on || sd_watchdog_enabled(0, &usec) <= 0 || usec == 0)
        return 0;
    uint64_t every_ms = usec / 2000; /* half the period, as sd_watchdog_enabled(3) advises */
    if (every_ms == 0)
        every_ms = 1;
    int rc = uv_timer_init(loop, &svc.wd);
    if (rc)
        return rc;
    svc.wd_on = true;
    rc = uv_timer_start(&svc.wd, on_watchdog, every_ms, every_ms);
    if (rc) {
        svc_notify_close();
        return rc;
    }
    uv_unref((uv_handle_t *)&svc.wd);
    sd_notify(0, "WATCHDOG=1");
    vnet_log(VNET_LOG_INFO, MOD, "watchdog: a ping every %llu ms", (unsigned long long)every_ms);
    return 0;
}

/* @prefix (READY=1, STOPPING=1 or "") and a STATUS= line made of @fmt, in one datagram. */
static void send_status(const char *prefix, const char *fmt, va_list ap)
{
    char status[400] = "", buf[512];
    if (fmt)
        vsnprintf(status, sizeof(status), fmt, ap);
    for (char *p = status; *p; p++) /* STATUS= is one line: a newline starts another variable */
        if (*p == '\n')
            *p = ' ';
    snprintf(buf, sizeof(buf), "%s%s%s%s", prefix, prefix[0] && fmt ? "\n" : "",
             fmt ? "STATUS=" : "", status);
    if (buf[0])
        sd_notify(0, buf);
}

void svc_notify_ready(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status(svc.ready ? "" : "READY=1", fmt, ap);
    va_end(ap);
    svc.ready = true;
}

void svc_notify_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("", fmt, ap);
    va_end(ap);
}

static void stopping_status(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_status("STOPPING=1", fmt, ap);
    va_end(ap);
}

void svc_notify_stopping(const char *why)
{
    if (svc.stopping)
        return;
    svc.stopping = true;
    stopping_status("%s", why ? why : "stopping");
    svc_notify_close();
}

void svc_notify_close(void)
{
    if (!svc.wd_on)
        return;
    svc.wd_on = false;
    uv_close((uv_handle_t *)&svc.wd, NULL);
}
