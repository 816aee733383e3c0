"""The upstream endpoint's servers: HTTP on TCP 80 and a UDP echo on port 7.

`GET /` answers with the client's source address as the body, so tests see SNAT.
Both listen on [::] dual-stack, so IPv4 and IPv6 clients are served alike.
"""

import http.server
import socket
import socketserver
import threading

HTTP_PORT = 80
ECHO_PORT = 7


def _plain(address):
    """'::ffff:203.0.113.5' -> '203.0.113.5' (IPv4 clients on a dual-stack socket)."""
    return address[7:] if address.startswith("::ffff:") else address


class _SourceHandler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server naming)
        body = (_plain(self.client_address[0]) + "\n").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


class _DualStackHTTPServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    address_family = socket.AF_INET6
    daemon_threads = True

    def server_bind(self):
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


def _udp_echo(sock):
    while True:
        data, peer = sock.recvfrom(65535)
        try:
            sock.sendto(data, peer)
        except OSError:
            pass  # e.g. no route back right now; the probe counts it as lost


def start_in_background():
    httpd = _DualStackHTTPServer(("::", HTTP_PORT), _SourceHandler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    echo = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    echo.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    echo.bind(("::", ECHO_PORT))
    threading.Thread(target=_udp_echo, args=(echo,), daemon=True).start()
