"""The examples a new user pastes: the README's ingestion snippet and the curl the demo
prints are run by bash (with a stand-in curl that hands over its -d body), whenever the
test runs, and the bodies they make are ingested."""

import json
import subprocess
from pathlib import Path

import pytest

from analytics.demo import top_up
from analytics.management.commands.demo import ingest_example
from tenants.models import ApiKey, Plan, Tenant
from tests.conftest import api_client_for

pytestmark = pytest.mark.django_db

README = Path(__file__).resolve().parents[2] / "README.md"
# Prints the argument after -d, as curl would send it.
FAKE_CURL = 'curl() { while [ $# -gt 0 ]; do if [ "$1" = -d ]; then printf %s "$2"; return; fi; shift; done; }\n'


def readme_ingestion_snippet() -> str:
    section = README.read_text().split("### JSON: `POST /api/v1/metrics`", 1)[1].split("\n### ", 1)[0]
    assert "```bash\n" in section, "the README's JSON ingestion section has no shell example"
    snippet = section.split("```bash\n", 1)[1].split("```", 1)[0]
    assert snippet.count("curl ") == 1 and "/api/v1/metrics" in snippet, snippet  # run nothing else
    return snippet


def body_sent_by(snippet: str) -> dict:
    done = subprocess.run(["bash", "-c", FAKE_CURL + snippet], capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def test_the_readme_ingestion_example_is_accepted_whenever_it_is_pasted(api_a):
    body = body_sent_by(readme_ingestion_snippet())
    response = api_a.post("/api/v1/metrics", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 3, "new_series": 2}


def test_the_demos_printed_curl_posts_to_a_node_the_demo_has(db):
    plan = Plan.objects.create(slug="demo", name="Demo", hot_retention_days=8)
    tenant = Tenant.objects.create(slug="demo", name="Demo Corp", plan=plan)
    top_up(tenant, history_days=0.01)
    key = ApiKey.issue(tenant, "demo")[1]
    body = body_sent_by(ingest_example("http://127.0.0.1:8000", key))
    response = api_client_for(key).post("/api/v1/metrics", body, format="json")
    assert response.status_code == 200, response.content
    assert response.json() == {"accepted": 1, "new_series": 0}  # an existing series of an existing node
