/* The log hook. The handler and its argument are published as one pointer to a pair so a
 * concurrent vnet_log() never sees a new function with an old argument. Pairs live in a small
 * static ring rather than on the heap: a logging thread may still hold the previous pair, and
 * a slot is only rewritten after HANDLER_SLOTS further changes. */
#include "vnet/log.h"
#include "vnet/error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

struct handler {
    vnet_log_fn fn;
    void *arg;
};

#define HANDLER_SLOTS 8
static struct handler handler_slots[HANDLER_SLOTS];
static unsigned handler_next;
static struct handler *cur_handler; /* NULL: default */
static int cur_level = VNET_LOG_WARN;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

static void default_handler(enum vnet_log_level level, const char *module, const char *msg,
                            void *arg)
{
    (void)arg;
    fprintf(stderr, "vnet %s [%s]: %s\n", vnet_log_level_name(level), module, msg);
}

void vnet_log_set_handler(vnet_log_fn fn, void *arg)
{
    struct handler *h = NULL;
    if (fn) {
        unsigned i = __atomic_fetch_add(&handler_next, 1, __ATOMIC_RELAXED) % HANDLER_SLOTS;
        h = &handler_slots[i];
        h->fn = fn;
        h->arg = arg;
    }
    __atomic_store_n(&cur_handler, h, __ATOMIC_RELEASE);
}

void vnet_log_set_level(enum vnet_log_level level)
{
    if ((int)level < VNET_LOG_ERROR)
        level = VNET_LOG_ERROR;
    if (level > VNET_LOG_DEBUG)
        level = VNET_LOG_DEBUG;
    __atomic_store_n(&cur_level, (int)level, __ATOMIC_RELAXED);
}

enum vnet_log_level vnet_log_get_level(void)
{
    return (enum vnet_log_level)__atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

const char *vnet_log_level_name(enum vnet_log_level level)
{
    if ((int)level < 0 || level > VNET_LOG_DEBUG)
        return "?";
    return level_names[level];
}

int vnet_log_level_parse(const char *s, enum vnet_log_level *out)
{
    if (!s)
        return VNET_EINVAL;
    for (int i = 0; i <= VNET_LOG_DEBUG; i++) {
        if (strcmp(s, level_names[i]) == 0) {
            *out = (enum vnet_log_level)i;
            return 0;
        }
    }
    if (strcmp(s, "warning") == 0) {
        *out = VNET_LOG_WARN;
        return 0;
    }
    return VNET_EINVAL;
}

void vnet_log(enum vnet_log_level level, const char *module, const char *fmt, ...)
{
    if ((int)level > __atomic_load_n(&cur_level, __ATOMIC_RELAXED))
        return;
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    const struct handler *h = __atomic_load_n(&cur_handler, __ATOMIC_ACQUIRE);
    if (h)
        h->fn(level, module ? module : "vnet", msg, h->arg);
    else
        default_handler(level, module ? module : "vnet", msg, NULL);
}
