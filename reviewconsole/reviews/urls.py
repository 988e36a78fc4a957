from django.urls import path

from reviewconsole.reviews import views

app_name = "reviews"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.next_item, name="next"),
    path("bulk/", views.bulk, name="bulk"),
    path("<uuid:item_id>/", views.item, name="item"),
    path("<uuid:item_id>/decide/", views.decide, name="decide"),
    path("<uuid:item_id>/check/", views.recheck, name="check"),
    path("<uuid:item_id>/release/", views.release, name="release"),
]
