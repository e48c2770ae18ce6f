"""Dashboard URLs of the tenancy app: log in/out, tenant switcher, API keys."""

from django.contrib.auth import views as auth_views
from django.urls import path

from tenants import views

urlpatterns = [
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("tenant", views.switch_tenant, name="switch-tenant"),
    path("api-keys", views.api_keys, name="api-keys"),
    path("api-keys/<int:pk>/revoke", views.revoke_api_key, name="revoke-api-key"),
]
