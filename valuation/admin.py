import csv
import time
from typing import Any

from django.contrib import messages
from django.contrib.admin import SimpleListFilter
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.contrib.gis import admin
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from opendata.admin_map import MapAdmin
from valuation.api.keys import api_key_issue, api_key_revoke
from valuation.market import band_labels
from valuation.models import (
    ApiKey,
    ApiScope,
    Feedback,
    FeedbackStatus,
    Membership,
    ModelMonitoring,
    ModelStatus,
    ModelVersion,
    Office,
    Partner,
    PriceIndexVersion,
    Sale,
    Valuation,
)
from valuation.monitoring import Report, monitoring_report
from valuation.training import TrainingError, model_activate


class PriceBandFilter(SimpleListFilter):
    """The band of the reference screen the indicative price falls in."""

    title = "price band"
    parameter_name = "band"

    def lookups(self, request: Any, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(i), _band_label(low, high)) for i, (low, high) in enumerate(band_labels())]

    def queryset(self, request: Any, queryset: Any) -> Any:
        chosen = self.value()
        if chosen is None or not chosen.isdigit() or int(chosen) >= len(band_labels()):
            return queryset
        low, high = band_labels()[int(chosen)]
        if low is not None:
            queryset = queryset.filter(valuation__price_eur__gte=low)
        if high is not None:
            queryset = queryset.filter(valuation__price_eur__lt=high)
        return queryset


def _band_label(low: int | None, high: int | None) -> str:
    if low is None:
        return f"< {high:,}"
    if high is None:
        return f"> {low:,}"
    return f"{low:,} - {high:,}"


@admin.register(Sale)
class SaleAdmin(MapAdmin):
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
    """Model versions: metrics, backtest and gate, training snapshot; activate one (promote a
    candidate, or roll back to a retired version) after a confirmation page."""

    list_display = ["version", "status", "created_at", "activated_at", "train_count", "gate_reason"]
    list_filter = ["status"]
    readonly_fields = [f.name for f in ModelVersion._meta.fields]
    actions = ["activate"]

    @admin.display(description="gate")
    def gate_reason(self, version: ModelVersion) -> str:
        return str((version.gate or {}).get("reason", ""))[:120]

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.action(description="Activate the selected version (promote or roll back)", permissions=["change"])
    def activate(self, request: Any, queryset: Any) -> Any:
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one version to activate.", messages.ERROR)
            return None
        version = queryset.get()
        active = ModelVersion.objects.filter(status=ModelStatus.ACTIVE).first()
        if request.POST.get("confirmed") != "yes":
            return TemplateResponse(
                request,
                "admin/valuation/modelversion/confirm_activate.html",
                {
                    **self.admin_site.each_context(request),
                    "title": f"Activate {version.version}?",
                    "version": version,
                    "active": active,
                    "opts": self.model._meta,
                    "action": "activate",
                    "selected": version.pk,
                },
            )
        try:
            model_activate(version=version)
        except TrainingError as exc:
            self.message_user(request, str(exc), messages.ERROR)
            return None
        was = f" (was {active.version})" if active and active.pk != version.pk else ""
        self.message_user(request, f"{version.version} is now the active model{was}.", messages.SUCCESS)
        return None


@admin.register(Valuation)
class ValuationAdmin(MapAdmin):
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
    """Feedback to review: new -> in review -> accepted / rejected, with a staff comment; filters by
    status, verdict, office, partner, model version, date and price band; accepted feedback with an
    estimate exported for model review."""

    list_display = [
        "pk",
        "created_at",
        "office",
        "partner",
        "verdict",
        "estimate_eur",
        "price",
        "status",
        "valuation_link",
    ]
    list_filter = [
        "status",
        "verdict",
        "office",
        "partner",
        "valuation__model_version",
        PriceBandFilter,
        "created_at",
    ]
    search_fields = ["comment", "staff_comment", "valuation__query", "valuation__parcel__capakey"]
    date_hierarchy = "created_at"
    readonly_fields = [
        "valuation_link",
        "office",
        "partner",
        "created_by",
        "created_at",
        "verdict",
        "estimate_eur",
        "comment",
    ]
    fields = [*readonly_fields, "status", "staff_comment"]
    actions = ["mark_in_review", "accept", "reject", "export_accepted"]

    def has_add_permission(self, request: Any) -> bool:
        return False

    @admin.display(description="indicative price", ordering="valuation__price_eur")
    def price(self, feedback: Feedback) -> int:
        return feedback.valuation.price_eur

    @admin.display(description="valuation")
    def valuation_link(self, feedback: Feedback) -> str:
        """The valuation as the notary saw it (its web page), and its admin record."""
        return format_html(
            '<a href="{}">as shown</a> · <a href="{}">#{}</a>',
            reverse("valuation-detail", args=[feedback.valuation_id]),
            reverse("admin:valuation_valuation_change", args=[feedback.valuation_id]),
            feedback.valuation_id,
        )

    def _move(self, request: Any, queryset: Any, status: str, allowed: tuple[str, ...]) -> None:
        moved = queryset.filter(status__in=allowed).update(status=status)
        skipped = queryset.count() - moved
        note = f"; {skipped} left as they were (not {' or '.join(allowed)})" if skipped else ""
        self.message_user(request, f"{moved} feedback marked {status}{note}.", messages.SUCCESS)

    @admin.action(description="Mark as in review", permissions=["change"])
    def mark_in_review(self, request: Any, queryset: Any) -> None:
        self._move(request, queryset, FeedbackStatus.IN_REVIEW, (FeedbackStatus.NEW,))

    @admin.action(description="Accept", permissions=["change"])
    def accept(self, request: Any, queryset: Any) -> None:
        self._move(request, queryset, FeedbackStatus.ACCEPTED, (FeedbackStatus.NEW, FeedbackStatus.IN_REVIEW))

    @admin.action(description="Reject", permissions=["change"])
    def reject(self, request: Any, queryset: Any) -> None:
        self._move(request, queryset, FeedbackStatus.REJECTED, (FeedbackStatus.NEW, FeedbackStatus.IN_REVIEW))

    @admin.action(description="Export accepted feedback with an estimate (CSV, for model review)")
    def export_accepted(self, request: Any, queryset: Any) -> HttpResponse:
        rows = queryset.filter(status=FeedbackStatus.ACCEPTED, estimate_eur__isnull=False).select_related(
            "valuation__model_version", "valuation__parcel", "office", "partner"
        )
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="accepted-feedback.csv"'
        out = csv.writer(response)
        out.writerow(
            [
                "feedback_id",
                "valuation_id",
                "valuation_date",
                "capakey",
                "model_version",
                "price_eur",
                "low_eur",
                "high_eur",
                "estimate_eur",
                "verdict",
                "office",
                "partner",
                "comment",
                "staff_comment",
            ]
        )
        for f in rows:
            v = f.valuation
            out.writerow(
                [
                    f.pk,
                    v.pk,
                    v.valuation_date,
                    v.parcel.capakey if v.parcel else "",
                    v.model_version.version,
                    v.price_eur,
                    v.low_eur,
                    v.high_eur,
                    f.estimate_eur,
                    f.verdict,
                    f.office or "",
                    f.partner or "",
                    f.comment,
                    f.staff_comment,
                ]
            )
        return response


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


