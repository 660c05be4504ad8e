/* progopt: configuration files for the programs (not part of libvnet).
 *
 * A configuration file holds `name = value` lines, one per long option, with the option's name
 * without its dashes ("underlay = udp:10.0.0.1:4789"). A repeatable option may repeat; a flag
 * takes true/false, yes/no, on/off or 1/0 (or no value at all: true). Lines starting with '#'
 * or ';' are comments; "; ..." after a value is a comment too. [Sections] are accepted and
 * ignored. Parsing is Debian's inih.
 *
 * progopt_load() turns the file named by --config into argv entries placed before the command
 * line and fed to the program's own getopt_long parser, so every long option works in the file
 * and the command line wins: an option given on the command line replaces every value the file
 * gives it (also for repeatable options).
 */
#ifndef VNET_PROGOPT_H
#define VNET_PROGOPT_H

#include <getopt.h>
#include <stdbool.h>
#include <stddef.h>

/* One option as the program sees it: its index in longopts and its value (NULL for a flag). */
struct progopt_entry {
    int opt;
    const char *value;
};

struct progopt {
    const char *prog;
    const struct option *longopts;
    const char *const *optional; /* options whose value may be left out (NULL-terminated) */
    const char *config;          /* the --config file, or NULL */
    int argc; /* the merged argv: argv[0], the file's options, the command line */
    char **argv;
    struct progopt_entry *ent; /* every option in the merged argv, in order */
    size_t nent;
    int cmd_argc; /* the command line as given */
    char **cmd_argv;
    char **strings; /* what the file gave, owned */
    size_t nstrings;
    char error[512]; /* why progopt_load() failed ("FILE:LINE: ...") */
    int *file_lines; /* the line of each file entry, argv[1..nfile] */
    int nfile;
};

/* Where the programs keep their state when --db and --key are left out; VNET_STATE_DIR in the
 * environment overrides it. */
#define PROGOPT_STATE_DIR "/var/lib/vnet"

/* Read the --config FILE named in @argv (if any) and build @p's merged argv (nothing printed). An
 * option listed in
 * @optional (a NULL-terminated list, or NULL) that is last on the command line or followed by
 * another option gets an empty value ("--genkey" becomes "--genkey="). Options "config",
 * "help", "version", "genkey" and "pubkey" are refused in a file.
 * Ownership: @p keeps pointers to @prog, @longopts, @optional and @argv (which must outlive it);
 * release it with progopt_free().
 * Returns: 0; 2 for a bad file (unknown option, bad syntax, bad flag value, a value missing);
 * 1 when the file cannot be read or memory ran out; @p->error says why ("FILE:LINE: ..."). */
int progopt_load(struct progopt *p, const char *prog, const struct option *longopts,
                 const char *const *optional, int argc, char **argv);

/* Read the same --config file again with the same command line into @out (SIGHUP).
 * Returns: as progopt_load(); @out needs progopt_free() only when 0 was returned. */
int progopt_reload(const struct progopt *old, struct progopt *out);

/* The last value given to option @name (as getopt would leave it), "" for a flag given, or NULL
 * when the option is absent. */
const char *progopt_value(const struct progopt *p, const char *name);

/* "FILE:LINE: " when @argi (an index in @p->argv, as getopt's optind - 1) is an option the file
 * gave, else "" (the command line), written into @buf. Returns: @buf. @p may be NULL. */
const char *progopt_where(const struct progopt *p, int argi, char *buf, size_t len);

/* Every value given to option @name, in order: fills up to @max of @out (borrowed from @p;
 * "" for a flag) and returns how many there are. */
size_t progopt_values(const struct progopt *p, const char *name, const char **out, size_t max);

/* The path of state file @name in the state directory (PROGOPT_STATE_DIR or $VNET_STATE_DIR)
 * into @out; with @create, the directory is made (mode 0700) when missing.
 * Returns: 0, or -1 with @err set. */
int progopt_state_file(const char *name, bool create, char *out, size_t len, char *err,
                       size_t errlen);

/* Call @cb with the name of every option whose values differ between @a and @b (same longopts),
 * in longopts order. */
void progopt_diff(const struct progopt *a, const struct progopt *b,
                  void (*cb)(const char *name, void *arg), void *arg);

/* Release what progopt_load() allocated; accepts a zeroed struct. */
void progopt_free(struct progopt *p);

/* Read an ini file of `name = value` lines as progopt does, calling @fn for each with its line
 * number (@value NULL when the line has no '='). @fn returns 0 to go on, or non-zero to stop:
 * that value is returned. Returns: 0, the value @fn stopped with, -1 with @err set when the file
 * cannot be read, -2 with @err set ("PATH:LINE: ...") for bad syntax. */
int progopt_read_ini(const char *path,
                     int (*fn)(const char *name, const char *value, int line, void *arg), void *arg,
                     char *err, size_t errlen);

#endif
