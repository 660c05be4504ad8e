/* vnet-controller: the configuration controller.
 *
 *   vnet-controller --db PATH [--listen ADDR:PORT] [--api ADDR:PORT] [--socket PATH]
 *                   [--keepalive MS] [--log-level LEVEL]
 *
 * Serves node daemons on --listen (default 0.0.0.0:7700) and subscriber requests on --api
 * (default 127.0.0.1:7701) and, with --socket, a Unix socket for local administration (mode
 * 0600). Runs in the foreground, logs to stderr, exits 0 on SIGINT/SIGTERM after closing every
 * session; 1 when it cannot start (database, address in use); 2 on a usage error.
 */
#include <vnet/controller.h>
#include <vnet/crypto.h>
#include <vnet/error.h>
#include <vnet/log.h>
#include <vnet/store.h>
#include <vnet/vnet.h>

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

static const char *prog = "vnet-controller";

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s --db PATH [--listen ADDR:PORT] [--api ADDR:PORT] [--socket PATH]\n"
            "          [--key FILE] [--keepalive MS] [--log-level error|warn|info|debug]\n"
            "   or: %s --genkey FILE | --pubkey FILE\n"
            "\n"
            "  --db         the configuration database: a SQLite file (created if missing)\n"
            "  --listen     where node daemons connect (default 0.0.0.0:7700)\n"
            "  --api        where subscriber clients (vnetctl) connect (default 127.0.0.1:7701;\n"
            "               'none' to disable)\n"
            "  --socket     also a Unix socket for local administration (mode 0600)\n"
            "  --key        the controller's key file: nodes must authenticate, and every\n"
            "               node session is encrypted (nodes pin its public key)\n"
            "  --genkey     write a new key file (mode 0600), print its public key, exit\n"
            "  --pubkey     print the public key of a key file, exit\n"
            "  --keepalive  keepalive interval in ms (default 5000); a session silent for three\n"
            "               intervals is closed\n",
            prog, prog);
}

static int usage_error(const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry '%s --help'.\n", prog);
    return 2;
}

struct ctx {
    struct vnet_controller *c;
    uv_signal_t sig[2];
};

static void close_walk(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct ctx *x = h->data;
    vnet_log(VNET_LOG_WARN, "controller", "signal %d: stopping", signum);
    vnet_controller_destroy(x->c);
    x->c = NULL;
    uv_close((uv_handle_t *)&x->sig[0], NULL);
    uv_close((uv_handle_t *)&x->sig[1], NULL);
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
        O_PUBKEY
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
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *db = NULL, *listen_addr = "0.0.0.0:7700", *api = "127.0.0.1:7701", *sock = NULL;
    const char *key_file = NULL, *genkey = NULL, *pubkey_file = NULL;
    unsigned long keepalive = 5000;
    int c;
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
    if (!db)
        return usage_error("%s", "--db is required");
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
    struct vnet_store *store;
    int rc = vnet_store_open(db, NULL, &store, err, sizeof(err));
    if (rc) {
        fprintf(stderr, "%s: database %s: %s\n", prog, db, err[0] ? err : vnet_strerror(rc));
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
                                      .key = key_file ? &key : NULL};
    rc = vnet_controller_create(&cfg, &x.c);
    if (rc) {
        const char *msg = vnet_strerror(rc);
        if (strcmp(msg, "unknown error") == 0)
            msg = uv_strerror(rc); /* an errno the socket layer gave */
        fprintf(stderr, "%s: cannot start: %s\n", prog, msg);
        uv_walk(&loop, close_walk, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        vnet_store_close(store);
        return 1;
    }
    if (key_file) {
        char pub[VNET_PUBKEY_STRLEN];
        vnet_pubkey_format(key.pub, pub, sizeof(pub));
        vnet_log(VNET_LOG_WARN, "controller", "key %s: nodes pin %s", key_file, pub);
    } else {
        vnet_log(VNET_LOG_WARN, "controller",
                 "no --key: node sessions are neither authenticated nor encrypted");
    }
    vnet_key_wipe(&key);
    uv_signal_init(&loop, &x.sig[0]);
    uv_signal_init(&loop, &x.sig[1]);
    x.sig[0].data = x.sig[1].data = &x;
    uv_signal_start(&x.sig[0], on_signal, SIGINT);
    uv_signal_start(&x.sig[1], on_signal, SIGTERM);
    vnet_log(VNET_LOG_WARN, "controller", "up: database %s, nodes on port %d, api on %s%s%s", db,
             vnet_controller_node_port(x.c), api ? api : "(none)", sock ? ", socket " : "",
             sock ? sock : "");
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    vnet_store_close(store);
    vnet_log(VNET_LOG_WARN, "controller", "stopped");
    return 0;
}
