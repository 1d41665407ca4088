"""The notary's pages: find the property, see the explained price, correct facts, send feedback.

Server-rendered and translated (nl, fr, en). A notary belongs to one office and sees only its
valuations; staff see everything in the admin. Every write goes through ``valuation.services``.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.cache import cache
from django.db.models import QuerySet
from django.db.models.fields.json import KT
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.translation import get_language
from django.utils.translation import gettext as _
from django.views.decorators.http import require_GET, require_POST

from valuation import presenters
from valuation.engine import NoActiveModel, ValuationInputError
from valuation.forms import FactsForm, FeedbackForm, ValuateForm
from valuation.locate import LocateError
from valuation.models import Channel, Office, Valuation
from valuation.selectors import data_counts, demo_run_latest
from valuation.services import ValuationQuery, feedback_create, valuation_create
from valuation.suggest import suggest

log = logging.getLogger(__name__)

LOGIN_ATTEMPTS = 5  # failed logins per user name and address ...
LOGIN_WINDOW_S = 15 * 60  # ... within this window, then refused until it passes


def office_of(user: Any) -> Office | None:
    membership = getattr(user, "membership", None) if user.is_authenticated else None
    return membership.office if membership is not None else None


def _language() -> str:
    return (get_language() or settings.LANGUAGE_CODE)[:2]


# --- accounts ----------------------------------------------------------------------------------------
class LoginView(auth_views.LoginView):
    """Django's login, refused for a while after repeated failures from one address for one name."""

    template_name = "registration/login.html"

    def _key(self) -> str:
        name = (self.request.POST.get("username") or "").strip().lower()[:150]
        address = self.request.META.get("REMOTE_ADDR", "")
        # Hashed: a user name may hold any character, and a cache key should not.
        return f"login-failures:{address}:{hashlib.sha256(name.encode()).hexdigest()[:32]}"

    def _failures(self) -> int:
        try:
            return int(cache.get(self._key(), 0))
        except Exception:  # the cache (Redis) is down: do not lock everyone out
            log.warning("login throttle unavailable: cache error", exc_info=True)
            return 0

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if self._failures() >= LOGIN_ATTEMPTS:
            form = self.get_form()
            form.add_error(
                None,
                _("Too many failed attempts. Wait %(minutes)d minutes, then try again.")
                % {"minutes": LOGIN_WINDOW_S // 60},
            )
            return self.render_to_response(self.get_context_data(form=form), status=429)
        return super().post(request, *args, **kwargs)

    def form_invalid(self, form: Any) -> HttpResponse:
        try:
            key = self._key()
            cache.add(key, 0, LOGIN_WINDOW_S)
            cache.incr(key)
        except Exception:
            log.warning("login throttle unavailable: cache error", exc_info=True)
        return super().form_invalid(form)


# --- finding the property ----------------------------------------------------------------------------
def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("search")
    return render(request, "valuation/home.html", {"counts": data_counts(), "demo_run": demo_run_latest()})


def _needs_office(request: HttpRequest) -> HttpResponse | None:
    if office_of(request.user) is None and not request.user.is_staff:
        return render(request, "valuation/no_office.html", status=403)
    return None


@login_required
@require_GET
def search(request: HttpRequest) -> HttpResponse:
    refused = _needs_office(request)
    if refused:
        return refused
    form = ValuateForm(initial={"q": request.GET.get("q", "")})
    return render(request, "valuation/search.html", {"form": form, "recent": _recent(request)})


@require_GET
def suggestions(request: HttpRequest) -> JsonResponse:
    if not request.user.is_authenticated:
        return JsonResponse({"error": _("Log in first.")}, status=401)
    return JsonResponse({"results": suggest(request.GET.get("q", ""), _language())})


@login_required
@require_POST
def valuate(request: HttpRequest) -> HttpResponse:
    refused = _needs_office(request)
    if refused:
        return refused
    form = ValuateForm(request.POST)
    if not form.is_valid():
        return render(
            request, "valuation/search.html", {"form": form, "recent": _recent(request)}, status=400
        )
    data = form.cleaned_data
    query = ValuationQuery(
        address=None if data.get("address_id") or data.get("capakey") else data.get("q"),
        address_id=data.get("address_id"),
        capakey=data.get("capakey") or None,
        facts=form.facts(),
        valuation_date=data.get("valuation_date"),
    )
    return _value_and_show(request, query, form, "valuation/search.html")


def _value_and_show(
    request: HttpRequest, query: ValuationQuery, form: Any, template: str, extra: dict[str, Any] | None = None
) -> HttpResponse:
    context = {"form": form, "recent": _recent(request), **(extra or {})}
    try:
        valuation = valuation_create(
            query=query, channel=Channel.WEB, user=request.user, office=office_of(request.user)
        )
    except LocateError as exc:
        context.update(problem=_locate_message(exc), suggestions=exc.suggestions)
        return render(request, template, context, status=400)
    except ValuationInputError as exc:
        context.update(problem=_input_message(exc), problem_field=exc.field)
        return render(request, template, context, status=400)
    except NoActiveModel:
        context.update(problem=_("No valuation model is active yet. Ask your administrator to train one."))
        return render(request, template, context, status=503)
    return redirect("valuation-detail", pk=valuation.pk)


def _locate_message(exc: LocateError) -> str:
    """The locating error as a sentence in the notary's language (the service speaks English)."""
    text = str(exc)
    if text.startswith("No street called"):
        return _(
            "No street of that name is known here. Check the spelling, or try the name in the other language."
        )
    if "has no house number" in text:
        return _("That street has no such house number. Pick one of the suggestions below.")
    if text.startswith("No parcel"):
        return _("No parcel with that CaPaKey is known here. Check the key, or search by address.")
    if "house number" in text:
        return _("Add the house number, e.g. 'Kerkstraat 10'.")
    if "CaPaKey" in text or exc.field == "capakey":
        return _("That is not a CaPaKey (e.g. 44024A0034/00B002). Check it, or search by address.")
    return _("The property could not be found. Type the street, house number and municipality.")


def _input_message(exc: ValuationInputError) -> str:
    if exc.field == "living_area_m2":
        return _("The living area of this property is unknown: enter it (in m²) to get a valuation.")
    return _("A fact you entered is not plausible: %(field)s.") % {
        "field": presenters.label_of(exc.field, _language())
    }


def _form_errors(form: Any) -> str:
    return "; ".join(
        f"{form.fields[name].label}: {' '.join(str(e) for e in errors)}"
        if name in form.fields
        else " ".join(str(e) for e in errors)
        for name, errors in form.errors.items()
    )


# --- the result ------------------------------------------------------------------------------------
def _visible(request: HttpRequest) -> QuerySet[Valuation]:
    """The valuations this user may open: those of the office (all of them for staff)."""
    if request.user.is_staff and office_of(request.user) is None:
        return Valuation.objects.all()  # staff review any valuation as it was shown
    office = office_of(request.user)
    if office is None:
        return Valuation.objects.none()
    return Valuation.objects.filter(office=office)


def _listed(valuations: QuerySet[Valuation]) -> QuerySet[Valuation]:
    """The columns the lists show, the property's label read inside the stored result by PostgreSQL:
    loading whole results (explanation, distribution, comparables) made a list of 200 cost 100 ms."""
    return (
        valuations.select_related("created_by")
        .only("query", "valuation_date", "price_eur", "created_at", "created_by__username")
        .annotate(label=KT("result__subject__label"))
    )


def _recent(request: HttpRequest) -> QuerySet[Valuation]:
    return _listed(_visible(request))[:8]


def _owned(request: HttpRequest, pk: int) -> Valuation:
    valuation = _visible(request).select_related("model_version", "parcel").filter(pk=pk).first()
    if valuation is None:  # another office's valuation is as unknown as a missing one
        raise Http404(_("No such valuation."))
    return valuation


@login_required
@require_GET
def valuation_detail(request: HttpRequest, pk: int) -> HttpResponse:
    valuation = _owned(request, pk)
    language = _language()
    result = valuation.result
    bands, sales_count = presenters.distribution(result)
    given = valuation.inputs.get("facts", {}) or {}
    facts_form = FactsForm(initial={**given, "valuation_date": valuation.valuation_date})
    context = {
        "valuation": valuation,
        "result": result,
        "facts": presenters.fact_rows(result, language),
        "notes": presenters.notes(result),
        "open_data": presenters.open_data_rows(result, language),
        "steps": presenters.waterfall(result, language),
        "bands": bands,
        "sales_count": sales_count,
        "radius_km": result.get("distribution", {}).get("radius_m", 1000) / 1000,
        "map_layers": presenters.map_layers(valuation),
        "tile_url": settings.MAP_TILE_URL,
        "tile_attribution": settings.MAP_TILE_ATTRIBUTION,
        "facts_form": facts_form,
        "feedback_form": FeedbackForm(),
        "feedback": valuation.feedback.order_by("-created_at").first(),
        "vintages": sorted((result.get("vintages") or {}).items()),
    }
    return render(request, "valuation/result.html", context)


@login_required
@require_POST
def valuation_revise(request: HttpRequest, pk: int) -> HttpResponse:
    """The same property again with the notary's corrected facts or another date: a new valuation."""
    original = _owned(request, pk)
    form = FactsForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("Check the facts you entered: %(errors)s") % {"errors": _form_errors(form)},
        )
        return redirect("valuation-detail", pk=pk)
    query = ValuationQuery.naming(
        original.inputs, facts=form.facts(), valuation_date=form.cleaned_data.get("valuation_date")
    )
    try:
        valuation = valuation_create(
            query=query, channel=Channel.WEB, user=request.user, office=office_of(request.user)
        )
    except (LocateError, ValuationInputError, NoActiveModel) as exc:
        message = _input_message(exc) if isinstance(exc, ValuationInputError) else str(exc)
        messages.error(request, message)
        return redirect("valuation-detail", pk=pk)
    return redirect("valuation-detail", pk=valuation.pk)


@login_required
@require_POST
def valuation_feedback(request: HttpRequest, pk: int) -> HttpResponse:
    valuation = _owned(request, pk)
    form = FeedbackForm(request.POST)
    if not form.is_valid():
        messages.error(
            request,
            _("Your feedback was not sent: %(errors)s") % {"errors": _form_errors(form)},
        )
        return redirect(reverse("valuation-detail", args=[pk]) + "#feedback")
    feedback_create(
        valuation=valuation,
        verdict=form.cleaned_data["verdict"],
        estimate_eur=form.cleaned_data.get("estimate_eur"),
        comment=form.cleaned_data.get("comment", ""),
        user=request.user,
        office=office_of(request.user),
    )
    messages.success(request, _("Thank you: your feedback was received and will be reviewed."))
    return redirect(reverse("valuation-detail", args=[pk]) + "#feedback")


@login_required
@require_GET
def valuation_list(request: HttpRequest) -> HttpResponse:
    refused = _needs_office(request)
    if refused:
        return refused
    return render(request, "valuation/list.html", {"valuations": _listed(_visible(request))[:200]})
