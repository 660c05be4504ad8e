/* vnet-controller's start checks: everything that can be found wrong before the database and
 * the admin token exist is found then (addresses, ports in use, the Unix socket's place), and
 * what a start that fails later did create is removed again, so that a failed start leaves
 * nothing behind. Every function prints its own one-line reason, prefixed with @prog. */
#ifndef VNET_START_GUARD_H
#define VNET_START_GUARD_H

#include <stdbool.h>
#include <stddef.h>

/* Check the listen address @addr given to option @opt ("--listen") and write its numeric form
 * ("127.0.0.1:7800" for "localhost:7800") to @numeric. Returns 0, 2 (malformed: a usage
 * error) or 1 (the name does not resolve). */
int guard_listen_addr(const char *prog, const char *opt, const char *addr, char *numeric,
                      size_t len);

/* Bind and listen on each of the @n numeric TCP addresses at once (then close them): an
 * address in use, not on this host or a privileged port is found before anything is created.
 * Returns 0 or 1. */
int guard_probe_tcp(const char *prog, const char *const opts[], const char *const addrs[], int n);

/* The Unix socket @path (--socket) can be made: not a file of another kind, not served by a
 * running process, in a directory this user may write (or the directory of the database at
 * @db_uri, which the store makes when missing). Returns 0 or 1. */
int guard_probe_unix(const char *prog, const char *path, const char *db_uri);

/* A file the start would write (the admin token) can be written: it exists, or its directory
 * does and is writable. Returns 0 or 1. */
int guard_can_create(const char *prog, const char *what, const char *path);

/* What this start created, to remove on failure. */
struct guard_undo {
    char db[4096];    /* the SQLite file (empty: not a file this start may remove) */
    bool db_new;      /* it did not exist before this start */
    char dir[4096];   /* its directory */
    bool dir_new;     /* that did not exist either (the store makes it) */
    char token[4096]; /* the admin token file, once written by this start */
};

/* Note what exists before the store at @db_uri is opened. */
void guard_undo_init(struct guard_undo *u, const char *db_uri);

/* Remove what this start created: the database files and directory when new, the token file
 * when written. */
void guard_undo_run(const struct guard_undo *u);

#endif
