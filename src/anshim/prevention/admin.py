"""Reference data of the prevention team in the configuration site. Answer sheets, help
requests and booking contacts are deliberately not registered: nobody reads an individual
response through a UI, and the team's own pages handle the rest (audited)."""

from django.contrib import admin

from anshim.prevention.models import Facilitator, Module, School


@admin.register(School)
class SchoolAdmin(admin.ModelAdmin):
    list_display = ("name", "level", "district", "students")
    list_filter = ("level", "district")
    search_fields = ("name",)


@admin.register(Module)
class ModuleAdmin(admin.ModelAdmin):
    list_display = ("name", "topic", "duration_minutes", "active")
    list_filter = ("topic", "active")


@admin.register(Facilitator)
class FacilitatorAdmin(admin.ModelAdmin):
    list_display = ("name", "kind", "organization", "active")
    list_filter = ("kind", "active")
