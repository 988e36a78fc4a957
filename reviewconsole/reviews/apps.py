from django.apps import AppConfig


class ReviewsConfig(AppConfig):
    name = "reviewconsole.reviews"
    label = "reviews"
    verbose_name = "Reviews"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from reviewconsole.engine.pause_handler import register_pause_handler
        from reviewconsole.engine.selectors import register_output_type_scope
        from reviewconsole.reviews.pauses import ReviewQueue
        from reviewconsole.reviews.preferences import shortcuts_load_on_login
        from reviewconsole.reviews.selectors import scoped_output_types

        # A reviewer limited to some output types sees runs and flows of those types only.
        register_output_type_scope(scoped_output_types)
        # A paused run becomes a review item; its decision resumes the run.
        register_pause_handler(ReviewQueue())
        # A new session starts with the user's shortcut preference, for every page to read without a query.
        user_logged_in.connect(shortcuts_load_on_login, dispatch_uid="reviews.shortcuts_load_on_login")
