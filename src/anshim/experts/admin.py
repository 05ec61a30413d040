from django.contrib import admin

from anshim.experts.models import Expert, WeeklyAvailability


class AvailabilityInline(admin.TabularInline):
    model = WeeklyAvailability
    extra = 1


@admin.register(Expert)
class ExpertAdmin(admin.ModelAdmin):
    list_display = ("user", "kind", "organization", "weekly_capacity", "active")
    list_filter = ("kind", "active")
    inlines = [AvailabilityInline]
