from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from reviewconsole.api import api

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("api/v1/", api.urls),
    path("reviews/", include("reviewconsole.reviews.urls")),
    path("autonomy/", include("reviewconsole.autonomy.urls")),
    path("", include("reviewconsole.engine.urls")),
]
