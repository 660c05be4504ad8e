/* progopt: configuration files for the programs, see progopt.h. */
#include "progopt.h"

#include <errno.h>
#include <ini.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct reader {
    FILE *f;
    int line;
    bool too_long;
};

/* fgets for inih that counts lines, so errors can name one (Debian's inih is built without
 * INI_HANDLER_LINENO), and stops at a line longer than inih's buffer instead of splitting it. */
static char *read_line(char *str, int num, void *stream)
{
    struct reader *r = stream;
    if (!fgets(str, num, r->f))
        return NULL;
    r->line++;
    size_t n = strlen(str);
    if (n + 1 == (size_t)num && str[n - 1] != '\n' && !feof(r->f)) {
        r->too_long = true;
        return NULL;
    }
    return str;
}

struct ini_ctx {
    struct reader *r;
    int (*fn)(const char *name, const char *value, int line, void *arg);
    void *arg;
    int stopped;
};

static int on_pair(void *user, const char *section, const char *name, const char *value)
{
    struct ini_ctx *x = user;
    (void)section; /* sections only group lines for the reader */
    x->stopped = x->fn(name, value, x->r->line, x->arg);
    return x->stopped == 0;
}

int progopt_read_ini(const char *path,
                     int (*fn)(const char *name, const char *value, int line, void *arg), void *arg,
                     char *err, size_t errlen)
{
    struct reader r = {.f = fopen(path, "re")};
    if (!r.f) {
        snprintf(err, errlen, "%s: %s", path, strerror(errno));
        return -1;
    }
    ini_allow_no_value = true; /* a flag alone on its line: true */
    ini_allow_multiline = false;
    ini_stop_on_first_error = true;
    struct ini_ctx x = {.r = &r, .fn = fn, .arg = arg};
    int rc = ini_parse_stream(read_line, &r, on_pair, &x);
    bool read_error = ferror(r.f) != 0;
    fclose(r.f);
    if (x.stopped)
        return x.stopped;
    if (r.too_long) {
        snprintf(err, errlen, "%s:%d: line too long (at most %d characters)", path, r.line,
                 ini_max_line - 2);
        return -2;
    }
    if (read_error) {
        snprintf(err, errlen, "%s: read error", path);
        return -1;
    }
    if (rc > 0) {
        snprintf(err, errlen, "%s:%d: expected 'name = value' or [section]", path, rc);
        return -2;
    }
    if (rc < 0) {
        snprintf(err, errlen, "%s: %s", path, strerror(ENOMEM));
        return -1;
    }
    return 0;
}

/* getopt_long's lookup: an exact name, else a unique prefix. -1 when none (or ambiguous). */
static int find_opt(const struct option *longopts, const char *name, size_t len, bool exact)
{
    int found = -1;
    for (int i = 0; longopts[i].name; i++) {
        if (strncmp(longopts[i].name, name, len) != 0)
            continue;
        if (strlen(longopts[i].name) == len)
            return i;
        if (exact)
            continue;
        if (found >= 0)
            return -1;
        found = i;
    }
    return found;
}

static bool in_list(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (strcmp(*list, name) == 0)
            return true;
    return false;
}

static int add_entry(struct progopt *p, int opt, const char *value)
{
    struct progopt_entry *e = realloc(p->ent, (p->nent + 1) * sizeof(*e));
    if (!e)
        return -1;
    p->ent = e;
    e[p->nent++] = (struct progopt_entry){opt, value};
    return 0;
}

static char *keep(struct progopt *p, char *s)
{
    char **v = s ? realloc(p->strings, (p->nstrings + 1) * sizeof(*v)) : NULL;
    if (!v) {
        free(s);
        return NULL;
    }
    p->strings = v;
    v[p->nstrings++] = s;
    return s;
}

struct file_ctx {
    struct progopt *p;
    bool *on_cmdline; /* per option */
    char **out;       /* the file's argv entries */
    int *lines;       /* and their line numbers */
    int nout;
    char msg[400];
};

static const char *const file_refused[] = {"config", "help", "version", "genkey", "pubkey", NULL};

