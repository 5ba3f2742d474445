# A minimal MQTT 3.1.1 session over TLS (no MQTT library on the unix port: micropython-lib's
# umqtt.simple is not frozen into it and mip cannot fetch it here), written against the standard
# `socket` and `ssl` modules with stream calls only (write, read(n)), as umqtt.simple is:
# CONNECT / CONNACK, SUBSCRIBE (QoS 1) / SUBACK, PUBLISH QoS 0 and QoS 1 (PUBACK) to the topic
# it subscribed to, the broker's deliveries of both (the QoS 1 one acknowledged), PINGREQ /
# PINGRESP, DISCONNECT. The server's certificate and name are verified (CERT_REQUIRED).
#     mqtt_tls.py IP PORT CA_DER_FILE SERVER_HOSTNAME CLIENT_ID
# Prints one line per step ("connack 0", "suback 1 1", "puback 1" (packet id), "got <qos> <topic>
# <payload>", "pingresp") and "done"; any failure raises.
import sys
import socket
import ssl

TOPIC = b"tcpip/test"


def packet(kind, body):
    """A fixed header (type and flags byte, the remaining length as a varint) and body."""
    n = len(body)
    head = bytearray([kind])
    while True:
        b = n & 0x7F
        n >>= 7
        head.append(b | 0x80 if n else b)
        if not n:
            return bytes(head) + body


def string(b):
    return bytes([len(b) >> 8, len(b) & 0xFF]) + b


def read_packet(s):
    """(type and flags byte, body) of the next packet."""
    kind = s.read(1)
    if not kind:
        raise OSError("the broker closed the connection")
    n = 0
    shift = 0
    for _ in range(4):
        b = s.read(1)[0]
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            break
    return kind[0], s.read(n) if n else b""


def main(argv):
    ip, port, cafile, name, client_id = argv[1], int(argv[2]), argv[3], argv[4], argv[5].encode()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.verify_mode = ssl.CERT_REQUIRED
    with open(cafile, "rb") as f:  # DER: the unix port's mbedTLS has no PEM parser
        ctx.load_verify_locations(cadata=f.read())
    raw = socket.socket()
    raw.settimeout(20)
    raw.connect(socket.getaddrinfo(ip, port)[0][-1])
    s = ctx.wrap_socket(raw, server_hostname=name)
    # CONNECT: protocol "MQTT" level 4, clean session, keep-alive 60 s
    s.write(packet(0x10, string(b"MQTT") + b"\x04\x02\x00\x3c" + string(client_id)))
    kind, body = read_packet(s)
    assert kind == 0x20 and len(body) == 2, (kind, body)
    print("connack", body[1])
    # SUBSCRIBE packet id 1, the topic at QoS 1
    s.write(packet(0x82, b"\x00\x01" + string(TOPIC) + b"\x01"))
    kind, body = read_packet(s)
    assert kind == 0x90, kind
    print("suback", body[0] << 8 | body[1], body[2])
    # PUBLISH QoS 0, then QoS 1 (packet id 2): the broker sends both back (we subscribed)
    s.write(packet(0x30, string(TOPIC) + b"qos0 from " + client_id))
    s.write(packet(0x32, string(TOPIC) + b"\x00\x02" + b"qos1 from " + client_id))
    for _ in range(3):  # PUBACK for ours and the two deliveries, in the broker's order
        kind, body = read_packet(s)
        if kind == 0x40:
            print("puback", body[0] << 8 | body[1])
            continue
        assert kind & 0xF0 == 0x30, kind
        qos = (kind >> 1) & 3
        tlen = body[0] << 8 | body[1]
        topic = body[2:2 + tlen]
        rest = body[2 + tlen:]
        if qos:
            s.write(packet(0x40, rest[:2]))  # PUBACK the delivery
            rest = rest[2:]
        print("got", qos, topic.decode(), rest.decode())
    s.write(b"\xc0\x00")  # PINGREQ
    kind, body = read_packet(s)
    assert kind == 0xD0, kind
    print("pingresp")
    s.write(b"\xe0\x00")  # DISCONNECT
    s.close()
    print("done")


main(sys.argv)
