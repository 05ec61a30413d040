from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ErasureConfig(AppConfig):
    name = "anshim.erasure"
    label = "erasure"
    verbose_name = _("Erasure support")

    def ready(self) -> None:
        # A withdrawn consent stops the takedown requests and the fingerprints that used it.
        from anshim.cases.consent import consent_withdrawn
        from anshim.erasure.receivers import on_consent_withdrawn

        consent_withdrawn.connect(on_consent_withdrawn, dispatch_uid="erasure.consent_withdrawn")

        # Links in a portal report or a victim's message are stored on the case and checked.
        from django.db.models.signals import post_save

        from anshim.cases.models import Case
        from anshim.erasure.receivers import on_case_saved, on_portal_message_saved
        from anshim.portal.models import PortalMessage

        post_save.connect(on_case_saved, sender=Case, dispatch_uid="erasure.reported_links")
        post_save.connect(on_portal_message_saved, sender=PortalMessage,
                          dispatch_uid="erasure.reported_links_message")

        # A confirmed sighting or a drafted takedown notice moves the case in its workflow.
        from anshim.erasure.models import Sighting, TakedownRequest
        from anshim.erasure.receivers import on_sighting_saved, on_takedown_saved

        post_save.connect(on_sighting_saved, sender=Sighting,
                          dispatch_uid="erasure.case_workflow_sighting")
        post_save.connect(on_takedown_saved, sender=TakedownRequest,
                          dispatch_uid="erasure.case_workflow_takedown")
