from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviewconsole.reviews"
    label = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        from reviewconsole.engine.pause_handler import register_pause_handler
        from reviewconsole.engine.selectors import register_output_type_scope
        from reviewconsole.reviews.pauses import ReviewQueue
        from reviewconsole.reviews.selectors import scoped_output_types

        # A reviewer limited to some output types sees runs and flows of those types only.
        register_output_type_scope(scoped_output_types)
        # A paused run becomes a review item; its decision resumes the run.
        register_pause_handler(ReviewQueue())
