"""The admin reads right: plural names in English, and the console's styles come from a
static file (the app's Content-Security-Policy blocks inline <style> and style attributes)."""

import re
from pathlib import Path

from django.apps import apps

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
# what English never pluralises by adding an "s": consonant + y, -ch, -sh, -s, -x
WRONG_PLURAL = re.compile(r"([^aeiou]ys|chs|shs|ss|xs)$")


def test_every_model_has_an_english_plural():
    wrong = {m.__name__: str(m._meta.verbose_name_plural) for m in apps.get_models()
             if m._meta.app_label in ("tenants", "analytics", "results")
             and WRONG_PLURAL.search(str(m._meta.verbose_name_plural)) and m._meta.verbose_name_plural != "series"}
    assert wrong == {}


def test_the_admin_index_says_anomalies(staff_client):
    index = staff_client.get("/admin/").content.decode()
    assert "Anomalies" in index and "Anomalys" not in index
    assert "Detection batchs" not in index


def test_no_template_has_inline_styles():
    inline = [str(p.relative_to(TEMPLATES)) for p in TEMPLATES.rglob("*.html")
              if re.search(r"<style|\sstyle=", p.read_text())]
    assert inline == []


def test_the_health_page_links_its_stylesheet_allowed_by_the_policy(staff_client, tenant_a):
    page = staff_client.get(f"/admin/tenants/tenant/{tenant_a.pk}/health/")
    assert page.status_code == 200
    assert re.search(r'<link rel="stylesheet" href="/static/css/console\.css', page.content.decode())
    assert "style-src 'self';" in page["Content-Security-Policy"]
