# Used by bench/console-api.sh: a fleet of 1,000 NASes on 127.1.x.y sending PAP logins to a server.
# python3 console-fleet.py AUTH_PORT SECONDS RATE
# 1,000 NASes on 127.1.x.y each sending PAP Access-Requests (some with a wrong password) for `seconds`.
import hashlib, os, socket, struct, sys, time
port, seconds, rate = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
secret = b"testing123"
def request(ident, password):
    auth = os.urandom(16)
    pw = password.ljust(16, b"\0")
    hidden = bytes(a ^ b for a, b in zip(pw, hashlib.md5(secret + auth).digest()))
    attrs = bytes([1, 2 + 4]) + b"load" + bytes([2, 18]) + hidden
    return struct.pack("!BBH", 1, ident, 20 + len(attrs)) + auth + attrs
socks = []
for i in range(1000):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.1.%d.%d" % (i // 250, i % 250 + 1), 0))
    s.setblocking(False)
    socks.append(s)
sent = answered = 0
start = time.time(); n = 0
while time.time() - start < seconds:
    s = socks[n % 1000]
    s.sendto(request(n % 256, b"pw" if n % 10 else b"wrong"), ("127.0.0.1", port))
    n += 1; sent += 1
    for t in socks[(n - 5) % 1000:(n - 5) % 1000 + 1]:
        try:
            while t.recv(4096): answered += 1
        except BlockingIOError: pass
    time.sleep(max(0, start + n / rate - time.time()))
print("sent", sent)
