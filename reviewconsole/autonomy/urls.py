from django.urls import path

from reviewconsole.autonomy import views

app_name = "autonomy"

urlpatterns = [
    path("", views.overview, name="overview"),
    # `path`, not `str`: an output type is any string a flow chose, "/" included.
    path("<path:output_type>/", views.type_detail, name="type"),
]
