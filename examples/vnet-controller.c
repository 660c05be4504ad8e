/* vnet-controller: the configuration controller.
 *
 *   vnet-controller [--db PATH] [--listen ADDR:PORT] [--api ADDR:PORT] [--socket PATH]
 *                   [--key FILE] [--admin-token-file PATH] [--keepalive MS] [--log-level LEVEL]
 *                   [--handshake-timeout MS] [--preauth-frame-max BYTES] [--preauth-max N]
 *                   [--preauth-per-ip N] [--config FILE] [--log-format text|json]
 *                   [--metrics IP:PORT]
 *
 * Every long option may also come from a --config FILE of `name = value` lines (progopt.h); the
 * command line wins. SIGHUP reads it again: the log level and format and --keepalive apply at
 * once, other changes are logged as needing a restart. Without --db the database is
 * /var/lib/vnet/controller.db and, without --key, /var/lib/vnet/controller.key is the key when
 * it exists ($VNET_STATE_DIR instead of /var/lib/vnet; the directory is made, mode 0700).
 *
 * Serves node daemons (only) on --listen (default 0.0.0.0:7700) and subscriber requests (only)
 * on --api (default 127.0.0.1:7701; without --key, loopback clients only) and, with --socket,
 * a Unix socket for local administration (mode 0600). Runs in the foreground, logs to stderr, exits
 * 0 on SIGINT/SIGTERM after closing every session; 1 when it cannot start (database, address in
 * use, admin token file); 2 on a usage error.
 *
 * The admin's API token: when the admin has none yet, one is made at start and written to the
 * admin token file (mode 0600; default "<db path>.admin-token"), or taken from that file when
 * it already holds one (a fresh database next to an existing file). The file is refused when
 * others may read it.
 */
#include "svcnotify.h"

#include <sodium.h>
#include <vnet/controller.h>
#include <vnet/crypto.h>
#include <vnet/error.h>
#include <vnet/log.h>
#include <vnet/secret.h>
#include <vnet/store.h>
#include <vnet/token.h>
#include <vnet/vnet.h>

#include "metrics_http.h"
#include "progopt.h"
#include "start_guard.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>

static const char *prog = "vnet-controller";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [--db PATH] [--listen ADDR:PORT] [--api ADDR:PORT] [--socket PATH]\n"
            "          [--key FILE] [--admin-token-file PATH] [--keepalive MS]\n"
            "          [--log-level error|warn|info|debug] [--handshake-timeout MS]\n"
            "          [--preauth-frame-max BYTES] [--preauth-max N] [--preauth-per-ip N]\n"
            "          [--report-interval MS] [--config FILE] [--log-format text|json]\n"
            "          [--metrics IP:PORT]\n"
            "   or: %s --genkey [FILE] | --pubkey FILE\n"
            "\n"
            "  --config     read options from FILE: 'name = value' lines, the option names\n"
            "               without dashes (flags: true/false); the command line wins;\n"
            "               SIGHUP reads it again\n"
            "  --db         the configuration database: a SQLite file (created if missing);\n"
            "               default controller.db in the state directory ($VNET_STATE_DIR,\n"
            "               else /var/lib/vnet; made with mode 0700)\n"
            "  --listen     where node daemons connect (default 0.0.0.0:7700); serves nodes only\n"
            "  --api        where subscriber clients (vnetctl) connect (default 127.0.0.1:7701;\n"
            "               'none' to disable); without --key it serves loopback clients only\n"
            "  --socket     also a Unix socket for local administration (mode 0600)\n"
            "  --key        the controller's key file: nodes and API clients must authenticate\n"
            "               (with their key / an API token), and every session is encrypted\n"
            "               (they pin its public key); without it the API is open to anyone;\n"
            "               default controller.key in the state directory, if it exists\n"
            "  --admin-token-file  where the admin's API token is written when it is made\n"
            "               (first start; mode 0600; default <db path>.admin-token)\n"
            "  --genkey [FILE]  write a new key file (mode 0600), print its public key, exit;\n"
            "               without FILE: controller.key in the state directory\n"
            "  --pubkey     print the public key of a key file, exit\n"
            "  --keepalive  keepalive interval in ms (default 5000); a node session silent for\n"
            "               three intervals is closed (API clients may stay idle)\n"
            "  --handshake-timeout  ms from accept until a connection must have said hello\n"
            "               (default 10000); bytes trickling in do not extend it\n"
            "  --preauth-frame-max  the largest frame before authentication (default 65536)\n"
            "  --preauth-max        unauthenticated connections open at once (default 256)\n"
            "  --preauth-per-ip     the same, from one source address (default 16)\n"
            "  --report-interval    how often nodes report their counters and peers, in ms\n"
            "               (default 10000; `vnetctl network status` shows the last report)\n"
            "  --log-level  error, warn, info (default) or debug\n"
            "  --log-format text (default; timestamped unless stderr is the journal) or json\n"
            "               (one object per line: ts, level, module, msg)\n"
            "  --metrics    serve Prometheus metrics at http://IP:PORT/metrics (sessions,\n"
            "               requests, store latency, convergence lag per node)\n"
            "  --version    print the version, exit\n"
            "  --help       print this help, exit\n",
            prog, prog);
}

