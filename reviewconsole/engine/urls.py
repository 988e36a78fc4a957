from django.urls import path

from reviewconsole.engine import views

app_name = "engine"

urlpatterns = [
    path("", views.home, name="home"),
    path("runs/", views.run_list, name="run_list"),
    path("runs/<uuid:run_id>/", views.run_detail, name="run_detail"),
    path("runs/<uuid:run_id>/retry/", views.run_retry, name="run_retry"),
    path("runs/<uuid:run_id>/cancel/", views.run_cancel, name="run_cancel"),
    path("flows/", views.flow_list, name="flow_list"),
    path("flows/<slug:name>/start/", views.flow_start, name="flow_start"),
]
