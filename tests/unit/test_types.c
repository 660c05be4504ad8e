/* Unit tests of the base module: value types and the log hook (errors: test_error.c). */
#include "vnet/error.h"
#include "vnet/log.h"
#include "vnet/types.h"

#include <arpa/inet.h>
#include <check.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

START_TEST(t_mac)
{
    struct vnet_mac m, keep = {{9, 9, 9, 9, 9, 9}};
    char buf[VNET_MAC_STRLEN];
    ck_assert_int_eq(vnet_mac_parse("01:23:45:67:89:AB", &m), 0);
    ck_assert_int_eq(vnet_mac_format(&m, buf, sizeof(buf)), 17);
    ck_assert_str_eq(buf, "01:23:45:67:89:ab");
    ck_assert_int_eq(vnet_mac_parse("01-23-45-67-89-ab", &m), 0);
    ck_assert(vnet_mac_is_multicast(&m));
    ck_assert(!vnet_mac_is_broadcast(&m));
    static const char *bad[] = {"",
                                "01:02:03:04:05",
                                "01:02:03:04:05:06:07",
                                "01:02:03:04:05:0g",
                                "01:02-03:04:05:06",
                                "1:2:3:4:5:6",
                                " 01:02:03:04:05:06",
                                "01:02:03:04:05:06 ",
                                "0102.0304.0506",
                                "01::02:03:04:05:6"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        m = keep;
        ck_assert_msg(vnet_mac_parse(bad[i], &m) == VNET_EINVAL, "accepted '%s'", bad[i]);
        ck_assert(vnet_mac_eq(&m, &keep)); /* untouched on error */
    }
    ck_assert_int_eq(vnet_mac_parse(NULL, &m), VNET_EINVAL);
    ck_assert_int_eq(vnet_mac_format(&m, buf, 17), VNET_ENOSPC);
    ck_assert_str_eq(buf, "");
    ck_assert_int_eq(vnet_mac_parse("ff:ff:ff:ff:ff:ff", &m), 0);
    ck_assert(vnet_mac_is_broadcast(&m));
}
END_TEST

START_TEST(t_vni)
{
    uint32_t v = 5;
    ck_assert_int_eq(vnet_vni_parse("0", &v), 0);
    ck_assert_uint_eq(v, 0);
    ck_assert_int_eq(vnet_vni_parse("16777215", &v), 0);
    ck_assert_uint_eq(v, 16777215);
    ck_assert_int_eq(vnet_vni_parse("16777216", &v), VNET_ERANGE);
    ck_assert_int_eq(vnet_vni_parse("99999999999999999999999", &v), VNET_ERANGE);
    ck_assert_int_eq(vnet_vni_parse("", &v), VNET_EINVAL);
    ck_assert_int_eq(vnet_vni_parse("-1", &v), VNET_EINVAL);
    ck_assert_int_eq(vnet_vni_parse("+1", &v), VNET_EINVAL);
    ck_assert_int_eq(vnet_vni_parse("12a", &v), VNET_EINVAL);
    ck_assert_int_eq(vnet_vni_parse("99999999x", &v), VNET_EINVAL);
    ck_assert_int_eq(vnet_vni_parse(" 1", &v), VNET_EINVAL);
    ck_assert_int_eq(vnet_vni_parse("0x10", &v), VNET_EINVAL);
    ck_assert_uint_eq(v, 16777215);
    ck_assert(vnet_vni_valid(VNET_VNI_MAX));
    ck_assert(!vnet_vni_valid(VNET_VNI_MAX + 1ull));
}
END_TEST

