/* libvnet: logging.
 *
 * The library never prints by itself: every message goes to one handler that the embedder
 * sets. The default handler writes messages at VNET_LOG_WARN and above to stderr, one line
 * each, as text ("2026-01-02T03:04:05.678Z vnet warn [module]: message"; without the timestamp
 * when stderr is the systemd journal, which stamps lines itself) or as JSON objects
 * (vnet_log_set_format()).
 *
 * Thread-safety: vnet_log_set_handler() and vnet_log_set_level() may be called from any
 * thread; handlers are called from whichever thread logs, so a handler must be thread-safe.
 * Set the handler before starting threads that log if the (fn, arg) pair must never be seen
 * half-updated.
 */
#ifndef VNET_LOG_H
#define VNET_LOG_H

#include "vnet/common.h"

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

enum vnet_log_level {
    VNET_LOG_ERROR = 0,
    VNET_LOG_WARN = 1,
    VNET_LOG_INFO = 2,
    VNET_LOG_DEBUG = 3,
};

/* @module is a short static name ("table", "encap"); @msg is one line without newline. */
typedef void (*vnet_log_fn)(enum vnet_log_level level, const char *module, const char *msg,
                            void *arg);

/* Route messages to @fn (NULL restores the default stderr handler). @arg is passed back. */
VNET_API void vnet_log_set_handler(vnet_log_fn fn, void *arg);

/* Drop messages less severe than @level before they are formatted. Default VNET_LOG_WARN. */
VNET_API void vnet_log_set_level(enum vnet_log_level level);

/* The current threshold. */
VNET_API enum vnet_log_level vnet_log_get_level(void);

/* "error", "warn", "info" or "debug". */
VNET_API const char *vnet_log_level_name(enum vnet_log_level level);

/* Parse a level name as printed by vnet_log_level_name(). Returns 0 or VNET_EINVAL. */
VNET_API int vnet_log_level_parse(const char *s, enum vnet_log_level *out);

/* How the default handler writes a line. */
enum vnet_log_format {
    VNET_LOG_FORMAT_TEXT = 0, /* [TIMESTAMP ]vnet LEVEL [MODULE]: MESSAGE */
    VNET_LOG_FORMAT_JSON = 1, /* {"ts":"...","level":"...","module":"...","msg":"..."} */
};

/* Choose the default handler's line format (default VNET_LOG_FORMAT_TEXT). Values out of range
 * select text.
 * Thread-safety: any thread; lines being written keep the format they started with. */
VNET_API void vnet_log_set_format(enum vnet_log_format fmt);

/* The default handler's current format. Thread-safety: any thread. */
VNET_API enum vnet_log_format vnet_log_get_format(void);

/* Parse "text" or "json". Returns 0 or VNET_EINVAL (@out untouched). Thread-safety: any. */
VNET_API int vnet_log_format_parse(const char *s, enum vnet_log_format *out);

/* Format one log line as the default handler does, without the newline, into @buf (always
 * NUL-terminated when @len > 0). @ts: the time to stamp (RFC 3339, UTC, milliseconds), or NULL
 * for none (text only: JSON lines carry "ts" only when @ts is given). JSON strings are escaped
 * (quotes, backslashes, control characters; bytes that are not UTF-8 become U+FFFD).
 * Ownership: nothing is kept.
 * Returns: the length of the whole line (like snprintf; >= @len means it was cut short).
 * Thread-safety: any thread. */
VNET_API size_t vnet_log_format_line(char *buf, size_t len, enum vnet_log_format fmt,
                                     const struct timespec *ts, enum vnet_log_level level,
                                     const char *module, const char *msg);

/* Whether stderr is the systemd journal's stream: JOURNAL_STREAM ("DEV:INODE", set by systemd)
 * names the device and inode of file descriptor 2. The default handler leaves out its own
 * timestamps then. Returns: true or false. Thread-safety: any thread. */
VNET_API bool vnet_log_stderr_is_journal(void);

/* Log a message through the handler (for programs built on libvnet, and the library). */
VNET_API void vnet_log(enum vnet_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
