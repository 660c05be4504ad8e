/* The log hook. The handler and its argument are published as one pointer to a pair so a
 * concurrent vnet_log() never sees a new function with an old argument. Pairs live in a small
 * static ring rather than on the heap: a logging thread may still hold the previous pair, and
 * a slot is only rewritten after HANDLER_SLOTS further changes. */
#include "vnet/log.h"
#include "vnet/error.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct handler {
    vnet_log_fn fn;
    void *arg;
};

#define HANDLER_SLOTS 8
static struct handler handler_slots[HANDLER_SLOTS];
static unsigned handler_next;
static struct handler *cur_handler; /* NULL: default */
static int cur_level = VNET_LOG_WARN;
static int cur_format = VNET_LOG_FORMAT_TEXT;
static int journal_cached = -1; /* -1: not looked at yet */

static const char *const level_names[] = {"error", "warn", "info", "debug"};

/* Appends to a bounded buffer, counting what did not fit, like snprintf. */
struct out {
    char *buf;
    size_t len, n;
};

static void put(struct out *o, const char *s, size_t n)
{
    if (o->n < o->len) {
        size_t room = o->len - 1 - o->n;
        memcpy(o->buf + o->n, s, n < room ? n : room);
    }
    o->n += n;
}

static void puts_(struct out *o, const char *s)
{
    put(o, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at @s (1..4), or 0 when it is not one. */
static size_t utf8_len(const unsigned char *s)
{
    size_t n = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : s[0] >= 0xc2 ? 2 : 0;
    if (n == 0 || s[0] > 0xf4)
        return 0;
    for (size_t i = 1; i < n; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    /* overlong three/four-byte forms, UTF-16 surrogates, beyond U+10FFFF */
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
        return 0;
    return n;
}

static void put_json_string(struct out *o, const char *str)
{
    const unsigned char *s = (const unsigned char *)str;
    put(o, "\"", 1);
    while (*s) {
        char esc[8];
        if (*s == '"' || *s == '\\') {
            esc[0] = '\\', esc[1] = (char)*s;
            put(o, esc, 2);
            s++;
        } else if (*s < 0x20 || *s == 0x7f) {
            const char *named = *s == '\n' ? "\\n" : *s == '\t' ? "\\t" : *s == '\r' ? "\\r" : NULL;
            if (named) {
                puts_(o, named);
            } else {
                snprintf(esc, sizeof(esc), "\\u%04x", *s);
                puts_(o, esc);
            }
            s++;
        } else if (*s < 0x80) {
            put(o, (const char *)s, 1);
            s++;
        } else {
            size_t n = utf8_len(s);
            if (n) {
                put(o, (const char *)s, n);
                s += n;
            } else {
                puts_(o, "\\ufffd");
                s++;
            }
        }
    }
    put(o, "\"", 1);
}

static void put_time(struct out *o, const struct timespec *ts)
{
    struct tm tm;
    char b[40];
    time_t t = ts->tv_sec;
    if (!gmtime_r(&t, &tm))
        memset(&tm, 0, sizeof(tm));
    size_t n = strftime(b, sizeof(b), "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(b + n, sizeof(b) - n, ".%03ldZ", (long)(ts->tv_nsec / 1000000) % 1000);
    puts_(o, b);
}

size_t vnet_log_format_line(char *buf, size_t len, enum vnet_log_format fmt,
                            const struct timespec *ts, enum vnet_log_level level,
                            const char *module, const char *msg)
{
    struct out o = {buf, len, 0};
    if (!module)
        module = "vnet";
    if (!msg)
        msg = "";
    if (fmt == VNET_LOG_FORMAT_JSON) {
        puts_(&o, "{");
        if (ts) {
            puts_(&o, "\"ts\":\"");
            put_time(&o, ts);
            puts_(&o, "\",");
        }
        puts_(&o, "\"level\":\"");
        puts_(&o, vnet_log_level_name(level));
        puts_(&o, "\",\"module\":");
        put_json_string(&o, module);
        puts_(&o, ",\"msg\":");
        put_json_string(&o, msg);
        puts_(&o, "}");
    } else {
        if (ts) {
            put_time(&o, ts);
            puts_(&o, " ");
        }
        puts_(&o, "vnet ");
        puts_(&o, vnet_log_level_name(level));
        puts_(&o, " [");
        puts_(&o, module);
        puts_(&o, "]: ");
        puts_(&o, msg);
    }
    if (len)
        buf[o.n < len ? o.n : len - 1] = '\0';
    return o.n;
}

bool vnet_log_stderr_is_journal(void)
{
    const char *js = getenv("JOURNAL_STREAM");
    unsigned long long dev, ino;
    struct stat st;
    if (!js || sscanf(js, "%llu:%llu", &dev, &ino) != 2 || fstat(STDERR_FILENO, &st) != 0)
        return false;
    return (unsigned long long)st.st_dev == dev && (unsigned long long)st.st_ino == ino;
}

static void default_handler(enum vnet_log_level level, const char *module, const char *msg,
                            void *arg)
{
    (void)arg;
    int journal = __atomic_load_n(&journal_cached, __ATOMIC_RELAXED);
    if (journal < 0) {
        journal = vnet_log_stderr_is_journal();
        __atomic_store_n(&journal_cached, journal, __ATOMIC_RELAXED);
    }
    enum vnet_log_format fmt = (enum vnet_log_format)__atomic_load_n(&cur_format, __ATOMIC_RELAXED);
    struct timespec now;
    bool stamp = fmt == VNET_LOG_FORMAT_JSON || !journal;
    if (stamp)
        clock_gettime(CLOCK_REALTIME, &now);
    /* The message is at most 511 bytes: escaped, 6 bytes each at worst, plus the frame. */
    char line[4096];
    size_t n =
        vnet_log_format_line(line, sizeof(line) - 1, fmt, stamp ? &now : NULL, level, module, msg);
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    line[n++] = '\n';
    fwrite(line, 1, n, stderr); /* one write: lines from threads do not interleave */
}

void vnet_log_set_format(enum vnet_log_format fmt)
{
    if (fmt != VNET_LOG_FORMAT_JSON)
        fmt = VNET_LOG_FORMAT_TEXT;
    __atomic_store_n(&cur_format, (int)fmt, __ATOMIC_RELAXED);
}

enum vnet_log_format vnet_log_get_format(void)
{
    return (enum vnet_log_format)__atomic_load_n(&cur_format, __ATOMIC_RELAXED);
}

int vnet_log_format_parse(const char *s, enum vnet_log_format *out)
{
    if (!s)
        return VNET_EINVAL;
    if (strcmp(s, "text") == 0)
        *out = VNET_LOG_FORMAT_TEXT;
    else if (strcmp(s, "json") == 0)
        *out = VNET_LOG_FORMAT_JSON;
    else
        return VNET_EINVAL;
    return 0;
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