/* A decimal number in [lo, hi]. */
static int parse_u32(const char *s, uint32_t lo, uint32_t hi, uint32_t *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (!s[0] || *end || errno || s[0] == '-' || v < lo || v > hi)
        return -1;
    *out = (uint32_t)v;
    return 0;
}

/* The options the controller started with: a bad value from the --config file is named by its
 * file and line. */
static struct progopt start_po;

static int usage_error(const char *fmt, const char *arg)
{
    char where[600];
    fprintf(stderr, "%s: %s", prog, progopt_where(&start_po, optind - 1, where, sizeof(where)));
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return 2;
}

/* Read an API token from @path: 1 and @raw filled, 0 when the file does not exist, or -1 with
 * the reason printed (loose permissions, not a regular file, unreadable, not a token). */
static int read_token_file(const char *path, uint8_t raw[VNET_API_TOKEN_LEN])
{
    char buf[128], err[512];
    size_t n;
    int rc =
        vnet_secret_file_read(path, "admin token file", buf, sizeof(buf) - 1, &n, err, sizeof(err));
    if (rc == VNET_ENOENT)
        return 0;
    if (rc) {
        fprintf(stderr, "%s: %s\n", prog, err);
        return -1;
    }
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    rc = vnet_api_token_parse(buf, raw);
    sodium_memzero(buf, sizeof(buf));
    if (rc) {
        fprintf(stderr, "%s: admin token file %s does not hold an API token\n", prog, path);
        return -1;
    }
    return 1;
}

/* Write a new token file (never over an existing one), mode 0600, synced. */
static int write_token_file(const char *path, const char *token)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        fprintf(stderr, "%s: admin token file %s: %s\n", prog, path, strerror(errno));
        return -1;
    }
    size_t len = strlen(token);
    bool ok = fchmod(fd, 0600) == 0 && write(fd, token, len) == (ssize_t)len &&
              write(fd, "\n", 1) == 1 && fsync(fd) == 0;
    if (close(fd) != 0)
        ok = false;
    if (!ok) {
        fprintf(stderr, "%s: admin token file %s: %s\n", prog, path, strerror(errno));
        unlink(path);
        return -1;
    }
    return 0;
}

/* Make sure the admin can authenticate: give it a token at the first start (written to
 * @path; then @written is set), or the one @path holds (@have > 0: read before the store was
 * opened, into @raw) when the database has none. 0, or -1 (message printed). */
static int admin_token_setup(struct vnet_store *store, const char *path, int have,
                             uint8_t raw[VNET_API_TOKEN_LEN], bool *written)
{
    struct vnet_subscriber admin;
    uint8_t hash[VNET_TOKEN_HASH_BYTES];
    if (have > 0)
        vnet_token_hash(raw, VNET_API_TOKEN_LEN, hash);
    sodium_memzero(raw, VNET_API_TOKEN_LEN);
    int rc = vnet_store_subscriber_get_by_id(store, VNET_SUBSCRIBER_ADMIN, &admin);
    if (rc) {
        fprintf(stderr, "%s: cannot read the admin subscriber: %s\n", prog, vnet_strerror(rc));
        return -1;
    }
    if (admin.has_token) {
        struct vnet_subscriber who;
        if (have == 0)
            vnet_log(VNET_LOG_WARN, "controller",
                     "the admin has an API token but %s does not exist: use the one you kept, "
                     "or get a new one with vnetctl --socket PATH subscriber token admin",
                     path);
        else if (vnet_store_subscriber_by_token(store, hash, &who) != 0 || !who.admin)
            vnet_log(VNET_LOG_WARN, "controller",
                     "%s does not hold the admin's current API token (replaced since?)", path);
        else
            vnet_log(VNET_LOG_INFO, "controller", "admin API token in %s", path);
        return 0;
    }
    char token[VNET_API_TOKEN_STRLEN];
    if (have == 0) {
        if ((rc = vnet_api_token_new(token, sizeof(token), hash)) < 0) {
            fprintf(stderr, "%s: cannot make a token: %s\n", prog, vnet_strerror(rc));
            return -1;
        }
        rc = write_token_file(path, token);
        memset(token, 0, sizeof(token));
        if (rc)
            return -1;
        *written = true;
    }
    rc = vnet_store_admin_token_set(store, hash);
    if (rc) {
        fprintf(stderr, "%s: cannot set the admin's API token: %s\n", prog, vnet_strerror(rc));
        return -1;
    }
    vnet_log(VNET_LOG_INFO, "controller", "admin API token %s %s",
             have ? "taken from" : "written to", path);
    return 0;
}

