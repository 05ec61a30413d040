from django.apps import AppConfig


class ErasureConfig(AppConfig):
    name = "anshim.erasure"
    label = "erasure"

    def ready(self) -> None:
        # Partners' removal reports (exchange app) close our takedown requests and sightings.
        from anshim.erasure.takedowns import feedback_handler
        from anshim.exchange.feedback import register_feedback_handler

        register_feedback_handler(feedback_handler)