def _pct(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _accuracy_rows(rows: list[dict[str, Any]], limit: float | None) -> list[dict[str, Any]]:
    return [
        {
            "key": row["key"],
            "count": row["count"],
            "mdape": _pct(row["mdape"]),
            "ppe10": _pct(row["ppe10"]),
            "cod": _num(row["cod"], 1),
            "prd": _num(row["prd"]),
            "median_ratio": _num(row["median_ratio"]),
            "worse": limit is not None and row["mdape"] > limit,
        }
        for row in rows
    ]


def monitoring_context(report: Report) -> dict[str, Any]:
    """The report as the template shows it: numbers formatted, rows flagged."""
    thresholds = report.thresholds
    limit = thresholds.mdape_factor * report.test_mdape if report.test_mdape else None
    accuracy = report.accuracy or {}
    drift_rows = [
        {
            "name": d.name,
            "label": d.label,
            "psi": f"{d.psi:.3f}",
            "meter": min(d.psi, 1.0),
            "level": d.level,
            "moved_bin": d.moved_bin,
            "expected": _pct(d.expected_share),
            "actual": _pct(d.actual_share),
        }
        for d in ([report.prediction] if report.prediction else []) + report.features
    ]
    return {
        "report": report,
        "thresholds": thresholds,
        "prediction_row": drift_rows[0] if report.prediction else None,
        "feature_rows": drift_rows[1:] if report.prediction else drift_rows,
        "drifted": sum(d.level == "drift" for d in report.features),
        "watched": sum(d.level == "watch" for d in report.features),
        "test_mdape": _pct(report.test_mdape),
        "mdape_limit": _pct(limit),
        "overall": _accuracy_rows([accuracy["overall"]], limit)[0] if accuracy.get("overall") else None,
        "months": _accuracy_rows(accuracy.get("months") or [], limit),
        "regions": _accuracy_rows(accuracy.get("regions") or [], limit),
        "cutoff": accuracy.get("cutoff"),
        "feedback_rows": [
            {
                **row,
                "rate": _pct(row["rate"]),
                "right_share": _pct(row["right_share"], 0),
                "too_high_share": _pct(row["too_high_share"], 0),
                "too_low_share": _pct(row["too_low_share"], 0),
            }
            for row in report.feedback_months
        ],
        "reference": report.reference,
    }


@admin.register(ModelMonitoring)
class ModelMonitoringAdmin(admin.ModelAdmin):
    """Model monitoring (valuation/monitoring.py): drift of the recent valuations against the training
    data, accuracy on sales after the training period, feedback, and warnings. A page, not a list:
    every staff member may see it, nobody changes anything here."""

    def _staff(self, request: Any) -> bool:
        return bool(request.user.is_active and request.user.is_staff)

    def has_module_permission(self, request: Any) -> bool:
        return self._staff(request)

    def has_view_permission(self, request: Any, obj: Any = None) -> bool:
        return self._staff(request)

    def has_add_permission(self, request: Any) -> bool:
        return False

    def has_change_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: Any, obj: Any = None) -> bool:
        return False

    def changelist_view(self, request: Any, extra_context: dict[str, Any] | None = None) -> Any:
        if not self.has_view_permission(request):
            raise PermissionDenied
        started = time.perf_counter()
        report = monitoring_report()
        context = {
            **self.admin_site.each_context(request),
            **monitoring_context(report),
            "title": _("Model monitoring"),
            "opts": self.model._meta,
            "computed_in": f"{time.perf_counter() - started:.2f}",
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/valuation/monitoring.html", context)