START_TEST(t_ip_prefix)
{
    struct vnet_ip ip, ip2;
    char buf[VNET_IP_STRLEN];
    ck_assert_int_eq(vnet_ip_parse("192.0.2.1", &ip), 0);
    ck_assert_int_eq(ip.family, VNET_AF_INET);
    ck_assert_int_eq(vnet_ip_format(&ip, buf, sizeof(buf)), 9);
    ck_assert_str_eq(buf, "192.0.2.1");
    ck_assert_int_eq(vnet_ip_parse("2001:DB8::1", &ip2), 0);
    ck_assert_int_eq(ip2.family, VNET_AF_INET6);
    vnet_ip_format(&ip2, buf, sizeof(buf));
    ck_assert_str_eq(buf, "2001:db8::1");
    ck_assert(!vnet_ip_eq(&ip, &ip2));
    static const char *bad[] = {"",         "300.1.1.1", "1.2.3",     "1.2.3.4.5",
                                "1.2.3.4 ", "::g",       "1.2.3.4/8", "localhost"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(vnet_ip_parse(bad[i], &ip) == VNET_EINVAL, "accepted '%s'", bad[i]);

    struct vnet_prefix p;
    char pbuf[VNET_PREFIX_STRLEN];
    ck_assert_int_eq(vnet_prefix_parse("10.1.2.3/24", &p), 0);
    ck_assert_uint_eq(p.len, 24);
    vnet_prefix_format(&p, pbuf, sizeof(pbuf));
    ck_assert_str_eq(pbuf, "10.1.2.3/24");
    vnet_ip_parse("10.1.2.200", &ip);
    ck_assert(vnet_prefix_contains(&p, &ip));
    vnet_ip_parse("10.1.3.1", &ip);
    ck_assert(!vnet_prefix_contains(&p, &ip));
    ck_assert_int_eq(vnet_prefix_parse("fd00::1/64", &p), 0);
    vnet_ip_parse("fd00::ffff:1", &ip);
    ck_assert(vnet_prefix_contains(&p, &ip));
    vnet_ip_parse("10.1.2.3", &ip);
    ck_assert(!vnet_prefix_contains(&p, &ip));
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.1/33", &p), VNET_ERANGE);
    ck_assert_int_eq(vnet_prefix_parse("fd00::1/129", &p), VNET_ERANGE);
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.1", &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.1/", &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_prefix_parse("/24", &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.1/2x", &p), VNET_EINVAL);
    ck_assert_int_eq(vnet_prefix_parse("10.0.0.1/0", &p), 0);
}
END_TEST

START_TEST(t_endpoint)
{
    struct vnet_endpoint ep, ep2;
    char buf[VNET_ENDPOINT_STRLEN];
    ck_assert_int_eq(vnet_endpoint_parse("192.0.2.1:4789", &ep), 0);
    ck_assert_uint_eq(ep.port, 4789);
    vnet_endpoint_format(&ep, buf, sizeof(buf));
    ck_assert_str_eq(buf, "192.0.2.1:4789");
    ck_assert_int_eq(vnet_endpoint_parse("[2001:db8::1]:65535", &ep2), 0);
    ck_assert_uint_eq(ep2.port, 65535);
    vnet_endpoint_format(&ep2, buf, sizeof(buf));
    ck_assert_str_eq(buf, "[2001:db8::1]:65535");
    static const struct {
        const char *s;
        int rc;
    } bad[] = {
        {"", VNET_EINVAL},
        {"300.1.1.1:5", VNET_EINVAL},
        {"[::1]:99999", VNET_ERANGE},
        {"1.2.3.4:0", VNET_ERANGE},
        {"1.2.3.4:65536", VNET_ERANGE},
        {"1.2.3.4", VNET_EINVAL},
        {"1.2.3.4:", VNET_EINVAL},
        {"1.2.3.4:-1", VNET_EINVAL},
        {"1.2.3.4:80x", VNET_EINVAL},
        {"::1:80", VNET_EINVAL},
        {"[::1]", VNET_EINVAL},
        {"[::1:80", VNET_EINVAL},
        {"[1.2.3.4]:80", VNET_EINVAL},
        {":80", VNET_EINVAL},
        {"[]:80", VNET_EINVAL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int rc = vnet_endpoint_parse(bad[i].s, &ep);
        ck_assert_msg(rc == bad[i].rc, "'%s' gave %d (%s), wanted %d", bad[i].s, rc,
                      vnet_err_name(rc), bad[i].rc);
    }
    /* sockaddr round trips, v4-mapped IPv6 folds to IPv4 */
    struct sockaddr_storage ss;
    ck_assert_int_eq(vnet_endpoint_to_sockaddr(&ep2, &ss), (int)sizeof(struct sockaddr_in6));
    ck_assert_int_eq(vnet_endpoint_from_sockaddr((struct sockaddr *)&ss, &ep), 0);
    ck_assert(vnet_endpoint_eq(&ep, &ep2));
    struct sockaddr_in6 m6;
    memset(&m6, 0, sizeof(m6));
    m6.sin6_family = AF_INET6;
    m6.sin6_port = htons(7);
    inet_pton(AF_INET6, "::ffff:192.0.2.9", &m6.sin6_addr);
    ck_assert_int_eq(vnet_endpoint_from_sockaddr((struct sockaddr *)&m6, &ep), 0);
    vnet_endpoint_format(&ep, buf, sizeof(buf));
    ck_assert_str_eq(buf, "192.0.2.9:7");
    ep.ip.family = 3;
    ck_assert_int_eq(vnet_endpoint_to_sockaddr(&ep, &ss), VNET_EINVAL);
    ck_assert_int_eq(vnet_endpoint_format(&ep, buf, sizeof(buf)), VNET_EINVAL);
}
END_TEST

static int log_calls;
static char log_last[128];

static void capture(enum vnet_log_level level, const char *module, const char *msg, void *arg)
{
    (void)level;
    log_calls += *(int *)arg;
    snprintf(log_last, sizeof(log_last), "%s:%s", module, msg);
}

/* HOST:PORT: literal addresses here, names through getaddrinfo ("localhost" from /etc/hosts:
 * no lookup leaves the machine); what is malformed is refused naming it. */
START_TEST(t_resolve)
{
    struct vnet_endpoint ep[4];
    char err[256], buf[64];
    ck_assert_int_eq(vnet_endpoint_resolve("192.0.2.1:7701", 0, ep, 4, err, sizeof(err)), 1);
    vnet_endpoint_format(&ep[0], buf, sizeof(buf));
    ck_assert_str_eq(buf, "192.0.2.1:7701");
    ck_assert_int_eq(vnet_endpoint_resolve("[2001:db8::1]:7", 0, ep, 4, err, sizeof(err)), 1);
    ck_assert_int_eq(ep[0].ip.family, VNET_AF_INET6);
    int n = vnet_endpoint_resolve("localhost:7800", 0, ep, 4, err, sizeof(err));
    ck_assert_msg(n >= 1, "localhost: %s (%s)", vnet_err_name(n), err);
    vnet_endpoint_format(&ep[0], buf, sizeof(buf));
    ck_assert_str_eq(buf, "127.0.0.1:7800"); /* IPv4 first */
    ck_assert_int_eq(vnet_endpoint_resolve("localhost:0", VNET_RESOLVE_PORT0, ep, 1, err, 256), 1);
    ck_assert_uint_eq(ep[0].port, 0);
    static const char *const bad[] = {"localhost:0", "0.0.0.0:99999", "127.0.0.1",  "::1:7700",
                                      "[::1:7700",   "[10.0.0.1]:5",  ":7700",      "h:",
                                      "h:12a",       "h:-1",          "[nohost]:1", "h:000001"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        err[0] = '\0';
        ck_assert_msg(vnet_endpoint_resolve(bad[i], 0, ep, 4, err, sizeof(err)) == VNET_EINVAL,
                      "%s accepted", bad[i]);
        ck_assert_msg(strstr(err, bad[i]) != NULL, "'%s' not named in '%s'", bad[i], err);
    }
    /* (a name that does not resolve: tests/integration/bad_input_test.sh, in a namespace, so
     * that no lookup leaves the machine) */
    ck_assert_int_eq(vnet_endpoint_resolve(NULL, 0, ep, 4, NULL, 0), VNET_EINVAL);
    ck_assert_int_eq(vnet_endpoint_resolve("1.2.3.4:5", 0, ep, 0, NULL, 0), VNET_EINVAL);
}
END_TEST

START_TEST(t_log)
{
    int inc = 1;
    enum vnet_log_level l;
    vnet_log_set_handler(capture, &inc);
    vnet_log_set_level(VNET_LOG_INFO);
    vnet_log(VNET_LOG_DEBUG, "test", "hidden %d", 1);
    ck_assert_int_eq(log_calls, 0);
    vnet_log(VNET_LOG_WARN, "test", "shown %d", 2);
    ck_assert_int_eq(log_calls, 1);
    ck_assert_str_eq(log_last, "test:shown 2");
    ck_assert_int_eq(vnet_log_level_parse("debug", &l), 0);
    ck_assert_int_eq(l, VNET_LOG_DEBUG);
    ck_assert_int_eq(vnet_log_level_parse("loud", &l), VNET_EINVAL);
    vnet_log_set_handler(NULL, NULL);
    vnet_log_set_level(VNET_LOG_WARN);
    ck_assert_int_eq(vnet_log_get_level(), VNET_LOG_WARN);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("types");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, t_mac);
    tcase_add_test(tc, t_vni);
    tcase_add_test(tc, t_ip_prefix);
    tcase_add_test(tc, t_endpoint);
    tcase_add_test(tc, t_resolve);
    tcase_add_test(tc, t_log);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
