from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

# JSON under /api/, templates/404.html and 500.html for pages; database down: 503 + Retry-After.
handler400 = "config.errors.bad_request"
handler500 = "config.errors.server_error"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("analytics.urls")),
    path("api/v1/", include("results.urls")),
    path("api/v1/", include("tenants.urls")),
    path("", include("tenants.page_urls")),
    path("", include("results.page_urls")),
]
