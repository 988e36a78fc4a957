from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviewconsole.reviews"
    label = "reviews"
    verbose_name = "Reviews"
