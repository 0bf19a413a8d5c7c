# -*- coding: utf-8 -*-
# Copyright (c) 2026, Baton maintainers
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""wait_ready over HTTPS with connect_to: a real TLS server on 127.0.0.1 with a certificate for a
name that resolves nowhere, as the proxy's site is checked by the rotation (SNI + Host = name)."""

from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from ansible_collections.baton.deploy.plugins.module_utils.readiness import (
    connect_target,
    request_plan,
    validate_params,
    wait_ready,
)

cryptography = pytest.importorskip('cryptography')
from cryptography import x509  # noqa: E402
from cryptography.hazmat.primitives import hashes, serialization  # noqa: E402
from cryptography.hazmat.primitives.asymmetric import ec  # noqa: E402
from cryptography.x509.oid import NameOID  # noqa: E402

FAST = dict(interval=0.01, timeout=5, request_timeout=2)
# .invalid never resolves (RFC 2606): only connect_to can reach the server.
NAME = 'shop.invalid'


def _certificate(subject, issuer_name, issuer_key, public_key, ca, names=()):
    now = datetime.datetime.now(datetime.timezone.utc)
    builder = (x509.CertificateBuilder()
               .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
               .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
               .public_key(public_key)
               .serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, content_commitment=False, key_encipherment=False, data_encipherment=False,
            key_agreement=False, key_cert_sign=True, crl_sign=True, encipher_only=False, decipher_only=False),
            critical=True)
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]),
                                        critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


@pytest.fixture(scope='module')
def pki(tmp_path_factory):
    """A private CA and a server certificate for NAME and www.NAME, as PEM files."""
    directory = tmp_path_factory.mktemp('pki')
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = _certificate('Baton test CA', 'Baton test CA', ca_key, ca_key.public_key(), ca=True)
    key = ec.generate_private_key(ec.SECP256R1())
    cert = _certificate(NAME, 'Baton test CA', ca_key, key.public_key(), ca=False, names=[NAME, 'www.' + NAME])
    paths = {name: directory / name for name in ('ca.pem', 'cert.pem', 'key.pem')}
    paths['ca.pem'].write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    paths['cert.pem'].write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    paths['key.pem'].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
    return {name: str(path) for name, path in paths.items()}


@pytest.fixture()
def tls_server(pki):
    """HTTPS on 127.0.0.1: records each request's SNI name and Host header, answers 200."""
    seen = []
    sni = {}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            seen.append({'sni': sni.get('name'), 'host': self.headers.get('Host'), 'path': self.path})
            body = b'ok'
            self.send_response(200)
            self.send_header('Content-Length', str(len(body)))
            self.send_header('X-Baton-Upstream', '127.0.0.1:9102')
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pki['cert.pem'], pki['key.pem'])

    def remember_sni(sock, server_name, ctx):
        sni['name'] = server_name

    context.sni_callback = remember_sni
    server = ThreadingHTTPServer(('127.0.0.1', 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], seen
    finally:
        server.shutdown()
        server.server_close()


def test_connect_to_sends_sni_and_host_and_verifies_the_name(pki, tls_server):
    port, seen = tls_server
    result = wait_ready('https://%s:%d/readyz' % (NAME, port), connect_to='127.0.0.1', ca_path=pki['ca.pem'],
                        passes=2, **FAST)

    assert result.ready is True, result.last_error
    assert result.last_headers['x-baton-upstream'] == '127.0.0.1:9102'
    assert seen == [{'sni': NAME, 'host': '%s:%d' % (NAME, port), 'path': '/readyz'}] * 2


def test_second_name_of_the_certificate(pki, tls_server):
    port, seen = tls_server
    result = wait_ready('https://www.%s:%d/' % (NAME, port), connect_to='127.0.0.1', ca_path=pki['ca.pem'],
                        passes=1, **FAST)

    assert result.ready is True, result.last_error
    assert seen[0]['sni'] == 'www.' + NAME


def test_certificate_for_another_name_is_refused(pki, tls_server):
    port, seen = tls_server
    result = wait_ready('https://blog.invalid:%d/' % port, connect_to='127.0.0.1', ca_path=pki['ca.pem'],
                        passes=1, interval=0.01, timeout=0.2, request_timeout=2)

    assert result.ready is False
    assert result.last_status is None
    assert result.last_error.startswith('TLS error:')
    assert 'blog.invalid' in result.last_error
    assert seen == []


def test_unknown_ca_is_refused_unless_certificates_are_not_validated(pki, tls_server):
    port, seen = tls_server
    url = 'https://%s:%d/' % (NAME, port)
    refused = wait_ready(url, connect_to='127.0.0.1', passes=1, interval=0.01, timeout=0.2, request_timeout=2)
    # ca_path is only used to validate; without validation any certificate is accepted.
    accepted = wait_ready(url, connect_to='127.0.0.1', validate_certs=False, ca_path='/nonexistent.pem',
                          passes=1, **FAST)

    assert refused.ready is False
    assert refused.last_error.startswith('TLS error:')
    assert 'certificate verify failed' in refused.last_error
    assert accepted.ready is True, accepted.last_error
    assert seen == [{'sni': NAME, 'host': '%s:%d' % (NAME, port), 'path': '/'}]


def test_without_connect_to_the_name_is_resolved(pki, tls_server):
    port, seen = tls_server
    result = wait_ready('https://%s:%d/' % (NAME, port), ca_path=pki['ca.pem'], passes=1, interval=0.01,
                        timeout=0.2, request_timeout=2)

    assert result.ready is False
    assert result.last_error.startswith('name resolution failed')
    assert seen == []


@pytest.mark.parametrize('url, connect_to, expected', [
    ('https://shop.example/readyz', '127.0.0.1',
     ('https://127.0.0.1/readyz', 'shop.example', 'shop.example')),
    ('https://shop.example:8443/readyz?x=1#frag', '::1',
     ('https://[::1]:8443/readyz?x=1', 'shop.example:8443', 'shop.example')),
    ('http://shop.example', '[::1]', ('http://[::1]/', 'shop.example', None)),
    ('HTTPS://Shop.Example/', 'lb.internal', ('https://lb.internal/', 'Shop.Example', 'shop.example')),
    ('https://shop.example/', None, ('https://shop.example/', None, None)),
])
def test_connect_target(url, connect_to, expected):
    assert connect_target(url, connect_to) == expected


def test_request_plan_keeps_a_given_host_header():
    assert request_plan('https://a.example/x', {'host': 'b.example', 'X-A': 1}, '127.0.0.1') == (
        'https://127.0.0.1/x', {'host': 'b.example', 'X-A': '1'})
    assert request_plan('https://a.example/x', None, '127.0.0.1') == ('https://127.0.0.1/x', {'Host': 'a.example'})
    assert request_plan('https://a.example/x', {'X-A': 'b'}) == ('https://a.example/x', {'X-A': 'b'})


@pytest.mark.parametrize('connect_to', ['127.0.0.1:443', 'http://127.0.0.1', '', 'a b', '-lead.example'])
def test_connect_to_must_be_an_address_without_port(connect_to):
    assert validate_params('https://a.example/', connect_to=connect_to) == [
        'connect_to must be an IP address or a host name without a port, got %r' % (connect_to,)]


@pytest.mark.parametrize('connect_to', ['127.0.0.1', '::1', '[::1]', 'localhost', 'lb-1.internal'])
def test_connect_to_addresses_accepted(connect_to):
    assert validate_params('https://a.example/', connect_to=connect_to) == []
