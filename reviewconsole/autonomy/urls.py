from django.urls import path

from reviewconsole.autonomy import export_views, views

app_name = "autonomy"

urlpatterns = [
    path("", views.overview, name="overview"),
    # No trailing slash: a type's page always ends with one, so no type's page can be taken for an export.
    path("<path:output_type>/export/audit.csv", export_views.export, {"kind": "audit"}, name="export_audit"),
    path("<path:output_type>/export/dataset.jsonl", export_views.export, {"kind": "dataset"}, name="export_dataset"),
    # `path`, not `str`: an output type is any string a flow chose, "/" included.
    path("<path:output_type>/", views.type_detail, name="type"),
]
