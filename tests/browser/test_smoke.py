import pytest

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_api_docs_page_renders_without_any_cdn(live_server, page):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{live_server.url}/api/docs/")
    page.wait_for_selector(".swagger-ui .info .title")
    assert "Fleetwatch API" in page.inner_text(".swagger-ui .info .title")
    assert requests and all(url.startswith(live_server.url) for url in requests), [u for u in requests if not u.startswith(live_server.url)]
