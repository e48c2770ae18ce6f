"""Safe destinations: the product's own network is refused, also behind a name or a
redirect, and allowed once an operator allow-lists the host."""

import pytest

from results.notifications import destinations
from results.notifications.destinations import UnsafeDestination
from tests.notifications.receivers import Receiver


@pytest.fixture
def ok_receiver():
    receiver = Receiver(lambda number, headers, record: (200, {}))
    yield receiver
    receiver.close()


@pytest.mark.parametrize(("url", "reason"), [
    ("http://127.0.0.1:9/hook", "loopback"),
    ("http://10.1.2.3/hook", "private"),
    ("http://192.168.0.10/hook", "private"),
    ("http://169.254.169.254/latest/meta-data/", "link-local"),
    ("http://[::1]/hook", "loopback"),
    ("http://[::ffff:127.0.0.1]/hook", "loopback"),
    ("http://100.100.100.200/", "metadata"),
    ("http://localhost:9/hook", "loopback"),  # a name that resolves to loopback
])
def test_the_products_own_network_is_refused(settings, url, reason):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = []
    with pytest.raises(UnsafeDestination, match=reason):
        destinations.post(url, b"{}", {})


@pytest.mark.parametrize("url", ["ftp://example.com/x", "http://user:pw@example.com/", "file:///etc/passwd"])
def test_other_urls_are_refused(url):
    with pytest.raises(UnsafeDestination):
        destinations.check_url(url)


def test_a_redirect_to_loopback_is_refused(settings, ok_receiver):
    """The first hop is allow-listed (by its address); its redirect names loopback by
    another name, which is not."""
    port = ok_receiver.server.server_address[1]
    redirector = Receiver(lambda number, headers, record: (307, {"Location": f"http://localhost:{port}/hook"}))
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    try:
        with pytest.raises(UnsafeDestination, match="localhost resolves to .*loopback"):
            destinations.post(redirector.url, b"{}", {})
        assert ok_receiver.requests == []
        settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
        assert destinations.post(redirector.url, b'{"a": 1}', {}).status == 200
        assert ok_receiver.requests[0]["body"] == {"a": 1}
    finally:
        redirector.close()


def test_allowed_once_allow_listed(settings, ok_receiver):
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = []
    with pytest.raises(UnsafeDestination):
        destinations.post(ok_receiver.url, b"{}", {})
    settings.FLEETWATCH_NOTIFY_ALLOWED_HOSTS = ["127.0.0.1"]
    reply = destinations.post(ok_receiver.url, b'{"n": 1}', {"X-Test": "yes"})
    assert reply.status == 200
    assert ok_receiver.requests[0]["headers"]["X-Test"] == "yes"
    assert ok_receiver.requests[0]["headers"]["Host"] == f"127.0.0.1:{ok_receiver.server.server_address[1]}"


def test_a_public_address_passes_the_check():
    assert destinations.check_url("https://93.184.215.14/hook").addresses == ["93.184.215.14"]
