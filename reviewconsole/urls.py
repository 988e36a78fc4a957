from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path
from django.views.defaults import page_not_found

from reviewconsole import health, metrics
from reviewconsole.api import api

urlpatterns = [
    # Public for probes and a scraper: no login, nothing sensitive (the metrics need METRICS_TOKEN).
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics, name="metrics"),
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    path("reviews/", include("reviewconsole.reviews.urls")),
    path("autonomy/", include("reviewconsole.autonomy.urls")),
    path("", include("reviewconsole.engine.urls")),
]


def not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """A 404 under the API is JSON like its other errors (a URL that no route matches, too); pages get the page."""
    if request.path_info.startswith("/api/"):
        return JsonResponse({"detail": "Not found"}, status=404)
    return page_not_found(request, exception)


handler404 = not_found