static int on_file_option(const char *name, const char *value, int line, void *arg)
{
    struct file_ctx *x = arg;
    struct progopt *p = x->p;
    int i = find_opt(p->longopts, name, strlen(name), true);
    if (i < 0) {
        snprintf(x->msg, sizeof(x->msg), "%s:%d: unknown option '%s'", p->config, line, name);
        return 2;
    }
    if (in_list(file_refused, name)) {
        snprintf(x->msg, sizeof(x->msg), "%s:%d: '%s' is for the command line only", p->config,
                 line, name);
        return 2;
    }
    char *s;
    if (p->longopts[i].has_arg == no_argument) {
        static const char *const yes[] = {"true", "yes", "on", "1", NULL};
        static const char *const no[] = {"false", "no", "off", "0", NULL};
        if (value && in_list(no, value))
            return 0;
        if (value && value[0] && !in_list(yes, value)) {
            snprintf(x->msg, sizeof(x->msg), "%s:%d: '%s' is a flag: want true or false, not '%s'",
                     p->config, line, name, value);
            return 2;
        }
        if (x->on_cmdline[i])
            return 0;
        if (asprintf(&s, "--%s", name) < 0)
            s = NULL;
    } else {
        if (!value || !value[0]) {
            snprintf(x->msg, sizeof(x->msg), "%s:%d: '%s' needs a value", p->config, line, name);
            return 2;
        }
        if (x->on_cmdline[i])
            return 0;
        if (asprintf(&s, "--%s=%s", name, value) < 0)
            s = NULL;
    }
    char **out = realloc(x->out, (size_t)(x->nout + 1) * sizeof(*out));
    if (!out || !keep(p, s)) {
        if (out)
            x->out = out;
        snprintf(x->msg, sizeof(x->msg), "%s", strerror(ENOMEM));
        return 1;
    }
    x->out = out;
    int *lines = realloc(x->lines, (size_t)(x->nout + 1) * sizeof(*lines));
    if (!lines) {
        snprintf(x->msg, sizeof(x->msg), "%s", strerror(ENOMEM));
        return 1;
    }
    x->lines = lines;
    lines[x->nout] = line;
    out[x->nout++] = s;
    if (add_entry(p, i, strchr(s, '=') ? strchr(s, '=') + 1 : NULL)) {
        snprintf(x->msg, sizeof(x->msg), "%s", strerror(ENOMEM));
        return 1;
    }
    return 0;
}

int progopt_load(struct progopt *p, const char *prog, const struct option *longopts,
                 const char *const *optional, int argc, char **argv)
{
    memset(p, 0, sizeof(*p));
    p->prog = prog;
    p->longopts = longopts;
    p->optional = optional;
    p->cmd_argc = argc;
    p->cmd_argv = argv;
    size_t nopts = 0;
    while (longopts[nopts].name)
        nopts++;
    bool *on_cmdline = calloc(nopts + 1, sizeof(bool));
    char **cmd = calloc((size_t)argc + 1, sizeof(char *));
    struct progopt_entry *cmd_ent = NULL;
    size_t ncmd_ent = 0;
    int rc = 1;
    bool printed = false;
    if (!on_cmdline || !cmd)
        goto out;
    /* The command line: which options it gives (getopt's prefix rules), and --config. */
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        cmd[i] = argv[i];
        if (i == 0 || strncmp(a, "--", 2) != 0)
            continue;
        if (!a[2])
            break; /* "--": the rest are operands */
        const char *eq = strchr(a, '=');
        size_t len = eq ? (size_t)(eq - a - 2) : strlen(a + 2);
        int k = find_opt(longopts, a + 2, len, false);
        if (k < 0)
            continue; /* getopt_long will say what is wrong */
        const char *value = eq ? eq + 1 : NULL;
        if (!eq && longopts[k].has_arg == required_argument) {
            if (in_list(optional, longopts[k].name) && (i + 1 == argc || argv[i + 1][0] == '-')) {
                char *s;
                if (asprintf(&s, "--%s=", longopts[k].name) < 0 || !keep(p, s))
                    goto out;
                cmd[i] = s;
                value = "";
            } else if (i + 1 < argc) {
                value = argv[++i];
                cmd[i] = argv[i];
            }
        }
        on_cmdline[k] = true;
        struct progopt_entry *e = realloc(cmd_ent, (ncmd_ent + 1) * sizeof(*e));
        if (!e)
            goto out;
        cmd_ent = e;
        cmd_ent[ncmd_ent++] = (struct progopt_entry){k, value};
        if (strcmp(longopts[k].name, "config") == 0)
            p->config = value;
    }
    struct file_ctx x = {.p = p, .on_cmdline = on_cmdline};
    if (p->config) {
        int frc = progopt_read_ini(p->config, on_file_option, &x, x.msg, sizeof(x.msg));
        if (frc) {
            snprintf(p->error, sizeof(p->error), "%s%s", frc == -1 ? "--config " : "", x.msg);
            free(x.out);
            free(x.lines);
            rc = frc == -1 ? 1 : frc == -2 ? 2 : frc;
            printed = true;
            goto out;
        }
    }
    /* argv[0], the file's options, the command line (the last given wins in getopt order). */
    p->argc = argc + x.nout;
    p->argv = calloc((size_t)p->argc + 1, sizeof(char *));
    p->file_lines = x.lines;
    p->nfile = x.nout;
    if (!p->argv) {
        free(x.out);
        goto out;
    }
    p->argv[0] = argv[0];
    for (int i = 0; i < x.nout; i++)
        p->argv[1 + i] = x.out[i];
    for (int i = 1; i < argc; i++)
        p->argv[x.nout + i] = cmd[i];
    free(x.out);
    for (size_t i = 0; i < ncmd_ent; i++)
        if (add_entry(p, cmd_ent[i].opt, cmd_ent[i].value))
            goto out;
    rc = 0;
