"""Forms of the notary's pages: what to value, the notary's facts, feedback (all labels translated)."""

from __future__ import annotations

import datetime
from typing import Any

from django import forms
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from valuation.models import Feedback, Verdict
from valuation.services import CONDITIONS


class FactsForm(forms.Form):
    """The facts a notary may give or correct; empty means 'as the open data says'."""

    living_area_m2 = forms.FloatField(
        label=_("Living area (m²)"), required=False, min_value=10, max_value=5000
    )
    land_area_m2 = forms.FloatField(
        label=_("Land area (m²)"), required=False, min_value=0, max_value=1_000_000
    )
    rooms = forms.IntegerField(label=_("Rooms"), required=False, min_value=1, max_value=100)
    bedrooms = forms.IntegerField(label=_("Bedrooms"), required=False, min_value=0, max_value=50)
    year_built = forms.IntegerField(label=_("Year built"), required=False, min_value=1000, max_value=2100)
    epc_kwh_m2 = forms.FloatField(label=_("EPC (kWh/m² a year)"), required=False, min_value=0, max_value=2000)
    condition = forms.ChoiceField(
        label=_("Condition"),
        required=False,
        choices=[
            ("", _("as the data says")),
            ("to_renovate", _("to renovate")),
            ("average", _("average")),
            ("good", _("good")),
            ("as_new", _("as new")),
        ],
    )
    valuation_date = forms.DateField(
        label=_("Valuation date"),
        required=False,
        widget=forms.DateInput(attrs={"type": "date"}),
        help_text=_("Today unless you choose a past date (succession, gift)."),
    )

    FACTS = ("living_area_m2", "land_area_m2", "rooms", "bedrooms", "year_built", "epc_kwh_m2", "condition")

    def clean_valuation_date(self) -> datetime.date | None:
        when = self.cleaned_data.get("valuation_date")
        if when and when > timezone.localdate():
            raise forms.ValidationError(_("The valuation date cannot be in the future."))
        if when and when.year < 2000:
            raise forms.ValidationError(_("Choose a date from 2000 on."))
        return when

    def facts(self) -> dict[str, Any]:
        assert CONDITIONS  # the same conditions as the service checks
        return {
            name: self.cleaned_data[name]
            for name in self.FACTS
            if self.cleaned_data.get(name) not in (None, "")
        }


class ValuateForm(FactsForm):
    """What to value: a picked suggestion (address id or CaPaKey) or the text typed."""

    q = forms.CharField(label=_("Address or CaPaKey"), max_length=200, required=False)
    address_id = forms.IntegerField(required=False, widget=forms.HiddenInput, min_value=1)
    capakey = forms.CharField(required=False, widget=forms.HiddenInput, max_length=40)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if not (data.get("q") or data.get("address_id") or data.get("capakey")):
            raise forms.ValidationError(
                _("Type an address (street, house number, municipality) or a CaPaKey."), code="empty"
            )
        return data


class FeedbackForm(forms.ModelForm):
    verdict = forms.ChoiceField(
        label=_("The indicative price is"),
        choices=[
            (Verdict.RIGHT, _("about right")),
            (Verdict.TOO_HIGH, _("too high")),
            (Verdict.TOO_LOW, _("too low")),
        ],
        widget=forms.RadioSelect,
    )

    class Meta:
        model = Feedback
        fields = ["verdict", "estimate_eur", "comment"]
        labels = {
            "estimate_eur": _("Your own estimate (EUR, optional)"),
            "comment": _("Comment (optional)"),
        }
        widgets = {"comment": forms.Textarea(attrs={"rows": 3, "maxlength": 4000})}
