/* Interop: every control message libvnet encodes is valid msgpack as msgpack-c (the reference
 * C implementation) reads it, and msgpack-c packs the object back to the very same bytes
 * (both write the shortest forms). So any msgpack implementation can speak the protocol. */
#include "vnet/error.h"
#include "vnet/proto.h"

#include <check.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

static void check_msg(const struct vnet_msg *m)
{
    struct vnet_buf b = {0};
    ck_assert_int_eq(vnet_msg_encode(m, &b), 0);
    ck_assert_uint_gt(b.len, 4);
    const char *body = (const char *)b.data + 4;
    size_t len = b.len - 4;
    msgpack_unpacked up;
    msgpack_unpacked_init(&up);
    size_t off = 0;
    ck_assert_int_eq(msgpack_unpack_next(&up, body, len, &off), MSGPACK_UNPACK_SUCCESS);
    ck_assert_uint_eq(off, len); /* one object, no trailing bytes */
    ck_assert_int_eq(up.data.type, MSGPACK_OBJECT_ARRAY);
    ck_assert_uint_ge(up.data.via.array.size, 1);
    ck_assert_int_eq(up.data.via.array.ptr[0].type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    ck_assert_uint_eq(up.data.via.array.ptr[0].via.u64, (uint64_t)m->type);
    msgpack_sbuffer sb;
    msgpack_sbuffer_init(&sb);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &sb, msgpack_sbuffer_write);
    ck_assert_int_eq(msgpack_pack_object(&pk, up.data), 0);
    ck_assert_uint_eq(sb.size, len);
    ck_assert(memcmp(sb.data, body, len) == 0);
    msgpack_sbuffer_destroy(&sb);
    msgpack_unpacked_destroy(&up);
    /* and our decoder takes what msgpack-c wrote */
    struct vnet_msg back;
    ck_assert_int_eq(vnet_msg_decode((const uint8_t *)body, len, &back, NULL, 0), 0);
    ck_assert_int_eq(back.type, m->type);
    vnet_msg_free(&back);
    vnet_buf_free(&b);
}

static struct vnet_node_info node_n(int i)
{
    struct vnet_node_info n;
    memset(&n, 0, sizeof(n));
    n.id = (uint64_t)i + 1;
    n.network_id = 7;
    snprintf(n.name, sizeof(n.name), "node%d", i);
    n.mac.b[0] = 2;
    n.mac.b[5] = (uint8_t)i;
    vnet_ip_parse("10.0.0.1", &n.ips[0]);
    n.ips[0].addr[3] = (uint8_t)(i + 1);
    vnet_ip_parse("fd00::1", &n.ips[1]);
    vnet_endpoint_parse("192.0.2.1:4789", &n.phys);
    vnet_endpoint_parse("[2001:db8::1]:4789", &n.observed);
    n.state = VNET_NODE_ACTIVE;
    n.revision = 1000000000ull + (uint64_t)i;
    n.has_pubkey = i & 1;
    memset(n.pubkey, 0xab, sizeof(n.pubkey));
    return n;
}

START_TEST(t_every_type)
{
    struct vnet_msg m;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_HELLO;
    m.u.hello.version = VNET_PROTO_VERSION;
    m.u.hello.role = VNET_ROLE_NODE;
    strcpy(m.u.hello.network, "blue");
    strcpy(m.u.hello.node, "n1");
    m.u.hello.revision = 70000;
    m.u.hello.auth_len = 300;
    check_msg(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_WELCOME;
    m.u.welcome.version = VNET_PROTO_VERSION;
    strcpy(m.u.welcome.network.name, "blue");
    m.u.welcome.network.vni = 16777215;
    m.u.welcome.network.mtu = 1450;
    vnet_prefix_parse("10.0.0.0/24", &m.u.welcome.network.subnet4);
    m.u.welcome.node = node_n(1);
    check_msg(&m);

    struct vnet_node_info nodes[40];
    for (int i = 0; i < 40; i++)
        nodes[i] = node_n(i);
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_SNAPSHOT;
    strcpy(m.u.snapshot.network.name, "blue");
    m.u.snapshot.network.vni = 5;
    m.u.snapshot.network.mtu = 1450;
    m.u.snapshot.nodes = nodes;
    m.u.snapshot.nnodes = 40;
    check_msg(&m);

    struct vnet_change ch[2];
    memset(ch, 0, sizeof(ch));
    ch[0].op = VNET_CHANGE_NODE_PUT;
    ch[0].revision = 9;
    ch[0].node = node_n(3);
    ch[1].op = VNET_CHANGE_NODE_DEL;
    ch[1].revision = 10;
    ch[1].node = node_n(4);
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_DELTA;
    m.u.delta.from = 8;
    m.u.delta.to = 10;
    m.u.delta.changes = ch;
    m.u.delta.nchanges = 2;
    check_msg(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ACK;
    m.u.ack.revision = 1ull << 40;
    check_msg(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ENDPOINT;
    vnet_endpoint_parse("198.51.100.7:4789", &m.u.endpoint.ep);
    check_msg(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_KEEPALIVE;
    check_msg(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_ERROR;
    m.u.error.code = VNET_ENOENT;
    strcpy(m.u.error.text, "no such node");
    check_msg(&m);

    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REQUEST;
    m.u.request.id = 77;
    m.u.request.op = VNET_REQ_NODE_ADD;
    strcpy(m.u.request.network, "blue");
    strcpy(m.u.request.node, "n9");
    m.u.request.has = VNET_REQ_HAS_MAC | VNET_REQ_HAS_IP4 | VNET_REQ_HAS_PHYS;
    m.u.request.mac = node_n(9).mac;
    vnet_ip_parse("10.0.0.9", &m.u.request.ip4);
    vnet_endpoint_parse("192.0.2.9:4789", &m.u.request.phys);
    check_msg(&m);

    struct vnet_network nets[2];
    memset(nets, 0, sizeof(nets));
    strcpy(nets[0].name, "a");
    strcpy(nets[1].name, "b");
    nets[0].vni = 1;
    nets[1].vni = 2;
    nets[0].mtu = nets[1].mtu = 1450;
    memset(&m, 0, sizeof(m));
    m.type = VNET_MSG_REPLY;
    m.u.reply.id = 77;
    m.u.reply.networks = nets;
    m.u.reply.nnetworks = 2;
    m.u.reply.nodes = nodes;
    m.u.reply.nnodes = 3;
    check_msg(&m);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("msgpack_interop");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, t_every_type);
    suite_add_tcase(s, tc);
    SRunner *sr = srunner_create(s);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? 1 : 0;
}
