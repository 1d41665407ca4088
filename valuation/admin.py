from typing import Any

from django.contrib import messages
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.contrib.gis import admin
from django.urls import reverse
from django.utils.html import format_html

from valuation.api.keys import api_key_issue, api_key_revoke
from valuation.models import (
    ApiKey,
    ApiScope,
    Feedback,
    Membership,
    ModelVersion,
    Office,
    Partner,
    PriceIndexVersion,
    Sale,
    Valuation,
)


@admin.register(Sale)
class SaleAdmin(admin.GISModelAdmin):
    list_display = ["external_id", "source", "sale_date", "price_eur", "property_type", "living_area_m2"]
    list_filter = ["source", "property_type"]
    search_fields = ["external_id", "address"]
    date_hierarchy = "sale_date"
    raw_id_fields = ["parcel"]


@admin.register(PriceIndexVersion)
class PriceIndexVersionAdmin(admin.ModelAdmin):
    list_display = ["__str__", "created_at", "frequency", "vintage", "sales_count"]
    readonly_fields = [f.name for f in PriceIndexVersion._meta.fields]


@admin.register(ModelVersion)
class ModelVersionAdmin(admin.ModelAdmin):
    list_display = ["version", "status", "created_at", "activated_at", "train_count", "progress_stage"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]


@admin.register(Valuation)
class ValuationAdmin(admin.GISModelAdmin):
    list_display = [
        "pk",
        "created_at",
        "channel",
        "office",
        "query",
        "price_eur",
        "model_version",
        "created_by",
    ]
    list_filter = ["channel", "office", "model_version"]
    search_fields = ["query", "parcel__capakey"]
    date_hierarchy = "created_at"
    readonly_fields = [f.name for f in Valuation._meta.fields]

    def has_add_permission(self, request: object) -> bool:
        return False


@admin.register(Office)
class OfficeAdmin(admin.ModelAdmin):
    list_display = ["name", "created_at"]
    search_fields = ["name"]


class MembershipInline(admin.StackedInline):
    model = Membership
    can_delete = True
    verbose_name = "office"
    verbose_name_plural = "office"


admin.site.unregister(User)


@admin.register(User)
class NotaryUserAdmin(UserAdmin):
    """Django's user admin with the office a notary belongs to."""

    inlines = [MembershipInline]
    list_display = ["username", "email", "first_name", "last_name", "is_staff", "office"]
    list_filter = ["is_staff", "is_superuser", "is_active", "groups", "membership__office"]

    @admin.display(description="office", ordering="membership__office__name")
    def office(self, user: User) -> str:
        membership = getattr(user, "membership", None)
        return str(membership.office) if membership else ""


@admin.register(Feedback)
class FeedbackAdmin(admin.ModelAdmin):
    """Notaries' feedback, to review: filter by status, verdict, office, date and model version."""

    list_display = [
        "pk",
        "created_at",
        "office",
        "verdict",
        "estimate_eur",
        "price",
        "status",
        "valuation_link",
    ]
    list_filter = ["status", "verdict", "office", "valuation__model_version", "created_at"]
    search_fields = ["comment", "valuation__query", "valuation__parcel__capakey"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "valuation",
        "office",
        "created_by",
        "created_at",
        "verdict",
        "estimate_eur",
        "comment",
    ]
    fields = [*readonly_fields, "status", "staff_comment"]

    def has_add_permission(self, request: object) -> bool:
        return False

    @admin.display(description="indicative price", ordering="valuation__price_eur")
    def price(self, feedback: Feedback) -> int:
        return feedback.valuation.price_eur

    @admin.display(description="valuation")
    def valuation_link(self, feedback: Feedback) -> str:
        return format_html(
            '<a href="{}">#{}</a>',
            reverse("admin:valuation_valuation_change", args=[feedback.valuation_id]),
            feedback.valuation_id,
        )


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    extra = 0
    can_delete = False
    fields = ("prefix", "name", "scopes", "created_at", "last_used_at", "use_count", "revoked_at")
    readonly_fields = fields

    def has_add_permission(self, request: Any, obj: Any = None) -> bool:
        return False  # keys are issued with the partner's action, which shows the key once


@admin.register(Partner)
class PartnerAdmin(admin.ModelAdmin):
    """Partner systems and their API keys: issue (the key is shown once), revoke, see usage."""

    list_display = ["name", "slug", "active", "created_at"]
    prepopulated_fields = {"slug": ["name"]}
    inlines = [ApiKeyInline]
    actions = ["issue_valuate_key", "issue_full_key"]

    def _issue(self, request: Any, queryset: Any, scopes: list[str]) -> None:
        for partner in queryset:
            _row, key = api_key_issue(partner=partner, scopes=scopes, name="issued in the admin")
            self.message_user(
                request,
                f"New API key for {partner} ({', '.join(scopes)}): {key} - copy it now, it is not kept.",
                messages.WARNING,
            )

    @admin.action(description="Issue an API key: valuations only")
    def issue_valuate_key(self, request: Any, queryset: Any) -> None:
        self._issue(request, queryset, [ApiScope.VALUATE])

    @admin.action(description="Issue an API key: valuations and sales delivery")
    def issue_full_key(self, request: Any, queryset: Any) -> None:
        self._issue(request, queryset, [ApiScope.VALUATE, ApiScope.DELIVER_SALES])


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = [
        "prefix",
        "partner",
        "name",
        "scopes",
        "created_at",
        "last_used_at",
        "use_count",
        "revoked_at",
    ]
    list_filter = ["partner", "revoked_at"]
    readonly_fields = [
        "partner",
        "prefix",
        "digest",
        "scopes",
        "created_at",
        "last_used_at",
        "use_count",
        "revoked_at",
    ]
    fields = [*readonly_fields, "name"]
    actions = ["revoke"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.action(description="Revoke the selected keys")
    def revoke(self, request: Any, queryset: Any) -> None:
        for key in queryset:
            api_key_revoke(key)
        self.message_user(request, f"{queryset.count()} key(s) revoked.", messages.SUCCESS)
