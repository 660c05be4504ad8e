/* libvnet: logging.
 *
 * The library never prints by itself: every message goes to one handler that the embedder
 * sets. The default handler writes messages at VNET_LOG_WARN and above to stderr.
 *
 * Thread-safety: vnet_log_set_handler() and vnet_log_set_level() may be called from any
 * thread; handlers are called from whichever thread logs, so a handler must be thread-safe.
 * Set the handler before starting threads that log if the (fn, arg) pair must never be seen
 * half-updated.
 */
#ifndef VNET_LOG_H
#define VNET_LOG_H

#include "vnet/common.h"

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

/* Log a message through the handler (for programs built on libvnet, and the library). */
VNET_API void vnet_log(enum vnet_log_level level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#ifdef __cplusplus
}
#endif
#endif
