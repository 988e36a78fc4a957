from django.urls import path

from reviewconsole.reviews import reliability_views, views

app_name = "reviews"

urlpatterns = [
    path("", views.queue, name="queue"),
    path("next/", views.next_item, name="next"),
    path("bulk/", views.bulk, name="bulk"),
    path("shortcuts/", views.shortcuts, name="shortcuts"),
    path("second/<uuid:item_id>/", reliability_views.second_review, name="second_review"),
    path("adjudications/", reliability_views.adjudications, name="adjudications"),
    path("adjudications/<uuid:item_id>/", reliability_views.adjudicate, name="adjudicate"),
    path("reviewers/", reliability_views.reviewers, name="reviewers"),
    path("<uuid:item_id>/", views.item, name="item"),
    path("<uuid:item_id>/decide/", views.decide, name="decide"),
    path("<uuid:item_id>/check/", views.recheck, name="check"),
    path("<uuid:item_id>/release/", views.release, name="release"),
    path("<uuid:item_id>/undo/", views.undo, name="undo"),
    path("<uuid:item_id>/claim/", views.claim, name="claim"),
    path(
        "<uuid:item_id>/documents/<uuid:document_id>/pages/<int:page>.png",
        views.document_page,
        name="document_page",
    ),
]