out:
    if (rc && !printed)
        snprintf(p->error, sizeof(p->error), "%s", strerror(ENOMEM));
    free(on_cmdline);
    free(cmd);
    free(cmd_ent);
    if (rc)
        progopt_free(p);
    return rc;
}

int progopt_reload(const struct progopt *old, struct progopt *out)
{
    return progopt_load(out, old->prog, old->longopts, old->optional, old->cmd_argc, old->cmd_argv);
}

const char *progopt_value(const struct progopt *p, const char *name)
{
    const char *v = NULL;
    for (size_t i = 0; i < p->nent; i++)
        if (strcmp(p->longopts[p->ent[i].opt].name, name) == 0)
            v = p->ent[i].value ? p->ent[i].value : "";
    return v;
}

/* Do @a and @b give option @opt the same values in the same order? */
static bool same_values(const struct progopt *a, const struct progopt *b, int opt)
{
    size_t i = 0, j = 0;
    for (;;) {
        while (i < a->nent && a->ent[i].opt != opt)
            i++;
        while (j < b->nent && b->ent[j].opt != opt)
            j++;
        if (i == a->nent || j == b->nent)
            return i == a->nent && j == b->nent;
        const char *va = a->ent[i].value ? a->ent[i].value : "";
        const char *vb = b->ent[j].value ? b->ent[j].value : "";
        if (strcmp(va, vb) != 0)
            return false;
        i++, j++;
    }
}

const char *progopt_where(const struct progopt *p, int argi, char *buf, size_t len)
{
    buf[0] = '\0';
    if (p && argi >= 1 && argi <= p->nfile)
        snprintf(buf, len, "%s:%d: ", p->config, p->file_lines[argi - 1]);
    return buf;
}

size_t progopt_values(const struct progopt *p, const char *name, const char **out, size_t max)
{
    size_t n = 0;
    for (size_t i = 0; i < p->nent; i++)
        if (strcmp(p->longopts[p->ent[i].opt].name, name) == 0) {
            if (n < max)
                out[n] = p->ent[i].value ? p->ent[i].value : "";
            n++;
        }
    return n;
}

int progopt_state_file(const char *name, bool create, char *out, size_t len, char *err,
                       size_t errlen)
{
    const char *dir = getenv("VNET_STATE_DIR");
    if (!dir || !dir[0])
        dir = PROGOPT_STATE_DIR;
    if ((size_t)snprintf(out, len, "%s/%s", dir, name) >= len) {
        snprintf(err, errlen, "state directory %s: path too long", dir);
        return -1;
    }
    if (create && mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "cannot create the state directory %s: %s", dir, strerror(errno));
        return -1;
    }
    return 0;
}

void progopt_diff(const struct progopt *a, const struct progopt *b,
                  void (*cb)(const char *name, void *arg), void *arg)
{
    for (int k = 0; a->longopts[k].name; k++)
        if (!same_values(a, b, k))
            cb(a->longopts[k].name, arg);
}

void progopt_free(struct progopt *p)
{
    for (size_t i = 0; i < p->nstrings; i++)
        free(p->strings[i]);
    free(p->strings);
    free(p->argv);
    free(p->ent);
    free(p->file_lines);
    p->file_lines = NULL;
    p->nfile = 0;
    p->strings = NULL;
    p->argv = NULL;
    p->ent = NULL;
    p->nstrings = p->nent = 0;
    p->argc = 0;
}
