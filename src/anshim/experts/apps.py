from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExpertsConfig(AppConfig):
    name = "anshim.experts"
    label = "experts"
    verbose_name = _("Experts")

    def ready(self) -> None:
        # An expert assignment or appointment implies a case status move (the case workflow).
        from django.db.models.signals import post_save

        from anshim.experts.models import Appointment, Assignment
        from anshim.experts.receivers import on_appointment_saved, on_assignment_saved

        post_save.connect(on_assignment_saved, sender=Assignment,
                          dispatch_uid="experts.case_workflow_assignment")
        post_save.connect(on_appointment_saved, sender=Appointment,
                          dispatch_uid="experts.case_workflow_appointment")
