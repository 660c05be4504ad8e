/* The Prometheus text builder (libvnet/metrics.c): label escaping, family headers, samples,
 * histograms; and the checker the other tests use on whole texts (metrics_check.h), which must
 * itself catch what it is there to catch. The rendering of a controller is checked in
 * test_controller.c, a node's in tests/integration/metrics_test.sh. */
#include "../../libvnet/metrics_int.h"
#include "metrics_check.h"
#include "vnet/error.h"

#include <check.h>
#include <stdlib.h>
#include <string.h>

START_TEST(label_values_escaped)
{
    char out[128];
    ck_assert_uint_eq(vnet__mt_escape("a\"b\\c\nd", out, sizeof(out)), 10);
    ck_assert_str_eq(out, "a\\\"b\\\\c\\nd");
    /* Cut, never overrun: the length it needed is still returned. */
    ck_assert_uint_eq(vnet__mt_escape("\"\"\"\"", out, 4), 8);
    ck_assert_uint_eq(strlen(out), 3);
    vnet__mt_labels(out, sizeof(out), 2, "peer", "10.0.0.1:4789", "name", "x\"y");
    ck_assert_str_eq(out, "peer=\"10.0.0.1:4789\",name=\"x\\\"y\"");
    vnet__mt_labels(out, 12, 1, "k", "0123456789abcdef"); /* cut: still a string */
    ck_assert_uint_lt(strlen(out), 12);
}
END_TEST

START_TEST(families_and_samples)
{
    struct vnet__mtext t = {0};
    char l[64];
    vnet__mt_head(&t, "x_total", "counter", "Help with a \\ and a\nnewline.");
    vnet__mt_labels(l, sizeof(l), 1, "reason", "a\"b");
    vnet__mt_u64(&t, "x_total", l, 18446744073709551615ull);
    vnet__mt_head(&t, "y", "gauge", "A gauge.");
    vnet__mt_f64(&t, "y", "", 0.25);
    ck_assert_int_eq(t.err, 0);
    ck_assert_str_eq(t.buf, "# HELP x_total Help with a \\\\ and a\\nnewline.\n"
                            "# TYPE x_total counter\n"
                            "x_total{reason=\"a\\\"b\"} 18446744073709551615\n"
                            "# HELP y A gauge.\n"
                            "# TYPE y gauge\n"
                            "y 0.25\n");
    ck_assert_ptr_null(metrics_check(t.buf));
    free(t.buf);
}
END_TEST

START_TEST(histogram_cumulative)
{
    struct vnet__hist h;
    memset(&h, 0, sizeof(h));
    vnet__hist_observe(&h, 50000);       /* 50 us: the first bucket */
    vnet__hist_observe(&h, 2000000);     /* 2 ms */
    vnet__hist_observe(&h, 5000000000u); /* 5 s: +Inf only */
    struct vnet__mtext t = {0};
    vnet__mt_head(&t, "d_seconds", "histogram", "Durations.");
    vnet__mt_hist(&t, "d_seconds", "call=\"x\"", &h);
    ck_assert_int_eq(t.err, 0);
    ck_assert_ptr_null(metrics_check(t.buf));
    ck_assert(metrics_value(t.buf, "d_seconds_bucket{call=\"x\",le=\"0.0001\"}") == 1);
    ck_assert(metrics_value(t.buf, "d_seconds_bucket{call=\"x\",le=\"0.001\"}") == 1);
    ck_assert(metrics_value(t.buf, "d_seconds_bucket{call=\"x\",le=\"0.0025\"}") == 2);
    ck_assert(metrics_value(t.buf, "d_seconds_bucket{call=\"x\",le=\"0.25\"}") == 2);
    ck_assert(metrics_value(t.buf, "d_seconds_bucket{call=\"x\",le=\"+Inf\"}") == 3);
    ck_assert(metrics_value(t.buf, "d_seconds_count{call=\"x\"}") == 3);
    double sum = metrics_value(t.buf, "d_seconds_sum{call=\"x\"}");
    ck_assert(sum > 5.00204 && sum < 5.00206);
    free(t.buf);
}
END_TEST

START_TEST(grows_past_the_first_buffer)
{
    struct vnet__mtext t = {0};
    vnet__mt_head(&t, "g", "gauge", "Many samples.");
    for (int i = 0; i < 2000; i++) {
        char l[32], v[16];
        snprintf(v, sizeof(v), "%d", i);
        vnet__mt_labels(l, sizeof(l), 1, "i", v);
        vnet__mt_u64(&t, "g", l, (uint64_t)i);
    }
    ck_assert_int_eq(t.err, 0);
    ck_assert_uint_eq(strlen(t.buf), t.len);
    ck_assert(metrics_value(t.buf, "g{i=\"1999\"}") == 1999);
    ck_assert_ptr_null(metrics_check(t.buf));
    free(t.buf);
}
END_TEST

/* The checker refuses what the format forbids (else a passing check proves nothing). */
START_TEST(checker_catches_bad_texts)
{
    static const char *const bad[] = {
        "x 1\n",                                          /* no TYPE */
        "# TYPE x counter\nx 1\n",                        /* counter without _total */
        "# TYPE x_total counter\nx_total{a=\"\\t\"} 1\n", /* bad escape */
        "# TYPE x gauge\nx{a=\"b} 1\n",                   /* unterminated label */
        "# TYPE x gauge\nx one\n",                        /* not a number */
        "# TYPE x gauge\nx{a=\"1\"} 1\nx{a=\"1\"} 2\n",   /* repeated series */
        "# TYPE x gauge\n# TYPE x gauge\n",               /* family twice */
        "# TYPE x gauge\nx 1",                            /* no final newline */
        "# TYPE h histogram\nh 1\n",                      /* histogram sample without suffix */
        "# TYPE 1x gauge\n",                              /* bad name */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        ck_assert_msg(metrics_check(bad[i]) != NULL, "accepted: %s", bad[i]);
    ck_assert_ptr_null(metrics_check("# TYPE h histogram\nh_bucket{le=\"+Inf\"} 1\nh_sum 0.5\n"
                                     "h_count 1\n"));
}
END_TEST

static Suite *vnet_metrics_suite(void)
{
    Suite *s = suite_create("metrics");
    TCase *tc = tcase_create("text");
    tcase_add_test(tc, label_values_escaped);
    tcase_add_test(tc, families_and_samples);
    tcase_add_test(tc, histogram_cumulative);
    tcase_add_test(tc, grows_past_the_first_buffer);
    tcase_add_test(tc, checker_catches_bad_texts);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(vnet_metrics_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