struct ctx {
    struct vnet_controller *c;
    uv_signal_t sig[3];           /* SIGINT, SIGTERM, SIGHUP */
    struct metrics_http *metrics; /* --metrics */
};

static int render_metrics(void *arg, char **out, size_t *len)
{
    struct ctx *x = arg;
    return vnet_controller_metrics_write(x->c, out, len);
}

static void changed_needs_restart(const char *name, void *arg)
{
    static const char *const live[] = {"log-level", "log-format", "keepalive", NULL};
    for (const char *const *l = live; *l; l++)
        if (strcmp(*l, name) == 0)
            return;
    (*(unsigned *)arg)++;
    vnet_log(VNET_LOG_WARN, "controller", "reload: --%s changed: takes effect at the next restart",
             name);
}

/* SIGHUP: read --config again; apply the log level and format and the keepalive interval;
 * name every other option that changed since the start. A bad file changes nothing. */
static void reload(struct vnet_controller *c)
{
    struct progopt next;
    const char *v, *bad = NULL;
    enum vnet_log_level level = VNET_LOG_INFO;
    enum vnet_log_format format = VNET_LOG_FORMAT_TEXT;
    uint32_t keepalive = 5000;
    if (!start_po.config) {
        vnet_log(VNET_LOG_INFO, "controller", "SIGHUP: no config file to reload");
        return;
    }
    if (progopt_reload(&start_po, &next) != 0) {
        vnet_log(VNET_LOG_ERROR, "controller", "reload: %s: nothing changed", next.error);
        return;
    }
    if ((v = progopt_value(&next, "log-level")) && vnet_log_level_parse(v, &level))
        bad = "log-level";
    else if ((v = progopt_value(&next, "log-format")) && vnet_log_format_parse(v, &format))
        bad = "log-format";
    else if ((v = progopt_value(&next, "keepalive")) && parse_u32(v, 10, 3600000, &keepalive))
        bad = "keepalive";
    if (bad) {
        vnet_log(VNET_LOG_ERROR, "controller", "reload: bad --%s '%s': nothing changed", bad, v);
        progopt_free(&next);
        return;
    }
    vnet_log_set_level(level);
    vnet_log_set_format(format);
    vnet_controller_set_keepalive(c, keepalive);
    unsigned restart = 0;
    progopt_diff(&start_po, &next, changed_needs_restart, &restart);
    vnet_log(VNET_LOG_INFO, "controller",
             "reload: read %s: log level %s, format %s, keepalive %u ms; %u change%s need%s a "
             "restart",
             start_po.config, vnet_log_level_name(level),
             format == VNET_LOG_FORMAT_JSON ? "json" : "text", keepalive, restart,
             restart == 1 ? "" : "s", restart == 1 ? "s" : "");
    progopt_free(&next);
}

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct ctx *x = h->data;
    if (signum == SIGHUP) {
        reload(x->c);
        return;
    }
    vnet_log(VNET_LOG_INFO, "controller", "signal %d: stopping", signum);
    svc_notify_stopping("stopping");
    metrics_http_close(x->metrics);
    x->metrics = NULL;
    vnet_controller_destroy(x->c);
    x->c = NULL;
    for (int i = 0; i < 3; i++)
        uv_close((uv_handle_t *)&x->sig[i], NULL);
}

