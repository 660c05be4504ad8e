/* vnet-controller's start checks and the undo of a failed start (start_guard.h). */
#include "start_guard.h"

#include <vnet/error.h>
#include <vnet/types.h>

#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

int guard_listen_addr(const char *prog, const char *opt, const char *addr, char *numeric,
                      size_t len)
{
    struct vnet_endpoint ep;
    char why[256];
    int rc = vnet_endpoint_resolve(addr, VNET_RESOLVE_PORT0, &ep, 1, why, sizeof(why));
    if (rc == VNET_EINVAL) {
        fprintf(stderr, "%s: bad %s '%s': %s\nTry '%s --help'.\n", prog, opt, addr, why, prog);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "%s: %s %s: %s\n", prog, opt, addr, why);
        return 1;
    }
    vnet_endpoint_format(&ep, numeric, len);
    return 0;
}

int guard_probe_tcp(const char *prog, const char *const opts[], const char *const addrs[], int n)
{
    int fds[8], rc = 0, i;
    for (i = 0; i < n && i < 8 && !rc; i++) {
        struct vnet_endpoint ep;
        struct sockaddr_storage ss;
        fds[i] = -1;
        if (vnet_endpoint_resolve(addrs[i], VNET_RESOLVE_PORT0, &ep, 1, NULL, 0) < 1)
            continue; /* checked by guard_listen_addr() */
        int sl = vnet_endpoint_to_sockaddr(&ep, &ss), one = 1;
        fds[i] = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fds[i] < 0 || sl < 0)
            continue; /* the real bind will say */
        /* as libuv binds: SO_REUSEADDR, so that only a listener, not TIME_WAIT, conflicts */
        setsockopt(fds[i], SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(fds[i], (struct sockaddr *)&ss, (socklen_t)sl) != 0 || listen(fds[i], 1) != 0) {
            int e = errno;
            fprintf(stderr, "%s: %s %s: %s%s\n", prog, opts[i], addrs[i], strerror(e),
                    e == EADDRINUSE      ? " (another process, or another option, listens there)"
                    : e == EADDRNOTAVAIL ? " (no interface of this host has that address)"
                    : e == EACCES        ? " (ports below 1024 need CAP_NET_BIND_SERVICE)"
                                         : "");
            rc = 1;
        }
    }
    while (i-- > 0)
        if (fds[i] >= 0)
            close(fds[i]);
    return rc;
}

/* The directory part of @path ("." when it has none). */
static void dir_of(const char *path, char *dir, size_t len)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(dir, len, ".");
    else if (slash == path)
        snprintf(dir, len, "/");
    else
        snprintf(dir, len, "%.*s", (int)(slash - path), path);
}

/* @made_dir: a directory that does not exist yet but will (the store makes the database's):
 * when it is @path's, that passes. */
static int dir_writable(const char *prog, const char *what, const char *path, const char *made_dir)
{
    char dir[4096];
    dir_of(path, dir, sizeof(dir));
    if (access(dir, W_OK | X_OK) == 0 ||
        (errno == ENOENT && made_dir && strcmp(dir, made_dir) == 0))
        return 0;
    int e = errno;
    fprintf(stderr, "%s: %s %s: %s: directory %s%s\n", prog, what, path, strerror(e), dir,
            e == ENOENT ? " does not exist" : " is not writable by this user");
    return 1;
}

int guard_probe_unix(const char *prog, const char *path, const char *db_uri)
{
    struct stat st;
    struct sockaddr_un un;
    if (strlen(path) >= sizeof(un.sun_path)) {
        fprintf(stderr, "%s: --socket %s: path too long (at most %zu bytes)\n", prog, path,
                sizeof(un.sun_path) - 1);
        return 1;
    }
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "%s: --socket %s: exists and is not a socket\n", prog, path);
            return 1;
        }
        memset(&un, 0, sizeof(un));
        un.sun_family = AF_UNIX;
        strcpy(un.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        bool live = fd >= 0 && connect(fd, (struct sockaddr *)&un, sizeof(un)) == 0;
        if (fd >= 0)
            close(fd);
        if (live) {
            fprintf(stderr, "%s: --socket %s: a running process serves it (another controller?)\n",
                    prog, path);
            return 1;
        }
        /* a stale socket of an earlier run: the controller replaces it */
    }
    /* The database's directory may not exist yet: the store makes it before the bind. */
    struct guard_undo db;
    guard_undo_init(&db, db_uri);
    return dir_writable(prog, "--socket", path, db.db[0] ? db.dir : NULL);
}

int guard_can_create(const char *prog, const char *what, const char *path)
{
    struct stat st;
    if (stat(path, &st) == 0)
        return 0;
    return dir_writable(prog, what, path, NULL);
}

void guard_undo_init(struct guard_undo *u, const char *db_uri)
{
    struct stat st;
    memset(u, 0, sizeof(*u));
    const char *path = strncmp(db_uri, "sqlite:", 7) == 0 ? db_uri + 7 : db_uri;
    /* only plain files: not ":memory:", "file:" URIs or another engine's "scheme://" */
    if (strstr(db_uri, "://") || strncmp(path, "file:", 5) == 0 || path[0] == ':' ||
        strlen(path) >= sizeof(u->db))
        return;
    snprintf(u->db, sizeof(u->db), "%s", path);
    u->db_new = stat(path, &st) != 0 && errno == ENOENT;
    dir_of(path, u->dir, sizeof(u->dir));
    u->dir_new = stat(u->dir, &st) != 0 && errno == ENOENT;
}

void guard_undo_run(const struct guard_undo *u)
{
    static const char *const suffixes[] = {"", "-wal", "-shm", "-journal"};
    if (u->token[0])
        unlink(u->token);
    if (u->db[0] && u->db_new) {
        char p[4200];
        for (size_t i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
            snprintf(p, sizeof(p), "%s%s", u->db, suffixes[i]);
            unlink(p);
        }
        if (u->dir_new)
            rmdir(u->dir); /* only when empty: nothing of anyone else's goes */
    }
}
