"""Server-rendered pages. The notary's search and result pages arrive with the web-app issue."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from valuation.selectors import data_counts, demo_run_latest


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "valuation/home.html", {"counts": data_counts(), "demo_run": demo_run_latest()})