int main(int argc, char **argv)
{
    enum {
        O_DB = 256,
        O_LISTEN,
        O_API,
        O_SOCKET,
        O_KEEP,
        O_LOG,
        O_VERSION,
        O_KEY,
        O_GENKEY,
        O_PUBKEY,
        O_ADMIN_TOKEN,
        O_HS_TIMEOUT,
        O_PA_FRAME,
        O_PA_MAX,
        O_PA_PER_IP,
        O_REPORT,
        O_CONFIG,
        O_LOG_FORMAT,
        O_METRICS,
    };
    static const struct option longopts[] = {
        {"db", required_argument, NULL, O_DB},
        {"listen", required_argument, NULL, O_LISTEN},
        {"api", required_argument, NULL, O_API},
        {"socket", required_argument, NULL, O_SOCKET},
        {"keepalive", required_argument, NULL, O_KEEP},
        {"log-level", required_argument, NULL, O_LOG},
        {"version", no_argument, NULL, O_VERSION},
        {"key", required_argument, NULL, O_KEY},
        {"genkey", required_argument, NULL, O_GENKEY},
        {"pubkey", required_argument, NULL, O_PUBKEY},
        {"admin-token-file", required_argument, NULL, O_ADMIN_TOKEN},
        {"handshake-timeout", required_argument, NULL, O_HS_TIMEOUT},
        {"preauth-frame-max", required_argument, NULL, O_PA_FRAME},
        {"preauth-max", required_argument, NULL, O_PA_MAX},
        {"preauth-per-ip", required_argument, NULL, O_PA_PER_IP},
        {"report-interval", required_argument, NULL, O_REPORT},
        {"config", required_argument, NULL, O_CONFIG},
        {"log-format", required_argument, NULL, O_LOG_FORMAT},
        {"metrics", required_argument, NULL, O_METRICS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *listen_addr = "0.0.0.0:7700", *api = "127.0.0.1:7701", *sock = NULL;
    const char *key_file = NULL, *genkey = NULL, *pubkey_file = NULL, *admin_token = NULL;
    const char *metrics = NULL;
    unsigned long keepalive = 5000;
    uint32_t hs_timeout = 0, pa_frame = 0, pa_max = 0, pa_per_ip = 0; /* 0: the library's */
    uint32_t report_ms = 0;
    static const char *const optional_value[] = {"genkey", NULL};
    vnet_log_set_level(VNET_LOG_INFO); /* an operator sees "up", "stopped" */
    int rc, c = progopt_load(&start_po, prog, longopts, optional_value, argc, argv);
    if (c) {
        fprintf(stderr, "%s: %s\n", prog, start_po.error);
        return c;
    }
    /* A SIGHUP before the loop watches it (database, admin token) must not kill the start. */
    signal(SIGHUP, SIG_IGN);
    argc = start_po.argc;
    argv = start_po.argv;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", longopts, NULL)) != -1) {
        char *end;
        switch (c) {
        case O_DB:
            db = optarg;
            break;
        case O_LISTEN:
            listen_addr = optarg;
            break;
        case O_API:
            api = strcmp(optarg, "none") == 0 ? NULL : optarg;
            break;
        case O_SOCKET:
            sock = optarg;
            break;
        case O_KEEP:
            keepalive = strtoul(optarg, &end, 10);
            if (!optarg[0] || *end || keepalive < 10 || keepalive > 3600000)
                return usage_error("bad --keepalive '%s': 10..3600000 ms", optarg);
            break;
        case O_LOG: {
            enum vnet_log_level l;
            if (vnet_log_level_parse(optarg, &l))
                return usage_error("bad --log-level '%s': error, warn, info or debug", optarg);
            vnet_log_set_level(l);
            break;
        }
        case O_KEY:
            key_file = optarg;
            break;
        case O_GENKEY:
            genkey = optarg;
            break;
        case O_PUBKEY:
            pubkey_file = optarg;
            break;
        case O_METRICS: {
            char why[160];
            if (metrics_http_check(optarg, why, sizeof(why)) != 0)
                return usage_error("%s", why);
            metrics = optarg;
            break;
        }
        case O_ADMIN_TOKEN:
            if (!optarg[0])
                return usage_error("%s", "--admin-token-file needs a path");
            admin_token = optarg;
            break;
        case O_HS_TIMEOUT:
            if (parse_u32(optarg, 100, 3600000, &hs_timeout))
                return usage_error("bad --handshake-timeout '%s': 100..3600000 ms", optarg);
            break;
        case O_PA_FRAME:
            if (parse_u32(optarg, 1024, 16u << 20, &pa_frame))
                return usage_error("bad --preauth-frame-max '%s': 1024..16777216 bytes", optarg);
            break;
        case O_PA_MAX:
            if (parse_u32(optarg, 1, 1000000, &pa_max))
                return usage_error("bad --preauth-max '%s': 1..1000000", optarg);
            break;
        case O_PA_PER_IP:
            if (parse_u32(optarg, 1, 1000000, &pa_per_ip))
                return usage_error("bad --preauth-per-ip '%s': 1..1000000", optarg);
            break;
        case O_REPORT:
            if (parse_u32(optarg, 1000, 3600000, &report_ms))
                return usage_error("bad --report-interval '%s': 1000..3600000 ms", optarg);
            break;
        case O_LOG_FORMAT: {
            enum vnet_log_format f;
            if (vnet_log_format_parse(optarg, &f))
                return usage_error("bad --log-format '%s': text or json", optarg);
            vnet_log_set_format(f);
            break;
        }
        case O_CONFIG:
            break; /* read by progopt_load() */
        case O_VERSION:
            printf("vnet-controller %s\n", vnet_version());
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        case ':':
            return usage_error("option '%s' needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s'", argv[optind]);
    char state_db[4096], state_key[4096], serr[4200];
    if (genkey && !genkey[0]) {
        if (progopt_state_file("controller.key", true, state_key, sizeof(state_key), serr,
                               sizeof(serr))) {
            fprintf(stderr, "%s: %s\n", prog, serr);
            return 1;
        }
        genkey = state_key;
    }
    if (genkey || pubkey_file) {
        struct vnet_keypair kp;
        char kerr[256] = "", pub[VNET_PUBKEY_STRLEN];
        int krc =
            genkey ? vnet_key_generate(&kp) : vnet_key_load(pubkey_file, &kp, kerr, sizeof(kerr));
        if (!krc && genkey)
            krc = vnet_key_save(genkey, &kp, kerr, sizeof(kerr));
        if (krc) {
            fprintf(stderr, "%s: %s: %s\n", prog, genkey ? genkey : pubkey_file,
                    kerr[0] ? kerr : vnet_strerror(krc));
            return 1;
        }
        vnet_pubkey_format(kp.pub, pub, sizeof(pub));
        vnet_key_wipe(&kp);
        printf("%s\n", pub);
        return 0;
    }
    /* Everything that can be found wrong is found before the database and the admin token
     * exist; what a later failure leaves is removed (start_guard.h). */
    char listen_num[VNET_ENDPOINT_STRLEN], api_num[VNET_ENDPOINT_STRLEN];
    if ((rc = guard_listen_addr(prog, "--listen", listen_addr, listen_num, sizeof(listen_num))) ||
        (api && (rc = guard_listen_addr(prog, "--api", api, api_num, sizeof(api_num)))))
        return rc;
    const char *const probe_opts[] = {"--listen", "--api"};
    const char *const probe_addrs[] = {listen_num, api_num};
    if (guard_probe_tcp(prog, probe_opts, probe_addrs, api ? 2 : 1))
        return 1;
    listen_addr = listen_num;
    api = api ? api_num : NULL;
    if (!db) {
        if (progopt_state_file("controller.db", false, state_db, sizeof(state_db), serr,
                               sizeof(serr))) {
            fprintf(stderr, "%s: %s\n", prog, serr);
            return 1;
        }
        db = state_db;
    }
    if (!key_file &&
        progopt_state_file("controller.key", false, state_key, sizeof(state_key), serr,
                           sizeof(serr)) == 0 &&
        access(state_key, F_OK) == 0)
        key_file = state_key;
    if (sock && guard_probe_unix(prog, sock, db))
        return 1;
    struct vnet_keypair key;
    if (key_file) {
        char kerr[256] = "";
        int krc = vnet_key_load(key_file, &key, kerr, sizeof(kerr));
        if (krc) {
            fprintf(stderr, "%s: --key %s: %s\n", prog, key_file,
                    kerr[0] ? kerr : vnet_strerror(krc));
            return 1;
        }
    }

    /* One descriptor per node session: take what the hard limit allows. */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    char err[256] = "";
    int mfd = -1; /* --metrics: bound before the database is made, so a port in use leaves none */
    if (metrics && (mfd = metrics_http_listen(metrics, err, sizeof(err))) < 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        if (key_file)
            vnet_key_wipe(&key);
        return 1;
    }
    char token_path[4096];
    if (!admin_token) { /* next to the database file */
        const char *file = strncmp(db, "sqlite:", 7) == 0 ? db + 7 : db;
        if (snprintf(token_path, sizeof(token_path), "%s.admin-token", file) >=
            (int)sizeof(token_path))
            return usage_error("%s", "--db path too long");
        admin_token = token_path;
    }
    uint8_t token_raw[VNET_API_TOKEN_LEN];
    int have_token = 0;
    struct guard_undo undo;
    guard_undo_init(&undo, db);
    struct vnet_store *store = NULL;
    rc = vnet_store_open(db, NULL, &store, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: database %s: %s\n", prog, db, err[0] ? err : vnet_strerror(rc));
    } else { /* the token file: after the store, which makes the directory they share */
        have_token = read_token_file(admin_token, token_raw);
        if (have_token < 0 ||
            (have_token == 0 && guard_can_create(prog, "admin token file", admin_token)))
            rc = -1;
    }
    if (rc) {
        vnet_store_close(store);
        sodium_memzero(token_raw, sizeof(token_raw));
        guard_undo_run(&undo);
        if (key_file)
            vnet_key_wipe(&key);
        return 1;
    }
    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ctx x;
    memset(&x, 0, sizeof(x));
    struct vnet_controller_cfg cfg = {.loop = &loop,
                                      .store = store,
                                      .node_listen = listen_addr,
                                      .api_listen = api,
                                      .api_socket = sock,
                                      .keepalive_ms = (uint32_t)keepalive,
                                      .handshake_timeout_ms = hs_timeout,
                                      .preauth_frame_max = pa_frame,
                                      .preauth_max = pa_max,
                                      .preauth_per_ip = pa_per_ip,
                                      .report_ms = report_ms,
                                      .key = key_file ? &key : NULL};
    rc = vnet_controller_create(&cfg, &x.c);
    bool token_written = false;
    if (rc) {
        const char *msg = vnet_strerror(rc);
        if (strcmp(msg, "unknown error") == 0)
            msg = uv_strerror(rc); /* an errno the socket layer gave */
        fprintf(stderr, "%s: cannot start: %s\n", prog, msg);
    } else if (admin_token_setup(store, admin_token, have_token, token_raw, &token_written)) {
        rc = -1;
        vnet_controller_destroy(x.c);
    }
    sodium_memzero(token_raw, sizeof(token_raw));
    if (rc) { /* nothing of this start stays behind */
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        vnet_store_close(store);
        if (token_written)
            snprintf(undo.token, sizeof(undo.token), "%s", admin_token);
        guard_undo_run(&undo);
        if (key_file)
            vnet_key_wipe(&key);
        return 1;
    }
    if (key_file) {
        char pub[VNET_PUBKEY_STRLEN];
        vnet_pubkey_format(key.pub, pub, sizeof(pub));
        vnet_log(VNET_LOG_INFO, "controller", "key %s: nodes pin %s", key_file, pub);
    } else {
        vnet_log(VNET_LOG_WARN, "controller",
                 "no --key: node sessions are neither authenticated nor encrypted");
        if (api)
            vnet_log(VNET_LOG_WARN, "controller",
                     "no --key: the API on %s is open to loopback clients: whoever connects "
                     "from this host is the admin",
                     api);
    }
    vnet_key_wipe(&key);
    if (mfd >= 0 &&
        metrics_http_start(&x.metrics, &loop, mfd, render_metrics, &x, err, sizeof(err)) != 0) {
        fprintf(stderr, "%s: %s\n", prog, err);
        vnet_controller_destroy(x.c);
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        vnet_store_close(store);
        return 1;
    }
    static const int signums[3] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) {
        uv_signal_init(&loop, &x.sig[i]);
        x.sig[i].data = &x;
        uv_signal_start(&x.sig[i], on_signal, signums[i]);
    }
    vnet_log(VNET_LOG_INFO, "controller", "up: database %s, nodes on port %d, api on %s%s%s", db,
             vnet_controller_node_port(x.c), api ? api : "(none)", sock ? ", socket " : "",
             sock ? sock : "");
    svc_notify_start(&loop); /* systemd: WATCHDOG=1 pings when asked, READY=1 once serving */
    svc_notify_ready("serving: nodes on port %d, api on %s", vnet_controller_node_port(x.c),
                     api    ? api
                     : sock ? sock
                            : "(none)");
    uv_run(&loop, UV_RUN_DEFAULT);
    svc_notify_close();
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    vnet_store_close(store);
    vnet_log(VNET_LOG_INFO, "controller", "stopped");
    return 0;
}
